// script_engine: Lua scripting (EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT) with Redis
// 7.0's semantics. Owner: the server core (broker thread); one Lua state for all scripts.
//
// A script is compiled once into a function kept in the Lua registry (a reference cached
// under its SHA1, with its shebang flags; EVAL finds a body it has seen without hashing it
// again), and run with KEYS and ARGV set as globals. Everything it calls through redis.call/pcall
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
// A runaway script: nothing else runs while a script runs, so no client could send SCRIPT
// KILL. What SCRIPT KILL would do is done at busy-reply-threshold (lua-time-limit, 5 s):
// a script that has not written is stopped with an error. One that has written cannot be
// stopped without breaking its atomicity (Redis then only allows SHUTDOWN NOSAVE): it
// runs on, with a warning in the log. Limit, stated plainly: until then every other
// client waits (there is no BUSY reply).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/core/client.hpp"

struct lua_State;
struct lua_Debug;

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
  bool exists(std::string_view sha) { return find(sha) != nullptr; }
  // SCRIPT FLUSH: forgets every script and starts a fresh Lua state.
  void flush();
  std::size_t cached() const { return scripts_.size(); }
  // Bytes Lua holds (INFO memory used_memory_lua).
  std::size_t lua_memory() const { return lua_bytes_; }

  static std::string sha1_hex(std::string_view data);
  // redis.setresp(): the protocol the running script sees replies in (2 or 3).
  void set_resp(int v) { resp_ = v; }

 private:
  // A cached script: its compiled function and the flags of its shebang line.
  struct script {
    int ref = 0;             // the function, in the Lua registry (luaL_ref)
    bool shebang = false;    // "#!lua ...": Redis 7's flags mode
    bool no_writes = false;  // ... with flags=no-writes
  };
  // Hash and equality that also take a string_view: EVALSHA looks up without a copy.
  struct sha_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Finds a script by a SHA1 in either case; null if none.
  script* find(std::string_view sha);

  void open();
  void close();
  // Compiles body into the registry and caches it under sha. Null with error set.
  script* compile(const std::string& sha, std::string_view body, std::string& error);
  // EVAL's lookup: the cached script of body, compiled first if new; sha set.
  script* load_script(std::string_view body, std::string& sha, std::string& error);
  static int lua_call_command(lua_State* L);
  static int lua_pcall_command(lua_State* L);
  int call_command(lua_State* L, bool raise);
  static void* lua_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize);
  static void time_hook(lua_State* L, ::lua_Debug* ar);

  server& s_;
  lua_State* L_ = nullptr;
  using script_map = std::unordered_map<std::string, script, sha_hash, std::equal_to<>>;
  script_map scripts_;  // by lowercase SHA1
  // EVAL's shortcut: the cached entry of a script body, so that a body seen before is not
  // hashed with SHA1 again.
  std::unordered_map<std::string, script_map::value_type*, sha_hash, std::equal_to<>> by_body_;
  unsigned gc_countdown_ = 0;  // scripts run until the next Lua GC step
  std::unique_ptr<client> fake_;                            // runs the script's commands
  std::size_t lua_bytes_ = 0;
  std::size_t lua_limit_ = 0;
  bool running_ = false;
  bool read_only_ = false;
  bool wrote_ = false;          // the running script ran a write command
  bool warned_ = false;         // ... and was reported as running past the threshold
  std::chrono::steady_clock::time_point started_;
  int resp_ = 2;  // redis.setresp()
  std::string sha_;  // of the running script
  // redis.call's argument views and the text of its number arguments (reused buffers).
  std::vector<std::string_view> argv_;
  std::string num_args_;
};

}  // namespace respq::core
