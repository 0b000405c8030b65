// Connection commands: PING ECHO QUIT SELECT AUTH HELLO CLIENT RESET.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>

#include "broker/core/commands.hpp"
#include "broker/core/version.hpp"

namespace respq::core {

namespace {

bool check_password(server& s, std::string_view user, std::string_view pass) {
  return user == "default" && !s.cfg().requirepass.empty() && pass == s.cfg().requirepass;
}

void authenticated(server& s, client& c) {
  c.authenticated = true;
  c.parser.set_limits(s.parser_limits(true));
}

bool valid_client_name(std::string_view n) {
  return std::all_of(n.begin(), n.end(), [](char ch) { return ch >= '!' && ch <= '~'; });
}

// In Redis's order (catClientInfoString).
std::string client_flags(const client& c) {
  std::string f;
  if (c.monitor) f += 'O';
  if (c.in_pubsub()) f += 'P';
  if (c.in_multi) f += 'x';
  if (c.blocked) f += 'b';
  if (c.tracking.on) f += 't';
  if (c.tracking.broken_redirect) f += 'R';
  if (c.tracking.bcast) f += 'B';
  if (c.watch_dirty) f += 'd';
  if (c.close_after_reply) f += 'c';
  if (c.close_asap) f += 'A';
  if (c.no_evict) f += 'e';
  if (f.empty()) f = "N";
  return f;
}

}  // namespace

std::string client_info_line(const client& c) {
  auto now = clock::now();
  auto age = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - c.created).count();
  auto idle = std::chrono::duration_cast<std::chrono::seconds>(now - c.last_interaction).count();
  std::string cmd = c.last_command;
  // Unsent output: the fixed buffer's part (obl) and the reply list's (oll, omem), so an
  // ordinary client shows omem=0 (client::reply_list_bytes).
  const std::size_t pending = c.pending_output();
  std::string line = "id=" + std::to_string(c.id) + " addr=" + c.addr + " laddr=" + c.laddr +
                     " fd=" + std::to_string(c.fd) + " name=" + c.name + " age=" + std::to_string(age) +
                     " idle=" + std::to_string(idle) + " flags=" + client_flags(c) + " db=" + std::to_string(c.db) +
                     " sub=" + std::to_string(c.channels.size()) + " psub=" + std::to_string(c.patterns.size()) +
                     " ssub=" + std::to_string(c.shard_channels.size()) + " multi=" + (c.in_multi ? std::to_string(c.multi_queue.size()) : std::string("-1")) +
                     " qbuf=" + std::to_string(c.in.size()) +
                     " qbuf-free=" + std::to_string(c.in.capacity() - c.in.size()) + " argv-mem=0 multi-mem=0" +
                     " rbs=" + std::to_string(c.in.capacity()) + " rbp=0 obl=" + std::to_string(std::min(pending, client::fixed_reply_bytes)) +
                     " oll=" + (c.reply_list_bytes() ? "1" : "0") +
                     " omem=" + std::to_string(c.reply_list_bytes()) +
                     " tot-mem=" + std::to_string(c.out.capacity() + c.in.capacity() + sizeof(client)) +
                     " events=r cmd=" + cmd + " user=default redir=" + (c.tracking.on ? std::to_string(c.tracking.redirect) : std::string("-1")) +
                     " resp=" + std::to_string(c.resp);
  if (!c.lib_name.empty() || !c.lib_ver.empty()) line += " lib-name=" + c.lib_name + " lib-ver=" + c.lib_ver;
  return line;
}

void cmd_ping(server& s, client& c, args_t a) {
  if (a.size() > 2) {
    s.add_error(c, "ERR wrong number of arguments for 'ping' command");
    return;
  }
  auto w = s.reply(c);
  if (c.resp == 2 && c.in_pubsub()) {
    w.array(2);
    w.bulk("pong");
    w.bulk(a.size() == 2 ? a[1] : std::string_view());
    return;
  }
  if (a.size() == 2) w.bulk(a[1]);
  else w.simple("PONG");
}

void cmd_echo(server& s, client& c, args_t a) { s.reply(c).bulk(a[1]); }

void cmd_quit(server& s, client& c, args_t) {
  s.reply(c).ok();
  c.close_after_reply = true;
}

void cmd_select(server& s, client& c, args_t a) {
  int db;
  if (!db_index_arg(s, c, a[1], db)) return;
  // The commands after this one run in it (call() selects the client's database).
  c.db = db;
  s.reply(c).ok();
}

