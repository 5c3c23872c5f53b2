//! Set-up inside a root nobody vouches for (issue 13, points 4, 6 and 7):
//! hostile symlinks and a racer cannot lead `nsrun.sandbox` outside its
//! `root`, the root is nosuid, the sandbox's /proc and /sys are locked down
//! like runc's, and `remount_ro` is recursive. Each as root and as uid
//! 65534; the host's mount table is checked by `both!`.
//!
//! The recipes are `tests/recipes/rooted_*.lua`.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{nsrun, As, Done};

fn run_recipe(as_: As, recipe: &str, args: &[&str]) -> Done {
    nsrun(as_).recipe(recipe).args(args).run()
}

/// The canary of a run directory, as the recipe first made it: `f`
/// ("orig\n", 0644) and an empty `sub`, nothing else.
fn assert_canary_clean(done: &Done) {
    let c = done.path("canary");
    let mut names: Vec<String> = std::fs::read_dir(&c)
        .unwrap_or_else(|e| panic!("read {}: {e}\n{}", c.display(), done.report()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["f", "sub"], "the canary changed\n{}", done.report());
    assert_eq!(std::fs::read_to_string(c.join("f")).unwrap(), "orig\n");
    assert_eq!(common::mode_of(&c.join("f")), 0o644);
    assert_eq!(std::fs::read_dir(c.join("sub")).unwrap().count(), 0);
}

both!(
    /// A root full of symlinks to a canary outside it: no set-up option
    /// reaches the canary (the controls show the old way does).
    fn hostile_root(as_) {
        let done = run_recipe(as_, include_str!("recipes/rooted_hostile.lua"), &[]);
        done.finished(&[
            "control.child",
            "control.write_through_abs",
            "control.write_through_rel",
            "control.write_through_magic",
            "control.write_through_cwd",
            "control.chmod_reached",
            "control.restored",
            "attacks.canary_untouched",
            "attacks.refused_in_root",
            "inside.written",
            "inside.chmod",
        ]);
        let ran: u32 = done.value("attacks").parse().unwrap();
        assert!(ran >= 100, "only {ran} attacks ran\n{}", done.report());
        assert_canary_clean(&done);
    }
);

both!(
    /// A process swaps a directory of the root for a symlink to the canary
    /// in a tight loop during 1000 set-ups: errors are fine, escapes not.
    fn racer(as_) {
        let done = nsrun(as_)
            .recipe(include_str!("recipes/rooted_racer.lua"))
            .args(&["1000"])
            .timeout(std::time::Duration::from_secs(120))
            .run();
        done.finished(&["racer.swapped", "racer.canary_untouched"]);
        assert_canary_clean(&done);
    }
);

/// An image, root-owned and shared by both runs: `suid-id`, a set-user-id
/// root copy of `id`, and the mount point and links a sandbox on the
/// host's /usr needs. Only root can make it, so the test process does.
fn suid_image() -> PathBuf {
    static IMG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    IMG.get_or_init(|| {
        let d = common::base().join("suid-image");
        std::fs::create_dir_all(d.join("usr")).unwrap();
        for (l, t) in [
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            let _ = std::os::unix::fs::symlink(t, d.join(l));
        }
        let id = d.join("suid-id");
        std::fs::copy("/usr/bin/id", &id).unwrap();
        std::os::unix::fs::chown(&id, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o4755)).unwrap();
        for p in [&d, &d.join("usr")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        d
    })
    .clone()
}

both!(
    /// A set-user-id root program in `root = DIR` does not give a
    /// `uid = 1000` sandbox euid 0; the same file run without nosuid does
    /// (as root: unprivileged, the file's owner is not mapped and the
    /// kernel ignores the bit either way).
    fn setuid_in_root(as_) {
        let img = suid_image();
        let m = std::fs::metadata(img.join("suid-id")).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o4755));
        let done = run_recipe(
            as_,
            include_str!("recipes/rooted_setuid.lua"),
            &[&img.to_string_lossy()],
        );
        done.finished(&["nosuid.euid", "nosuid.mount_flags"]);
        if as_ == As::Root {
            done.assert_oks(&["control.euid0"]);
        }
    }
);

both!(
    /// /proc/sys and friends read-only, kcore/keys/timer_list masked,
    /// /sys/firmware masked; unmask turns it off; remount_ro is recursive.
    fn proc_lockdown(as_) {
        let names = common::host_names();
        let done = run_recipe(as_, include_str!("recipes/rooted_lockdown.lua"), &[]);
        let mut want = vec![
            "proc.sys_ro",
            "proc.irq_ro",
            "proc.masked_mode",
            "proc.keys_empty",
            "unmask.sys_rw",
            "unmask.timer_list",
            "unmask.some",
            "unmask.bad_path",
            "unmask.needs_proc",
            "sys.firmware_masked",
            "remount_ro.control",
            "remount_ro.recursive",
            "mounts.order",
        ];
        if as_ == As::Root {
            want.extend(["proc.write_erofs", "unmask.write_works"]);
        }
        done.finished(&want);
        assert_eq!(common::host_names(), names, "the host's names changed");
    }
);

#[test]
fn recipes_exist() {
    for r in [
        "rooted_hostile",
        "rooted_racer",
        "rooted_setuid",
        "rooted_lockdown",
    ] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/recipes/{r}.lua"));
        assert!(p.exists(), "{}", p.display());
    }
}
