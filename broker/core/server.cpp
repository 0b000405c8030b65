// server: client lifecycle, input processing and command dispatch. See server.hpp.
#include "broker/core/server.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <random>
#include <strings.h>

#include "broker/core/allocator.hpp"
#include "broker/core/command_docs.hpp"
#include "broker/core/commands.hpp"
#include "broker/core/encoding_limits.hpp"
#include "broker/core/glob.hpp"
#include "broker/core/log.hpp"
#include "broker/core/script_engine.hpp"
#include "broker/core/task_manager.hpp"

namespace respq::core {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

bool parse_timeout_ms(server& s, client& c, std::string_view arg, long long& ms) {
  if (!string2ll(arg, ms)) {
    s.add_error(c, "ERR timeout is not an integer or out of range");
    return false;
  }
  if (ms < 0) {
    s.add_error(c, "ERR timeout is negative");
    return false;
  }
  return true;
}

bool parse_timeout(server& s, client& c, std::string_view arg, clock::time_point& deadline) {
  // Redis: getTimeoutFromObjectOrReply with UNIT_SECONDS parses a long double.
  double secs;
  std::string tmp(arg);
  char* end = nullptr;
  errno = 0;
  if (tmp.empty() || std::isspace(static_cast<unsigned char>(tmp[0]))) {
    s.add_error(c, "ERR timeout is not a float or out of range");
    return false;
  }
  secs = std::strtod(tmp.c_str(), &end);
  if (end != tmp.c_str() + tmp.size() || errno == ERANGE || std::isnan(secs)) {
    s.add_error(c, "ERR timeout is not a float or out of range");
    return false;
  }
  // Redis 7.0 converts to milliseconds in a long long: a value past its range wraps
  // negative, so it reports "negative"; one that fits but overflows when the current time
  // is added reports "out of range".
  const double ms = secs * 1000.0;
  if (secs < 0 || std::isinf(secs) || ms >= 9.223372036854775807e18) {
    s.add_error(c, "ERR timeout is negative");
    return false;
  }
  const double now_ms = static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  if (ms + now_ms >= 9.223372036854775807e18) {
    s.add_error(c, "ERR timeout is out of range");
    return false;
  }
  if (secs > 9e9) {
    // Past what the nanosecond clock can hold (about 292 years): as good as forever.
    deadline = clock::time_point::max();
    return true;
  }
  if (secs == 0) {
    deadline = clock::time_point::max();
    return true;
  }
  deadline = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(secs));
  return true;
}

server::server(config cfg) : cfg_(std::move(cfg)) {
  build_command_table();
  {
    std::random_device rd;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 40; ++i) run_id_ += hex[rd() % 16];
    for (int i = 0; i < 40; ++i) replid_ += hex[rd() % 16];
  }
  refresh_timing();
  apply_encoding_limits(cfg_);
  internal_ = std::make_unique<client>();
  internal_->id = 0;
  internal_->is_fake = true;
  internal_->authenticated = true;
  internal_->name = "respq-internal";
  tasks_ = std::make_unique<task_manager>(*this);
  const std::size_t n = static_cast<std::size_t>(std::max(1, cfg_.databases));
  for (std::size_t i = 0; i < n; ++i) {
    auto ks = std::make_unique<keyspace>();
    ks->index = static_cast<int>(i);
    keyspace* raw = ks.get();
    // The keyspace's number, not its slot at creation: SWAPDB moves keyspaces.
    ks->on_expire = [this, raw](const std::string& key) {
      db_scope in(*this, raw->index);
      expire_key(key);
    };
    ks->on_new = [this, raw](const std::string& key) { notify(notify_new, "new", key, raw->index); };
    ks->on_miss = [this, raw](std::string_view key) { notify(notify_key_miss, "keymiss", key, raw->index); };
    ks->report_misses = &report_misses_;
    ks->count_reads = &count_reads_;
    ks->read_hits = &stats_.keyspace_hits;
    ks->read_misses = &stats_.keyspace_misses;
    ks->stream_watchers = &group_waiters_;
    ks->on_stream_removed = [this](int db_index, const std::string& key) { stream_removed(db_index, key); };
    dbs_.push_back(std::move(ks));
  }
  waiters_.resize(n);
  ready_set_.resize(n);
  watchers_.resize(n);
}

server::~server() = default;

script_engine& server::scripts() {
  if (!scripts_) scripts_ = std::make_unique<script_engine>(*this);
  return *scripts_;
}

bool server::script_busy() const { return scripts_ && scripts_->timed_out(); }

const client* server::script_caller() const { return scripts_ ? scripts_->caller() : nullptr; }

client* server::accept_client(std::string addr, std::string laddr, int fd, std::string& refusal) {
  ++stats_.connections_received;
  if (clients_.size() >= cfg_.maxclients) {
    ++stats_.rejected_connections;
    refusal = "-ERR max number of clients reached\r\n";
    return nullptr;
  }
  auto c = std::make_unique<client>();
  c->id = next_client_id_++;
  c->addr = std::move(addr);
  c->laddr = std::move(laddr);
  c->fd = fd;
  c->authenticated = cfg_.requirepass.empty();
  c->parser.set_limits(parser_limits(c->authenticated));
  client* raw = c.get();
  clients_.emplace(raw->id, std::move(c));
  return raw;
}

client* server::find_client(std::uint64_t id) {
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second.get();
}

void server::queue_write(client& c) {
  if (c.is_fake || c.queued_for_write) return;
  c.queued_for_write = true;
  pending_writes_.push_back(&c);
}

void server::add_error(client& c, std::string_view msg, bool counted) {
  if (counted) {
    ++stats_.total_errors;
    ++stats_.error_replies[std::string(msg.substr(0, msg.find(' ')))];
  } else {
    uncounted_failure_ = true;
  }
  if (msg.find_first_of("\r\n") == std::string_view::npos) {
    reply(c).error(msg);
    return;
  }
  // As Redis does: a line break inside an error would end the reply early.
  std::string clean(msg);
  for (char& ch : clean)
    if (ch == '\r' || ch == '\n') ch = ' ';
  reply(c).error(clean);
}

void server::count_script_rejection(const command_def* cmd, std::string_view msg) {
  ++stats_.total_errors;
  ++stats_.error_replies[std::string(msg.substr(0, msg.find(' ')))];
  if (cmd) ++cmd->stats.rejected;
  errors_mark_ = stats_.total_errors;
}