void cmd_auth(server& s, client& c, args_t a) {
  if (a.size() > 3) {
    s.add_error(c, syntax_error);
    return;
  }
  std::string_view user = a.size() == 3 ? a[1] : std::string_view("default");
  std::string_view pass = a.back();
  if (a.size() == 2 && s.cfg().requirepass.empty()) {
    s.add_error(c, "ERR AUTH <password> called without any password configured for the default user. Are you sure "
                   "your configuration is correct?");
    return;
  }
  if (s.cfg().requirepass.empty() && a.size() == 3 && user == "default") {
    // The default user has no password: any password is accepted, as in Redis.
    authenticated(s, c);
    s.reply(c).ok();
    return;
  }
  if (!check_password(s, user, pass)) {
    s.add_error(c, "WRONGPASS invalid username-password pair or user is disabled.");
    return;
  }
  authenticated(s, c);
  s.reply(c).ok();
}

void cmd_hello(server& s, client& c, args_t a) {
  long long ver = 0;
  std::size_t i = 1;
  if (a.size() >= 2) {
    if (!string2ll(a[1], ver)) {
      s.add_error(c, "ERR Protocol version is not an integer or out of range");
      return;
    }
    if (ver < 2 || ver > 3) {
      s.add_error(c, "NOPROTO unsupported protocol version");
      return;
    }
    i = 2;
  }
  std::string_view setname;
  bool has_setname = false;
  for (; i < a.size(); ++i) {
    std::string opt = to_lower(a[i]);
    if (opt == "auth" && i + 2 < a.size()) {
      if (!check_password(s, a[i + 1], a[i + 2]) &&
          !(s.cfg().requirepass.empty() && a[i + 1] == "default")) {
        s.add_error(c, "WRONGPASS invalid username-password pair or user is disabled.");
        return;
      }
      authenticated(s, c);
      i += 2;
    } else if (opt == "setname" && i + 1 < a.size()) {
      setname = a[i + 1];
      has_setname = true;
      if (!valid_client_name(setname)) {
        s.add_error(c, "ERR Client names cannot contain spaces, newlines or special characters.");
        return;
      }
      ++i;
    } else {
      s.add_error(c, "ERR Syntax error in HELLO option '" + std::string(a[i]) + "'");
      return;
    }
  }
  if (!c.authenticated) {
    s.add_error(c, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH "
                   "<user> <pass> option can be used to authenticate the client and select the RESP protocol version "
                   "at the same time");
    return;
  }
  if (has_setname) c.name = std::string(setname);
  if (ver) c.resp = static_cast<int>(ver);
  auto w = s.reply(c);
  w.map(7);
  w.bulk("server");
  w.bulk("redis");
  w.bulk("version");
  w.bulk(RESPQ_REDIS_VERSION);
  w.bulk("proto");
  w.integer(c.resp);
  w.bulk("id");
  w.integer(static_cast<long long>(c.id));
  w.bulk("mode");
  w.bulk("standalone");
  w.bulk("role");
  w.bulk("master");
  w.bulk("modules");
  w.array(0);
}

void cmd_reset(server& s, client& c, args_t) {
  c.in_multi = false;
  c.multi_dirty = false;
  c.multi_queue.clear();
  unwatch_all(s, c);
  s.unsubscribe_all(c, false);
  s.punsubscribe_all(c, false);
  s.sunsubscribe_all(c, false);
  if (c.monitor) s.remove_monitor(c);
  s.tracking_off(c);
  c.name.clear();
  c.resp = 2;
  c.db = 0;
  c.no_evict = false;
  c.reply_off = c.reply_skip_next = false;  // as Redis: a SKIP in force still silences +RESET
  if (!s.cfg().requirepass.empty()) {
    c.authenticated = false;
    c.parser.set_limits(s.parser_limits(false));
  }
  s.reply(c).simple("RESET");
}

namespace {

void client_list(server& s, client& c, args_t a, std::size_t from) {
  std::vector<std::uint64_t> ids;
  std::string type;
  for (std::size_t i = from; i < a.size(); ++i) {
    std::string opt = to_lower(a[i]);
    if (opt == "type" && i + 1 < a.size()) {
      type = to_lower(a[++i]);
      if (type != "normal" && type != "master" && type != "replica" && type != "pubsub" && type != "slave") {
        s.add_error(c, "ERR Unknown client type '" + std::string(a[i]) + "'");
        return;
      }
    } else if (opt == "id" && i + 1 < a.size()) {
      for (++i; i < a.size(); ++i) {
        long long id;
        if (!string2ll(a[i], id)) {
          s.add_error(c, "ERR Invalid client ID");
          return;
        }
        ids.push_back(static_cast<std::uint64_t>(id));
      }
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  std::vector<const client*> all;
  for (const auto& [id, cl] : s.clients()) all.push_back(cl.get());
  std::sort(all.begin(), all.end(), [](const client* x, const client* y) { return x->id < y->id; });
  std::string out;
  for (const client* cl : all) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), cl->id) == ids.end()) continue;
    if (type == "pubsub" && !cl->in_pubsub()) continue;
    if (type == "normal" && cl->in_pubsub()) continue;
    if (type == "master" || type == "replica" || type == "slave") continue;
    out += client_info_line(*cl);
    out += '\n';
  }
  s.reply(c).verbatim(out);
}

