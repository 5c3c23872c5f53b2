-- A tmpfs and a hostname set in new mount and uts namespaces. The recipe
-- stops (reading the FIFO "go") so the test can look at the host meanwhile.
local ns = require "nsrun"
local T = require "testlib"
local D = T.dir

T.isolate("mount,uts")
ns.mkdir(D .. "/mnt")
ns.mount("tmpfs", D .. "/mnt", "tmpfs", "nosuid", "size=1m")
ns.write_file(D .. "/mnt/inside", "only in here")
ns.sethostname("nsrun-visible")
ns.setdomainname("nsrun-domain")
T.eq("inside.mounted", T.fstype(D .. "/mnt"), "tmpfs")
T.eq("inside.hostname", T.hostname(), "nsrun-visible")
T.eq("inside.domainname", T.domainname(), "nsrun-domain")

ns.write_file(D .. "/ready", "")
local f = assert(io.open(D .. "/go", "r"))
T.eq("released", f:read("a"), "go")
f:close()

T.eq("inside.still_there", ns.read_file(D .. "/mnt/inside"), "only in here")
T.eq("inside.still_named", T.hostname(), "nsrun-visible")
print("done")