void server::on_input(client& c) {
  c.last_interaction = clock::now();
  const bool outer = !in_input_;
  in_input_ = true;
  process_input(c);
  if (outer) {
    process_unblocked();
    in_input_ = false;
  }
}

// Parses and runs every complete command in c.in. Stops when the client blocks (its
// pipeline waits, as in Redis), must close, or the buffer holds no complete command.
// After each request, empty ones included, as Redis's resetClient: CLIENT REPLY SKIP
// silences exactly the request after it.
void server::end_request(client& c) {
  c.request_open = false;
  // CLIENT CACHING applies to the next command, or transaction (Redis's resetClient).
  if (c.tracking.caching && !c.tracking.caching_kept && !c.in_multi) c.tracking.caching = false;
  c.tracking.caching_kept = false;
  c.reply_skip = c.reply_skip_next;
  c.reply_skip_next = false;
}

void server::process_input(client& c) {
  const std::size_t unauth_buffer_limit = 1024 * 1024;
  // Checked here too: a blocked client's pipeline is not parsed, but it must not grow
  // past the query buffer limit while it waits.
  if (c.blocked && c.in.size() > (c.authenticated ? cfg_.client_query_buffer_limit : unauth_buffer_limit)) {
    log_warning("Closing client that reached max query buffer length: id=" + std::to_string(c.id) + " addr=" +
                c.addr + " qbuf=" + std::to_string(c.in.size()));
    drop_waits(c);
    c.close_asap = true;
    queue_write(c);
    return;
  }
  // A request that blocked ends when it is answered: the next one starts after it.
  if (c.request_open && !c.blocked) end_request(c);
  while (!c.in.empty() && !c.blocked && !c.close_after_reply && !c.close_asap) {
    auto st = c.parser.parse(c.in.data(), c.in.size());
    if (st == resp::request_parser::status::incomplete) {
      const std::size_t limit = c.authenticated ? cfg_.client_query_buffer_limit : unauth_buffer_limit;
      if (c.in.size() > limit) {
        log_warning("Closing client that reached max query buffer length: id=" + std::to_string(c.id) + " addr=" +
                    c.addr + " qbuf=" + std::to_string(c.in.size()));
        c.close_asap = true;
        queue_write(c);
      }
      break;
    }
    if (st == resp::request_parser::status::error) {
      std::string msg = "ERR Protocol error: ";
      msg += c.parser.error();
      add_error(c, msg);
      log_verbose("Protocol error (" + std::string(c.parser.error()) + ") from client: id=" + std::to_string(c.id) +
                  " addr=" + c.addr);
      c.close_after_reply = true;
      c.in.clear();
      queue_write(c);
      break;
    }
    std::size_t consumed = c.parser.consumed();
    auto args = c.parser.args();
    stats_.net_input_bytes += consumed;
    c.request_open = true;
    if (!args.empty()) dispatch(c, args);
    c.in.consume(consumed);
    check_output_limit(c);
    if (!c.blocked) end_request(c);
  }
  if (c.in.empty()) c.in.shrink_if_idle(64 * 1024);
  if (!c.out.empty() || c.close_after_reply || c.close_asap) queue_write(c);
}

namespace {

bool is_cross_protocol(std::string_view first) {
  if (first.size() == 4 && (first[0] | 0x20) == 'p') return strncasecmp(first.data(), "post", 4) == 0;
  if (first.size() == 5 && (first[0] | 0x20) == 'h') return strncasecmp(first.data(), "host:", 5) == 0;
  return false;
}

// Redis formats these with %s: a NUL byte ends the text.
std::string_view c_string(std::string_view s) { return s.substr(0, s.find('\0')); }

std::string unknown_command_error(args_t args) {
  // Redis: "unknown command '%.128s', with args beginning with: " + "'%.*s' " per
  // argument while the argument list stays under 128 characters.
  std::string name(c_string(args[0]).substr(0, 128));
  std::string list;
  for (std::size_t i = 1; i < args.size() && list.size() < 128; ++i) {
    std::size_t room = 128 - list.size();
    list += "'";
    list += c_string(args[i]).substr(0, room);
    list += "' ";
  }
  return "ERR unknown command '" + name + "', with args beginning with: " + list;
}

}  // namespace

resp::parser_limits server::parser_limits(bool authenticated) const {
  resp::parser_limits l;
  l.max_bulk_len = cfg_.proto_max_bulk_len;
  return authenticated ? l : resp::parser_limits::unauthenticated(l);
}

const command_def* server::lookup(std::string_view name) const {
  // Buckets by length and first letter: a command is found with one or two short
  // case-insensitive compares, no lower-casing copy and no hashing.
  if (name.empty() || name.size() >= lookup_max_len) return nullptr;
  const unsigned first = static_cast<unsigned char>(name[0]) | 0x20u;
  if (first >= 128) return nullptr;
  const auto& bucket = lookup_buckets_[name.size()][first];
  for (const command_def* d : bucket)
    if (strncasecmp(d->name.data(), name.data(), name.size()) == 0) return d;
  return nullptr;
}

const command_def* find_subcommand(const command_def& cmd, std::string_view name) {
  for (const auto& sc : cmd.subcommands)
    if (name.size() == sc.name.size() && strncasecmp(name.data(), sc.name.data(), name.size()) == 0) return &sc;
  return nullptr;
}

const command_def* server::lookup_flags_of(args_t args) const {
  const command_def* d = args.empty() ? nullptr : lookup(args[0]);
  if (d && !d->subcommands.empty() && args.size() >= 2)
    if (const command_def* sub = find_subcommand(*d, args[1])) return sub;
  return d;
}

