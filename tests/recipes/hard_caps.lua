-- Capabilities: keep, drop, and the default (none for a non-root uid),
-- as the five sets of /proc/self/status show them.

local ns = require "nsrun"
local T = require "testlib"
local H = require "hard_lib"

local SETS = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" }
local NET_ADMIN, KILL, SYS_ADMIN, CHOWN = 12, 5, 21, 0
local function bit(n) return 1 << n end

local function all_sets(name, st, want)
  for _, s in ipairs(SETS) do T.eq(name .. "." .. s, st[s], H.hex(want)) end
end

-- keep, for a non-root uid: the ambient set carries them across exec.
local nonroot = H.nonroot()
nonroot.namespaces = "user"
nonroot.caps = { keep = { "net_admin", "CAP_KILL" } }
all_sets("keep.nonroot", H.status(nonroot), bit(NET_ADMIN) | bit(KILL))

-- the default for a non-root uid: nothing at all, bounding set included.
nonroot.caps = nil
all_sets("default.nonroot", H.status(nonroot), 0)

-- keep as root inside.
local st = H.status { namespaces = "user", caps = { keep = { "sys_admin" } } }
all_sets("keep.root", st, bit(SYS_ADMIN))

-- an empty keep list: nothing.
all_sets("keep.none", H.status { namespaces = "user", caps = { keep = {} } }, 0)

-- drop as root inside: everything else stays.
st = H.status { namespaces = "user", caps = { drop = { "CAP_SYS_ADMIN", "net_admin" } } }
local eff = tonumber(st.CapEff, 16)
T.eq("drop.sys_admin_gone", eff & bit(SYS_ADMIN), 0)
T.eq("drop.net_admin_gone", eff & bit(NET_ADMIN), 0)
T.check("drop.chown_kept", eff & bit(CHOWN) ~= 0, st.CapEff)
T.eq("drop.bounding", st.CapBnd, st.CapEff)
T.eq("drop.permitted", st.CapPrm, st.CapEff)

-- no caps option as root inside: left alone.
st = H.status { namespaces = "user" }
T.check("default.root_full", tonumber(st.CapEff, 16) & bit(SYS_ADMIN) ~= 0, st.CapEff)

-- the effect: without CAP_SYS_ADMIN, mounting fails in the sandbox.
local r = ns.run {
  argv = { "mount", "-t", "tmpfs", "none", "/mnt" },
  namespaces = "user,mount",
  caps = { drop = { "sys_admin" } },
}
T.ne("drop.mount_fails", r.code, 0)
r = ns.run { argv = { "mount", "-t", "tmpfs", "none", "/mnt" }, namespaces = "user,mount" }
T.eq("control.mount_works", r.code, 0)

-- no_new_privs on its own.
T.eq("nnp.set", H.status({ namespaces = H.kinds(""), no_new_privs = true }).NoNewPrivs, "1")
T.eq("nnp.unset", H.status({ namespaces = H.kinds("") }).NoNewPrivs, "0")

T.errmsg("unknown", "unknown capability 'net_admn' (did you mean 'CAP_NET_ADMIN'?)",
  ns.run, { argv = { "true" }, caps = { keep = { "net_admn" } } })
T.errmsg("both", "caps: give keep or drop, not both",
  ns.run, { argv = { "true" }, caps = { keep = {}, drop = {} } })
print("done")
