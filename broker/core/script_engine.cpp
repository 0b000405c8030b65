// script_engine: see script_engine.hpp.
#include "broker/core/script_engine.hpp"

#include <openssl/evp.h>
#include <strings.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "broker/core/commands.hpp"
#include "broker/core/config.hpp"
#include "broker/core/log.hpp"
#include "broker/core/version.hpp"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <lua-bitop.h>
#include <lua-cjson.h>
// Redis's struct and cmsgpack (third_party/redis-lua).
int luaopen_struct(lua_State* L);
int luaopen_cmsgpack(lua_State* L);
}

namespace respq::core {

namespace {
constexpr const char* engine_key = "respq_engine";
}  // namespace

script_engine* script_lua::engine_of(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, engine_key);
  auto* e = static_cast<script_engine*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return e;
}

// Raises the error table {err = msg}, as Redis's redis.call does.
int script_lua::raise_error(lua_State* L, std::string_view msg) {
  lua_newtable(L);
  lua_pushlstring(L, msg.data(), msg.size());
  lua_setfield(L, -2, "err");
  return lua_error(L);
}

using script_lua::engine_of;
using script_lua::raise_error;

namespace {

constexpr int max_reply_depth = 1000;          // nesting of tables / arrays converted
constexpr std::size_t lua_memory_limit = 1024ull * 1024 * 1024;

// Registry keys.
constexpr const char* handler_key = "respq_err_handler";
// The field Redis 7.0 sets in an error table whose error was counted already (a command's
// error reply, a refusal of a command): the script's reply does not count it again.
constexpr const char* ignore_stats_key = "ignore_error_stats_update";


void push_table_with(lua_State* L, const char* field, std::string_view s) {
  lua_newtable(L);
  lua_pushlstring(L, s.data(), s.size());
  lua_setfield(L, -2, field);
}

// ---- Redis reply bytes -> Lua value -------------------------------------------------
// The fake client's output is well-formed RESP written by reply_writer; the parser still
// checks every length against the buffer.

bool read_line(std::string_view buf, std::size_t& pos, std::string_view& line) {
  std::size_t e = buf.find("\r\n", pos);
  if (e == std::string_view::npos) return false;
  line = buf.substr(pos, e - pos);
  pos = e + 2;
  return true;
}

bool push_reply(lua_State* L, std::string_view buf, std::size_t& pos, int depth) {
  if (pos >= buf.size() || depth > max_reply_depth || !lua_checkstack(L, 4)) return false;
  const char t = buf[pos++];
  std::string_view line;
  if (!read_line(buf, pos, line)) return false;
  auto count = [&](long long& n) { return string2ll(line, n); };
  switch (t) {
    case ':': {
      long long n;
      if (!count(n)) return false;
      lua_pushnumber(L, static_cast<lua_Number>(n));
      return true;
    }
    case '+': push_table_with(L, "ok", line); return true;
    case '-':  // counted when the command replied it: not again if the script returns it
      push_table_with(L, "err", line);
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, ignore_stats_key);
      return true;
    case '$':
    case '=': {
      long long n;
      if (!count(n)) return false;
      if (n < 0) {
        lua_pushboolean(L, 0);
        return true;
      }
      if (pos + static_cast<std::size_t>(n) + 2 > buf.size()) return false;
      std::string_view data = buf.substr(pos, static_cast<std::size_t>(n));
      pos += static_cast<std::size_t>(n) + 2;
      if (t == '$') {
        lua_pushlstring(L, data.data(), data.size());
      } else {  // verbatim: {verbatim_string = {format = "txt", string = "..."}}
        lua_newtable(L);
        lua_newtable(L);
        lua_pushlstring(L, data.data(), std::min<std::size_t>(3, data.size()));
        lua_setfield(L, -2, "format");
        std::string_view body = data.size() > 4 ? data.substr(4) : std::string_view();
        lua_pushlstring(L, body.data(), body.size());
        lua_setfield(L, -2, "string");
        lua_setfield(L, -2, "verbatim_string");
      }
      return true;
    }
    case '*':
    case '~':
    case '%': {
      long long n;
      if (!count(n)) return false;
      if (n < 0) {  // null array: false, as Redis
        lua_pushboolean(L, 0);
        return true;
      }
      if (t == '*') {
        lua_newtable(L);
        for (long long i = 1; i <= n; ++i) {
          lua_pushnumber(L, static_cast<lua_Number>(i));
          if (!push_reply(L, buf, pos, depth + 1)) return false;
          lua_settable(L, -3);
        }
        return true;
      }
      // RESP3 set {set = {member = true}} and map {map = {k = v}}.
      lua_newtable(L);
      lua_newtable(L);
      for (long long i = 0; i < n; ++i) {
        if (!push_reply(L, buf, pos, depth + 1)) return false;
        if (t == '~') lua_pushboolean(L, 1);
        else if (!push_reply(L, buf, pos, depth + 1)) return false;
        lua_settable(L, -3);
      }
      lua_setfield(L, -2, t == '~' ? "set" : "map");
      return true;
    }
    case '_': lua_pushnil(L); return true;
    case '#': lua_pushboolean(L, line == "t"); return true;
    case ',': {
      lua_newtable(L);
      std::string tmp(line);
      lua_pushnumber(L, std::strtod(tmp.c_str(), nullptr));
      lua_setfield(L, -2, "double");
      return true;
    }
    case '(': push_table_with(L, "big_number", line); return true;
    default: return false;
  }
}

// ---- Lua value -> reply -------------------------------------------------------------

// A status or error text goes on one line: Redis replaces CR and LF with spaces.
std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& ch : out)
    if (ch == '\r' || ch == '\n') ch = ' ';
  return out;
}

// Pushes t[field] of the table at idx without metamethods: a script's table may carry an
// __index that raises an error or calls Redis, and the conversion runs outside any
// protected call (Redis reads these fields raw too).
void raw_field(lua_State* L, int idx, const char* field) {
  lua_pushstring(L, field);
  lua_rawget(L, idx < 0 && idx > LUA_REGISTRYINDEX ? idx - 1 : idx);
}

