// Scripting commands: EVAL EVALSHA EVAL_RO EVALSHA_RO SCRIPT, and Redis 7.0's functions:
// FUNCTION FCALL FCALL_RO. The engine (Lua states, sandbox, conversions, libraries) is
// script_engine; it is created on the first use.
#include "broker/core/commands.hpp"
#include "broker/core/rdb_codec.hpp"
#include "broker/core/script_engine.hpp"

namespace respq::core {

// As Redis, the script command is shown to MONITOR before the commands it runs (the
// commands are flagged skip_monitor, so call() does not show them again after).
static void eval_command(server& s, client& c, args_t a, bool by_sha, bool read_only) {
  if (s.monitors() > 0 && !s.loading()) s.feed_monitors(c, a);
  // As Redis: a SHA that is not 40 characters long can match no script, whatever follows.
  if (by_sha && a[1].size() != 40) {
    s.add_error(c, "NOSCRIPT No matching script. Please use EVAL.");
    return;
  }
  s.scripts().eval(c, a, by_sha, read_only);
}

void cmd_eval(server& s, client& c, args_t a) { eval_command(s, c, a, false, false); }
void cmd_evalsha(server& s, client& c, args_t a) { eval_command(s, c, a, true, false); }
void cmd_eval_ro(server& s, client& c, args_t a) { eval_command(s, c, a, false, true); }
void cmd_evalsha_ro(server& s, client& c, args_t a) { eval_command(s, c, a, true, true); }

// As EVAL, FCALL is shown to MONITOR before the commands the function runs.
static void fcall_command(server& s, client& c, args_t a, bool read_only) {
  if (s.monitors() > 0 && !s.loading()) s.feed_monitors(c, a);
  s.scripts().fcall(c, a, read_only);
}

void cmd_fcall(server& s, client& c, args_t a) { fcall_command(s, c, a, false); }
void cmd_fcall_ro(server& s, client& c, args_t a) { fcall_command(s, c, a, true); }

void cmd_function(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  if (sub == "load") {
    bool replace = false;
    std::size_t at = 2;
    for (; at + 1 < a.size(); ++at) {
      if (!iequals(a[at], "replace")) {
        s.add_error(c, "ERR Unknown option given: " + std::string(a[at]));
        return;
      }
      replace = true;
    }
    std::string error;
    const std::string name = s.scripts().load_library(a[at], replace, error);
    if (name.empty()) {
      s.add_error(c, error);
      return;
    }
    s.add_dirty();  // propagated as is (the AOF replays it; see script_engine.hpp)
    s.reply(c).bulk(name);
  } else if (sub == "delete") {
    if (!s.scripts().delete_library(a[2])) {
      s.add_error(c, "ERR Library not found");
      return;
    }
    s.add_dirty();
    s.reply(c).ok();
  } else if (sub == "list") {
    std::optional<std::string_view> pattern;
    bool with_code = false;
    for (std::size_t i = 2; i < a.size(); ++i) {
      if (!with_code && iequals(a[i], "withcode")) {
        with_code = true;
        continue;
      }
      if (!pattern && iequals(a[i], "libraryname")) {
        if (i + 1 >= a.size()) {
          s.add_error(c, "ERR library name argument was not given");
          return;
        }
        pattern = a[++i];
        continue;
      }
      s.add_error(c, "ERR Unknown argument " + std::string(a[i]));
      return;
    }
    s.scripts().function_list(c, pattern, with_code);
  } else if (sub == "flush") {
    if (a.size() > 3) {
      subcommand_syntax_error(s, c, a);
      return;
    }
    if (a.size() == 3 && !iequals(a[2], "sync") && !iequals(a[2], "async")) {
      s.add_error(c, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
      return;
    }
    s.scripts().flush_functions();
    s.add_dirty();
    s.reply(c).ok();
  } else if (sub == "dump") {
    // Every library's code, in Redis's payload (rdb_codec.hpp): FUNCTION RESTORE on a
    // redis-server reads it, and respq reads one a redis-server wrote.
    std::vector<std::string_view> codes;
    for (const auto& [name, lib] : s.scripts().libraries()) codes.push_back(lib.code);
    s.reply(c).bulk(rdb::dump_functions(codes));
  } else if (sub == "restore") {
    if (a.size() > 4) {
      subcommand_syntax_error(s, c, a);
      return;
    }
    auto policy = script_engine::restore_policy::append;
    if (a.size() == 4) {
      if (iequals(a[3], "append")) {
        policy = script_engine::restore_policy::append;
      } else if (iequals(a[3], "replace")) {
        policy = script_engine::restore_policy::replace;
      } else if (iequals(a[3], "flush")) {
        policy = script_engine::restore_policy::flush;
      } else {
        s.add_error(c, "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.");
        return;
      }
    }
    std::vector<std::string> codes;
    if (std::string bad = rdb::restore_functions(a[2], codes); !bad.empty()) {
      s.add_error(c, "ERR " + bad);
      return;
    }
    if (std::string error = s.scripts().restore_libraries(codes, policy); !error.empty()) {
      s.add_error(c, error);
      return;
    }
    s.add_dirty();  // propagated as is, as FUNCTION LOAD
    s.reply(c).ok();
  } else if (sub == "stats") {
    s.scripts().function_stats(c);
  } else if (sub == "kill") {
    // Read only while a script runs past busy-reply-threshold (server::serve_while_busy).
    if (s.script_busy()) s.scripts().kill(c, false);
    else s.add_error(c, "NOTBUSY No scripts in execution right now.");
  } else {  // help
    static const char* lines[] = {
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help."};
    help_reply(s, c, lines);
  }
}

void cmd_script(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  if (sub == "load") {
    std::string error;
    std::string sha = s.scripts().load(a[2], error);
    if (sha.empty()) s.add_error(c, error);
    else s.reply(c).bulk(sha);
  } else if (sub == "exists") {
    auto w = s.reply(c);
    w.array(a.size() - 2);
    for (std::size_t i = 2; i < a.size(); ++i) w.integer(s.scripts().exists(a[i]) ? 1 : 0);
  } else if (sub == "flush") {
    if (a.size() > 3 || (a.size() == 3 && to_lower(a[2]) != "sync" && to_lower(a[2]) != "async")) {
      s.add_error(c, "ERR SCRIPT FLUSH only support SYNC|ASYNC option");
      return;
    }
    s.scripts().flush();
    s.reply(c).ok();
  } else if (sub == "kill") {
    // Read only while a script runs past busy-reply-threshold (server::serve_while_busy).
    if (s.script_busy()) s.scripts().kill(c, true);
    else s.add_error(c, "NOTBUSY No scripts in execution right now.");
  } else if (sub == "debug") {
    s.add_error(c, "ERR SCRIPT DEBUG is not supported by respq");
  } else {  // help
    static const char* lines[] = {
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help."};
    help_reply(s, c, lines);
  }
}

}  // namespace respq::core