void server::dispatch(client& c, args_t args) {
  // CLIENT CACHING lasts past a CLIENT request only (end_request): one whose subcommand is
  // known, as Redis keeps it when the command found was CLIENT.
  if (c.tracking.on) c.tracking.caching_kept = iequals(args[0], "client") && (args.size() < 2 || client_subcommand(args[1]));
  if (is_cross_protocol(args[0])) {
    static clock::time_point last_warning{};
    if (clock::now() - last_warning > std::chrono::seconds(60)) {
      last_warning = clock::now();
      log_warning("Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to "
                  "respq. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise "
                  "your respq instance. Connection aborted.");
    }
    c.close_asap = true;
    queue_write(c);
    return;
  }
  const command_def* cmd = lookup(args[0]);
  const command_def* rejected_as = cmd;  // the (sub)command a rejection is counted for
  auto reject = [&](std::string_view msg) {
    if (rejected_as) ++rejected_as->stats.rejected;
    if (cmd && cmd->fn == cmd_exec) {
      // Redis: a rejected EXEC ends any transaction, naming why (in or out of MULTI).
      c.in_multi = false;
      c.multi_dirty = false;
      c.multi_queue.clear();
      unwatch_all(*this, c);
      std::string_view why = msg.substr(0, 4) == "ERR " ? msg.substr(4) : msg;
      add_error(c, "EXECABORT Transaction discarded because of: " + std::string(why));
      return;
    }
    if (c.in_multi) c.multi_dirty = true;
    add_error(c, msg);
  };
  if (!cmd) {
    reject(unknown_command_error(args));
    return;
  }
  auto arity_ok = [&](const command_def& d) {
    return !((d.arity > 0 && static_cast<int>(args.size()) != d.arity) || static_cast<int>(args.size()) < -d.arity);
  };
  if (!arity_ok(*cmd)) {
    reject("ERR wrong number of arguments for '" + std::string(cmd->name) + "' command");
    return;
  }
  // Containers (CLIENT, CONFIG, COMMAND, PUBSUB): the subcommand has its own arity and
  // name, as in Redis 7 ("client|setname").
  std::string full_name(cmd->name);
  if (!cmd->subcommands.empty() && args.size() >= 2) {
    const command_def* sub = find_subcommand(*cmd, args[1]);
    if (!sub) {
      rejected_as = nullptr;  // as in Redis: no command to count it for
      reject("ERR unknown subcommand '" + std::string(c_string(args[1]).substr(0, 128)) + "'. Try " +
             to_upper(cmd->name) + " HELP.");
      return;
    }
    full_name += '|';
    full_name += sub->name;
    rejected_as = sub;
    if (!arity_ok(*sub)) {
      reject("ERR wrong number of arguments for '" + full_name + "' command");
      return;
    }
  }
  if (!c.authenticated && !(cmd->flags & flag_no_auth)) {
    reject("NOAUTH Authentication required.");
    return;
  }
  if (c.in_pubsub()) {
    if (c.resp == 2 && !(cmd->flags & flag_sub_ok)) {
      reject("ERR Can't execute '" + full_name +
             "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
      return;
    }
  }
  // A script past busy-reply-threshold: only what Redis allows while busy (checked before
  // MULTI queues anything, so a transaction sent meanwhile fails at EXEC as a whole).
  if (script_busy() && !((rejected_as ? rejected_as->flags : cmd->flags) & flag_allow_busy)) {
    reject(scripts_->busy_error());
    return;
  }
  if (c.in_multi && (cmd->flags & flag_deny_multi)) {
    reject("ERR Command not allowed inside a transaction");
    return;
  }
  // maxmemory (noeviction): Redis 7.0's processCommand. Inside MULTI every command but
  // EXEC DISCARD QUIT RESET is refused, as queueing grows memory too; EXEC only when it
  // would run a denyoom command.
  if (cfg_.maxmemory && !loading_) {
    const std::uint32_t flags = rejected_as ? rejected_as->flags : cmd->flags;
    bool denyoom = (flags & flag_denyoom) || script_denies_oom(*cmd, args);
    if (cmd->fn == cmd_exec) {
      for (const auto& q : c.multi_queue) {
        const std::string_view head[2] = {q[0], q.size() > 1 ? std::string_view(q[1]) : std::string_view()};
        const args_t qargs(head, q.size() > 1 ? 2 : 1);
        const command_def* d = lookup_flags_of(qargs);
        if (!d) continue;
        if ((d->flags & flag_denyoom) || script_denies_oom(*d, qargs)) denyoom = true;
      }
    } else if (c.in_multi && cmd->fn != cmd_discard && cmd->fn != cmd_quit && cmd->fn != cmd_reset) {
      denyoom = true;
    }
    if (denyoom) {
      if (over_maxmemory()) {
        reject("OOM command not allowed when used memory > 'maxmemory'.");
        return;
      }
      account_write(args);
    }
  }
  // MISCONF (the AOF can't be written): Redis 7.0's processCommand refuses a write command
  // whether it runs now or is being queued in MULTI (the transaction then fails at EXEC),
  // and an EXEC whose queue holds one (the whole transaction is discarded).
  if (!loading_) {
    bool writes = (rejected_as ? rejected_as->flags : cmd->flags) & flag_write;
    if (cmd->fn == cmd_exec && c.in_multi) {
      for (const auto& q : c.multi_queue) {
        const std::string_view head[2] = {q[0], q.size() > 1 ? std::string_view(q[1]) : std::string_view()};
        const command_def* d = lookup_flags_of(args_t(head, q.size() > 1 ? 2 : 1));
        if (d && (d->flags & flag_write)) writes = true;
      }
    }
    if (writes) {
      if (std::string err = write_refusal(); !err.empty()) {
        reject(err);
        return;
      }
    }
  }
  // CLIENT PAUSE: the command waits, whole, until the pause ends (Redis 7.0's
  // BLOCKED_POSTPONE; its checks run again then). Clients inside respq (AOF loading,
  // scripts) are never held. The pause ends only from the timer (on_timer), never here: a
  // command that comes after its end but before the timer ran waits behind the held ones,
  // in order, as in Redis.
  if (pause_ != pause_kind::off && !c.is_fake && held_by_pause(c, *cmd, rejected_as ? *rejected_as : *cmd, args)) {
    auto b = std::make_unique<blocked_state>();
    b->what = blocked_state::kind::postpone;
    b->command = full_name;
    b->postponed.assign(args.begin(), args.end());
    note_last_command(c, *cmd, args);
    block_client(c, std::move(b));
    postponed_.push_back(&c);
    return;
  }
  // Before a command runs, as Redis's processCommand: the tracking table back under its limit.
  if (tracking_clients_) tracking_limit();
  if (c.in_multi && !(cmd->flags & flag_no_multi)) {
    if (!c.multi_dirty && !c.watch_dirty && may_replicate(rejected_as ? *rejected_as : *cmd, args))
      c.multi_may_replicate = true;
    std::vector<std::string> q;
    q.reserve(args.size());
    for (auto a : args) q.emplace_back(a);
    c.multi_queue.push_back(std::move(q));
    note_last_command(c, *cmd, args);  // as Redis: CLIENT LIST shows cmd=set for a queued SET
    reply(c).simple("QUEUED");
    return;
  }
  call(c, *cmd, args);
  // While a script runs (past busy-reply-threshold), nothing is served or dispatched
  // between its commands: that waits for the script's own after_command().
  if (!script_busy()) after_command();
}

bool server::client_subcommand(std::string_view name) const {
  const command_def* d = lookup("client");
  return d && find_subcommand(*d, name);
}

bool server::is_script_command(const command_def& d) {
  return d.fn == cmd_eval || d.fn == cmd_evalsha || d.fn == cmd_eval_ro || d.fn == cmd_evalsha_ro ||
         d.fn == cmd_fcall || d.fn == cmd_fcall_ro;
}

// Redis 7.0's flags that CLIENT PAUSE WRITE holds: write or may-replicate (PUBLISH,
// PFCOUNT, EVAL, EVALSHA, FCALL), a script's own declaration (shebang line) or a
// function's flags taking over: what does not declare no-writes may write.
bool server::may_replicate(const command_def& d, args_t args) {
  const bool eval = d.fn == cmd_eval || d.fn == cmd_eval_ro;
  if (eval || d.fn == cmd_evalsha || d.fn == cmd_evalsha_ro)
    if (args.size() >= 2)
      if (const auto writes = scripts().declared_writes(args[1], !eval)) return *writes;
  if ((d.fn == cmd_fcall || d.fn == cmd_fcall_ro) && args.size() >= 2)
    if (const auto flags = scripts().function_flags(args[1])) return !(*flags & fn_no_writes);
  return d.flags & (flag_write | flag_may_replicate);
}

// Redis 7.0's processCommand: with CLIENT PAUSE ALL every command waits; with WRITE, those
// that may write (may_replicate), and an EXEC whose transaction queued one while it could
// still run (multi_may_replicate).
bool server::held_by_pause(const client& c, const command_def& cmd, const command_def& effective, args_t args) {
  if (pause_ == pause_kind::all) return true;
  if (cmd.fn == cmd_exec) return c.in_multi && c.multi_may_replicate;
  return may_replicate(effective, args);
}

void server::pause_clients(bool all, clock::time_point end) {
  const pause_kind kind = all ? pause_kind::all : pause_kind::write;
  if (pause_ == pause_kind::off) {
    pause_ = kind;
    pause_end_ = end;
  } else {
    pause_ = std::max(pause_, kind);
    pause_end_ = std::max(pause_end_, end);
  }
  for (auto& d : dbs_) d->defer_expiry(true);
}

void server::unpause_clients() {
  if (pause_ == pause_kind::off) return;
  pause_ = pause_kind::off;
  for (auto& d : dbs_) d->defer_expiry(false);
  // Each held client goes on in the order it came: its command first (run_released), then
  // the rest of its pipeline, once the running command is done (process_unblocked).
  std::vector<client*> held;
  held.swap(postponed_);
  for (client* c : held) {
    if (c->json_held) {  // resumed by process_unblocked, in this order
      if (!c->unblocked_pending) {
        c->unblocked_pending = true;
        unblocked_.push_back(c);
      }
      continue;
    }
    c->released = std::move(c->blocked->postponed);
    c->blocked.reset();
    --blocked_count_;
    if (!c->unblocked_pending) {
      c->unblocked_pending = true;
      unblocked_.push_back(c);
    }
  }
  tasks_->clients_unpaused();
}

void server::hold_json(client& c) {
  if (c.json_held) return;
  c.json_held = true;
  postponed_.push_back(&c);
}

bool server::clients_paused() {
  if (pause_ != pause_kind::off && clock::now() > pause_end_) unpause_clients();
  return pause_ != pause_kind::off;
}

void server::run_released(client& c) {
  const std::vector<std::string> held = std::move(c.released);
  c.released.clear();
  const std::vector<std::string_view> args(held.begin(), held.end());
  c.last_interaction = clock::now();
  dispatch(c, args);
  check_output_limit(c);
  if (!c.blocked) end_request(c);
  queue_write(c);
}

// EVAL and EVALSHA (and their _RO forms) of a script whose shebang line declares neither
// allow-oom nor no-writes are denyoom, as the flags Redis 7.0 derives from the script.
bool server::script_denies_oom(const command_def& cmd, args_t args) {
  // FCALL / FCALL_RO: as Redis's scriptFlagsToCmdFlags, a function that declares neither.
  if ((cmd.fn == cmd_fcall || cmd.fn == cmd_fcall_ro) && args.size() >= 2)
    if (const auto flags = scripts().function_flags(args[1])) return !(*flags & (fn_no_writes | fn_allow_oom));
  const bool eval = cmd.fn == cmd_eval || cmd.fn == cmd_eval_ro;
  if (!eval && cmd.fn != cmd_evalsha && cmd.fn != cmd_evalsha_ro) return false;
  return args.size() >= 2 && scripts().denies_oom(args[1], !eval);
}

const command_def* server::note_last_command(client& c, const command_def& cmd, args_t args) {
  c.last_command = cmd.name;
  if (!cmd.subcommands.empty() && args.size() >= 2)
    if (const command_def* sub = find_subcommand(cmd, args[1])) {
      (c.last_command += '|') += sub->name;
      return sub;
    }
  return &cmd;
}

void server::call(client& c, const command_def& cmd, args_t args) {
  // The client whose command this is: a script's commands and EXEC's run under it.
  // A script's commands run as a client inside respq: the command of a client of its own
  // (EVAL's) stays the one read for them.
  const acting_for acting(*this, c);
  if (!c.is_fake) {
    caller_cmd_ = &cmd;
    caller_args_ = args;
  }
  const std::uint64_t dirty_before = dirty_;
  // The command runs in the client's database (SELECT inside EXEC or an AOF changes it
  // for the commands after it).
  db_scope in_db(*this, c.db);
  effects_logged_ = false;
  keys_signalled_ = false;
  // For a container, its subcommand: what INFO commandstats counts and MONITOR judges.
  const command_def* effective = note_last_command(c, cmd, args);
  // A command failed if it replied an error since the last command ended: EXEC does
  // not count as failed for an error of one of its commands (Redis does the same).
  errors_mark_ = stats_.total_errors;
  uncounted_failure_ = false;
  const std::uint64_t started = cycle_clock::now();
  // One time for the whole command (and EXEC). Without deadlines nothing reads it, and the
  // cron keeps it within 100 ms anyway: the hot path skips the clock read.
  if (!c.in_exec && db().volatile_keys()) db().update_clock();
  const int db_index = cur_db_;
  // A container's subcommand (XGROUP CREATE) has its own flags and key positions.
  const command_def& keyed = effective->first_key > 0 ? *effective : cmd;
  const bool writes = (cmd.flags | effective->flags) & flag_write;
  if (writes && key_writers_)
    for_each_key(keyed, args, [&](std::string_view k) { modules_before_key_write(db_index, k, false); });
  // "keymiss" events: a read command's lookups of its keys (Redis's lookupKeyRead) report
  // a missing key; write commands look up for writing, OBJECT, MEMORY USAGE and WATCH
  // never report, and neither do the lookups of commands without key arguments (INFO,
  // TASK GET, SCAN: see read_lookups for the exceptions).
  // keyspace_hits and keyspace_misses count the same lookups, OBJECT's too (Redis's
  // LOOKUP_NONOTIFY still counts; MEMORY USAGE looks in the table without a lookup).
  const bool misses_before = report_misses_, counting_before = count_reads_;
  count_reads_ = !writes && (keyed.first_key > 0 || ((cmd.flags | effective->flags) & flag_movablekeys));
  report_misses_ = count_reads_ && (cfg_.notify_keyspace_events & notify_key_miss) &&
                   !(effective->flags & flag_no_keymiss);
  cmd.fn(*this, c, args);
  // Client-side caching: a read-only command's keys are remembered for its tracking client;
  // for a script's commands, the keys the script declared, for the script's caller (Redis's
  // call()). The read-only script commands remember nothing themselves.
  if (tracking_clients_ && (effective->flags & flag_readonly) && cmd.fn != cmd_eval_ro && cmd.fn != cmd_evalsha_ro &&
      cmd.fn != cmd_fcall_ro) {
    if (!c.is_fake) {
      if (c.tracking.on && !c.tracking.bcast) tracking_remember(c, cmd, args);
    } else if (caller_cmd_ && current_client_ && current_client_->tracking.on && !current_client_->tracking.bcast) {
      tracking_remember(*current_client_, *caller_cmd_, caller_args_);
    }
  }
  report_misses_ = misses_before;
  count_reads_ = counting_before;
  ++stats_.commands_processed;
  if (!loading_) {  // as Redis: AOF replay is neither counted nor logged
    const std::uint64_t ended = cycle_clock::now();
    const std::uint64_t took = ended > started ? ended - started : 0;  // (a counter behind on another core)
    // respq's own calls are not counted; the commands a script runs are, each under its
    // own name.
    if (!c.is_fake || c.counts_stats) {
      effective->stats.cycles += took;
      ++effective->stats.calls;
      if (stats_.total_errors != errors_mark_ || uncounted_failure_) ++effective->stats.failed;
      // Whole microseconds, as Redis records them (duration * 1000 ns).
      if (cfg_.latency_tracking && !c.blocked)
        effective->stats.histogram.record(static_cast<std::uint64_t>(static_cast<double>(took) * usec_per_cycle_) * 1000);
    }
    // The slowlog and the latency monitor see client commands and a script's calls, not
    // respq's own (the task manager's internal client).
    if (took >= slow_cycles_ && &c != internal_.get()) [[unlikely]]
      note_slow_command(c, *effective, args, took);
  }
  errors_mark_ = stats_.total_errors;
  uncounted_failure_ = false;
  // Monitors see a command once it ran, as in Redis 7: EXEC after the commands it ran.
  // Redis hides administrative commands (CONFIG, DEBUG, CLIENT LIST, ...); for a container
  // the subcommand decides. Credentials are shown redacted (feed_monitors).
  if (!monitors_.empty() && !loading_ && !(effective->flags & (flag_admin | flag_skip_monitor))) feed_monitors(c, args);
  if (dirty_ != dirty_before) {
    if (!c.is_fake) turn_writers_.push_back(c.id);
    // The HTTP queues and their records live in database 0.
    if (writes && !loading_ && db_index == 0)
      for_each_key(keyed, args, [&](std::string_view k) { tasks_->on_key_written(k); });
    // Propagate the command as is unless the handler wrote its own effects, and tell
    // WATCHers about every key it names.
    // (EXEC is not a write command: its queued commands propagated themselves.)
    if (!effects_logged_ && writes)
      stream_.append(args, keyed.first_key > 0 ? static_cast<std::size_t>(keyed.first_key) : 0);
    // (A script's commands signalled their own keys: the keys it declares may be only read.)
    if (key_signals_wanted() && !keys_signalled_ && !is_script_command(cmd))
      for_each_key(keyed, args, [&](std::string_view k) { signal_modified_key(k); });
  }
  effects_logged_ = false;
  keys_signalled_ = false;
}

void server::refresh_timing() {
  // Before the cycle counter has run 5 ms against the steady clock its rate is not
  // measured (per_usec() would wait): a process-wide first measurement serves until then.
  static const double first_rate = [] {
    const cycle_clock probe;
    return probe.per_usec();
  }();
  double rate = first_rate;
  if (std::chrono::steady_clock::now() - cycle_clock_started_ > std::chrono::milliseconds(50))
    rate = cycle_clock_.per_usec();
  if (!(rate > 0)) rate = 1000;
  usec_per_cycle_ = 1.0 / rate;
  std::uint64_t t = ~0ull;
  auto lower = [&](double usec) {
    const double cycles = usec * rate;
    if (cycles < static_cast<double>(t)) t = static_cast<std::uint64_t>(cycles);
  };
  if (cfg_.slowlog_log_slower_than >= 0) lower(static_cast<double>(cfg_.slowlog_log_slower_than));
  if (cfg_.latency_monitor_threshold > 0) lower(static_cast<double>(cfg_.latency_monitor_threshold) * 1000.0);
  slow_cycles_ = t;
}

void server::note_slow_command(client& c, const command_def& cmd, args_t args, std::uint64_t took) {
  const auto us = static_cast<std::int64_t>(static_cast<double>(took) * usec_per_cycle_);
  // As Redis: the event for every command (EXEC too), by the command's fast flag.
  latency_sample((cmd.flags & flag_fast) ? "fast-command" : "command", us / 1000);
  if (cfg_.slowlog_log_slower_than < 0 || us < cfg_.slowlog_log_slower_than) return;
  if (cmd.fn == cmd_exec) return;  // EXEC is not logged (SKIP_SLOWLOG), the commands it ran are
  const bool script = c.is_fake;   // a script's redis.call(): Redis's Lua client has no address or name
  if (c.blocked) {
    // Logged when the client is answered (unblock_client), as Redis does.
    c.blocked->slowlog_args = slowlog::logged_args(args);
    c.blocked->slowlog_us = us;
    return;
  }
  slowlog_.push(args, us, script ? std::string("?:0") : c.addr, script ? std::string() : c.name,
                cfg_.slowlog_max_len);
}

void server::reset_stats() {
  stats_ = server_stats{};
  errors_mark_ = 0;
  for (auto& d : command_storage_) {
    d.stats = {};
    for (auto& sc : d.subcommands) sc.stats = {};
  }
}

void server::after_command() {
  if (!ready_keys_.empty()) serve_blocked_clients();
  tasks_->after_command();
  // The dispatch may have pushed too (a dead letter onto <queue>:dead).
  if (!ready_keys_.empty()) serve_blocked_clients();
}

void server::process_unblocked() {
  // Clients woken during this turn run the rest of their pipeline now, in wake order.
  while (!unblocked_.empty()) {
    std::vector<client*> batch;
    batch.swap(unblocked_);
    for (client* c : batch) {
      c->unblocked_pending = false;
      if (c->json_held) {
        c->json_held = false;
        if (!c->close_asap && resume_json) resume_json(*c);  // may free it: not touched after
        continue;
      }
      if (!c->released.empty() && !c->blocked && !c->close_asap) run_released(*c);
      if (!c->blocked && !c->close_asap) process_input(*c);
    }
  }
}

void server::on_disconnect(client& c) { free_client(c); }

void server::free_client(client& c) {
  if (c.blocked) {
    remove_from_waiters(c);
    c.blocked.reset();
  }
  unwatch_all(*this, c);
  unsubscribe_all(c, false);
  punsubscribe_all(c, false);
  sunsubscribe_all(c, false);
  if (c.monitor) remove_monitor(c);
  tracking_off(c);
  pending_writes_.erase(std::remove(pending_writes_.begin(), pending_writes_.end(), &c), pending_writes_.end());
  unblocked_.erase(std::remove(unblocked_.begin(), unblocked_.end(), &c), unblocked_.end());
  if (c.json_held) postponed_.erase(std::remove(postponed_.begin(), postponed_.end(), &c), postponed_.end());
  clients_.erase(c.id);
}

void server::before_write() {
  process_unblocked();
  if (!tracking_prefixes_.empty()) tracking_broadcast();
  tasks_->before_write();
  // Task outcomes and timers outside a command may have pushed onto lists clients wait on.
  if (!ready_keys_.empty()) {
    serve_blocked_clients();
    process_unblocked();
  }
  if (!stream_.flush()) {
    // The effects of this turn could not be persisted as promised: acknowledge none of
    // them. Their clients lose this turn's replies and their connections.
    for (std::uint64_t id : turn_writers_) {
      client* c = find_client(id);
      if (!c) continue;
      c->out.clear();
      c->out_sent = 0;
      c->close_asap = true;
      queue_write(*c);
    }
  }
  turn_writers_.clear();
}

std::vector<std::string_view> server::command_keys(const command_def& cmd, args_t args) const {
  std::vector<std::string_view> keys;
  // A container's subcommand names its own keys (XGROUP CREATE key ...).
  if (!cmd.subcommands.empty() && args.size() >= 2)
    if (const command_def* sub = find_subcommand(cmd, args[1]); sub && sub->first_key > 0)
      return command_keys(*sub, args);
  if (cmd.flags & flag_movablekeys) {
    // LMPOP/ZMPOP/ZUNION/ZINTER/ZDIFF/ZINTERCARD/SINTERCARD numkeys key...; BLMPOP/BZMPOP
    // timeout numkeys key...; EVAL script numkeys key...; Z*STORE destination numkeys key...
    const std::string_view name = cmd.name;
    std::size_t at = 1;
    if (name == "blmpop" || name == "bzmpop" || name.rfind("eval", 0) == 0 || name.rfind("fcall", 0) == 0) {
      at = 2;
    } else if (name == "zunionstore" || name == "zinterstore" || name == "zdiffstore") {
      at = 2;
      if (args.size() > 1) keys.push_back(args[1]);
    }
    if (name == "sort") {
      // SORT key ... [STORE destination]: the last STORE's destination (Redis's sortGetKeys).
      if (args.size() > 1) keys.push_back(args[1]);
      if (const auto store = sort_store_position(args)) keys.push_back(args[*store]);
      return keys;
    }
    if (name == "georadius" || name == "georadiusbymember") {
      // GEORADIUS[BYMEMBER] key ... [STORE|STOREDIST destination]: the key, then the last
      // destination named (Redis's georadiusGetKeys).
      if (args.size() > 1) keys.push_back(args[1]);
      std::size_t store = 0;
      for (std::size_t i = 5; i < args.size(); ++i) {
        if ((iequals(args[i], "store") || iequals(args[i], "storedist")) && i + 1 < args.size()) store = ++i;
      }
      if (store) keys.push_back(args[store]);
      return keys;
    }
    if (name == "migrate") {
      const auto [first, n] = migrate_key_range(args);
      for (std::size_t i = first; i < first + n; ++i) keys.push_back(args[i]);
      return keys;
    }
    if (name == "xread" || name == "xreadgroup") {
      // XREAD ... STREAMS key... id...: the first half of what follows STREAMS.
      for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i].size() == 7 && to_lower(args[i]) == "streams") {
          const std::size_t n = (args.size() - i - 1) / 2;
          for (std::size_t j = 0; j < n; ++j) keys.push_back(args[i + 1 + j]);
          break;
        }
      }
      return keys;
    }
    long long n = 0;
    if (at < args.size() && string2ll(args[at], n) && n > 0)
      for (std::size_t i = at + 1; i < args.size() && i <= at + static_cast<std::size_t>(n); ++i) keys.push_back(args[i]);
    return keys;
  }
  if (cmd.first_key <= 0) return keys;
  int last = cmd.last_key < 0 ? static_cast<int>(args.size()) + cmd.last_key : cmd.last_key;
  for (int i = cmd.first_key; i <= last && i < static_cast<int>(args.size()); i += std::max(1, cmd.key_step))
    keys.push_back(args[static_cast<std::size_t>(i)]);
  return keys;
}

