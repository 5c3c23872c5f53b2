-- broker.lua: a sandbox that sees no file at all asks the recipe for
-- files by name; the recipe decides, and hands in an open file (an fd,
-- over the sandbox's channel) only for the names it allows.
--
--   nsrun examples/broker.lua [PATH]...        (as any user)
--
-- The sandbox's root is an empty tmpfs: no binds, no /proc, no /dev. Its
-- function gets a channel (channel = true); the recipe holds the other
-- end, p.channel. A file received is an ordinary Lua file.
local ns = require "nsrun"
local sandbox = require "nsrun.sandbox"

local ALLOWED = { ["/etc/hostname"] = true, ["/etc/os-release"] = true }

local wanted = { ... }
if #wanted == 0 then wanted = { "/etc/os-release", "/etc/shadow" } end

local p = sandbox.spawn {
  channel = true,
  fn = function(ch)
    -- By path, nothing: the root is empty.
    local direct = io.open(wanted[1])
    print(("inside: %s by path: %s"):format(wanted[1], direct and "visible" or "not there"))
    for _, name in ipairs(wanted) do
      ch:send("open", name)
      local f, why = ch:recv(10)
      if io.type(f) == "file" then
        print(("inside: %s through the broker: %s"):format(name, f:read("l")))
        f:close()
      else
        print(("inside: %s refused: %s"):format(name, tostring(why)))
      end
    end
    ch:send("done")
  end,
}

-- The broker: it opens what it allows, outside the sandbox, and keeps
-- going until the sandbox says it is done or goes away (nil, "closed").
while true do
  local op, name = p.channel:recv()
  if op ~= "open" then break end
  local f = ALLOWED[name] and io.open(name)
  if f then
    p.channel:send(f)
    f:close() -- ours: the sandbox has its own copy now
  else
    p.channel:send(nil, ALLOWED[name] and "cannot open" or "not allowed")
  end
end
p.channel:close()
return p:wait()