// Reads t[field] of the table at idx as a string; false if absent or not a string.
bool string_field(lua_State* L, int idx, const char* field, std::string& out) {
  raw_field(L, idx, field);
  const bool ok = lua_type(L, -1) == LUA_TSTRING;
  if (ok) {
    std::size_t n;
    const char* p = lua_tolstring(L, -1, &n);
    out.assign(p, n);
  }
  lua_pop(L, 1);
  return ok;
}

// Converts the value on top of the stack (left there) into a reply for the caller.
void write_reply(server& s, client& c, resp::reply_writer& w, lua_State* L, int script_resp, int depth) {
  if (depth > max_reply_depth || !lua_checkstack(L, 4)) {
    s.add_error(c, "ERR reached lua stack limit");
    return;
  }
  switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
      std::size_t n;
      const char* p = lua_tolstring(L, -1, &n);
      w.bulk(std::string_view(p, n));
      return;
    }
    case LUA_TBOOLEAN:
      if (script_resp == 2) {
        if (lua_toboolean(L, -1)) w.integer(1);
        else w.null();
      } else {
        w.boolean(lua_toboolean(L, -1));
      }
      return;
    case LUA_TNUMBER: w.integer(static_cast<long long>(lua_tonumber(L, -1))); return;
    case LUA_TTABLE: {
      const int t = lua_gettop(L);
      std::string text;
      if (string_field(L, t, "err", text)) {
        lua_getfield(L, t, ignore_stats_key);
        const bool counted = lua_toboolean(L, -1);
        lua_pop(L, 1);
        s.add_error(c, one_line(text), !counted);
        return;
      }
      if (string_field(L, t, "ok", text)) {
        w.simple(one_line(text));
        return;
      }
      raw_field(L, t, "double");
      if (lua_type(L, -1) == LUA_TNUMBER) {
        w.double_value(lua_tonumber(L, -1));
        lua_pop(L, 1);
        return;
      }
      lua_pop(L, 1);
      if (string_field(L, t, "big_number", text)) {
        if (c.resp == 3) w.raw("(" + one_line(text) + "\r\n");
        else w.bulk(text);
        return;
      }
      raw_field(L, t, "verbatim_string");
      if (lua_type(L, -1) == LUA_TTABLE) {
        std::string fmt, str;
        const bool ok = string_field(L, lua_gettop(L), "format", fmt) && string_field(L, lua_gettop(L), "string", str);
        lua_pop(L, 1);
        if (ok) {
          if (c.resp == 3) w.raw("=" + std::to_string(str.size() + 4) + "\r\n" + fmt.substr(0, 3) + ":" + str + "\r\n");
          else w.bulk(str);
          return;
        }
      } else {
        lua_pop(L, 1);
      }
      for (const char* kind : {"map", "set"}) {
        raw_field(L, t, kind);
        if (lua_type(L, -1) != LUA_TTABLE) {
          lua_pop(L, 1);
          continue;
        }
        const int inner = lua_gettop(L);
        std::size_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, inner)) {
          ++n;
          lua_pop(L, 1);
        }
        const bool is_map = kind[0] == 'm';
        if (is_map) w.map(n);
        else w.set(n);
        lua_pushnil(L);
        while (lua_next(L, inner)) {
          lua_pushvalue(L, -2);  // key
          write_reply(s, c, w, L, script_resp, depth + 1);
          lua_pop(L, 1);
          if (is_map) write_reply(s, c, w, L, script_resp, depth + 1);
          lua_pop(L, 1);  // value
        }
        lua_pop(L, 1);
        return;
      }
      // An array: elements 1..n up to the first nil.
      std::size_t n = 0;
      while (true) {
        lua_rawgeti(L, t, static_cast<int>(n + 1));
        const bool present = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (!present) break;
        ++n;
      }
      w.array(n);
      for (std::size_t i = 1; i <= n; ++i) {
        lua_rawgeti(L, t, static_cast<int>(i));
        write_reply(s, c, w, L, script_resp, depth + 1);
        lua_pop(L, 1);
      }
      return;
    }
    default: w.null(); return;
  }
}

// ---- the redis table ------------------------------------------------------------------

// Errors of the redis.* functions carry no script position, as Redis's.
int plain_error(lua_State* L, const char* msg) {
  lua_pushstring(L, msg);
  return lua_error(L);
}


int lua_sha1hex(lua_State* L) {
  if (lua_gettop(L) != 1) return plain_error(L, "wrong number of arguments");
  std::size_t n;
  const char* p = lua_tolstring(L, 1, &n);
  const std::string hex = script_engine::sha1_hex(p ? std::string_view(p, n) : std::string_view());
  lua_pushlstring(L, hex.data(), hex.size());
  return 1;
}

// Redis's luaPushErrorBuff: "-CODE msg" keeps its code, anything else gets "ERR"; CR and
// LF at either end of the message are trimmed. Pushes {err = "CODE msg"}.
void push_error_text(lua_State* L, std::string_view buf) {
  std::string_view code = "ERR", msg = buf;
  if (!buf.empty() && buf[0] == '-') {
    const std::size_t sp = buf.find(' ');
    if (sp == std::string_view::npos) {
      msg = buf.substr(1);
    } else {
      code = buf.substr(1, sp - 1);
      msg = buf.substr(sp + 1);
    }
  }
  while (!msg.empty() && (msg.front() == '\r' || msg.front() == '\n')) msg.remove_prefix(1);
  while (!msg.empty() && (msg.back() == '\r' || msg.back() == '\n')) msg.remove_suffix(1);
  std::string text;
  text.reserve(code.size() + 1 + msg.size());
  text.append(code).append(" ").append(msg);
  push_table_with(L, "err", text);
}

// redis.error_reply and redis.status_reply answer a wrong call with an error table (they
// do not raise), as Redis's.
int lua_error_reply(lua_State* L) {
  if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) {
    push_error_text(L, "wrong number or type of arguments");
    return 1;
  }
  std::size_t n;
  const char* p = lua_tolstring(L, 1, &n);
  const std::string_view msg(p, n);
  push_error_text(L, !msg.empty() && msg[0] == '-' ? std::string(msg) : "-" + std::string(msg));
  return 1;
}

int lua_status_reply(lua_State* L) {
  if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) {
    push_error_text(L, "wrong number or type of arguments");
    return 1;
  }
  std::size_t n;
  const char* p = lua_tolstring(L, 1, &n);
  push_table_with(L, "ok", std::string_view(p, n));
  return 1;
}

