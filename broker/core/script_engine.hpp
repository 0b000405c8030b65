// script_engine: Lua scripting (EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT) and Redis 7.0's
// functions (FUNCTION, FCALL, FCALL_RO) with Redis 7.0's semantics. Owner: the server core
// (broker thread); one Lua state for all scripts and another for all function libraries,
// as Redis (SCRIPT FLUSH resets the first, never the libraries).
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
// A runaway script: past busy-reply-threshold (lua-time-limit, 5 s) the engine logs it,
// and from then on its hook lets the I/O layer serve other clients now and then
// (server::serve_while_busy): they get -BUSY for everything but SCRIPT KILL, SHUTDOWN
// NOSAVE and the connection commands Redis allows. SCRIPT KILL stops a script that has not
// written (one that has would break its atomicity: UNKILLABLE); SHUTDOWN NOSAVE stops any
// script, drops what it wrote from the command stream (the AOF and the mirror never see a
// half-run script), and shuts the server down.
//
// Functions (script_functions.cpp): a library is loaded by running its code once in the
// functions' state with only the load API visible (redis.register_function, redis.log,
// the log levels and the version; a global read of anything else is an error, as Redis's
// function_lua.c), under a 500 ms load timeout (none while the AOF loads). The functions it
// registers are kept as registry references; FCALL runs one through the same runner as
// EVAL (keys and arguments as its two parameters, not as KEYS/ARGV globals), with the
// function's flags in the place of a shebang line's. Libraries are server state, not
// keyspace data: FLUSHALL keeps them; FUNCTION LOAD/DELETE/FLUSH go to the command stream
// (the AOF replays them; an AOF rewrite writes every library first).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/core/client.hpp"

struct lua_State;
struct lua_Debug;

namespace respq::core {

class server;
class script_engine;

// Helpers the Lua-facing C functions of the engine's two files share.
namespace script_lua {
// The engine that owns L (kept in L's registry).
script_engine* engine_of(lua_State* L);
// Raises the error table {err = msg}, as Redis's luaPushError + luaError: msg is copied
// into Lua before the longjmp, so it may be a view of anything alive here.
int raise_error(lua_State* L, std::string_view msg);
}  // namespace script_lua

// What every other command gets while a script runs past busy-reply-threshold (Redis's).
inline constexpr std::string_view busy_script_error =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
// ... while the script is a function (FCALL).
inline constexpr std::string_view busy_function_error =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

// A function's flags (redis.register_function's flags), in Redis's order (FUNCTION LIST).
enum function_flag : std::uint32_t {
  fn_no_writes = 1,
  fn_allow_oom = 2,
  fn_allow_stale = 4,
  fn_no_cluster = 8,
  fn_allow_cross_slot_keys = 16,
};
inline constexpr std::pair<function_flag, std::string_view> function_flag_names[] = {
    {fn_no_writes, "no-writes"},
    {fn_allow_oom, "allow-oom"},
    {fn_allow_stale, "allow-stale"},
    {fn_no_cluster, "no-cluster"},
    {fn_allow_cross_slot_keys, "allow-cross-slot-keys"},
};

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
  std::size_t lua_memory() const { return eval_mem_.bytes; }
  // Bytes of the script cache outside Lua: its entries by SHA1 and the script bodies EVAL
  // looks up (INFO memory used_memory_scripts_eval).
  std::size_t cache_bytes() const {
    // A node: the entry, the next pointer and the cached hash; a string's own block when
    // it is too long to sit inside the string.
    auto heap = [](const std::string& t) { return t.capacity() > 15 ? t.capacity() + 1 : 0; };
    std::size_t n = 0;
    for (const auto& [sha, sc] : scripts_) n += sizeof(script_map::value_type) + 2 * sizeof(void*) + heap(sha);
    for (const auto& [body, e] : by_body_) n += sizeof(std::pair<const std::string, void*>) + 2 * sizeof(void*) + heap(body);
    return n;
  }

  // Whether EVAL/EVALSHA of this script (arg: the body, or by_sha the SHA1) is refused
  // when used memory is over maxmemory, before it runs, as Redis 7.0's
  // evalGetCommandFlags: a script with a shebang line that declares neither allow-oom
  // nor no-writes. A script without a shebang runs, and its commands are checked one by
  // one instead (call_command). EVALSHA of an unknown script: false (it fails NOSCRIPT).
  bool denies_oom(std::string_view arg, bool by_sha);
  // Whether the script may write, as its shebang line declares (Redis 7.0's script flags:
  // a shebang without no-writes makes EVAL and EVAL_RO alike a write, one with it neither
  // a write nor may-replicate); nullopt without a shebang or for an unknown script, where
  // the command's own flags count. CLIENT PAUSE WRITE holds what may write.
  std::optional<bool> declared_writes(std::string_view arg, bool by_sha);

