//! Mount propagation in a new mount namespace is set before anything is
//! mounted: slave by default, or as asked.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nsrun");

#[test]
fn propagation_is_slave_by_default_or_as_asked() {
    // A shared mount of our own on the host, so the modes differ visibly.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let host_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ok = Command::new("mount")
        .args(["--bind", &d, &d])
        .status()
        .unwrap()
        .success()
        && Command::new("mount")
            .args(["--make-shared", &d])
            .status()
            .unwrap()
            .success();
    assert!(ok, "could not make a shared test mount");
    let out = Command::new(BIN)
        .args(["-e"])
        .arg(format!(
            r#"local ns = require "nsrun"
               for _, p in ipairs {{ "default", "slave", "private", "unchanged" }} do
                 local r = ns.run{{argv = {{"grep", " {d} ", "/proc/self/mountinfo"}}, namespaces = "mount",
                                  propagation = p ~= "default" and p or nil}}
                 local tags = r.stdout:match("%d+ %d+ %S+ %S+ %S+ %S+ (.-) %- ") or "?"
                 print(p, tags)
               end"#
        ))
        .output()
        .unwrap();
    let _ = Command::new("umount").arg(&d).status();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("default\t") && lines[0].contains("master:"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("slave\t") && lines[1].contains("master:"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("private\t")
            && !lines[2].contains("master:")
            && !lines[2].contains("shared:"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("unchanged\t") && lines[3].contains("shared:"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        host_before
    );
}
