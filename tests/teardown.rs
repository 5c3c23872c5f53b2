//! What a forked child may not do to its parent (issue 14): run the
//! parent's teardown, hold the parent's error pipe; and what a failed
//! exec, a trace or a mount namespace of the recipe's may not leave
//! behind.

mod common;

use std::time::Duration;

use common::nsrun;

// A process `setup` forks in the background does not hold the spawn's
// error pipe: `spawn` returns at the exec. The background process waits
// on a FIFO that the recipe opens only once `spawn` has returned, so
// before the fix the two waited on each other until the run was killed.
both!(
    fn background_fork_in_setup_does_not_hold_spawn(as_) {
        let d = nsrun(as_)
            .recipe(
                r#"
local ns = require "nsrun"
local T = require "testlib"
local fifo = T.dir .. "/go"
local p = ns.spawn{argv = {"true"}, setup = function()
  ns.fork(function()
    local f = assert(io.open(fifo, "r"))
    f:read("a")
    f:close()
  end)
end}
T.ok("spawn.returned")
local w = assert(io.open(fifo, "w"))
w:write("go\n")
w:close()
T.eq("spawn.code", p:wait().code, 0)
"#,
            )
            .fifo("go")
            .timeout(Duration::from_secs(15))
            .run();
        d.oks(&["spawn.returned", "spawn.code"]);
    }
);