void client_kill(server& s, client& c, args_t a) {
  if (a.size() == 3) {
    // Old form: CLIENT KILL ip:port.
    for (const auto& [id, cl] : s.clients()) {
      if (cl->addr == a[2]) {
        if (cl.get() == &c) c.close_after_reply = true;
        else s.kill_client(*cl);
        s.reply(c).ok();
        return;
      }
    }
    s.add_error(c, "ERR No such client");
    return;
  }
  std::vector<std::uint64_t> ids;
  std::string addr, laddr, type, user;
  bool skipme = true;
  for (std::size_t i = 2; i < a.size(); i += 2) {
    if (i + 1 >= a.size()) {
      s.add_error(c, syntax_error);
      return;
    }
    std::string opt = to_lower(a[i]);
    std::string_view v = a[i + 1];
    if (opt == "id") {
      long long id;
      if (!string2ll(v, id) || id <= 0) {
        s.add_error(c, "ERR client-id should be greater than 0");
        return;
      }
      ids.push_back(static_cast<std::uint64_t>(id));
    } else if (opt == "addr") {
      addr = v;
    } else if (opt == "laddr") {
      laddr = v;
    } else if (opt == "type") {
      type = to_lower(v);
      if (type != "normal" && type != "master" && type != "replica" && type != "pubsub" && type != "slave") {
        s.add_error(c, "ERR Unknown client type '" + std::string(v) + "'");
        return;
      }
    } else if (opt == "user") {
      // One user exists: "default".
      if (v != "default") {
        s.add_error(c, "ERR No such user '" + std::string(v) + "'");
        return;
      }
      user = v;
    } else if (opt == "skipme") {
      std::string b = to_lower(v);
      if (b == "yes") skipme = true;
      else if (b == "no") skipme = false;
      else {
        s.add_error(c, syntax_error);
        return;
      }
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  std::vector<client*> victims;
  for (const auto& [id, cl] : s.clients()) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), cl->id) == ids.end()) continue;
    if (!addr.empty() && cl->addr != addr) continue;
    if (!laddr.empty() && cl->laddr != laddr) continue;
    if (!user.empty() && user != "default") continue;
    if (type == "pubsub" && !cl->in_pubsub()) continue;
    if (type == "normal" && cl->in_pubsub()) continue;
    if (type == "master" || type == "replica" || type == "slave") continue;
    if (skipme && cl.get() == &c) continue;
    victims.push_back(cl.get());
  }
  for (client* v : victims) {
    if (v == &c) c.close_after_reply = true;
    else s.kill_client(*v);
  }
  s.reply(c).integer(static_cast<long long>(victims.size()));
}

}  // namespace