clock::time_point server::next_deadline() const {
  clock::time_point t = clock::time_point::max();
  if (!block_deadlines_.empty()) t = block_deadlines_.begin()->first;
  // A pause ends once its end has passed (clients_paused): a moment after it.
  if (pause_ != pause_kind::off) t = std::min(t, pause_end_ + std::chrono::milliseconds(1));
  return std::min(t, tasks_->next_deadline());
}

void server::on_timer() {
  clients_paused();
  auto now = clock::now();
  while (!block_deadlines_.empty() && block_deadlines_.begin()->first <= now) {
    client* c = block_deadlines_.begin()->second;
    unblock_client(*c, true);
  }
  tasks_->on_timer();
  in_input_ = true;
  process_unblocked();
  in_input_ = false;
}

void server::add_monitor(client& c) {
  c.monitor = true;
  monitors_.push_back(&c);
}

void server::remove_monitor(client& c) {
  c.monitor = false;
  monitors_.erase(std::remove(monitors_.begin(), monitors_.end(), &c), monitors_.end());
}

void server::cron() {
  keyspace::tick_lru_clock();
  if (migrate_ && migrate_->size())
    migrate_->close_idle(keyspace::now_ms() / 1000);
  if (tracking_clients_) tracking_limit();
  // proto-max-bulk-len may have changed (CONFIG SET): keep every parser in step.
  if (cfg_.proto_max_bulk_len != applied_bulk_len_) {
    applied_bulk_len_ = cfg_.proto_max_bulk_len;
    for (auto& [id, c] : clients_) c->parser.set_limits(parser_limits(c->authenticated));
  }
  bool second_passed = false;  // since the last ops sample: the cron's once-a-second work
  {
    auto now = clock::now();
    double secs = std::chrono::duration<double>(now - ops_sample_time_).count();
    if (secs >= 1.0) {
      second_passed = true;
      ops_per_sec_ = static_cast<std::uint64_t>(
          static_cast<double>(stats_.commands_processed - ops_sample_commands_) / secs);
      ops_sample_commands_ = stats_.commands_processed;
      input_kbps_ = static_cast<double>(stats_.net_input_bytes - net_sample_input_) / 1024 / secs;
      output_kbps_ = static_cast<double>(stats_.net_output_bytes - net_sample_output_) / 1024 / secs;
      net_sample_input_ = stats_.net_input_bytes;
      net_sample_output_ = stats_.net_output_bytes;
      ops_sample_time_ = now;
    }
  }
  if (cfg_.timeout > 0) {
    auto now = clock::now();
    auto limit = std::chrono::seconds(cfg_.timeout);
    for (auto& [id, c] : clients_) {
      // Like Redis: blocked, subscribed and MONITOR clients are never idle-closed.
      if (c->blocked || c->json_held || c->in_pubsub() || c->monitor || c->close_asap) continue;
      if (now - c->last_interaction > limit) {
        log_verbose("Closing idle client");
        c->close_asap = true;
        queue_write(*c);
      }
    }
  }
  // Active expiry: every key whose deadline passed, in deadline order, within a bounded
  // amount of work per tick (Redis samples; the index here finds exactly the due ones).
  if (active_expire_) {
    const auto start = clock::now();
    const auto until = start + std::chrono::milliseconds(25);
    bool any = false, capped = false;
    std::size_t volatile_keys = 0;
    for (auto& d : dbs_) {
      d->update_clock();
      if (!d->volatile_keys()) continue;
      any = true;
      while (d->expire_due(256) == 256) {
        if (clock::now() >= until) {
          capped = true;
          break;
        }
      }
      volatile_keys += d->volatile_keys();
    }
    if (any) {
      const auto spent = clock::now() - start;
      stats_.expire_cycle_us += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(spent).count());
      latency_sample("expire-cycle", std::chrono::duration_cast<std::chrono::milliseconds>(spent).count());
    }
    // The share of keys with a deadline left due after the cycle (counted, up to a bound,
    // only when the budget cut the cycle short: else none is), averaged over cycles as
    // Redis averages its samples (decaying to 0 once nothing is left due).
    {
      double now_perc = 0;
      if (capped) {
        ++stats_.expired_time_cap_reached;
        std::size_t due = 0;
        for (auto& d : dbs_) due += d->count_due(100000);  // a bounded walk: a few ms at most
        if (volatile_keys) now_perc = 100.0 * static_cast<double>(due) / static_cast<double>(volatile_keys);
      }
      stats_.expired_stale_perc = now_perc * 0.05 + stats_.expired_stale_perc * 0.95;
    }
  }
  refresh_memory_estimate(false);
  refresh_timing();
  tasks_->cron();
  modules_cron();
  // Once a second the allocator collects what was freed (allocator.hpp): memory a burst
  // or a flush left empty goes back to the system.
  if (second_passed) release_free_memory(false);
}