int lua_log(lua_State* L) {
  const int argc = lua_gettop(L);
  if (argc < 2) return plain_error(L, "redis.log() requires two arguments or more.");
  if (!lua_isnumber(L, 1)) return plain_error(L, "First argument must be a number (log level).");
  const int level = static_cast<int>(lua_tonumber(L, 1));
  if (level < 0 || level > 3) return plain_error(L, "Invalid debug level.");
  std::string msg;
  for (int i = 2; i <= argc; ++i) {
    std::size_t n;
    const char* p = lua_tolstring(L, i, &n);
    if (!p) continue;
    if (!msg.empty()) msg += ' ';
    msg.append(p, n);
  }
  switch (level) {
    case 0:
    case 1: log_verbose(msg); break;
    case 2: log_notice(msg); break;
    default: log_warning(msg); break;
  }
  return 0;
}

int lua_set_repl(lua_State* L) {
  if (lua_gettop(L) != 1) return plain_error(L, "redis.set_repl() requires one argument.");
  const int flags = static_cast<int>(lua_tonumber(L, 1));
  if (flags < 0 || flags > 3) return plain_error(L, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
  return 0;  // effects always go to every sink, as with REPL_ALL
}
int lua_replicate_commands(lua_State* L) {
  lua_pushboolean(L, 1);
  return 1;
}
int lua_breakpoint(lua_State* L) {
  lua_pushboolean(L, 0);
  return 1;
}
int lua_noop(lua_State*) { return 0; }

// Redis's math.random and math.randomseed (script_lua.c): Lua's own with rand() replaced
// by redisLrand48 (rand.c, lrand48's generator: X = (0x5DEECE66D X + 11) mod 2^48, 31 bits
// out), one state for the process, from lrand48's default seed, set again only by
// math.randomseed. So a script sees the numbers it would on Redis.
std::uint64_t lrand48_state = 0x1234ABCD330Eull;
constexpr std::int32_t lrand48_max = 2147483647;  // REDIS_LRAND48_MAX (INT32_MAX)

std::int32_t redis_lrand48() {
  lrand48_state = (0x5DEECE66Dull * lrand48_state + 0xB) & ((1ull << 48) - 1);
  return static_cast<std::int32_t>(lrand48_state >> 17);
}

int lua_math_random(lua_State* L) {
  const lua_Number r = static_cast<lua_Number>(redis_lrand48() % lrand48_max) / static_cast<lua_Number>(lrand48_max);
  switch (lua_gettop(L)) {
    case 0:
      lua_pushnumber(L, r);
      break;
    case 1: {
      const int u = luaL_checkint(L, 1);
      luaL_argcheck(L, 1 <= u, 1, "interval is empty");
      lua_pushnumber(L, std::floor(r * u) + 1);
      break;
    }
    case 2: {
      const int l = luaL_checkint(L, 1);
      const int u = luaL_checkint(L, 2);
      luaL_argcheck(L, l <= u, 2, "interval is empty");
      lua_pushnumber(L, std::floor(r * (u - l + 1)) + l);
      break;
    }
    default: return luaL_error(L, "wrong number of arguments");
  }
  return 1;
}

int lua_math_randomseed(lua_State* L) {
  const auto seed = static_cast<std::uint32_t>(static_cast<std::int32_t>(luaL_checkint(L, 1)));
  lrand48_state = static_cast<std::uint64_t>(seed) << 16 | 0x330E;  // srand48
  return 0;
}

// Replaces the table at the top of the stack by a read-only proxy of it: reads go to the
// original, writes raise Redis's error.
// Errors raised from these metamethods name the script line that caused them, as
// Redis's do; errors of the redis.* functions do not (plain_error).
// lua_error longjmps past the C++ frames: the message is built from Lua strings only, so
// that no std::string is left behind unfreed.
int error_at_caller(lua_State* L, const char* msg, const char* name = nullptr) {
  luaL_where(L, 1);
  lua_pushstring(L, msg);
  if (!name) {
    lua_concat(L, 2);
    return lua_error(L);
  }
  lua_pushstring(L, name);
  lua_pushliteral(L, "'");
  lua_concat(L, 4);
  return lua_error(L);
}

// pcall as Redis 7.0 replaces it: an error table raised by redis.call ({err = "..."}) is
// handed to the script as its message string.
int redis_pcall(lua_State* L) {
  const int argc = lua_gettop(L);
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  if (lua_pcall(L, argc - 1, LUA_MULTRET, 0) != 0) {
    lua_remove(L, 1);
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "err");
      if (lua_isstring(L, -1)) lua_replace(L, -2);
      else lua_pop(L, 1);
    }
    lua_pushboolean(L, 0);
    lua_insert(L, 1);
  }
  return lua_gettop(L);
}

int readonly_newindex(lua_State* L) { return error_at_caller(L, "Attempt to modify a readonly table"); }

// Globals: a read of a name that does not exist is an error, as in Redis.
int globals_index(lua_State* L) {
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1)) return 1;
  const char* name = lua_tostring(L, 2);
  return error_at_caller(L, "Script attempted to access nonexistent global variable '", name ? name : "?");
}