  static std::string sha1_hex(std::string_view data);
  // redis.setresp(): the protocol the running script sees replies in (2 or 3).
  void set_resp(int v) { resp_ = v; }

  // ---- a script past busy-reply-threshold ----
  bool timed_out() const { return running_ && timed_out_; }
  // The client whose EVAL is running (not read while the script runs), or null.
  const client* caller() const { return running_ ? caller_ : nullptr; }
  // SCRIPT KILL (is_eval) or FUNCTION KILL: replies to c (OK, NOTBUSY, UNKILLABLE, or BUSY
  // when the other command is the one that can stop what runs, as Redis does).
  void kill(client& c, bool is_eval);
  // Whether what runs is a function (FCALL), and the BUSY text others get meanwhile.
  bool running_function() const { return running_ && function_run_; }
  std::string_view busy_error() const { return running_function() ? busy_function_error : busy_script_error; }

  // ---- functions (script_functions.cpp) ----
  struct function_info {
    std::string name;
    std::optional<std::string> description;
    std::uint32_t flags = 0;  // function_flag bits
    int ref = 0;              // the callback, in the functions' Lua registry
  };
  struct library {
    std::string name;
    std::string code;  // as FUNCTION LOAD got it, shebang line included
    std::vector<function_info> functions;  // in the order they were registered
  };
  // EVAL's and FCALL's numkeys (a[2]), checked against the arguments as Redis checks it;
  // false with the error replied (`not_a_number` when it is not an integer).
  bool numkeys_arg(client& c, std::span<const std::string_view> a, std::string_view not_a_number, long long& numkeys);
  // FCALL / FCALL_RO function numkeys key... arg.... Replies to c.
  void fcall(client& c, std::span<const std::string_view> a, bool read_only);
  // FUNCTION LOAD [REPLACE] code: the library's name, or "" with the error text set.
  std::string load_library(std::string_view code, bool replace, std::string& error);
  // FUNCTION DELETE: false when there is no such library.
  bool delete_library(std::string_view name);
  // FUNCTION FLUSH: every library goes, with a fresh Lua state for the next ones.
  void flush_functions();
  // FUNCTION RESTORE: the libraries of `codes` join those loaded (APPEND: a library of the
  // same name is an error; REPLACE: it gives way) or take their place (FLUSH), all of them
  // or none: "" on success, else Redis's error text, the libraries left as they were (the
  // ones that stay keep their Lua state).
  enum class restore_policy { append, replace, flush };
  std::string restore_libraries(const std::vector<std::string>& codes, restore_policy policy);
  // By name (case-sensitive, as Redis's).
  const std::map<std::string, library, std::less<>>& libraries() const { return libraries_; }
  std::size_t function_count() const { return functions_.size(); }
  // The flags of a function (looked up without regard to case, as Redis's), nullopt when
  // there is none of that name: what FCALL's flags derive from (CLIENT PAUSE, maxmemory).
  std::optional<std::uint32_t> function_flags(std::string_view name) const;
  // Bytes the functions' Lua state holds (INFO used_memory_vm_functions) and the
  // libraries' own entries and code outside it (used_memory_functions).
  std::size_t functions_lua_memory() const { return fn_mem_.bytes; }
  std::size_t functions_bytes() const;
  // FUNCTION STATS; FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE] (arguments checked).
  void function_stats(client& c);
  void function_list(client& c, std::optional<std::string_view> pattern, bool with_code);
  // SHUTDOWN NOSAVE while busy: stops the script whatever it wrote, and forgets its writes.
  void kill_for_shutdown() { kill_ = shutdown_kill_ = true; }

 private:
  // A cached script: its compiled function and the flags of its shebang line.
  struct script {
    int ref = 0;             // the function, in the Lua registry (luaL_ref)
    bool shebang = false;    // "#!lua ...": Redis 7's flags mode
    bool no_writes = false;  // ... with flags=no-writes
    bool allow_oom = false;  // ... with flags=allow-oom
  };
  // Hash and equality that also take a string_view: EVALSHA looks up without a copy.
  struct sha_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // The flags a script declares (shebang, no-writes, allow-oom): from the loaded script,
  // else, for a body not compiled yet, from its shebang line alone (one that does not
  // parse fails when EVAL compiles it); nullopt when neither tells (EVALSHA of an
  // unknown script, a body whose shebang line does not parse).
  std::optional<script> declared_flags(std::string_view arg, bool by_sha);
  // Finds a script by a SHA1 in either case; null if none.
  script* find(std::string_view sha);

