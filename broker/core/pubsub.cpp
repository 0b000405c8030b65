// Pub/sub: channels and patterns. A message is appended to each subscriber's output
// buffer as `message`/`pmessage` (RESP2 arrays, RESP3 pushes); subscription replies
// carry the client's subscription count, as in Redis. Owner: the broker thread.
#include "broker/core/glob.hpp"
#include "broker/core/log.hpp"
#include "broker/core/server.hpp"

namespace respq::core {

namespace {

void subscription_reply(server& s, client& c, std::string_view kind, std::string_view name, bool null_name) {
  auto w = s.push(c);
  w.push(3);
  w.bulk(kind);
  if (null_name) w.null();
  else w.bulk(name);
  w.integer(static_cast<long long>(c.subscriptions()));
}

}  // namespace

void server::publish_key_event(std::string_view event, std::string_view key, int db) {
  const std::string n = std::to_string(db);
  if (cfg_.notify_keyspace_events & notify_keyspace) {
    std::string channel = "__keyspace@" + n + "__:";
    channel += key;
    publish(channel, event);
  }
  if (cfg_.notify_keyspace_events & notify_keyevent) {
    std::string channel = "__keyevent@" + n + "__:";
    channel += event;
    publish(channel, key);
  }
}

std::size_t server::publish(std::string_view channel, std::string_view message) {
  std::size_t receivers = 0;
  if (publish_observers_) modules_publish(channel, message);
  if (auto it = channels_.find(std::string(channel)); it != channels_.end()) {
    // The message is encoded once per protocol, into the first subscriber's buffer; the
    // others get a copy of those bytes (one append instead of a dozen small ones each).
    struct encoded {
      const client* in = nullptr;
      std::size_t from = 0, size = 0;
    } first[2];
    for (client* c : it->second) {
      encoded& e = first[c->resp == 3 ? 1 : 0];
      if (e.in) {
        c->out.append(e.in->out, e.from, e.size);
      } else {
        e.in = c;
        e.from = c->out.size();
        auto w = push(*c);
        w.push(3);
        w.bulk("message");
        w.bulk(channel);
        w.bulk(message);
        e.size = c->out.size() - e.from;
      }
      check_output_limit(*c);
      queue_write(*c);
      ++receivers;
    }
  }
  for (auto& [pattern, c] : patterns_) {
    if (!glob_match(pattern, channel)) continue;
    auto w = push(*c);
    w.push(4);
    w.bulk("pmessage");
    w.bulk(pattern);
    w.bulk(channel);
    w.bulk(message);
    check_output_limit(*c);
    queue_write(*c);
    ++receivers;
  }
  ++stats_.pubsub_messages;
  return receivers;
}

void server::subscribe(client& c, std::string_view channel) {
  const bool was_subscribed = c.subscriptions() > 0;
  if (c.channels.emplace(channel).second) channels_[std::string(channel)].push_back(&c);
  if (!was_subscribed && c.subscriptions() > 0) ++pubsub_clients_;
  subscription_reply(*this, c, "subscribe", channel, false);
}

void server::unsubscribe(client& c, std::string_view channel, bool notify) {
  const bool was_subscribed = c.subscriptions() > 0;
  std::string ch(channel);
  if (c.channels.erase(ch)) {
    auto it = channels_.find(ch);
    if (it != channels_.end()) {
      it->second.remove(&c);
      if (it->second.empty()) channels_.erase(it);
    }
  }
  if (was_subscribed && c.subscriptions() == 0) --pubsub_clients_;
  if (notify) subscription_reply(*this, c, "unsubscribe", channel, false);
}

void server::psubscribe(client& c, std::string_view pattern) {
  const bool was_subscribed = c.subscriptions() > 0;
  if (c.patterns.emplace(pattern).second) patterns_.emplace_back(std::string(pattern), &c);
  if (!was_subscribed && c.subscriptions() > 0) ++pubsub_clients_;
  subscription_reply(*this, c, "psubscribe", pattern, false);
}

void server::punsubscribe(client& c, std::string_view pattern, bool notify) {
  const bool was_subscribed = c.subscriptions() > 0;
  std::string p(pattern);
  if (c.patterns.erase(p)) {
    patterns_.remove_if([&](const auto& e) { return e.second == &c && e.first == p; });
  }
  if (was_subscribed && c.subscriptions() == 0) --pubsub_clients_;
  if (notify) subscription_reply(*this, c, "punsubscribe", pattern, false);
}

void server::unsubscribe_all(client& c, bool notify) {
  if (c.channels.empty()) {
    if (notify) subscription_reply(*this, c, "unsubscribe", {}, true);
    return;
  }
  std::vector<std::string> all(c.channels.begin(), c.channels.end());
  for (const auto& ch : all) unsubscribe(c, ch, notify);
}

void server::punsubscribe_all(client& c, bool notify) {
  if (c.patterns.empty()) {
    if (notify) subscription_reply(*this, c, "punsubscribe", {}, true);
    return;
  }
  std::vector<std::string> all(c.patterns.begin(), c.patterns.end());
  for (const auto& p : all) punsubscribe(c, p, notify);
}

}  // namespace respq::core
