//! Faults: nsrun killed with SIGKILL at random points of a sandbox's
//! set-up leaves no process and no mount behind; a sandbox killed in the
//! middle of writing a pipe does not hang its parent.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nsrun");

/// Pids of live (not zombie) processes whose command line has `marker`.
fn with_marker(marker: &str) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{name}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).unwrap_or_default();
        let zombie = stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmd).contains(marker) {
            v.push(name);
        }
    }
    v
}

#[test]
fn sigkill_at_random_points_leaves_nothing() {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let marker = format!("nsrun-fault-{}", std::process::id());
    // A set-up long enough to be hit at many points: maps, then a series of
    // mounts, then an exec of a long sleep.
    let recipe = format!(
        r#"local ns = require "nsrun"
           local p = ns.spawn{{argv = {{"sleep", "30", "{marker}"}}, namespaces = "user,mount,pid,uts,ipc,net",
             hostname = "f", setup = function()
               for i = 1, 40 do ns.mount("tmpfs", "/tmp", "tmpfs") end
               ns.mount("proc", "/proc", "proc")
             end}}
           p:wait()"#
    );
    let mut seed: u64 = 0x9e3779b97f4a7c15 ^ std::process::id() as u64;
    for round in 0..40 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % 40_000);
        let mut child = Command::new(BIN)
            .args(["-e", &recipe, &marker])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let end = Instant::now() + Duration::from_secs(1);
        loop {
            let left = with_marker(&marker);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < end,
                "round {round} (killed after {delay:?}): still running a second later: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Only what this recipe mounts (tmpfs on /tmp, proc) could leak;
        // other processes on the machine may mount other things meanwhile.
        let now = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let leaked: Vec<&str> = now
            .lines()
            .filter(|l| !mounts.lines().any(|m| m == *l))
            .filter(|l| l.contains(" /tmp ") || l.contains(" - proc ") || l.contains(" /proc "))
            .collect();
        assert!(
            leaked.is_empty(),
            "round {round}: leaked onto the host: {leaked:?}"
        );
    }
}

#[test]
fn a_sandbox_killed_mid_pipe_does_not_hang_the_parent() {
    let start = Instant::now();
    let out = Command::new("timeout")
        .args(["20", BIN, "-e"])
        .arg(
            r#"local ns = require "nsrun"
               for _, kinds in ipairs { "", "user,pid", "user,time" } do
                 local p = ns.spawn{argv = {"sh", "-c", "while :; do echo xxxxxxxxxxxxxxxxxxxx; done"},
                                    namespaces = kinds, stdout = "pipe"}
                 assert(p.stdout:read("l") == "xxxxxxxxxxxxxxxxxxxx")
                 p:kill("KILL")
                 p.stdout:read("a")            -- EOF, not a hang
                 local st = p:wait()
                 assert(st.signal == 9 and st.code == 137, kinds .. ": " .. tostring(st.code))
                 -- And through ns.run, killed by its timeout while it writes.
                 local r = ns.run{argv = {"sh", "-c", "while :; do echo y; done"}, namespaces = kinds, timeout = 0.3}
                 assert(r.timed_out and #r.stdout > 0, kinds)
               end
               print("ok")"#,
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "ok\n");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}
