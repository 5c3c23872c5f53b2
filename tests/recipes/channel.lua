-- Channels (issue 16, part 3): values and fds between the recipe and what
-- it started. The first argument names the part to run.
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"
local T = require "testlib"

local part, nsrun_bin = ...

-- Every kind of value a channel carries, nested and at the edges.
local function sample()
  return {
    int = 42, neg = math.mininteger, max = math.maxinteger, float = 1.5,
    whole_float = 2.0, inf = math.huge, ninf = -math.huge, tiny = 5e-324,
    bytes = "a\0b\255\n", empty = "", yes = true, no = false,
    list = { 1, "two", { 3 } }, empty_table = {},
    [7] = "int key", [2.5] = "float key", [true] = "bool key",
    deep = { a = { b = { c = { d = "bottom" } } } },
  }
end

local function same(name, got, want, path)
  path = path or name
  if type(got) ~= type(want) then
    error(("FAIL %s: %s is a %s, want %s"):format(name, path, type(got), type(want)), 0)
  end
  if type(want) == "table" then
    for k, v in pairs(want) do same(name, got[k], v, path .. "[" .. tostring(k) .. "]") end
    for k in pairs(got) do
      if want[k] == nil then error(("FAIL %s: %s has extra key %s"):format(name, path, tostring(k)), 0) end
    end
  elseif type(want) == "number" then
    if math.type(got) ~= math.type(want) or got ~= want then
      error(("FAIL %s: %s is %s (%s), want %s (%s)"):format(name, path, tostring(got),
        math.type(got), tostring(want), math.type(want)), 0)
    end
  elseif got ~= want then
    error(("FAIL %s: %s is %s, want %s"):format(name, path, T.show(got), T.show(want)), 0)
  end
end