// Replaces the table at the top of the stack by a read-only proxy; strict: its missing
// fields are errors too, as the globals (the load API's redis table: Redis gives it the
// globals' error metatable).
void make_proxy(lua_State* L, bool strict) {
  lua_newtable(L);  // proxy
  lua_newtable(L);  // its metatable
  lua_pushvalue(L, -3);
  if (strict) lua_pushcclosure(L, globals_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, readonly_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_remove(L, -2);  // the original stays reachable through __index
}

void make_readonly_proxy(lua_State* L) { make_proxy(L, false); }
void make_strict_proxy(lua_State* L) { make_proxy(L, true); }

// Whether the value at idx is one of the read-only proxies (library tables, _G).
bool is_protected(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  lua_pushliteral(L, "__newindex");
  lua_rawget(L, -2);
  const bool protected_table = lua_tocfunction(L, -1) == readonly_newindex;
  lua_pop(L, 2);
  return protected_table;
}

// rawset on a protected table would bypass the proxy: refused like any other write.
int safe_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (is_protected(L, 1)) return plain_error(L, "Attempt to modify a readonly table");
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

// The table a read-only proxy reads through to (pushed), or nothing pushed and false when
// the value at idx is not one of the proxies made here.
bool push_backing(lua_State* L, int idx) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return false;
  lua_getfield(L, -1, "__newindex");
  const bool proxy = lua_tocfunction(L, -1) == readonly_newindex;
  lua_pop(L, 1);
  if (!proxy) {
    lua_pop(L, 1);
    return false;
  }
  lua_getfield(L, -1, "__index");
  if (lua_iscfunction(L, -1)) {  // the globals' proxy: globals_index with the table as upvalue
    lua_getupvalue(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_remove(L, -2);
  return lua_istable(L, -1);
}

// next, pairs, ipairs and rawget see through the read-only proxies, so a script can list
// the globals or a library as it can in Redis (whose read-only tables are the tables).
int proxy_next(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (push_backing(L, 1)) lua_replace(L, 1);
  return lua_next(L, 1) ? 2 : (lua_pushnil(L), 1);
}
int proxy_pairs(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushcfunction(L, proxy_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}
int proxy_ipairs_step(lua_State* L) {
  const int i = luaL_checkint(L, 2) + 1;
  lua_pushinteger(L, i);
  lua_rawgeti(L, 1, i);
  return lua_isnil(L, -1) ? 0 : 2;
}
int proxy_ipairs(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushcfunction(L, proxy_ipairs_step);
  if (!push_backing(L, 1)) lua_pushvalue(L, 1);
  lua_pushinteger(L, 0);
  return 3;
}
int proxy_rawget(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  if (push_backing(L, 1)) lua_replace(L, 1);
  lua_rawget(L, 1);
  return 1;
}
// setmetatable on a protected table is a write to it, refused with Redis's text (Lua's own
// "cannot change a protected metatable" would follow otherwise). Upvalue 1: Lua's
// setmetatable.
int safe_setmetatable(lua_State* L) {
  if (lua_type(L, 1) == LUA_TTABLE && is_protected(L, 1)) return plain_error(L, "Attempt to modify a readonly table");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

// loadstring without binary chunks (precompiled bytecode can break out of the sandbox).
int safe_loadstring(lua_State* L) {
  std::size_t n;
  const char* p = luaL_checklstring(L, 1, &n);
  if (n > 0 && p[0] == LUA_SIGNATURE[0]) {
    lua_pushnil(L);
    lua_pushliteral(L, "loadstring: binary chunks are not allowed");
    return 2;
  }
  const char* name = luaL_optstring(L, 2, p);
  if (luaL_loadbuffer(L, p, n, name) != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  // The chunk runs in the scripts' read-only environment, not in the raw globals: a
  // script (or a library's function) could otherwise change what every later one sees.
  lua_getfield(L, LUA_REGISTRYINDEX, "respq_env");
  lua_setfenv(L, -2);
  return 1;
}

// The error handler every script runs under: turns any error into {err=..., source=...,
// line=...}, as Redis's __redis__err__handler.
constexpr const char* error_handler_src = R"(
local dbg = debug
return function(err)
  local i = dbg.getinfo(2, 'nSl')
  if i and i.what == 'C' then i = dbg.getinfo(3, 'nSl') end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
)";

}  // namespace

int lua_setresp(lua_State* L) {
  if (lua_gettop(L) != 1) return plain_error(L, "redis.setresp() requires one argument.");
  const int v = static_cast<int>(lua_tonumber(L, 1));
  if (v != 2 && v != 3) return plain_error(L, "RESP version must be 2 or 3.");
  engine_of(L)->set_resp(v);
  return 0;
}

std::string script_engine::sha1_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

script_engine::script_engine(server& s) : s_(s) {
  fake_ = std::make_unique<client>();
  fake_->is_fake = true;
  fake_->counts_stats = true;  // INFO commandstats counts a script's commands, as Redis
  fake_->authenticated = true;
  fake_->name = "lua";
  fake_->in_exec = true;  // blocking commands answer at once, as inside MULTI
  eval_mem_.limit = fn_mem_.limit = lua_memory_limit;
  open();
  F_ = open_state(fn_mem_, true);
}

script_engine::~script_engine() {
  close();
  if (F_) lua_close(F_);
}

void* script_engine::lua_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  auto* m = static_cast<lua_mem*>(ud);
  if (nsize == 0) {
    m->bytes -= osize;
    std::free(ptr);
    return nullptr;
  }
  if (nsize > osize && m->bytes - osize + nsize > m->limit) return nullptr;  // Lua: "not enough memory"
  void* p = std::realloc(ptr, nsize);
  if (p) m->bytes = m->bytes - osize + nsize;
  return p;
}

void script_engine::time_hook(lua_State* L, lua_Debug*) {
  script_engine* e = engine_of(L);
  const auto now = std::chrono::steady_clock::now();
  if (e->loading_) {
    // A library's code registers functions and returns: past 500 ms it is stopped (Redis's
    // luaEngineLoadHook), and every line raises from then on so a pcall cannot go on.
    if (e->loading_->timeout && now - e->loading_->started > std::chrono::milliseconds(500)) {
      lua_sethook(L, time_hook, LUA_MASKLINE, 0);
      raise_error(L, "ERR FUNCTION LOAD timeout");
    }
    return;
  }
  if (!e->running_) return;
  if (!e->timed_out_) {
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - e->started_);
    if (elapsed.count() < e->s_.cfg().busy_reply_threshold) return;
    e->timed_out_ = true;
    log_warning("Slow script detected: still in execution after " + std::to_string(elapsed.count()) +
                " milliseconds. You can try killing the script using the " +
                (e->function_run_ ? "FUNCTION KILL" : "SCRIPT KILL") + " command. Script name is: " + *e->run_name_ +
                ".");
  }
  // Other clients are served at most every millisecond: the hook runs every 100,000 Lua
  // instructions, far more often than anyone needs an answer.
  if (now - e->last_served_ >= std::chrono::milliseconds(1) && e->s_.serve_while_busy) {
    e->last_served_ = now;
    e->s_.serve_while_busy();
  }
  if (e->kill_) {
    // From now on every line raises again, so a pcall cannot catch the kill and go on.
    lua_sethook(L, time_hook, LUA_MASKLINE, 0);
    log_warning("Lua script killed by user with " + std::string(e->shutdown_kill_ ? "SHUTDOWN NOSAVE." : "SCRIPT KILL."));
    raise_error(L, "ERR Script killed by user with SCRIPT KILL...");
  }
}

void script_engine::kill(client& c, bool is_eval) {
  if (!timed_out()) {
    s_.add_error(c, "NOTBUSY No scripts in execution right now.");
  } else if (wrote_) {
    s_.add_error(c,
                 "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either "
                 "wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
  } else if (is_eval == function_run_) {  // SCRIPT KILL of a function, FUNCTION KILL of a script
    s_.add_error(c, busy_error());
  } else {
    kill_ = true;
    s_.reply(c).ok();
  }
}

void script_engine::open() { L_ = open_state(eval_mem_, false); }

lua_State* script_engine::open_state(lua_mem& mem, bool functions) {
  lua_State* L = lua_newstate(lua_alloc, &mem);
  lua_sethook(L, time_hook, LUA_MASKCOUNT, 100000);
  lua_pushlightuserdata(L, this);
  lua_setfield(L, LUA_REGISTRYINDEX, engine_key);
  for (lua_CFunction f : {luaopen_base, luaopen_table, luaopen_string, luaopen_math, luaopen_debug}) {
    lua_pushcfunction(L, f);
    lua_call(L, 0, 0);
  }
  lua_getglobal(L, "math");
  lua_pushcfunction(L, lua_math_random);
  lua_setfield(L, -2, "random");
  lua_pushcfunction(L, lua_math_randomseed);
  lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);
  // The libraries Redis embeds, in its order (luaLoadLibraries); struct and cmsgpack are
  // Redis's own copies (third_party/redis-lua).
  for (auto [name, open_lib] : {std::pair<const char*, lua_CFunction>{"cjson", luaopen_cjson},
                                {"struct", luaopen_struct}, {"cmsgpack", luaopen_cmsgpack}, {"bit", luaopen_bit}}) {
    lua_pushcfunction(L, open_lib);
    lua_call(L, 0, 1);
    lua_setglobal(L, name);
  }

  // The error handler keeps debug.getinfo; then debug and the unsafe functions go.
  luaL_loadbuffer(L, error_handler_src, std::strlen(error_handler_src), "@respq_err_handler");
  lua_call(L, 0, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, handler_key);
  for (const char* name : {"debug", "loadfile", "dofile", "print", "getfenv", "setfenv", "newproxy", "module",
                           "require", "package", "os", "io"}) {
    lua_pushnil(L);
    lua_setglobal(L, name);
  }
  lua_pushcfunction(L, safe_rawset);
  lua_setglobal(L, "rawset");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, safe_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  lua_pushcfunction(L, safe_loadstring);
  lua_setglobal(L, "loadstring");
  lua_pushcfunction(L, redis_pcall);
  lua_setglobal(L, "pcall");
  for (auto [name, f] : {std::pair<const char*, lua_CFunction>{"next", proxy_next}, {"pairs", proxy_pairs},
                         {"ipairs", proxy_ipairs}, {"rawget", proxy_rawget}}) {
    lua_pushcfunction(L, f);
    lua_setglobal(L, name);
  }

  // The redis table.
  lua_newtable(L);
  auto fn = [&](const char* name, lua_CFunction f) {
    lua_pushcfunction(L, f);
    lua_setfield(L, -2, name);
  };
  auto num = [&](const char* name, int v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, name);
  };
  fn("call", lua_call_command);
  fn("pcall", lua_pcall_command);
  fn("sha1hex", lua_sha1hex);
  fn("acl_check_cmd", lua_acl_check_cmd);
  fn("error_reply", lua_error_reply);
  fn("status_reply", lua_status_reply);
  fn("log", lua_log);
  fn("setresp", lua_setresp);
  fn("set_repl", lua_set_repl);
  fn("replicate_commands", lua_replicate_commands);
  if (!functions) {  // as Redis: the debugger's hooks are EVAL's only
    fn("breakpoint", lua_breakpoint);
    fn("debug", lua_noop);
  }
  num("LOG_DEBUG", 0);
  num("LOG_VERBOSE", 1);
  num("LOG_NOTICE", 2);
  num("LOG_WARNING", 3);
  num("REPL_NONE", 0);
  num("REPL_AOF", 1);
  num("REPL_SLAVE", 2);
  num("REPL_REPLICA", 2);
  num("REPL_ALL", 3);
  lua_pushstring(L, RESPQ_REDIS_VERSION);
  lua_setfield(L, -2, "REDIS_VERSION");
  {
    int major = 0, minor = 0, patch = 0;
    std::sscanf(RESPQ_REDIS_VERSION, "%d.%d.%d", &major, &minor, &patch);
    num("REDIS_VERSION_NUM", major << 16 | minor << 8 | patch);
  }
  lua_setglobal(L, "redis");

  // Library tables become read-only proxies, then the globals table itself is wrapped:
  // scripts run with an environment that reads through to the globals and refuses writes.
  for (const char* lib : {"redis", "cjson", "struct", "cmsgpack", "bit", "string", "table", "math", "coroutine"}) {
    lua_getglobal(L, lib);
    if (lua_istable(L, -1)) {
      make_readonly_proxy(L);
      lua_setglobal(L, lib);
    } else {
      lua_pop(L, 1);
    }
  }
  // Strings' methods come from the string metatable: its __index becomes the read-only
  // string proxy, and getmetatable('') answers a read-only view of the metatable, so a
  // script can neither change string functions for later scripts nor unhook them.
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1)) {
    const int mt = lua_gettop(L);
    lua_getglobal(L, "string");
    lua_setfield(L, mt, "__index");
    lua_pushvalue(L, mt);
    make_readonly_proxy(L);
    lua_setfield(L, mt, "__metatable");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_newtable(L);  // the scripts' environment
  lua_newtable(L);  // its metatable
  lua_pushvalue(L, LUA_GLOBALSINDEX);
  lua_pushcclosure(L, globals_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, readonly_newindex);
  lua_setfield(L, -2, "__newindex");
  // getmetatable(_G) answers a read-only view of the metatable, as Redis's (whose _G's
  // metatable is itself read-only): changing it raises "Attempt to modify a readonly table".
  lua_pushvalue(L, -1);
  make_readonly_proxy(L);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setglobal(L, "_G");  // _G, as the scripts see it, is the read-only environment too
  lua_setfield(L, LUA_REGISTRYINDEX, "respq_env");
  if (functions) {
    // The load API: what a library's code sees while FUNCTION LOAD runs it, as Redis's
    // function_lua.c. Only `redis`, with register_function, log, the log levels and the
    // version; any other global, or any other field of this redis table, is an error
    // ("Script attempted to access nonexistent global variable").
    lua_newtable(L);  // the load globals
    lua_newtable(L);  // their redis table
    lua_pushcfunction(L, lua_register_function);
    lua_setfield(L, -2, "register_function");
    lua_pushcfunction(L, lua_log);
    lua_setfield(L, -2, "log");
    const std::pair<const char*, int> levels[] = {{"LOG_DEBUG", 0}, {"LOG_VERBOSE", 1}, {"LOG_NOTICE", 2}, {"LOG_WARNING", 3}};
    for (auto [name, v] : levels) {
      lua_pushnumber(L, v);
      lua_setfield(L, -2, name);
    }
    lua_pushstring(L, RESPQ_REDIS_VERSION);
    lua_setfield(L, -2, "REDIS_VERSION");
    int major = 0, minor = 0, patch = 0;
    std::sscanf(RESPQ_REDIS_VERSION, "%d.%d.%d", &major, &minor, &patch);
    lua_pushnumber(L, major << 16 | minor << 8 | patch);
    lua_setfield(L, -2, "REDIS_VERSION_NUM");
    make_strict_proxy(L);
    lua_setfield(L, -2, "redis");
    lua_setfield(L, LUA_REGISTRYINDEX, "respq_load_api");
  }
  return L;
}

