// Scripting commands: EVAL EVALSHA EVAL_RO EVALSHA_RO SCRIPT. The engine (Lua state,
// sandbox, conversions) is script_engine; it is created on the first use.
#include "broker/core/commands.hpp"
#include "broker/core/script_engine.hpp"

namespace respq::core {

namespace {

// As Redis's evalCommand: MONITOR sees the EVAL before the commands its script runs (the
// command table marks these skip_monitor, so the server does not show them again after).
void eval_generic(server& s, client& c, args_t a, bool by_sha, bool read_only) {
  if (s.monitors() && !s.loading()) s.feed_monitors(c, a);
  s.scripts().eval(c, a, by_sha, read_only);
}

}  // namespace

void cmd_eval(server& s, client& c, args_t a) { eval_generic(s, c, a, false, false); }
void cmd_evalsha(server& s, client& c, args_t a) { eval_generic(s, c, a, true, false); }
void cmd_eval_ro(server& s, client& c, args_t a) { eval_generic(s, c, a, false, true); }
void cmd_evalsha_ro(server& s, client& c, args_t a) { eval_generic(s, c, a, true, true); }

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
    // Nothing else runs while a script runs, so no script is ever running when this is read.
    s.add_error(c, "NOTBUSY No scripts in execution right now.");
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
