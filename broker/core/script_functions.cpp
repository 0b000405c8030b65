// script_functions: Redis 7.0's function libraries (FUNCTION LOAD/DELETE/FLUSH/LIST/STATS,
// FCALL, FCALL_RO) on the script engine. See script_engine.hpp for the model; the texts
// and checks are Redis 7.0.15's functions.c and function_lua.c.
#include <strings.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "broker/core/commands.hpp"
#include "broker/core/config.hpp"
#include "broker/core/glob.hpp"
#include "broker/core/script_engine.hpp"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

namespace respq::core {

namespace {

constexpr std::string_view bad_name_error =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

// Redis's functionsVerifyName: [a-zA-Z0-9_]+ (library and function names alike).
bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
  });
}

std::string lower(std::string_view s) { return to_lower(s); }

// The library's metadata, "#!<engine> name=<name>" on the first line (Redis's
// functionExtractLibMetaData). Returns the error text or "".
std::string parse_metadata(std::string_view code, std::string& engine, std::string& name, std::size_t& body_at) {
  if (code.substr(0, 2) != "#!") return "ERR Missing library metadata";
  // Redis reads the code as a C string: a NUL before the newline ends the line search.
  const std::size_t eol = code.find('\n');
  const std::size_t nul = code.find('\0');
  if (eol == std::string_view::npos || nul < eol) return "ERR Invalid library metadata";
  const auto parts = split_args(code.substr(0, eol));  // as Redis's sdssplitargs
  if (!parts || parts->empty()) return "ERR Invalid library metadata";
  engine = (*parts)[0].substr(2);
  bool named = false;
  for (std::size_t i = 1; i < parts->size(); ++i) {
    const std::string& part = (*parts)[i];
    if (part.size() >= 5 && strncasecmp(part.c_str(), "name=", 5) == 0) {
      if (named) return "ERR Invalid metadata value, name argument was given multiple times";
      name = part.substr(5);
      named = true;
      continue;
    }
    return "ERR Invalid metadata value given: " + part;
  }
  if (!named) return "ERR Library name was not given";
  body_at = eol;  // the newline stays with the code, so its line numbers stay right
  return {};
}

}  // namespace

std::optional<std::uint32_t> script_engine::function_flags(std::string_view name) const {
  auto it = functions_.find(lower(name));
  if (it == functions_.end()) return std::nullopt;
  return it->second->flags;
}

script_engine::function_info* script_engine::find_function(std::string_view name) {
  auto it = functions_.find(lower(name));
  return it == functions_.end() ? nullptr : it->second;
}

void script_engine::unlink_library(const library& lib) {
  for (const auto& f : lib.functions) {
    auto it = functions_.find(lower(f.name));
    if (it != functions_.end() && it->second == &f) functions_.erase(it);
  }
}

void script_engine::link_library(library& lib) {
  // Names that differ only in case may both be in one library (Redis checks a library's
  // own names case-sensitively): FCALL finds the first.
  for (auto& f : lib.functions) functions_.emplace(lower(f.name), &f);
}

void script_engine::release_functions(std::vector<function_info>& fs) {
  for (const auto& f : fs) luaL_unref(F_, LUA_REGISTRYINDEX, f.ref);
  fs.clear();
}

std::size_t script_engine::functions_bytes() const {
  auto heap = [](const std::string& t) { return t.capacity() > 15 ? t.capacity() + 1 : 0; };
  std::size_t n = 0;
  for (const auto& [name, lib] : libraries_) {
    n += sizeof(decltype(libraries_)::value_type) + 4 * sizeof(void*) + heap(name) + heap(lib.name) + heap(lib.code);
    for (const auto& f : lib.functions)
      n += sizeof(function_info) + heap(f.name) + (f.description ? heap(*f.description) : 0) +
           sizeof(std::pair<const std::string, void*>) + 2 * sizeof(void*);
  }
  return n;
}

// ---- redis.register_function ----------------------------------------------------------

