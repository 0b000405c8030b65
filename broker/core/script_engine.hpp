// script_engine: Lua scripting (EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT) with Redis
// 7.0's semantics. Owner: the server core (broker thread); one Lua state for all scripts.
//
// A script is compiled once into a function kept in the Lua registry under its SHA1, and
// run with KEYS and ARGV set as globals. Everything it calls through redis.call/pcall
// runs through server::call() on a fake client of its own, so the commands a script runs
// are propagated one by one (effects replication, as in Redis 7: the AOF, the mirror and
// MONITOR see the commands, not the script), wrapped in MULTI/EXEC. Nothing else runs
// while a script runs: the broker thread is inside it. Keys a script pushes to are served
// (blocked clients, HTTP queues) after the script, as after EXEC.
//
// The sandbox is Redis's: the base, table, string, math, cjson and bit libraries (no os,
// io, require, loadfile, dofile, print, getfenv/setfenv, debug), globals and library
// tables read-only ("Attempt to modify a readonly table"), a read of a global that does not
// exist is an error, and errors carry Redis's "script: <sha>, on @user_script:<line>."
// suffix. Lua's own memory is capped (script-memory-limit): a script that allocates past
// it gets Lua's "not enough memory" error, not the server's death.
//
// Limit, stated plainly: a script that runs for long blocks every other client until it
// ends (there is no BUSY reply and so no SCRIPT KILL of a running script yet).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/core/client.hpp"

struct lua_State;

namespace respq::core {

class server;

class script_engine {
 public:
  explicit script_engine(server& s);
  ~script_engine();
  script_engine(const script_engine&) = delete;
  script_engine& operator=(const script_engine&) = delete;

  // EVAL script numkeys key... arg... (by_sha: EVALSHA). Replies to c.
  void eval(client& c, std::span<const std::string_view> a, bool by_sha, bool read_only);
  // SCRIPT LOAD: compiles and caches; returns the SHA1, or "" with the error text set.
  std::string load(std::string_view body, std::string& error);
  bool exists(std::string_view sha) const;
  // SCRIPT FLUSH: forgets every script and starts a fresh Lua state.
  void flush();
  std::size_t cached() const { return scripts_.size(); }
  // Bytes Lua holds (INFO memory used_memory_lua).
  std::size_t lua_memory() const { return lua_bytes_; }

  static std::string sha1_hex(std::string_view data);
  // redis.setresp(): the protocol the running script sees replies in (2 or 3).
  void set_resp(int v) { resp_ = v; }

 private:
  void open();
  void close();
  // Compiles body as the function f_<sha> into the registry. False with error set.
  bool compile(const std::string& sha, std::string_view body, std::string& error);
  static int lua_call_command(lua_State* L);
  static int lua_pcall_command(lua_State* L);
  int call_command(lua_State* L, bool raise);
  static void* lua_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize);

  server& s_;
  lua_State* L_ = nullptr;
  std::unordered_map<std::string, std::string> scripts_;  // sha -> body
  std::unique_ptr<client> fake_;                            // runs the script's commands
  std::size_t lua_bytes_ = 0;
  std::size_t lua_limit_ = 0;
  bool running_ = false;
  bool read_only_ = false;
  int resp_ = 2;  // redis.setresp()
  std::string sha_;  // of the running script
};

}  // namespace respq::core
