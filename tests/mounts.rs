//! mount, bind, umount, pivot_root, chroot; and that none of it reaches
//! the host.

mod common;

use common::{host_has_mount_at, host_names, nsrun, run};

const MOUNTS: &str = include_str!("recipes/mounts.lua");
const VISIBLE: &str = include_str!("recipes/visible.lua");

both!(
    fn mount_bind_umount_pivot_chroot(as_) {
        let d = run(as_, MOUNTS, &[]);
        d.finished(&[
            "isolated",
            "mount.fstype",
            "mount.nosuid",
            "mount_table.source",
            "mount_table.noexec",
            "remount.erofs",
            "mount.enoent",
            "mount.enodev",
            "bind_ro.erofs",
            "bind_ro.hint",
            "bind_rw.write_through",
            "bind_create.dir_mounted",
            "bind_create.file_content",
            "bind.missing_target",
            "bind.missing_target_not_made",
            "bind_rec.default",
            "bind_rec.false",
            "bind_ro.recursive",
            "mount_bind_flag",
            "umount.gone",
            "umount.not_mounted",
            "umount.busy",
            "umount.busy_hint",
            "umount.detach",
            "umount.detach_list",
            "pivot1",
            "pivot1.parent_unaffected",
            "pivot1.enoent",
            "pivot1.missing",
            "pivot2",
            "pivot2.einval",
            "pivot2.hint",
            "chroot",
            "chroot.enoent",
            "chroot.enotdir",
        ]);
        // What was written into the mounts stayed in them.
        for p in ["m1/inside", "m2/f", "tree/sub/m", "newroot/marker", "nr2/marker2"] {
            assert!(!d.path(p).exists(), "{p} leaked to the host\n{}", d.report());
        }
        // What was written through binds reached the real directory.
        assert_eq!(std::fs::read_to_string(d.path("src/via_bind")).unwrap(), "z");
        // bind's create made real directories and files on the host.
        assert!(d.path("made/deep/dir").is_dir());
        assert!(d.path("madefile/f").is_file());
    }
);

both!(
    fn mounts_and_names_stay_inside(as_) {
        let (host, domain) = host_names();
        let mut r = nsrun(as_).recipe(VISIBLE).fifo("go").spawn();
        r.wait_for_file("ready");
        let mnt = r.dir().join("mnt");
        // Inside: the process's own view has the tmpfs.
        let inside = std::fs::read_to_string(format!("/proc/{}/mountinfo", r.pid())).unwrap();
        let mnt_s = mnt.to_string_lossy().to_string();
        assert!(
            inside.lines().any(|l| common::mount_point(l) == mnt_s && l.contains(" - tmpfs ")),
            "the tmpfs is not in nsrun's mountinfo:\n{inside}"
        );
        // The host: no such mount, no file, the old names.
        assert!(!host_has_mount_at(&mnt), "the tmpfs is visible on the host");
        assert!(!mnt.join("inside").exists(), "the tmpfs's file is visible on the host");
        assert_eq!(host_names(), (host.clone(), domain.clone()), "the host's names changed");
        r.release("go");
        let d = r.wait();
        d.finished(&[
            "inside.mounted",
            "inside.hostname",
            "inside.domainname",
            "released",
            "inside.still_there",
            "inside.still_named",
        ]);
        assert_eq!(host_names(), (host, domain), "the host's names changed");
    }
);
