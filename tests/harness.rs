//! The test harness itself: it must notice what a recipe leaves behind.

mod common;

use common::{guarded_exclusive, host_mounts, run, As};

/// A process left running is found, killed and reported.
#[test]
#[should_panic(expected = "left processes running")]
fn leftover_processes_are_caught_user() {
    run(
        As::User,
        "local ns = require 'nsrun'\nns.fork(function() ns.exec({'sleep', '30'}) end)\n",
        &[],
    );
}

/// A mount left on the host is found, undone and reported.
#[test]
fn leftover_mounts_are_caught_root() {
    let before = host_mounts();
    let r = std::panic::catch_unwind(|| {
        guarded_exclusive(|| {
            // No unshare: this mounts in the host's mount namespace.
            run(
                As::Root,
                "local ns = require 'nsrun'\nns.mkdir('m')\nns.mount('tmpfs', os.getenv('NSRUN_TEST_DIR') .. '/m', 'tmpfs')\n",
                &[],
            )
            .success();
        })
    });
    let msg = match r {
        Ok(()) => panic!("the leaked mount was not noticed"),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(msg.contains("the host's mount table changed"), "{msg}");
    assert!(msg.contains(" - tmpfs "), "{msg}");
    assert_eq!(host_mounts(), before, "the leaked mount was not undone");
}