namespace {

// The position of (db, key) in a client's WATCH list, or its size.
std::size_t watched_index(const client& c, int db, std::string_view key) {
  for (std::size_t i = 0; i < c.watched.size(); ++i)
    if (c.watched_db[i] == db && c.watched[i] == key) return i;
  return c.watched.size();
}

}  // namespace

void server::signal_modified_key(std::string_view key) {
  if (tracking_wanted()) tracking_invalidate(key, true);
  auto& watchers = watchers_[static_cast<std::size_t>(cur_db_)];
  auto it = watchers.find(key);
  if (it == watchers.end()) return;
  for (client* c : it->second) {
    // As Redis 7: a key already past its deadline at WATCH that is now deleted (expired)
    // has not logically changed; the client only stops treating it as expired.
    if (!c->watched_expired.empty() && !db().peek(key)) {
      const std::size_t i = watched_index(*c, cur_db_, key);
      if (i < c->watched.size() && c->watched_expired[i]) {
        c->watched_expired[i] = false;
        continue;
      }
    }
    c->watch_dirty = true;
  }
}

void server::touch_watched_in_db(int emptied, int replaced_with) {
  keyspace& e = db(emptied);
  keyspace* r = replaced_with >= 0 ? &db(replaced_with) : nullptr;
  for (auto& [key, list] : watchers_[static_cast<std::size_t>(emptied)]) {
    const bool in_emptied = e.peek(key) != nullptr;
    const value* rv = r ? r->peek(key) : nullptr;
    if (!in_emptied && !rv) continue;
    for (client* c : list) {
      const std::size_t i = watched_index(*c, emptied, key);
      const bool was_expired = i < c->watched.size() && c->watched_expired[i];
      if (was_expired) {
        if (!rv) {
          c->watched_expired[i] = false;  // an expired key now deleted: no logical change
          continue;
        }
        if (r->is_expired(*rv)) continue;  // expired, and still
      } else if (!in_emptied && r->is_expired(*rv)) {
        if (i < c->watched.size()) c->watched_expired[i] = true;  // nothing replaced by an expired key
        continue;
      }
      c->watch_dirty = true;
    }
  }
}