  // Lua's memory, per state: its allocator's user data.
  struct lua_mem {
    std::size_t bytes = 0;
    std::size_t limit = 0;
  };
  // A new sandboxed state; with functions, also the libraries' load API.
  lua_State* open_state(lua_mem& mem, bool functions);
  void open();
  void close();
  // The checks before a run (Redis's scriptPrepareForRun) for a script with declared
  // flags (flags_mode: a shebang line, or any function): *_ro of a writing script, OOM.
  // False after replying the error.
  bool prepare(client& c, bool flags_mode, bool no_writes, bool allow_oom, bool& read_only);
  // Runs the function at registry `ref` of L for c's command `a` (EVAL/FCALL x numkeys
  // key... arg...) and replies. A function (FCALL) gets keys and args as its two
  // parameters; a script (EVAL) as KEYS and ARGV globals. `name`: the SHA1 or the
  // function's name, for errors and the slow-script log.
  void run(client& c, lua_State* L, int ref, const std::string& name, std::span<const std::string_view> a,
           std::size_t numkeys, bool function, bool read_only);
  // ---- functions ----
  // What redis.register_function collects while a library loads.
  struct load_context {
    std::vector<function_info> functions;
    std::unordered_set<std::string> names;  // of `functions`: a library may register many
    std::chrono::steady_clock::time_point started;
    bool timeout = true;  // 500 ms; none while the AOF loads (Redis: none for its master and the AOF)
  };
  function_info* find_function(std::string_view name);
  // Takes a library's functions out of the lookup by name (FUNCTION LOAD REPLACE undoes
  // it when the new code fails) or puts them back.
  void unlink_library(const library& lib);
  void link_library(library& lib);
  void release_functions(std::vector<function_info>& fs);
  static int lua_register_function(lua_State* L);
  // Reads register_function's arguments into pending_; the error text (without "ERR ")
  // or null. No C++ object is left on this frame when the caller raises.
  const char* read_register_args(lua_State* L);
  // Compiles body into the registry and caches it under sha. Null with error set.
  script* compile(const std::string& sha, std::string_view body, std::string& error);
  // EVAL's lookup: the cached script of body, compiled first if new; sha set.
  script* load_script(std::string_view body, std::string& sha, std::string& error);
  static int lua_call_command(lua_State* L);
  static int lua_acl_check_cmd(lua_State* L);
  static int lua_pcall_command(lua_State* L);
  int call_command(lua_State* L, bool raise);
  static void* lua_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize);
  static void time_hook(lua_State* L, ::lua_Debug* ar);

  server& s_;
  lua_State* L_ = nullptr;  // EVAL's scripts
  lua_State* F_ = nullptr;  // the function libraries
  lua_mem eval_mem_, fn_mem_;
  std::map<std::string, library, std::less<>> libraries_;
  // Functions by lower-case name: what FCALL finds (the info lives in its library).
  std::unordered_map<std::string, function_info*, sha_hash, std::equal_to<>> functions_;
  load_context* loading_ = nullptr;  // while a library's code runs
  function_info pending_;            // register_function's arguments being read
  using script_map = std::unordered_map<std::string, script, sha_hash, std::equal_to<>>;
  script_map scripts_;  // by lowercase SHA1
  // EVAL's shortcut: the cached entry of a script body, so that a body seen before is not
  // hashed with SHA1 again.
  std::unordered_map<std::string, script_map::value_type*, sha_hash, std::equal_to<>> by_body_;
  unsigned gc_countdown_ = 0;  // scripts run until the next Lua GC step
  std::unique_ptr<client> fake_;                            // runs the script's commands
  bool running_ = false;
  bool function_run_ = false;   // ... and it is a function (FCALL)
  const std::string* run_name_ = nullptr;  // its SHA1 or function name
  std::span<const std::string_view> run_args_;  // the caller's command (FUNCTION STATS)
  bool read_only_ = false;
  bool wrote_ = false;          // the running script ran a write command
  // maxmemory, as Redis's scriptVerifyOOM: over the limit when the script started, a
  // script that has not written yet may not run a denyoom command, unless allow-oom.
  bool oom_at_start_ = false;
  bool allow_oom_ = false;
  bool timed_out_ = false;      // ... ran past busy-reply-threshold (logged; others get BUSY)
  bool kill_ = false;           // SCRIPT KILL or SHUTDOWN NOSAVE asked to stop it
  bool shutdown_kill_ = false;  // ... SHUTDOWN NOSAVE: its writes are dropped from the stream
  const client* caller_ = nullptr;
  std::chrono::steady_clock::time_point last_served_;
  std::chrono::steady_clock::time_point started_;
  int resp_ = 2;  // redis.setresp()
  std::string sha_;  // of the running script
  // redis.call's argument views and the text of its number arguments (reused buffers).
  std::vector<std::string_view> argv_;
  std::string num_args_;
  std::string refusal_;  // a write refusal's text, while redis.call raises it
};

}  // namespace respq::core
