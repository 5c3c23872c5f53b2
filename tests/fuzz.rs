//! Random arguments to every ns.* function, inside a throwaway sandbox, as
//! root and as uid 65534: only results or Lua errors with a message.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nsrun");

fn fuzz(user: bool, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = d.join("nsrun");
    std::fs::copy(BIN, &bin).unwrap();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recipes/fuzz.lua");
    std::fs::copy(recipe, d.join("fuzz.lua")).unwrap();
    for p in [d.to_path_buf(), bin.clone(), d.join("fuzz.lua")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut last = None;
    for _ in 0..20 {
        let mut c = Command::new("timeout");
        c.arg("120");
        if user {
            c.args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ]);
        }
        let out = c
            .arg(&bin)
            .arg("fuzz.lua")
            .arg(seed.to_string())
            .arg("3000")
            .current_dir(d)
            .output()
            .unwrap();
        let busy = String::from_utf8_lossy(&out.stderr).contains("Text file busy");
        last = Some(out);
        if !busy {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = last.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "seed {seed} user={user}: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("fuzz seed {seed}: 3000 calls")),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        mounts
    );
    eprintln!("{}", stdout.trim());
}

#[test]
fn random_arguments_root() {
    for seed in [1, 2, 3] {
        fuzz(false, seed);
    }
}

#[test]
fn random_arguments_user() {
    for seed in [4, 5, 6] {
        fuzz(true, seed);
    }
}
