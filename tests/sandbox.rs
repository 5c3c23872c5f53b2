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

both!(
    /// `root = {DIR, ro = true}` and `{DIR, overlay = "tmpfs"}` never
    /// write into DIR: mount points, files and the program's writes land
    /// on a tmpfs upper layer. Control: a plain `root = DIR` leaves its
    /// mount points behind in DIR.
    fn root_ro_and_overlay_leave_dir_alone(as_) {
        let recipe = r#"
            local ns = require "nsrun"
            local sandbox = require "nsrun.sandbox"
            local dir = os.getenv("NSRUN_TEST_DIR")
            ns.mkdir(dir .. "/img/etc", "0755", {parents = true})
            ns.write_file(dir .. "/img/etc/motd", "image\n")
            local function box(root)
              return sandbox.run{
                root = root,
                binds = {{"/usr", "/usr", ro = true}},
                symlinks = {["/bin"] = "usr/bin", ["/lib"] = "usr/lib", ["/lib64"] = "usr/lib64"},
                tmpfs = {"/tmp"},
                files = {["/etc/hostname"] = "box\n"},
                argv = {"sh", "-c", "cat /etc/motd /etc/hostname; touch /x && echo wrote-x; "
                  .. "echo t > /tmp/t && cat /tmp/t"},
              }
            end
            local function listing()
              local names = {}
              local function walk(p, rel)
                for _, n in ipairs(ns.readdir(p)) do
                  names[#names + 1] = rel .. n
                  local ok = pcall(ns.readdir, p .. "/" .. n)
                  if ok then walk(p .. "/" .. n, rel .. n .. "/") end
                end
              end
              walk(dir .. "/img", "")
              table.sort(names)
              return table.concat(names, " ")
            end
            local mode = arg[1]
            local root = dir .. "/img"
            if mode == "ro" then root = {root, ro = true}
            elseif mode == "overlay" then root = {root, overlay = "tmpfs"} end
            local r = box(root)
            io.write(r.stdout, "code ", r.code, "\n", "img: ", listing(), "\n")"#;
        for (mode, wrote) in [("ro", false), ("overlay", true)] {
            let d = common::nsrun(as_)
                .file("r.lua", recipe.as_bytes())
                .args(&["r.lua", mode])
                .run();
            d.assert_code(0);
            d.stdout_has("image\nbox\n");
            d.stdout_has("t\ncode 0\n");
            assert_eq!(d.stdout.contains("wrote-x"), wrote, "{mode}: {}", d.report());
            // Nothing of the sandbox's in the image: not its mount points
            // (usr, tmp), files (etc/hostname), symlinks or writes (x).
            d.stdout_has("img: etc etc/motd\n");
        }
        // Control: bound as it is, the image gets the mount points.
        let d = common::nsrun(as_)
            .file("r.lua", recipe.as_bytes())
            .args(&["r.lua", "plain"])
            .run();
        d.assert_code(0);
        d.stdout_has("wrote-x");
        assert!(d.stdout.contains("img: bin etc etc/hostname etc/motd lib lib64 tmp usr x\n"), "{}", d.report());
    }
);

both!(
    /// A bad root table is named in the parent.
    fn root_table_checked(as_) {
        let d = common::run(
            as_,
            r#"local sandbox = require "nsrun.sandbox"
            sandbox.run{root = {"/usr", overlay = "disk"}, argv = {"true"}}"#,
            &[],
        );
        d.assert_code(1);
        d.stderr_has("root.overlay must be \"tmpfs\"");
        let d = common::run(
            as_,
            r#"local sandbox = require "nsrun.sandbox"
            sandbox.run{root = {"/usr", r0 = true}, argv = {"true"}}"#,
            &[],
        );
        d.assert_code(1);
        d.stderr_has("root: unknown key 'r0' (did you mean 'ro'?)");
    }
);

both!(
    /// bubblewrap's command line and the sandbox table convert both ways,
    /// and --plan shows the command line a sandbox stands for.
    fn bwrap_round_trip(as_) {
        let recipe = r#"
            local sandbox = require "nsrun.sandbox"
            local argv = {"--unshare-pid", "--unshare-uts", "--hostname", "h", "--ro-bind", "/usr", "/usr",
              "--perms", "0700", "--tmpfs", "/tmp", "--size", "1000", "--tmpfs", "/tmp/s", "--dir", "/d",
              "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
              "--chmod", "0711", "/d", "--remount-ro", "/usr",
              "--overlay-src", "/usr", "--tmp-overlay", "/o", "--", "sh", "-c", "echo hi"}
            local t = sandbox.from_bwrap(argv)
            local back = sandbox.to_bwrap(t)
            print(table.concat(back, " "))
            local r = sandbox.run(t)
            print(r.code, r.stdout)"#;
        let d = common::run(as_, recipe, &[]);
        d.assert_code(0);
        // Back in the same order; the namespaces bubblewrap decides (the
        // mount one always, a user one for uid 65534) said outright.
        let user = if matches!(as_, common::As::User) { "--unshare-user " } else { "" };
        d.stdout_has(&format!(
            "{user}--unshare-pid --unshare-uts --hostname h --ro-bind /usr /usr --perms 0700 --tmpfs /tmp \
             --size 1000 --tmpfs /tmp/s --dir /d --symlink usr/bin /bin --symlink usr/lib /lib \
             --symlink usr/lib64 /lib64 --chmod 0711 /d \
             --remount-ro /usr --overlay-src /usr --tmp-overlay /o"
        ));
        d.stdout_has("0\thi\n");
        let d = common::nsrun(as_)
            .file("r.lua", br#"local sandbox = require "nsrun.sandbox"
                sandbox.run{argv = {"echo", "it's"}, binds = {{"/usr", "/usr", ro = true}}, tmpfs = {"/tmp"}}"#)
            .args(&["--plan", "r.lua"])
            .run();
        d.assert_code(0);
        d.stderr_has("# as bubblewrap: bwrap --unshare-user --unshare-ipc --unshare-pid --unshare-net \
                       --unshare-uts --unshare-cgroup --ro-bind /usr /usr --tmpfs /tmp --die-with-parent -- echo 'it'\\''s'");
    }
);