local function check_message(name, n, size, ...)
  T.eq(name .. ".count", select("#", ...), n)
  local a, b, c, d, e = ...
  T.eq(name .. ".nil", a, nil)
  T.eq(name .. ".false", b, false)
  same(name .. ".table", c, sample())
  T.eq(name .. ".big", d and #d, size)
  T.eq(name .. ".nan", e ~= e, true)
  T.ok(name)
end

if part == "values" then
  -- Within one process, through a pair.
  local a, b = ns.socketpair()
  T.check("pair.tostring", tostring(a):find("^channel %(fd %d+%)$") ~= nil, tostring(a))
  T.eq("pair.fd", math.type(a:fd()), "integer")
  -- (Small enough for the socket's buffer: no one reads while we send.)
  local small = ("x"):rep(16 << 10)
  assert(a:send(nil, false, sample(), small, 0 / 0))
  check_message("pair", 5, #small, b:recv(5))
  -- No value at all is refused (it would read as nil, as closed does).
  T.errmsg("pair.empty", "nothing to send", a.send, a)
  -- A child function echoes what it gets, in new namespaces.
  local p = ns.spawn {
    namespaces = T.user and "user,pid" or "pid",
    channel = true,
    fn = function(ch)
      while true do
        local t = table.pack(ch:recv())
        if t.n == 2 and t[1] == nil and t[2] == "closed" then return 0 end
        if t[1] == "burst" then
          -- Frames back to back, each large (sent in many pieces) and
          -- with fds: a read may take one's tail and the next one's head.
          for i = 1, 3 do
            local f1, f2 = assert(io.open(t[2])), assert(io.open(t[2]))
            f2:seek("set", i)
            assert(ch:send(("z"):rep(300000 * i), f1, i, f2))
            f1:close()
            f2:close()
          end
        else
          ch:send(table.unpack(t, 1, t.n))
        end
      end
    end,
  }
  T.eq("spawn.channel", type(p.channel), "userdata")
  local big = ("x"):rep(1 << 20)
  assert(p.channel:send(nil, false, sample(), big, 0 / 0))
  check_message("child", 5, #big, p.channel:recv(10))
  -- Many messages in a row keep their order and bounds.
  for i = 1, 200 do assert(p.channel:send(i, ("y"):rep(i))) end
  for i = 1, 200 do
    local n, s = p.channel:recv(10)
    if n ~= i or #s ~= i then error("FAIL order: " .. tostring(n) .. " at " .. i, 0) end
  end
  T.ok("order")
  -- Each frame of a burst gets its own fds, in order.
  assert(p.channel:send("burst", T.dir .. "/recipe.lua"))
  for i = 1, 3 do
    local s, g1, n, g2 = p.channel:recv(10)
    if #s ~= 300000 * i or n ~= i or io.type(g1) ~= "file" or io.type(g2) ~= "file" then
      error("FAIL big_fds: message " .. i, 0)
    end
    -- The same open files: the offset set before sending is there.
    T.eq("big_fds.offset." .. i, g2:seek(), i)
    T.eq("big_fds.first." .. i, g1:read(2), "--")
    g1:close()
    g2:close()
  end
  T.ok("big_fds")
  p.channel:close()
  T.eq("child.code", p:wait().code, 0)
  -- Ours closed: it reads as closed, and sends say so.
  local r1, r2 = p.channel:recv(1)
  T.eq("closed.recv", r2, "closed")
  T.eq("closed.recv.value", r1, nil)
  local s1, s2 = p.channel:send(1)
  T.eq("closed.send", s2, "closed")
  T.eq("closed.send.value", s1, nil)
  T.eq("closed.fd", p.channel:fd(), nil)
  -- Without channel = true a function gets nothing and p.channel is nil.
  local q = ns.spawn { fn = function(ch) return ch == nil and 0 or 1 end }
  T.eq("no_channel.arg", q:wait().code, 0)
  T.eq("no_channel.field", q.channel, nil)
  -- <close> closes.
  local x, y = ns.socketpair()
  do local c <close> = x end
  T.eq("close.attr", select(2, y:recv(5)), "closed")
elseif part == "errors" then
  local a, b = ns.socketpair()
  T.errmsg("fn", "value #1 is a function, which a channel cannot carry", a.send, a, print)
  T.errmsg("nested", "value #2.x.y[2] is a function", a.send, a, 1, { x = { y = { 1, print } } })
  T.errmsg("key", "(the key) is a function", a.send, a, { [print] = 1 })
  T.errmsg("thread", "value #1 is a thread", a.send, a, coroutine.create(print))
  local cyc = { list = {} }
  cyc.list[1] = cyc
  T.errmsg("cycle", "value #1.list[1] is a table that contains itself (a cycle)", a.send, a, cyc)
  local p = ns.spawn { argv = { "true" } }
  p:wait()
  T.errmsg("userdata", "value #1 is a userdata (process", a.send, a, p)
  local f = assert(io.open(T.dir .. "/recipe.lua"))
  f:close()
  T.errmsg("closed_file", "value #1 is a closed file", a.send, a, f)
  -- Nothing of a refused message went: the next one arrives alone.
  assert(a:send("after"))
  T.eq("nothing_sent", b:recv(5), "after")
  -- A shared (not cyclic) table goes twice.
  local shared = { 1 }
  assert(a:send({ shared, shared }))
  local got = b:recv(5)
  T.eq("shared", got[2][1], 1)
  T.errmsg("timeout", "timeout", b.recv, b, "soon")
  T.errmsg("opt.fd2", "give 3 or more", ns.spawn, { argv = { "true" }, channel = 2 })
  T.errmsg("opt.type", "channel must be true or an fd number", ns.spawn, { argv = { "true" }, channel = "3" })
  T.errmsg("opt.fn_fd", "give channel = true", ns.spawn, { fn = function() end, channel = 3 })
  T.errmsg("opt.keep", "also in keep_fds", ns.spawn, { argv = { "true" }, channel = 5, keep_fds = { 5 } })
  T.errmsg("channel.notsock", "is not a socket", ns.channel, 0)
  T.errmsg("send_fds.bad", "fds[1]", ns.send_fds, a, "x", { "no" })
  T.errmsg("send_fds.empty", "give one byte at least", ns.send_fds, a, "", { a })
elseif part == "fds" then
  -- The host file is in the run directory, which the sandbox cannot see:
  -- its root is an empty tmpfs.
  local path = T.dir .. "/host.txt"
  local f = assert(io.open(path, "w"))
  f:write("host line\n")
  f:close()
  local ours = ns.open("uts")
  local out = ns.spawn { argv = { "sh", "-c", "echo through a pipe" }, stdout = "pipe" }
  local inner, inner_peer = ns.socketpair()
  local p = sandbox.spawn {
    channel = true,
    namespaces = { "user", "mount", "pid", "uts" },
    fn = function(ch)
      local by_path = io.open(path)
      ch:send("by_path", by_path ~= nil)
      local _, file, pipe, chan, handle, inode = ch:recv(10)
      ch:send("file", io.type(file), file and file:read("a"))
      ch:send("pipe", io.type(pipe), pipe and pipe:read("a"))
      -- A channel inside a message is a channel.
      ch:send("chan", tostring(chan):match("^channel") ~= nil, chan:send("over the passed channel"))
      ch:send("handle", handle.kind, handle.inode == inode, tostring(handle):match("^namespace uts") ~= nil)
      ch:send("done")
      return 0
    end,
  }
  local function expect(tag)
    local t = table.pack(p.channel:recv(10))
    T.eq("fds." .. tag .. ".tag", t[1], tag)
    return table.unpack(t, 2, t.n)
  end
  T.eq("fds.by_path", expect("by_path"), false)
  local hf = assert(io.open(path))
  assert(p.channel:send("here", hf, out.stdout, inner_peer, ours, ours.inode))
  hf:close()
  local kind, text = expect("file")
  T.eq("fds.file.type", kind, "file")
  T.eq("fds.file.text", text, "host line\n")
  local pk, ptext = expect("pipe")
  T.eq("fds.pipe.type", pk, "file")
  T.eq("fds.pipe.text", ptext, "through a pipe\n")
  local is_chan, sent = expect("chan")
  T.check("fds.chan", is_chan and sent, tostring(sent))
  T.eq("fds.chan.msg", inner:recv(5), "over the passed channel")
  local hk, same_ns, other = expect("handle")
  T.eq("fds.handle.kind", hk, "uts")
  T.check("fds.handle.inode", same_ns and other)
  expect("done")
  T.eq("fds.code", p:wait().code, 0)
  out:wait()
  -- The primitives: bytes and fds, no framing.
  local a, b = ns.socketpair()
  local g = assert(io.open(path))
  T.eq("prim.sent", ns.send_fds(a, "raw", { g }), 3)
  g:close()
  local data, fds = ns.recv_fds(b)
  T.eq("prim.data", data, "raw")
  T.eq("prim.nfds", #fds, 1)
  T.eq("prim.file", fds[1]:read("l"), "host line")
  a:close()
  T.eq("prim.closed", select(2, ns.recv_fds(b)), "closed")
elseif part == "dead" then
  -- A child killed while we wait in recv with no timeout: closed, no hang.
  local p = ns.spawn {
    namespaces = T.user and "user,pid" or "pid",
    channel = true,
    fn = function(ch)
      ch:send("ready")
      while true do end
    end,
  }
  T.eq("dead.ready", p.channel:recv(10), "ready")
  p:kill("KILL")
  local v, why = p.channel:recv()
  T.eq("dead.value", v, nil)
  T.eq("dead.why", why, "closed")
  T.eq("dead.signal", p:wait().signal, 9)
  -- A program on fd 3 that dies before reading.
  local q = ns.spawn { argv = { "sh", "-c", "exit 3" }, channel = 3 }
  T.eq("dead.prog.recv", select(2, q.channel:recv(10)), "closed")
  T.eq("dead.prog.code", q:wait().code, 3)
  -- The other way: the child sees our end closed.
  local r = ns.spawn {
    channel = true,
    fn = function(ch)
      local v2, w = ch:recv(10)
      return (v2 == nil and w == "closed") and 7 or 1
    end,
  }
  r.channel:close()
  T.eq("dead.child_sees", r:wait().code, 7)
  -- A child that closes its end is seen at once, while it still runs.
  local c = ns.spawn {
    channel = true,
    fn = function(ch) ch:close() while true do end end,
  }
  T.eq("dead.closed_by_child", select(2, c.channel:recv(10)), "closed")
  T.eq("dead.closed_by_child.running", c:try_wait(), nil)
  c:kill("KILL")
  c:wait()
  -- Behind an init (and a relay) the supervisors hold no copy of the
  -- program's end: its close is seen while it runs.
  for _, kinds in ipairs { "pid", "pid,time" } do
    local k = T.user and "user," .. kinds or kinds
    local sp = ns.spawn { argv = { "sh", "-c", "exec 3>&-; sleep 30" }, channel = 3, namespaces = k }
    T.eq("dead.closed_by_program." .. kinds, select(2, sp.channel:recv(10)), "closed")
    sp:kill("KILL")
    sp:wait()
  end
  -- The process's timeout holds for a recv that waits on it: past it the
  -- process is killed and the channel reads closed.
  local st = ns.spawn {
    channel = true, timeout = 0.3,
    fn = function(ch) while true do end end,
  }
  T.eq("deadline.recv", select(2, st.channel:recv()), "closed")
  local s = st:wait()
  T.eq("deadline.timed_out", s.timed_out, true)
  -- A timeout is a timeout, then messages still come.
  local a, b = ns.socketpair()
  local x, y = b:recv(0.2)
  T.eq("timeout.value", x, nil)
  T.eq("timeout.why", y, "timeout")
  a:send("later")
  T.eq("timeout.after", b:recv(0), "later")
elseif part == "program" then
  -- A program that is not Lua speaks the format on fd 3 (perl: read a
  -- frame of one string, answer with "perl:" .. it and an integer).
  local perl = [[
    open(my $ch, "+<&=", 3) or die "fd 3: $!";
    binmode $ch;
    read($ch, my $hdr, 8) == 8 or die "header";
    my ($len, $nfds) = unpack("VV", $hdr);
    read($ch, my $body, $len) == $len or die "body";
    my ($tag, $slen) = unpack("CV", $body);
    $tag == 5 or die "tag $tag";
    my $s = "perl:" . substr($body, 5, $slen);
    my $reply = pack("CV", 5, length $s) . $s . pack("Cq<", 3, -5);
    syswrite($ch, pack("VV", length $reply, 0) . $reply);
    print "stdout still mine\n";
  ]]
  local p = ns.spawn {
    argv = { "perl", "-e", perl },
    namespaces = T.user and "user,pid" or "pid",
    channel = 3,
    stdout = "pipe",
  }
  assert(p.channel:send("hello"))
  local s, n = p.channel:recv(10)
  T.eq("perl.string", s, "perl:hello")
  T.eq("perl.int", n, -5)
  T.eq("perl.int.type", math.type(n), "integer")
  T.eq("perl.stdout", p.stdout:read("a"), "stdout still mine\n")
  T.eq("perl.code", p:wait().code, 0)
  -- fd 3 is the socket and nothing else of ours is there.
  local q = ns.run { argv = { "sh", "-c", "ls /proc/self/fd; readlink /proc/self/fd/5" }, channel = 5 }
  T.has("fd5.socket", q.stdout, "socket:[")
  T.eq("fd5.list", (q.stdout:gsub("socket:.*", "")), "0\n1\n2\n3\n5\n")
  -- With input (a memfd made before the start, maybe on fd 3 itself)
  -- and a Lua file as stdout: each lands where it should.
  local out = assert(io.open(T.dir .. "/out.txt", "w"))
  local w = ns.run { argv = { "sh", "-c", "cat; readlink /proc/self/fd/3 >&2" }, input = "in\n",
    stdout = out, stderr = "pipe", channel = 3 }
  out:close()
  T.eq("input.code", w.code, 0)
  T.has("input.fd3", w.stderr, "socket:[")
  local rf = assert(io.open(T.dir .. "/out.txt"))
  T.eq("input.stdout", rf:read("a"), "in\n")
  rf:close()
  -- sandbox.run passes channel on: the program's fd 3 is the socket.
  local sb = sandbox.run { argv = { "readlink", "/proc/self/fd/3" }, channel = 3,
    binds = { { "/", "/", ro = true } }, proc = "/proc", dev = "/dev" }
  T.has("sandbox.fd3", sb.stdout, "socket:[")
  T.eq("sandbox.code", sb.code, 0)
  -- A Lua program started with channel = 3 takes it with ns.channel(3).
  local r = ns.spawn {
    argv = { nsrun_bin, "-e", 'local ns = require "nsrun"; local c = ns.channel(3); c:send("from nsrun", c:recv(10))' },
    channel = 3,
  }
  assert(r.channel:send(99))
  local who, what = r.channel:recv(10)
  T.eq("nsrun.who", who, "from nsrun")
  T.eq("nsrun.echo", what, 99)
  T.eq("nsrun.code", r:wait().code, 0)
end
print("done")