void script_engine::close() {
  if (L_) lua_close(L_);
  L_ = nullptr;
  eval_mem_.bytes = 0;
}

void script_engine::flush() {
  by_body_.clear();
  scripts_.clear();
  close();
  open();
}

script_engine::script* script_engine::find(std::string_view sha) {
  if (sha.size() != 40) return nullptr;
  char lower[40];
  for (std::size_t i = 0; i < 40; ++i) lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(sha[i])));
  auto it = scripts_.find(std::string_view(lower, 40));
  return it == scripts_.end() ? nullptr : &it->second;
}

namespace {

// Redis 7's shebang line, "#!lua [flags=<flag>,...]": the engine and the flags are checked
// when the script is compiled, with Redis's error texts. *len: the line's length (0 when
// there is none).
bool parse_shebang(std::string_view body, bool& shebang, bool& no_writes, bool& allow_oom, std::size_t& len,
                   std::string& error) {
  shebang = no_writes = allow_oom = false;
  len = 0;
  if (body.substr(0, 2) != "#!") return true;
  const std::size_t eol = body.find('\n');
  if (eol == std::string_view::npos) {
    error = "ERR Invalid script shebang";
    return false;
  }
  len = eol;
  const auto parts = split_args(body.substr(0, eol));  // as Redis's sdssplitargs
  if (!parts || parts->empty()) {
    error = "ERR Invalid engine in script shebang";
    return false;
  }
  if ((*parts)[0] != "#!lua") {
    error = "ERR Unexpected engine in script shebang: " + (*parts)[0];
    return false;
  }
  shebang = true;
  for (std::size_t j = 1; j < parts->size(); ++j) {
    std::string_view p = (*parts)[j];
    if (p.substr(0, 6) != "flags=") {
      error = "ERR Unknown lua shebang option: " + std::string(p);
      return false;
    }
    p.remove_prefix(6);
    while (!p.empty()) {  // "flags=" alone sets none; an empty flag between commas is unknown
      const std::size_t comma = p.find(',');
      const std::string_view f = p.substr(0, comma);
      if (f == "no-writes") {
        no_writes = true;
      } else if (f == "allow-oom") {
        allow_oom = true;
      } else if (f != "allow-stale" && f != "no-cluster" && f != "allow-cross-slot-keys") {
        error = "ERR Unexpected flag in script shebang: " + std::string(f);
        return false;
      }
      if (comma == std::string_view::npos) break;
      p.remove_prefix(comma + 1);
      if (p.empty()) {  // a trailing comma: sdssplitlen gives one last empty flag
        error = "ERR Unexpected flag in script shebang: ";
        return false;
      }
    }
  }
  return true;
}

}  // namespace