void server::key_deleted(std::string_view key) { signal_modified_key(key); }

void server::delete_by_deadline(std::string_view key) {
  db().erase(key);
  stream_.append({"DEL", key});
  key_deleted(key);
  if (cur_db_ == 0) tasks_->on_key_written(key);
}

void server::expire_key(const std::string& key) {
  before_key_write(cur_db_, key);  // the AOF rewrite copies it first
  ++stats_.expired_keys;
  delete_by_deadline(key);
  notify(notify_expired, "expired", key);
}

bool server::set_key_deadline(std::string_view key, std::int64_t at_ms) {
  // While loading, a deadline at or before the epoch still is one (in the past).
  if (at_ms < 1) at_ms = 1;
  if (!loading_ && at_ms <= keyspace::now_ms()) {
    delete_by_deadline(key);
    effects_logged();
    notify(notify_generic, "del", key);
    return false;
  }
  db().set_expire(key, at_ms);
  const std::string when = std::to_string(at_ms);
  stream_.append({"PEXPIREAT", key, when});
  signal_modified_key(key);
  notify(notify_generic, "expire", key);
  effects_logged();
  return true;
}

void server::flush_all() {
  before_key_write(-1, {}, true);
  // As in Redis, a flush touches only the watched keys it removes: WATCH on a key that
  // does not exist survives FLUSHALL.
  for (int i = 0; i < db_count(); ++i) {
    touch_watched_in_db(i, -1);
    db(i).clear();
  }
  tracking_invalidate_all();
  tasks_->on_flush();
}