void cmd_client(server& s, client& c, args_t a) {
  std::string sub = to_lower(a[1]);
  auto arity_error = [&] {
    s.add_error(c, "ERR wrong number of arguments for 'client|" + sub + "' command");
  };
  if (sub == "id") {
    if (a.size() != 2) return arity_error();
    s.reply(c).integer(static_cast<long long>(c.id));
  } else if (sub == "setname") {
    if (a.size() != 3) return arity_error();
    if (!valid_client_name(a[2])) {
      s.add_error(c, "ERR Client names cannot contain spaces, newlines or special characters.");
      return;
    }
    c.name = std::string(a[2]);
    s.reply(c).ok();
  } else if (sub == "getname") {
    if (a.size() != 2) return arity_error();
    if (c.name.empty()) s.reply(c).null();
    else s.reply(c).bulk(c.name);
  } else if (sub == "list") {
    client_list(s, c, a, 2);
  } else if (sub == "info") {
    if (a.size() != 2) return arity_error();
    s.reply(c).verbatim(client_info_line(c) + "\n");
  } else if (sub == "kill") {
    if (a.size() < 3) return arity_error();
    client_kill(s, c, a);
  } else if (sub == "no-evict") {
    if (a.size() != 3) return arity_error();
    std::string v = to_lower(a[2]);
    if (v == "on") c.no_evict = true;
    else if (v == "off") c.no_evict = false;
    else {
      s.add_error(c, syntax_error);
      return;
    }
    s.reply(c).ok();
  } else if (sub == "reply") {
    if (a.size() != 3) return arity_error();
    std::string v = to_lower(a[2]);
    if (v == "on") {
      c.reply_off = c.reply_skip = false;
      s.reply(c).ok();
    } else if (v == "off") {
      c.reply_off = true;
    } else if (v == "skip") {
      if (!c.reply_off) c.reply_skip_next = true;
    } else {
      s.add_error(c, syntax_error);
    }
  } else if (sub == "setinfo") {
    if (a.size() != 4) return arity_error();
    std::string attr = to_lower(a[2]);
    if (attr == "lib-name") c.lib_name = std::string(a[3]);
    else if (attr == "lib-ver") c.lib_ver = std::string(a[3]);
    else {
      s.add_error(c, "ERR Unrecognized option '" + std::string(a[2]) + "'");
      return;
    }
    s.reply(c).ok();
  } else if (sub == "unblock") {
    if (a.size() > 4) return subcommand_syntax_error(s, c, a);  // arity -3: Redis's handler says so
    long long id;
    if (!string2ll(a[2], id)) {
      s.add_error(c, not_integer_error);
      return;
    }
    bool as_error = false;
    if (a.size() == 4) {
      std::string mode = to_lower(a[3]);
      if (mode == "error") as_error = true;
      else if (mode != "timeout") {
        s.add_error(c, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        return;
      }
    }
    client* target = s.find_client(static_cast<std::uint64_t>(id));
    // A command CLIENT PAUSE holds is not unblocked: it runs when the pause ends (redis-server
    // 7.0.15 exits on it, in replyToBlockedClientTimedOut).
    if (!target || !target->blocked || target->blocked->what == blocked_state::kind::postpone) {
      s.reply(c).integer(0);
      return;
    }
    // Redis 7.0 counts the blocked command as failed however CLIENT UNBLOCK ends it (its
    // own timeout does not).
    if (const command_def* d = s.lookup(target->blocked->command)) ++d->stats.failed;
    if (as_error) {
      s.add_error(*target, "UNBLOCKED client unblocked via CLIENT UNBLOCK");
      s.unblock_client(*target, false);
    } else {
      s.unblock_client(*target, true);
    }
    s.reply(c).integer(1);
  } else if (sub == "pause") {
    // CLIENT PAUSE timeout [WRITE|ALL] (milliseconds; ALL by default), as Redis 7.0.
    if (a.size() > 4) return subcommand_syntax_error(s, c, a);  // arity -3: Redis's handler says so
    bool all = true;
    if (a.size() == 4) {
      const std::string mode = to_lower(a[3]);
      if (mode == "write") all = false;
      else if (mode != "all") {
        s.add_error(c, "ERR CLIENT PAUSE mode must be WRITE or ALL");
        return;
      }
    }
    long long ms;
    if (!parse_timeout_ms(s, c, a[2], ms)) return;
    // Redis adds the time to the timeout unchecked: 0, and a timeout that passes the
    // range of a millisecond clock, end in the past. Such an end pauses nothing, but makes
    // a pause already on the stricter kind (the later end wins, so its own stays).
    const long long now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count();
    if (ms > 0 && ms <= LLONG_MAX - now_ms) {
      // Past what the steady clock can hold (about 292 years from its epoch): as good as forever.
      const long long room = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 clock::time_point::max() - clock::now()).count() - 1000;
      s.pause_clients(all, ms < room ? clock::now() + std::chrono::milliseconds(ms)
                                     : clock::now() + std::chrono::milliseconds(room));
    } else if (s.pause_on()) {
      s.pause_clients(all, clock::now());
    }
    s.reply(c).simple("OK");
  } else if (sub == "unpause") {
    s.unpause_clients();
    s.reply(c).simple("OK");
  } else if (sub == "tracking") {
    client_tracking(s, c, a);
  } else if (sub == "caching") {
    if (a.size() != 3) return arity_error();
    client_caching(s, c, a);
  } else if (sub == "getredir") {
    if (a.size() != 2) return arity_error();
    client_getredir(s, c);
  } else if (sub == "trackinginfo") {
    if (a.size() != 2) return arity_error();
    client_trackinginfo(s, c);
  } else if (sub == "help") {
    static const char* lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)", "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME", "    Return the name of the current connection.",
        "ID", "    Return the ID of the current connection.",
        "INFO", "    Return information about the current client connection.",
        "KILL <ip:port>", "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Kill connections by type.",
        "    * USER <username>", "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)", "      Skip killing current connection (default: yes).",
        "LIST [options ...]", "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Return clients of specified type.",
        "UNPAUSE", "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]", "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
        "SETNAME <name>", "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]", "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO", "    Report tracking status for the current connection.",
        "NO-EVICT (ON|OFF)", "    Protect current client connection from eviction.",
        "HELP", "    Print this help."};
    help_reply(s, c, lines);
  } else {
    s.add_error(c, "ERR unknown subcommand '" + std::string(a[1].substr(0, 128)) + "'. Try CLIENT HELP.");
  }
}

}  // namespace respq::core