script_engine::script* script_engine::compile(const std::string& sha, std::string_view body, std::string& error) {
  lua_State* L = L_;
  script sc;
  std::size_t shebang_len;
  if (!parse_shebang(body, sc.shebang, sc.no_writes, sc.allow_oom, shebang_len, error)) return nullptr;
  // The shebang line is left out (Lua would not skip it in a buffer); its newline stays,
  // so line numbers stay right.
  std::string_view code = body.substr(shebang_len);
  if (luaL_loadbuffer(L, code.data(), code.size(), "@user_script") != 0) {
    std::size_t n;
    const char* p = lua_tolstring(L, -1, &n);
    error = "ERR Error compiling script (new function): " + one_line(std::string_view(p ? p : "", p ? n : 0));
    lua_pop(L, 1);
    return nullptr;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "respq_env");
  lua_setfenv(L, -2);
  sc.ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return &scripts_.emplace(sha, sc).first->second;
}

script_engine::script* script_engine::load_script(std::string_view body, std::string& sha, std::string& error) {
  if (auto it = by_body_.find(body); it != by_body_.end()) {
    sha = it->second->first;
    return &it->second->second;
  }
  sha = sha1_hex(body);
  auto it = scripts_.find(sha);
  if (it == scripts_.end()) {
    if (!compile(sha, body, error)) return nullptr;
    it = scripts_.find(sha);
  }
  by_body_.emplace(std::string(body), &*it);
  return &it->second;
}

std::optional<script_engine::script> script_engine::declared_flags(std::string_view arg, bool by_sha) {
  if (by_sha) {
    if (const script* sc = arg.size() == 40 ? find(arg) : nullptr) return *sc;
    return std::nullopt;
  }
  if (auto it = by_body_.find(arg); it != by_body_.end()) return it->second->second;
  script sc;
  std::size_t len;
  std::string error;
  if (!parse_shebang(arg, sc.shebang, sc.no_writes, sc.allow_oom, len, error)) return std::nullopt;
  return sc;
}

