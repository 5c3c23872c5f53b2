-- Raises the error values Rust callbacks hand back (see bindings/mod.rs).
local ERR, tostring = ...
local error = error
local function pass(first, ...)
  if first == ERR then error((...), 0) end
  return first, ...
end
local function wrap(f)
  return function(...) return pass(f(...)) end
end
local errmeta = {
  __name = "nsrun.Error",
  __tostring = function(e)
    local s = e.message
    if e.where then s = e.where .. ": " .. s end
    if e.hint then s = s .. "\nhint: " .. e.hint end
    return s
  end,
}
return wrap, errmeta
