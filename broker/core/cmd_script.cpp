// Scripting commands: EVAL EVALSHA EVAL_RO EVALSHA_RO SCRIPT. The engine (Lua state,
// sandbox, conversions) is script_engine; it is created on the first use.
#include "broker/core/commands.hpp"
#include "broker/core/script_engine.hpp"

namespace respq::core {

// As Redis, the script command is shown to MONITOR before the commands it runs (the
// commands are flagged skip_monitor, so call() does not show them again after).
static void eval_command(server& s, client& c, args_t a, bool by_sha, bool read_only) {
  if (s.monitors() > 0 && !s.loading()) s.feed_monitors(c, a);
  s.scripts().eval(c, a, by_sha, read_only);
}

void cmd_eval(server& s, client& c, args_t a) { eval_command(s, c, a, false, false); }
void cmd_evalsha(server& s, client& c, args_t a) { eval_command(s, c, a, true, false); }
void cmd_eval_ro(server& s, client& c, args_t a) { eval_command(s, c, a, false, true); }
void cmd_evalsha_ro(server& s, client& c, args_t a) { eval_command(s, c, a, true, true); }

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
    if (s.script_busy()) s.scripts().kill(c);
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