bool script_engine::denies_oom(std::string_view arg, bool by_sha) {
  const auto sc = declared_flags(arg, by_sha);
  return sc && sc->shebang && !sc->no_writes && !sc->allow_oom;
}

std::optional<bool> script_engine::declared_writes(std::string_view arg, bool by_sha) {
  const auto sc = declared_flags(arg, by_sha);
  if (!sc || !sc->shebang) return std::nullopt;
  return !sc->no_writes;
}

std::string script_engine::load(std::string_view body, std::string& error) {
  std::string sha;
  if (!load_script(body, sha, error)) return {};
  return sha;
}

bool script_engine::numkeys_arg(client& c, std::span<const std::string_view> a, std::string_view not_a_number,
                                long long& numkeys) {
  if (!string2ll(a[2], numkeys)) {
    s_.add_error(c, not_a_number);
    return false;
  }
  if (numkeys > static_cast<long long>(a.size()) - 3) {
    s_.add_error(c, "ERR Number of keys can't be greater than number of args");
    return false;
  }
  if (numkeys < 0) {
    s_.add_error(c, "ERR Number of keys can't be negative");
    return false;
  }
  return true;
}

void script_engine::eval(client& c, std::span<const std::string_view> a, bool by_sha, bool read_only) {
  long long numkeys;
  if (!numkeys_arg(c, a, not_integer_error, numkeys)) return;
  std::string error;
  script* sc;
  if (by_sha) {
    sc = find(a[1]);
    if (!sc) {
      s_.add_error(c, "NOSCRIPT No matching script. Please use EVAL.");
      return;
    }
    sha_.resize(40);
    for (std::size_t i = 0; i < 40; ++i) sha_[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(a[1][i])));
  } else {
    sc = load_script(a[1], sha_, error);
    if (!sc) {
      s_.add_error(c, error);
      return;
    }
  }
  const auto nk = static_cast<std::size_t>(numkeys);
  if (!prepare(c, sc->shebang, sc->no_writes, sc->allow_oom, read_only)) return;
  run(c, L_, sc->ref, sha_, a, nk, false, read_only);
}

bool script_engine::prepare(client& c, bool flags_mode, bool no_writes, bool allow_oom, bool& read_only) {
  // A script with a shebang (and every function) declares whether it writes: no-writes
  // makes it read-only; one without that flag may not run through EVAL_RO / FCALL_RO.
  if (flags_mode) {
    if (no_writes) {
      read_only = true;
    } else if (read_only) {
      s_.add_error(c, "ERR Can not execute a script with write flag using *_ro command.");
      return false;
    }
  }
  // maxmemory, as Redis 7.0 (scriptPrepareForRun): the state at the start decides. A
  // script that may write and lacks allow-oom is normally refused before it gets here
  // (server::dispatch asks denies_oom() / function_flags()); this catches the rest, with
  // Redis's text.
  oom_at_start_ = s_.over_maxmemory();
  allow_oom_ = flags_mode && allow_oom;
  if (oom_at_start_ && flags_mode && !no_writes && !allow_oom) {
    s_.add_error(c, "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'");
    return false;
  }
  return true;
}

