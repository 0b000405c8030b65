// Client-side caching: CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO, and the
// invalidation messages, as Redis 7.0's tracking.c.
//
// A tracking client (not BCAST) that runs a read-only command is remembered, in the
// tracking table, under each key the command names. When such a key changes (WATCH's
// signal: server::signal_modified_key, an expiry too), every client remembered under it
// gets one invalidation message and the entry is dropped: the client reads the key again,
// and is remembered again, if it still caches it. The table is global, as Redis's: a key
// is one name whatever its database, and FLUSHDB, like FLUSHALL, invalidates everything
// (a null in place of the key list) and empties it.
//
// BCAST clients are remembered by prefix instead: a change of any key under one of their
// prefixes is gathered for the turn and sent, one list per prefix, before the turn's replies
// are written (server::before_write, Redis's beforeSleep).
//
// Where a message goes: to the client itself over RESP3 (a push), or to the client it
// REDIRECTs to, over RESP3 or, when that one is subscribed to anything over RESP2, as a
// message on the __redis__:invalidate channel. A client whose redirection target is gone
// is told so (tracking-redir-broken) when it speaks RESP3. An invalidation for the client
// whose command is running waits until the command (the whole EXEC or script) has
// replied, so that it never lands inside the reply.
#include <algorithm>

#include "broker/core/commands.hpp"