const char* script_engine::read_register_args(lua_State* L) {
  function_info& f = pending_;
  f = function_info{};
  f.ref = LUA_NOREF;
  auto string_at = [&](int idx, std::string& out) {
    if (!lua_isstring(L, idx)) return false;  // numbers too, as Redis's luaGetStringSds
    std::size_t n;
    const char* p = lua_tolstring(L, idx, &n);
    out.assign(p, n);
    return true;
  };
  auto fail = [&](const char* msg) {
    if (f.ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, f.ref);
    f.ref = LUA_NOREF;
    return msg;
  };
  const int argc = lua_gettop(L);
  if (argc < 1 || argc > 2) return "wrong number of arguments to redis.register_function";
  if (argc == 2) {
    if (!string_at(1, f.name)) return "first argument to redis.register_function must be a string";
    if (!lua_isfunction(L, 2)) return "second argument to redis.register_function must be a function";
    f.ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return nullptr;
  }
  if (!lua_istable(L, 1))
    return "calling redis.register_function with a single argument is only applicable to Lua table (representing "
           "named arguments).";
  bool named = false;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    // A number key would be converted in place by a string read and break lua_next.
    if (lua_type(L, -2) != LUA_TSTRING) {
      if (lua_type(L, -2) != LUA_TNUMBER) return fail("named argument key given to redis.register_function is not a string");
      return fail("unknown argument given to redis.register_function");
    }
    const char* key = lua_tostring(L, -2);
    if (strcasecmp(key, "function_name") == 0) {
      if (!string_at(-1, f.name)) return fail("function_name argument given to redis.register_function must be a string");
      named = true;
    } else if (strcasecmp(key, "description") == 0) {
      std::string d;
      if (!string_at(-1, d)) return fail("description argument given to redis.register_function must be a string");
      f.description = std::move(d);
    } else if (strcasecmp(key, "callback") == 0) {
      if (!lua_isfunction(L, -1)) return fail("callback argument given to redis.register_function must be a function");
      if (f.ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, f.ref);
      f.ref = luaL_ref(L, LUA_REGISTRYINDEX);  // pops the value
      continue;
    } else if (strcasecmp(key, "flags") == 0) {
      if (!lua_istable(L, -1))
        return fail("flags argument to redis.register_function must be a table representing function flags");
      std::uint32_t flags = 0;
      for (int j = 1;; ++j) {
        lua_rawgeti(L, -1, j);
        if (lua_isnil(L, -1)) {
          lua_pop(L, 1);
          break;
        }
        const char* flag = lua_isstring(L, -1) ? lua_tostring(L, -1) : nullptr;
        bool found = false;
        for (auto [bit, text] : function_flag_names)
          if (flag && text.size() == std::strlen(flag) && strncasecmp(text.data(), flag, text.size()) == 0) {
            flags |= bit;
            found = true;
          }
        lua_pop(L, 1);
        if (!found) return fail("unknown flag given");
      }
      f.flags = flags;
    } else {
      return fail("unknown argument given to redis.register_function");
    }
    lua_pop(L, 1);
  }
  if (!named) return fail("redis.register_function must get a function name argument");
  if (f.ref == LUA_NOREF) return fail("redis.register_function must get a callback argument");
  return nullptr;
}

int script_engine::lua_register_function(lua_State* L) {
  script_engine* e = script_lua::engine_of(L);
  // Raised errors carry no position, as Redis's luaPushError in 7.0; the texts are
  // literals or live in the engine, so nothing of this frame is skipped by the longjmp.
  if (!e->loading_) return script_lua::raise_error(L, "ERR redis.register_function can only be called on FUNCTION LOAD command");
  if (const char* err = e->read_register_args(L)) {
    lua_pushliteral(L, "ERR ");
    lua_pushstring(L, err);
    lua_concat(L, 2);
    lua_newtable(L);
    lua_insert(L, -2);
    lua_setfield(L, -2, "err");
    return lua_error(L);
  }
  function_info& f = e->pending_;
  const char* err = nullptr;
  if (!valid_name(f.name)) err = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";
  else if (!e->loading_->names.insert(f.name).second)
    err = "ERR Function already exists in the library";
  if (err) {
    luaL_unref(L, LUA_REGISTRYINDEX, f.ref);
    f = function_info{};
    return script_lua::raise_error(L, err);
  }
  e->loading_->functions.push_back(std::move(f));
  f = function_info{};
  return 0;
}

// ---- FUNCTION LOAD / DELETE / FLUSH ------------------------------------------------------

