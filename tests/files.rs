//! mkdir, chmod, chdir, symlink, write_file, read_file.

mod common;

use common::{mode_of, nsrun, run, As};
use std::os::unix::fs::MetadataExt;

const FILES: &str = include_str!("recipes/files.lua");

both!(
    fn file_helpers(as_) {
        let d = run(as_, FILES, &[]);
        let mut names = vec![
            "mkdir.eexist",
            "mkdir.enoent",
            "mkdir.enoent_nothing_made",
            "mkdir.parents_repeat",
            "mkdir.parents",
            "mkdir.parents_enotdir",
            "chmod.enoent",
            "file.roundtrip",
            "file.truncated",
            "file.empty",
            "file.read_missing",
            "file.read_dir",
            "file.write_dir",
            "file.proc",
            "symlink.idempotent",
            "symlink.other_target",
            "symlink.message",
            "symlink.over_file",
            "symlink.enoent",
            "symlink.follow",
            "chdir.relative",
            "chdir.dotdot",
            "chdir.enotdir",
            "readdir",
            "readdir.relative",
            "readdir.empty",
            "readdir.enoent",
            "getcwd",
            "realpath.link",
            "realpath.relative",
            "realpath.enoent",
            "readdir.enotdir",
        ];
        if as_ == As::User {
            names.extend(["file.eacces", "file.eacces_hint", "file.read_eacces"]);
        }
        d.finished(&names);

        // Modes are exactly what was asked, whatever the umask.
        let modes: &[(&str, u32)] = &[
            ("a", 0o700),
            ("b", 0o755),
            ("c", 0o755),
            ("p", 0o750),
            ("p/q", 0o750),
            ("p/q/r", 0o750),
            ("m", 0o711),
            ("mf", 0o2644),
            ("blob", 0o600),
            ("default_mode", 0o644),
            ("exec_mode", 0o755),
        ];
        for (p, m) in modes {
            assert_eq!(mode_of(&d.path(p)), *m, "mode of {p}\n{}", d.report());
        }
        // Files belong to the user who ran nsrun.
        let meta = std::fs::metadata(d.path("blob")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (as_.uid(), as_.gid()));
        assert_eq!(
            std::fs::read_link(d.path("link")).unwrap().to_string_lossy(),
            "target-one"
        );
        assert_eq!(std::fs::read(d.path("blob")).unwrap(), b"short");
        let out = std::process::Command::new(d.path("exec_mode")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "exec-mode-ok\n");
    }
);

both!(
    /// Like write_file's mode (and `mkdir -m`), mkdir's mode is what was
    /// asked for, not trimmed by the umask: a rootfs needs `/tmp` 1777.
    fn mkdir_mode_is_exact(as_) {
        let d = nsrun(as_)
            .recipe(
                "local ns = require 'nsrun'\n\
                 ns.mkdir('tmp', '1777')\n\
                 ns.mkdir('open', '0777')\n\
                 ns.mkdir('deep/er', '0777', {parents = true})\n\
                 ns.write_file('f', '', '0666')\n",
            )
            .umask(0o022)
            .run();
        d.success();
        for (p, m) in [("f", 0o666), ("tmp", 0o1777), ("open", 0o777), ("deep", 0o777), ("deep/er", 0o777)] {
            assert_eq!(mode_of(&d.path(p)), m, "mode of {p}: {:o}, want {m:o}\n{}", mode_of(&d.path(p)), d.report());
        }
    }
);