void server::flush_db(int index) {
  before_key_write(index, {}, true);
  touch_watched_in_db(index, -1);
  db(index).clear();
  tracking_invalidate_all();  // the tracking table is global: all of it, as Redis
  if (index == 0) tasks_->on_flush();
}

void server::swap_db(int a, int b) {
  if (a == b) return;
  if (key_writers_) modules_before_swapdb(a, b);
  touch_watched_in_db(a, b);
  touch_watched_in_db(b, a);
  // Redis 7.0's scanDatabaseForDeletedStreams: a stream an XREADGROUP waits on that the
  // swap replaces with no stream answers its waiters (-UNBLOCKED) once served.
  for (auto [from, to] : {std::pair{a, b}, std::pair{b, a}}) {
    for (const auto& [key, list] : waiters_[static_cast<std::size_t>(from)]) {
      const value* was = db(from).peek(key);
      const value* is = db(to).peek(key);
      if (was && was->type() == value_type::stream && !(is && is->type() == value_type::stream))
        stream_removed(from, key);
    }
  }
  std::swap(dbs_[static_cast<std::size_t>(a)], dbs_[static_cast<std::size_t>(b)]);
  dbs_[static_cast<std::size_t>(a)]->index = a;
  dbs_[static_cast<std::size_t>(b)]->index = b;
  // Each keyspace keeps its own clock: the swapped-in ones read the same time.
  db(a).update_clock();
  db(b).update_clock();
  // Database 0's queues and in-flight records were exchanged: the task manager forgets
  // its bookkeeping as after FLUSHALL (requests in flight finish, their results ignored).
  if (a == 0 || b == 0) tasks_->on_flush();
  scan_ready_keys(a);
  scan_ready_keys(b);
}