std::string script_engine::load_library(std::string_view code, bool replace, std::string& error) {
  std::string engine, name;
  std::size_t body_at = 0;
  error = parse_metadata(code, engine, name, body_at);
  if (!error.empty()) return {};
  if (!valid_name(name)) {
    error = "ERR " + std::string(bad_name_error);
    return {};
  }
  if (!iequals(engine, "lua")) {  // engines are looked up without regard to case
    error = "ERR Engine '" + engine + "' not found";
    return {};
  }
  auto old = libraries_.find(name);
  if (old != libraries_.end() && !replace) {
    error = "ERR Library '" + name + "' already exists";
    return {};
  }
  // REPLACE: the old library's functions step aside while the new code loads (its names
  // may be registered again); they come back if it fails.
  if (old != libraries_.end()) unlink_library(old->second);
  auto restore_old = [&] {
    if (old != libraries_.end()) link_library(old->second);
  };

  lua_State* L = F_;
  const std::string_view body = code.substr(body_at);
  if (luaL_loadbuffer(L, body.data(), body.size(), "@user_function") != 0) {
    std::size_t n;
    const char* p = lua_tolstring(L, -1, &n);
    error = "ERR Error compiling function: " + std::string(p ? std::string_view(p, n) : std::string_view());
    lua_settop(L, 0);
    restore_old();
    return {};
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "respq_env");
  lua_pushvalue(L, -1);
  lua_setfenv(L, -3);  // the chunk, and so every function it defines, reads the environment
  // While the code runs, the environment reads through to the load API instead of the
  // globals: swap the table its __index closure looks in.
  auto set_lookup = [&](bool load_api) {
    lua_getfield(L, LUA_REGISTRYINDEX, "respq_env");
    lua_getmetatable(L, -1);
    lua_getfield(L, -1, "__index");
    if (load_api) lua_getfield(L, LUA_REGISTRYINDEX, "respq_load_api");
    else lua_pushvalue(L, LUA_GLOBALSINDEX);
    lua_setupvalue(L, -2, 1);
    lua_pop(L, 3);
  };
  lua_pop(L, 1);  // the environment
  set_lookup(true);
  load_context ctx;
  ctx.started = std::chrono::steady_clock::now();
  ctx.timeout = !s_.loading();
  loading_ = &ctx;
  const int rc = lua_pcall(L, 0, 0, 0);
  loading_ = nullptr;
  set_lookup(false);
  lua_sethook(L, time_hook, LUA_MASKCOUNT, 100000);  // back from every line after a timeout
  if (rc != 0) {
    // Redis's luaExtractErrorInformation: a string is "ERR <it>", a table its err field.
    std::string msg;
    std::size_t n;
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
      const char* p = lua_tolstring(L, -1, &n);
      msg = "ERR " + std::string(p, n);
    } else if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "err");
      if (const char* p = lua_tolstring(L, -1, &n)) msg.assign(p, n);
      lua_pop(L, 1);
    }
    error = "ERR Error registering functions: " + msg;
    lua_settop(L, 0);
    release_functions(ctx.functions);
    restore_old();
    return {};
  }
  lua_settop(L, 0);
  if (ctx.functions.empty()) {
    error = "ERR No functions registered";
    restore_old();
    return {};
  }
  for (const auto& f : ctx.functions)
    if (functions_.count(lower(f.name))) {
      error = "ERR Function " + f.name + " already exists";
      release_functions(ctx.functions);
      restore_old();
      return {};
    }
  if (old != libraries_.end()) {
    release_functions(old->second.functions);
    libraries_.erase(old);
  }
  library& lib = libraries_[name];
  lib.name = name;
  lib.code.assign(code);
  lib.functions = std::move(ctx.functions);
  link_library(lib);
  return name;
}

bool script_engine::delete_library(std::string_view name) {
  auto it = libraries_.find(name);
  if (it == libraries_.end()) return false;
  unlink_library(it->second);
  release_functions(it->second.functions);
  libraries_.erase(it);
  return true;
}

void script_engine::flush_functions() {
  functions_.clear();
  libraries_.clear();
  lua_close(F_);
  fn_mem_.bytes = 0;
  F_ = open_state(fn_mem_, true);
}

