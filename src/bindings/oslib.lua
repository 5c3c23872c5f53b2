-- os.exit, os.execute and io.popen as nsrun needs them (see bindings/oslib.rs).
local os, io, leave_child, unignore, reignore = ...
local exit, execute, popen = os.exit, os.execute, io.popen
local pcall, error = pcall, error

function os.exit(code, close)
  -- Leaves a forked child at once; returns in the process that made us,
  -- or with what is wrong with `code`.
  local bad = leave_child(code)
  if bad then error("bad argument #1 to 'exit' (" .. bad .. ")", 2) end
  return exit(code, close)
end

local function done(ignored, ok, ...)
  reignore(ignored)
  if not ok then error((...), 0) end
  return ...
end

function os.execute(...)
  return done(unignore(), pcall(execute, ...))
end

function io.popen(...)
  return done(unignore(), pcall(popen, ...))
end