void server::scan_ready_keys(int index) {
  auto& waiters = waiters_[static_cast<std::size_t>(index)];
  if (waiters.empty()) return;
  db_scope in(*this, index);
  // Every key a client waits on that now holds a value (scanDatabaseForReadyKeys): lists,
  // sorted sets, streams; serving passes over a waiter for another type.
  for (const auto& [key, list] : waiters) {
    const value* v = db().peek(key);
    if (!v) continue;
    if (v->type() == value_type::list) signal_key_as_ready(key);  // also tells an HTTP queue
    else stream_removed(index, key);                                // marks it ready
  }
}

void server::request_shutdown(bool save) {
  if (on_shutdown) on_shutdown(save);
}

void server::stream_publish(std::string_view channel, std::string_view message, bool sharded) {
  stream_.append_publish(channel, message, sharded);
}

void server::feed_monitors(const client& c, args_t args) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  char head[96];
  int n = std::snprintf(head, sizeof head, "+%lld.%06lld [%d ", static_cast<long long>(us / 1000000),
                        static_cast<long long>(us % 1000000), c.is_fake ? cur_db_ : c.db);
  std::string line(head, static_cast<std::size_t>(n));
  line += c.is_fake ? std::string("lua") : c.addr;
  line += "]";
  // As Redis: passwords are redacted (AUTH, HELLO's AUTH, MIGRATE's AUTH and AUTH2).
  const std::vector<bool> redacted = redacted_args(args);
  for (std::size_t i = 0; i < args.size(); ++i) {
    line += " \"";
    if (redacted[i]) {
      line += "(redacted)";
    } else {
      for (unsigned char ch : args[i]) {
        switch (ch) {
          case '\\': line += "\\\\"; break;
          case '"': line += "\\\""; break;
          case '\n': line += "\\n"; break;
          case '\r': line += "\\r"; break;
          case '\t': line += "\\t"; break;
          case '\a': line += "\\a"; break;
          case '\b': line += "\\b"; break;
          default:
            if (std::isprint(ch)) {
              line += static_cast<char>(ch);
            } else {
              char hex[8];
              std::snprintf(hex, sizeof hex, "\\x%02x", ch);
              line += hex;
            }
        }
      }
    }
    line += "\"";
  }
  line += "\r\n";
  for (client* m : monitors_) {
    if (m == &c) continue;
    m->out += line;
    queue_write(*m);
    check_output_limit(*m);
  }
}

}  // namespace respq::core