std::string script_engine::restore_libraries(const std::vector<std::string>& codes, restore_policy policy) {
  // As Redis: the payload's libraries load as into an empty set (the loaded ones step
  // aside: out of the lookup, their Lua state and upvalues untouched), then the two join
  // (libraryJoin), or the payload's go and the others come back as they were. (A payload's
  // library runs under FUNCTION LOAD's 500 ms limit: Redis gives it none, and a library
  // whose code never ends would then hold the server for good.)
  using node = decltype(libraries_)::node_type;
  std::vector<node> kept;  // map nodes: the libraries and their functions keep their addresses
  for (auto it = libraries_.begin(); it != libraries_.end();) {
    unlink_library(it->second);
    kept.push_back(libraries_.extract(it++));
  }
  std::vector<std::string> added;  // the payload's, in its order
  auto give_back = [&] {
    for (const auto& name : added) delete_library(name);
    for (auto& n : kept) link_library(libraries_.insert(std::move(n)).position->second);
  };
  std::string error;
  for (const auto& code : codes) {
    std::string name = load_library(code, false, error);
    if (name.empty()) {
      give_back();
      return error;
    }
    added.push_back(std::move(name));
  }
  auto replaced = [&](const node& n) { return policy == restore_policy::flush || libraries_.count(n.key()) > 0; };
  if (policy == restore_policy::append) {
    for (const auto& name : added) {
      const bool taken = std::any_of(kept.begin(), kept.end(), [&](const node& n) { return n.key() == name; });
      if (taken) {
        std::string error_text = "ERR Library " + name + " already exists";  // (give_back clears `added`)
        give_back();
        return error_text;
      }
    }
  }
  // No function name twice among the libraries that stay (FCALL's lookup ignores case).
  std::set<std::string> staying;
  for (const auto& n : kept)
    if (!replaced(n))
      for (const auto& f : n.mapped().functions) staying.insert(lower(f.name));
  for (const auto& name : added) {
    for (const auto& f : libraries_.find(name)->second.functions) {
      if (staying.count(lower(f.name))) {
        std::string error_text = "ERR Function " + f.name + " already exists";  // (give_back frees f)
        give_back();
        return error_text;
      }
    }
  }
  for (auto& n : kept) {
    if (replaced(n)) release_functions(n.mapped().functions);  // (freed with its node)
    else link_library(libraries_.insert(std::move(n)).position->second);
  }
  return {};
}

// ---- FCALL ------------------------------------------------------------------------------

void script_engine::fcall(client& c, std::span<const std::string_view> a, bool read_only) {
  const function_info* f = find_function(a[1]);
  if (!f) {
    s_.add_error(c, "ERR Function not found");
    return;
  }
  long long numkeys;
  if (!numkeys_arg(c, a, "ERR Bad number of keys provided", numkeys)) return;
  if (!prepare(c, true, f->flags & fn_no_writes, f->flags & fn_allow_oom, read_only)) return;
  run(c, F_, f->ref, f->name, a, static_cast<std::size_t>(numkeys), true, read_only);
}

// ---- FUNCTION STATS / LIST ----------------------------------------------------------------

void script_engine::function_stats(client& c) {
  // Read only while what runs is past busy-reply-threshold (server::serve_while_busy).
  if (timed_out() && !function_run_) {
    s_.add_error(c, busy_script_error);
    return;
  }
  auto w = s_.reply(c);
  w.map(2);
  w.bulk("running_script");
  if (!timed_out()) {
    w.null();
  } else {
    w.map(3);
    w.bulk("name");
    w.bulk(*run_name_);
    w.bulk("command");
    w.array(run_args_.size());
    for (auto arg : run_args_) w.bulk(arg);
    w.bulk("duration_ms");
    w.integer(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count());
  }
  w.bulk("engines");
  w.map(1);
  w.bulk("LUA");
  w.map(2);
  w.bulk("libraries_count");
  w.integer(static_cast<long long>(libraries_.size()));
  w.bulk("functions_count");
  std::size_t n = 0;
  for (const auto& [name, lib] : libraries_) n += lib.functions.size();
  w.integer(static_cast<long long>(n));
}

void script_engine::function_list(client& c, std::optional<std::string_view> pattern, bool with_code) {
  std::vector<const library*> shown;
  for (const auto& [name, lib] : libraries_)
    if (!pattern || glob_match(*pattern, name, true)) shown.push_back(&lib);
  auto w = s_.reply(c);
  w.array(shown.size());
  for (const library* lib : shown) {
    w.map(with_code ? 4 : 3);
    w.bulk("library_name");
    w.bulk(lib->name);
    w.bulk("engine");
    w.bulk("LUA");
    w.bulk("functions");
    w.array(lib->functions.size());
    for (const auto& f : lib->functions) {
      w.map(3);
      w.bulk("name");
      w.bulk(f.name);
      w.bulk("description");
      if (f.description) w.bulk(*f.description);
      else w.null();
      w.bulk("flags");
      std::size_t nflags = 0;
      for (auto [bit, text] : function_flag_names) nflags += (f.flags & bit) ? 1 : 0;
      w.set(nflags);
      for (auto [bit, text] : function_flag_names)
        if (f.flags & bit) w.simple(text);
    }
    if (with_code) {
      w.bulk("library_code");
      w.bulk(lib->code);
    }
  }
}

}  // namespace respq::core