void script_engine::run(client& c, lua_State* L, int ref, const std::string& name, std::span<const std::string_view> a,
                        std::size_t numkeys, bool function, bool read_only) {
  const auto keys = a.subspan(3, numkeys), args = a.subspan(3 + numkeys);
  lua_getfield(L, LUA_REGISTRYINDEX, handler_key);
  const int handler = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  auto push_array = [&](std::span<const std::string_view> v) {
    lua_createtable(L, static_cast<int>(v.size()), 0);
    for (std::size_t i = 0; i < v.size(); ++i) {
      lua_pushlstring(L, v[i].data(), v[i].size());
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
  };
  // A script gets KEYS and ARGV as globals; a function its keys and args as parameters.
  push_array(keys);
  if (!function) lua_setglobal(L, "KEYS");
  push_array(args);
  if (!function) lua_setglobal(L, "ARGV");

  running_ = true;
  function_run_ = function;
  run_name_ = &name;
  run_args_ = a;
  read_only_ = read_only;
  wrote_ = timed_out_ = kill_ = shutdown_kill_ = false;
  caller_ = &c;
  started_ = std::chrono::steady_clock::now();
  resp_ = 2;
  fake_->db = c.db;  // the script's commands run in the caller's database
  s_.stream().begin_atomic();
  const int rc = lua_pcall(L, function ? 2 : 0, 1, handler);
  if (shutdown_kill_) s_.stream().abort_atomic();  // SHUTDOWN NOSAVE: no half-run script reaches the AOF
  else s_.stream().end_atomic();
  if (kill_) lua_sethook(L, time_hook, LUA_MASKCOUNT, 100000);  // back from every line to every 100,000 instructions
  running_ = false;
  caller_ = nullptr;
  run_args_ = {};

  auto w = s_.reply(c);
  if (rc != 0) {
    // The handler made an error table {err, source, line}; a memory error skips it.
    std::string msg, source, line;
    bool counted = false;  // already, when a command failed or was refused
    if (lua_istable(L, -1)) {
      string_field(L, lua_gettop(L), "err", msg);
      string_field(L, lua_gettop(L), "source", source);
      lua_getfield(L, -1, ignore_stats_key);
      counted = lua_toboolean(L, -1);
      lua_pop(L, 1);
      raw_field(L, -1, "line");
      if (lua_isnumber(L, -1)) line = std::to_string(static_cast<long long>(lua_tonumber(L, -1)));
      lua_pop(L, 1);
    } else {
      std::size_t n;
      const char* p = lua_tolstring(L, -1, &n);
      msg = "ERR " + std::string(p ? std::string_view(p, n) : std::string_view("unknown error"));
    }
    if (!source.empty()) msg += " script: " + name + ", on " + source + ":" + line + ".";
    else msg += " script: " + name;
    s_.add_error(c, one_line(msg), !counted);
  } else {
    write_reply(s_, c, w, L, resp_, 0);
  }
  lua_settop(L, 0);
  // A step of Lua's incremental collector every 50 scripts, 50 units at a time, as Redis
  // does (a step after every script costs a good part of a short script's time).
  if (++gc_countdown_ == 50) {
    gc_countdown_ = 0;
    lua_gc(L, LUA_GCSTEP, 50);
  }
}

// redis.acl_check_cmd(command, arg...): respq has one user with every permission, so a
// command that exists is allowed; one that does not is an error, as in Redis.
int script_engine::lua_acl_check_cmd(lua_State* L) {
  script_engine* e = engine_of(L);
  const int argc = lua_gettop(L);
  if (argc == 0) return raise_error(L, "ERR Please specify at least one argument for this redis lib call");
  for (int i = 1; i <= argc; ++i)
    if (lua_type(L, i) != LUA_TNUMBER && lua_type(L, i) != LUA_TSTRING)
      return raise_error(L, "ERR Lua redis lib command arguments must be strings or integers");
  std::size_t n;
  const char* p = lua_tolstring(L, 1, &n);
  const command_def* cmd = e->s_.lookup(std::string_view(p, n));
  bool found = cmd != nullptr;
  if (found && !cmd->subcommands.empty() && argc >= 2) {
    const std::string sub = to_lower(lua_tostring(L, 2));
    found = std::any_of(cmd->subcommands.begin(), cmd->subcommands.end(),
                        [&](const command_def& sc) { return sc.name == sub; });
  }
  if (!found) return raise_error(L, "ERR Invalid command passed to redis.acl_check_cmd()");
  lua_pushboolean(L, 1);
  return 1;
}

int script_engine::lua_call_command(lua_State* L) { return engine_of(L)->call_command(L, true); }
int script_engine::lua_pcall_command(lua_State* L) { return engine_of(L)->call_command(L, false); }

int script_engine::call_command(lua_State* L, bool raise) {
  auto fail = [&](std::string_view msg) {
    if (raise) return raise_error(L, msg);
    push_table_with(L, "err", msg);
    return 1;
  };
  const int argc = lua_gettop(L);
  if (argc == 0) return fail("ERR Please specify at least one argument for this redis lib call");
  // The arguments, as views: strings into Lua's own (they stay on the stack, so alive,
  // until the command has run), numbers into num_args_, reserved up front so that no view
  // into it moves. Both buffers keep their capacity from call to call.
  argv_.clear();
  num_args_.clear();
  num_args_.reserve(static_cast<std::size_t>(argc) * 32);
  for (int i = 1; i <= argc; ++i) {
    const int t = lua_type(L, i);
    if (t == LUA_TSTRING) {
      std::size_t n;
      const char* p = lua_tolstring(L, i, &n);
      argv_.emplace_back(p, n);
    } else if (t == LUA_TNUMBER) {
      // Not lua_tolstring: Lua's "%.14g" loses precision (Redis 7.0 uses %.17g).
      char buf[32];
      const int n = std::snprintf(buf, sizeof buf, "%.17g", static_cast<double>(lua_tonumber(L, i)));
      const std::size_t at = num_args_.size();
      num_args_.append(buf, static_cast<std::size_t>(n));
      argv_.emplace_back(num_args_.data() + at, static_cast<std::size_t>(n));
    } else {
      return fail("ERR Lua redis lib command arguments must be strings or integers");
    }
  }
  // A refusal before the command runs, as Redis's scriptCall: counted now (error stats
  // and the command's rejected_calls), and marked so that the script's reply, if it
  // returns or raises this error, does not count it again.
  auto reject = [&](const command_def* d, std::string_view msg) {
    s_.count_script_rejection(d, msg);
    push_table_with(L, "err", msg);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, ignore_stats_key);
    return raise ? lua_error(L) : 1;
  };
  const std::span<const std::string_view> views(argv_);
  const command_def* cmd = s_.lookup(views[0]);  // (case-insensitive)
  if (!cmd) return reject(nullptr, "ERR Unknown Redis command called from script");
  const int n = static_cast<int>(views.size());
  if ((cmd->arity > 0 && n != cmd->arity) || n < -cmd->arity)
    return reject(cmd, "ERR Wrong number of args calling Redis command from script");
  std::uint32_t flags = cmd->flags;
  if (!cmd->subcommands.empty() && n >= 2) {
    for (const auto& sc : cmd->subcommands)
      if (sc.name.size() == views[1].size() && strncasecmp(sc.name.data(), views[1].data(), sc.name.size()) == 0) {
        if ((sc.arity > 0 && n != sc.arity) || n < -sc.arity)
          return reject(&sc, "ERR Wrong number of args calling Redis command from script");
        flags |= sc.flags;
      }
  }
  if (flags & flag_noscript) return reject(cmd, "ERR This Redis command is not allowed from script");
  // As Redis: a read-only script may not run what propagates (PUBLISH, PFCOUNT) either.
  if (read_only_ && (flags & (flag_write | flag_may_replicate)))
    return reject(cmd, "ERR Write commands are not allowed from read-only scripts.");
  if (flags & flag_write) {
    // lua_error longjmps past this frame: the text lives in a member, not here.
    refusal_ = s_.write_refusal();
    if (!refusal_.empty()) return reject(cmd, refusal_);
  }
  // maxmemory (Redis's scriptVerifyOOM): over the limit when the script started, its
  // first write may not be a denyoom command; once it has written it cannot stop half
  // way, so the rest runs.
  if ((flags & flag_denyoom) && oom_at_start_ && !allow_oom_ && !wrote_)
    return reject(cmd, "OOM command not allowed when used memory > 'maxmemory'.");
  if (flags & flag_write) wrote_ = true;
  client& fc = *fake_;
  fc.resp = resp_;
  fc.out.clear();
  s_.call(fc, *cmd, views);
  // The arguments go off the stack, which holds at most LUAI_MAXCSTACK (8000) values, so
  // that a call with ~8000 arguments still has room for its reply (Redis pops them too).
  lua_settop(L, 0);
  std::size_t pos = 0;
  const int top = lua_gettop(L);
  if (!push_reply(L, fc.out, pos, 0)) {
    lua_settop(L, top);
    return fail("ERR reply could not be converted for the script");
  }
  fc.out.clear();
  if (raise && lua_istable(L, -1)) {
    lua_getfield(L, -1, "err");
    const bool is_error = lua_isstring(L, -1);
    lua_pop(L, 1);
    if (is_error) return lua_error(L);  // redis.call raises the command's error
  }
  return 1;
}

}  // namespace respq::core