namespace respq::core {

namespace {

constexpr std::string_view invalidate_channel = "__redis__:invalidate";

// "Every key": a null in the client's own protocol (also when redirected, as Redis).
std::string_view all_keys(const client& c) { return c.resp > 2 ? "_\r\n" : "$-1\r\n"; }

// Redis formats these errors with %s: a NUL byte ends the text.
std::string_view c_text(std::string_view s) { return s.substr(0, s.find('\0')); }

// Redis's stringCheckPrefix: one is a prefix of the other.
bool prefixes_overlap(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  return a.substr(0, n) == b.substr(0, n);
}

}  // namespace

void server::tracking_on(client& c, std::uint64_t redirect, bool bcast, bool optin, bool optout, bool noloop,
                         const std::vector<std::string_view>& prefixes) {
  auto& t = c.tracking;
  if (!t.on) ++tracking_clients_;
  t.on = true;
  t.broken_redirect = t.bcast = t.optin = t.optout = t.noloop = false;
  t.redirect = redirect;
  if (bcast) {
    t.bcast = true;
    auto add = [&](std::string_view p) {
      auto it = tracking_prefixes_.find(p);
      if (it == tracking_prefixes_.end()) it = tracking_prefixes_.emplace(std::string(p), bcast_state{}).first;
      if (it->second.clients.insert(&c).second) t.prefixes.emplace(p);
    };
    if (prefixes.empty()) add("");
    for (auto p : prefixes) add(p);
  }
  t.optin = optin;
  t.optout = optout;
  t.noloop = noloop;
}

void server::tracking_off(client& c) {
  auto& t = c.tracking;
  if (t.bcast) {
    for (const auto& p : t.prefixes) {
      auto it = tracking_prefixes_.find(p);
      if (it == tracking_prefixes_.end()) continue;
      it->second.clients.erase(&c);
      if (it->second.clients.empty()) tracking_prefixes_.erase(it);  // its last client
    }
    t.prefixes.clear();
  }
  if (t.on) {
    --tracking_clients_;
    t.on = t.broken_redirect = t.bcast = t.optin = t.optout = t.caching = t.noloop = false;
  }
}

void server::tracking_remember(client& caller, const command_def& cmd, args_t args) {
  const auto& t = caller.tracking;
  // OPTIN: only after CLIENT CACHING yes; OPTOUT: unless after CLIENT CACHING no.
  if ((t.optin && !t.caching) || (t.optout && t.caching)) return;
  for (std::string_view k : command_keys(cmd, args)) {
    auto it = tracking_table_.find(k);
    if (it == tracking_table_.end()) it = tracking_table_.emplace(std::string(k), std::vector<std::uint64_t>{}).first;
    auto& ids = it->second;  // sorted
    auto at = std::lower_bound(ids.begin(), ids.end(), caller.id);
    if (at != ids.end() && *at == caller.id) continue;
    ids.insert(at, caller.id);
    ++tracking_items_;
  }
}

void server::tracking_send(client& c, std::string_view payload, bool encoded) {
  client* to = &c;
  bool redirected = false;
  if (c.tracking.redirect) {
    client* r = find_client(c.tracking.redirect);
    if (!r || r->close_asap) {  // gone, or killed and about to be (CLIENT KILL frees it at once in Redis)
      c.tracking.broken_redirect = true;
      if (c.resp > 2) {
        auto w = push(c);
        w.push(2);
        w.bulk("tracking-redir-broken");
        w.integer(static_cast<long long>(c.tracking.redirect));
        check_output_limit(c);
        queue_write(c);
      }
      return;
    }
    to = r;
    redirected = true;
  }
  auto w = push(*to);
  if (to->resp > 2) {
    w.push(2);
    w.bulk("invalidate");
  } else if (redirected && to->in_pubsub()) {
    w.array(3);
    w.bulk("message");
    w.bulk(invalidate_channel);
  } else {
    return;  // RESP2 has no room for it on the client's own connection
  }
  if (encoded) {
    w.raw(payload);
  } else {
    w.array(1);
    w.bulk(payload);
  }
  check_output_limit(*to);
  queue_write(*to);
}

void server::tracking_invalidate(std::string_view key, bool bcast) {
  if (bcast && !tracking_prefixes_.empty()) {
    // The last client to change it: a NOLOOP client is not told of its own changes. As in
    // Redis, that is the client running the command, a script's own inside a script (a
    // client's script writes are told to it).
    const std::uint64_t by = executing_client_ ? executing_client_->id : 0;
    for (auto& [prefix, state] : tracking_prefixes_) {
      if (key.substr(0, prefix.size()) != prefix) continue;
      auto it = state.keys.find(key);
      if (it == state.keys.end()) state.keys.emplace(std::string(key), by);
      else it->second = by;
    }
  }
  auto it = tracking_table_.find(key);
  if (it == tracking_table_.end()) return;
  const std::string name = it->first;  // `key` may view the entry's own key
  const std::vector<std::uint64_t> ids = std::move(it->second);
  tracking_items_ -= ids.size();
  tracking_table_.erase(it);
  for (std::uint64_t id : ids) {
    client* target = find_client(id);
    // A client that went BCAST since it read the key gets nothing more for it.
    if (!target || !target->tracking.on || target->tracking.bcast) continue;
    if (target->tracking.noloop && target == current_client_) continue;
    if (target == current_client_ && call_depth_ > 0) tracking_pending_.emplace_back(id, name);
    else tracking_send(*target, name, false);
  }
}

void server::tracking_invalidate_all() {
  if (tracking_clients_) {
    for (auto& [id, cp] : clients_) {
      client& c = *cp;
      if (!c.tracking.on) continue;
      if (&c == current_client_ && call_depth_ > 0) tracking_pending_.emplace_back(c.id, std::nullopt);
      else tracking_send(c, all_keys(c), true);
    }
  }
  tracking_table_.clear();
  tracking_items_ = 0;
}

void server::tracking_send_pending() {
  std::vector<std::pair<std::uint64_t, std::optional<std::string>>> pending;
  pending.swap(tracking_pending_);
  for (const auto& [id, key] : pending) {
    client* c = find_client(id);
    if (!c) continue;  // gone meanwhile
    if (key) tracking_send(*c, *key, false);
    else tracking_send(*c, all_keys(*c), true);
  }
}

void server::tracking_broadcast() {
  if (!tracking_clients_) return;
  // The keys changed under one prefix as a RESP array, without those `except` changed last
  // (a NOLOOP client's own); nothing when that leaves none.
  auto encode = [](const std::map<std::string, std::uint64_t, std::less<>>& keys, std::uint64_t except) {
    std::size_t n = 0;
    for (const auto& [k, by] : keys)
      if (!except || by != except) ++n;
    std::string out;
    if (n == 0) return out;
    resp::reply_writer w(out, 2);
    w.array(n);
    for (const auto& [k, by] : keys)
      if (!except || by != except) w.bulk(k);
    return out;
  };
  for (auto& [prefix, state] : tracking_prefixes_) {
    if (state.keys.empty()) continue;
    const std::string all = encode(state.keys, 0);
    for (client* c : state.clients) {
      if (c->tracking.noloop) {
        const std::string own = encode(state.keys, c->id);
        if (!own.empty()) tracking_send(*c, own, true);
      } else {
        tracking_send(*c, all, true);
      }
    }
    state.keys.clear();
  }
}

void server::tracking_limit() {
  const std::uint64_t most = cfg_.tracking_table_max_keys;
  if (most == 0 || tracking_table_.size() <= most) {
    tracking_limit_rounds_ = 0;
    return;
  }
  // As Redis's trackingLimitUsedSlots: keys picked at random are invalidated as if they
  // had changed (their clients drop them), with more effort each time the table is still
  // over the limit.
  int effort = 100 * static_cast<int>(tracking_limit_rounds_ + 1);
  while (effort-- > 0 && !tracking_table_.empty()) {
    const std::size_t buckets = tracking_table_.bucket_count();
    std::size_t b = std::uniform_int_distribution<std::size_t>(0, buckets - 1)(tracking_rng_);
    while (tracking_table_.bucket_size(b) == 0) b = (b + 1) % buckets;
    const std::string key = tracking_table_.begin(b)->first;
    tracking_invalidate(key, false);
    if (tracking_table_.size() <= most) {
      tracking_limit_rounds_ = 0;
      return;
    }
  }
  ++tracking_limit_rounds_;
}

// CLIENT TRACKING (ON|OFF) [REDIRECT id] [BCAST] [PREFIX prefix]... [OPTIN] [OPTOUT] [NOLOOP]
void client_tracking(server& s, client& c, args_t a) {
  long long redirect = 0;
  bool bcast = false, optin = false, optout = false, noloop = false;
  std::vector<std::string_view> prefixes;
  for (std::size_t j = 3; j < a.size(); ++j) {
    const bool more = j + 1 < a.size();
    if (iequals(a[j], "redirect") && more) {
      ++j;
      if (redirect != 0) {
        s.add_error(c, "ERR A client can only redirect to a single other client");
        return;
      }
      if (!string2ll(a[j], redirect)) {
        s.add_error(c, not_integer_error);
        return;
      }
      // The client must exist now (it may go later: the redirection is then broken).
      if (redirect <= 0 || !s.find_client(static_cast<std::uint64_t>(redirect))) {
        s.add_error(c, "ERR The client ID you want redirect to does not exist");
        return;
      }
    } else if (iequals(a[j], "bcast")) {
      bcast = true;
    } else if (iequals(a[j], "optin")) {
      optin = true;
    } else if (iequals(a[j], "optout")) {
      optout = true;
    } else if (iequals(a[j], "noloop")) {
      noloop = true;
    } else if (iequals(a[j], "prefix") && more) {
      prefixes.push_back(a[++j]);
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  if (iequals(a[2], "on")) {
    const auto& t = c.tracking;
    if (!bcast && !prefixes.empty()) {
      s.add_error(c, "ERR PREFIX option requires BCAST mode to be enabled");
      return;
    }
    if (t.on && t.bcast != bcast) {
      s.add_error(c, "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then "
                     "re-enabling it with a different mode.");
      return;
    }
    if (bcast && (optin || optout)) {
      s.add_error(c, "ERR OPTIN and OPTOUT are not compatible with BCAST");
      return;
    }
    if (optin && optout) {
      s.add_error(c, "ERR You can't specify both OPTIN mode and OPTOUT mode");
      return;
    }
    if ((optin && t.optout) || (optout && t.optin)) {
      s.add_error(c, "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then "
                     "re-enabling it with a different mode.");
      return;
    }
    if (bcast) {
      // No prefix may overlap one the client has, nor another one given. (Redis 7.0.15
      // answers an overlap among the given ones after the first with the error and then
      // +OK as well, two replies to one command; respq answers the error alone.)
      for (std::size_t i = 0; i < prefixes.size(); ++i) {
        for (const auto& have : t.prefixes) {
          if (prefixes_overlap(have, prefixes[i])) {
            s.add_error(c, "ERR Prefix '" + std::string(c_text(prefixes[i])) + "' overlaps with an existing prefix '" +
                               std::string(c_text(have)) + "'. Prefixes for a single client must not overlap.");
            return;
          }
        }
        for (std::size_t j = i + 1; j < prefixes.size(); ++j) {
          if (prefixes_overlap(prefixes[i], prefixes[j])) {
            s.add_error(c, "ERR Prefix '" + std::string(c_text(prefixes[i])) + "' overlaps with another provided prefix '" +
                               std::string(c_text(prefixes[j])) + "'. Prefixes for a single client must not overlap.");
            return;
          }
        }
      }
    }
    s.tracking_on(c, static_cast<std::uint64_t>(redirect), bcast, optin, optout, noloop, prefixes);
  } else if (iequals(a[2], "off")) {
    s.tracking_off(c);
  } else {
    s.add_error(c, syntax_error);
    return;
  }
  s.reply(c).ok();
}

// CLIENT CACHING (YES|NO): the next command (or transaction) is tracked (OPTIN), or not (OPTOUT).
void client_caching(server& s, client& c, args_t a) {
  auto& t = c.tracking;
  if (!t.on) {
    s.add_error(c, "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT "
                   "mode enabled");
    return;
  }
  if (iequals(a[2], "yes")) {
    if (!t.optin) {
      s.add_error(c, "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
      return;
    }
  } else if (iequals(a[2], "no")) {
    if (!t.optout) {
      s.add_error(c, "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
      return;
    }
  } else {
    s.add_error(c, syntax_error);
    return;
  }
  t.caching = true;
  s.reply(c).ok();
}

void client_getredir(server& s, client& c) {
  s.reply(c).integer(c.tracking.on ? static_cast<long long>(c.tracking.redirect) : -1);
}

void client_trackinginfo(server& s, client& c) {
  const auto& t = c.tracking;
  std::vector<std::string_view> flags{t.on ? "on" : "off"};
  if (t.bcast) flags.push_back("bcast");
  if (t.optin) {
    flags.push_back("optin");
    if (t.caching) flags.push_back("caching-yes");
  }
  if (t.optout) {
    flags.push_back("optout");
    if (t.caching) flags.push_back("caching-no");
  }
  if (t.noloop) flags.push_back("noloop");
  if (t.broken_redirect) flags.push_back("broken_redirect");
  auto w = s.reply(c);
  w.map(3);
  w.bulk("flags");
  w.set(flags.size());
  for (auto f : flags) w.bulk(f);
  w.bulk("redirect");
  w.integer(t.on ? static_cast<long long>(t.redirect) : -1);
  w.bulk("prefixes");
  w.array(t.prefixes.size());
  for (const auto& p : t.prefixes) w.bulk(p);
}

}  // namespace respq::core
