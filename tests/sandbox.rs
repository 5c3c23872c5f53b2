//! nsrun.sandbox, modelled on bubblewrap's test suite, as root and as uid
//! 65534; the host's mount table must be the same afterwards.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nsrun");

fn mounts() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').skip(4).take(1).collect())
        .collect();
    v.sort();
    v
}

fn run_checks(user: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = d.join("nsrun");
    std::fs::copy(BIN, &bin).unwrap();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recipes/sandbox_checks.lua");
    std::fs::copy(recipe, d.join("checks.lua")).unwrap();
    let work = d.join("work");
    std::fs::create_dir_all(work.join("rw")).unwrap();
    for p in [d.to_path_buf(), bin.clone(), d.join("checks.lua")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    if user {
        let _ = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&work)
            .status();
    }
    let before = mounts();
    let mut out = None;
    for _ in 0..20 {
        let mut c = if user {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        let o = match c.current_dir(d).arg("checks.lua").arg(&work).output() {
            Ok(o) => o,
            // The copy is "busy" while another thread's fork still holds it
            // open for writing: try again.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            Err(e) => panic!("running nsrun: {e}"),
        };
        let busy = String::from_utf8_lossy(&o.stderr).contains("Text file busy");
        out = Some(o);
        if !busy {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = out.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "user={user}\n{stdout}\n{stderr}");
    assert!(stdout.ends_with("all done\n"), "{stdout}");
    let oks = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(oks >= 94, "only {oks} checks ran:\n{stdout}");
    for name in [
        "steps.later_hides_earlier",
        "steps.in_order",
        "steps.remount_ro",
        "steps.unknown_kind",
        "steps.missing_arg",
        "steps.bad_key",
        "steps.missing_source",
        "steps.not_a_table",
    ] {
        assert!(
            stdout.contains(&format!("ok {name}\n")),
            "no ok {name}:\n{stdout}"
        );
    }
    assert_eq!(mounts(), before, "the host's mount table changed");
}

#[test]
fn sandbox_checks_root() {
    run_checks(false);
}

#[test]
fn sandbox_checks_user() {
    run_checks(true);
}

both!(
    /// Under --plan the steps before a sandbox were only recorded, so its
    /// bind and overlay sources need not exist yet; a real run refuses a
    /// missing one in the parent, naming it.
    fn missing_sources_under_plan(as_) {
        let recipe = r#"
            local ns = require "nsrun"
            local sandbox = require "nsrun.sandbox"
            ns.mkdir("made/lower", "0755", {parents = true})
            local dir = os.getenv("NSRUN_TEST_DIR")
            local r = sandbox.run{argv = {"true"}, binds = {{"/usr", "/usr", ro = true}},
              overlay = {{"/o", lower = {dir .. "/made/lower", "/usr"}}}}
            print("code " .. r.code)"#;
        let d = common::nsrun(as_)
            .file("r.lua", recipe.as_bytes())
            .args(&["--plan", "r.lua"])
            .run();
        d.assert_code(0);
        assert_eq!(d.stdout, "code 0\n", "{}", d.report());
        assert!(!d.path("made").exists(), "{}", d.report());
        let d = common::nsrun(as_)
            .file("r.lua", recipe.replace("ns.mkdir", "-- ").as_bytes())
            .args(&["r.lua"])
            .run();
        d.assert_code(1);
        d.stderr_has("sandbox: overlay[1] lower ");
        d.stderr_has("/made/lower does not exist (ENOENT)");
        d.stderr_lacks("/oldroot");
    }
);
