-- ved.lua - the Lua half of the `ved` module (the ved prelude).
--
-- vedhost embeds this file at build time and runs it once at start with
-- the host's C core as its argument; what it returns is what
-- `require "ved"` gives domain scripts. The core (host/runtime/api.c, host/runtime/host.c)
-- provides register, send, after, every, log, now and exit; this file adds
-- ved.domain, which validates a declaration and names the script and line
-- in every error:
--
--   ved.domain "counter" {
--     version = 1,           -- optional, integer >= 1, default 1
--     state = { ... },       -- optional table, default {}
--     migrate = function(state, from_version) end,  -- optional
--     start = function(state, ctx) end,             -- optional
--     on = { tick = function(state, payload, ctx) end },  -- optional
--   }
--
-- Names: an identifier ([A-Za-z_][A-Za-z0-9_]*, at most 255 bytes) not
-- starting with "__" (reserved for the host: "__ved" holds queues and
-- timers); versions 1 to core.max_version. Both rules are
-- persist/format/vh_limits.h's, which import applies too.

local core = ...
if type(core) ~= "table" or type(core.register) ~= "function" then
  error("the ved module is only available inside vedhost "
        .. "(run your script with `vedhost run`)", 2)
end

local rawtype, pairs, pcall, error, tostring = type, pairs, pcall, error,
  tostring
local string_format, string_match = string.format, string.match
local debug_getinfo = debug.getinfo

local ved = {}

local FIELDS = { version = true, state = true, migrate = true, start = true,
                 on = true }

local function where(level)
  local info = debug_getinfo(level + 1, "Sl")
  if not info then return "?" end
  local line = info.currentline or 0
  return string_format("%s:%d", info.short_src, line)
end

local function fail(at, name, fmt, ...)
  error(string_format("%s: ved.domain '%s': " .. fmt, at, name, ...), 0)
end

local function check_spec(at, name, spec)
  if rawtype(spec) ~= "table" then
    fail(at, name, "expected a table of fields after the name (got %s)",
         rawtype(spec))
  end
  for k in pairs(spec) do
    if not FIELDS[k] then
      fail(at, name, "unknown field '%s' (fields: version, state, migrate, "
           .. "start, on)", tostring(k))
    end
  end
  local version = spec.version
  if version == nil then
    version = 1
  elseif math.type(version) ~= "integer" or version < 1
         or version > core.max_version then
    fail(at, name, "field 'version' must be an integer from 1 to %d (got %s)",
         core.max_version,
         rawtype(version) == "string" and string_format("%q", version)
         or tostring(version))
  end
  local state = spec.state
  if state == nil then
    state = {}
  elseif rawtype(state) ~= "table" then
    fail(at, name, "field 'state' must be a table (got %s)", rawtype(state))
  end
  for _, f in pairs({ "migrate", "start" }) do
    local v = spec[f]
    if v ~= nil and rawtype(v) ~= "function" then
      fail(at, name, "field '%s' must be a function (got %s)", f, rawtype(v))
    end
  end
  local on = spec.on
  if on == nil then
    on = {}
  elseif rawtype(on) ~= "table" then
    fail(at, name, "field 'on' must be a table of event handlers (got %s)",
         rawtype(on))
  end
  for ev, fn in pairs(on) do
    if rawtype(ev) ~= "string" then
      fail(at, name, "field 'on': event names must be strings (got %s)",
           rawtype(ev))
    end
    if rawtype(fn) ~= "function" then
      fail(at, name, "field 'on': handler '%s' must be a function (got %s)",
           ev, rawtype(fn))
    end
  end
  return version, state, spec.migrate, spec.start, on
end

--- Declare a domain: ved.domain "name" { fields }.
function ved.domain(name)
  local at = where(2)
  if rawtype(name) ~= "string" then
    error(string_format("%s: ved.domain: the name must be a string (got %s)",
                        at, rawtype(name)), 0)
  end
  if not core.name_ok(name) then -- persist/format/vh_limits.h, shared with import
    error(string_format("%s: ved.domain: invalid domain name '%s' (use an "
                        .. "identifier not starting with '__')", at, name), 0)
  end
  return function(spec)
    local at2 = where(2)
    local version, state, migrate, start, on = check_spec(at2, name, spec)
    local ok, err = pcall(core.register, name, at2, version, state, migrate,
                          start, on)
    if not ok then
      error(string_format("%s: ved.domain '%s': %s", at2, name,
                          tostring(err)), 0)
    end
  end
end

ved.send = core.send
ved.after = core.after
ved.every = core.every
ved.log = core.log
ved.now = core.now
ved.exit = core.exit
ved.version = core.version -- VH_HOST_VERSION (host/runtime/vh_host.h)

return ved
