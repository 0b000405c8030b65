// Pub/sub: channels, patterns and shard channels. A message is appended to each
// subscriber's output buffer as `message`/`pmessage`/`smessage` (RESP2 arrays, RESP3
// pushes); subscription replies carry the client's subscription count, as in Redis.
// Owner: the broker thread.
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "broker/core/glob.hpp"
#include "broker/core/log.hpp"
#include "broker/core/server.hpp"

namespace respq::core {

namespace {

// The count is of the subscriptions of the same namespace: channels and patterns, or
// shard channels (Redis's subscriptionCount of the pubsubtype).
void subscription_reply(server& s, client& c, std::string_view kind, std::string_view name, bool null_name,
                        bool shard = false) {
  auto w = s.push(c);
  w.push(3);
  w.bulk(kind);
  if (null_name) w.null();
  else w.bulk(name);
  w.integer(static_cast<long long>(shard ? c.shard_channels.size() : c.subscriptions()));
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

std::size_t server::deliver(const std::list<client*>& subscribers, std::string_view kind, std::string_view channel,
                            std::string_view message) {
  // The message is encoded once per protocol, into the first subscriber's buffer; the
  // others get a copy of those bytes (one append instead of a dozen small ones each).
  struct encoded {
    const client* in = nullptr;
    std::size_t from = 0, size = 0;
  } first[2];
  std::size_t receivers = 0;
  for (client* c : subscribers) {
    encoded& e = first[c->resp == 3 ? 1 : 0];
    if (e.in) {
      c->out.append(e.in->out, e.from, e.size);
    } else {
      e.in = c;
      e.from = c->out.size();
      auto w = push(*c);
      w.push(3);
      w.bulk(kind);
      w.bulk(channel);
      w.bulk(message);
      e.size = c->out.size() - e.from;
    }
    check_output_limit(*c);
    queue_write(*c);
    ++receivers;
  }
  return receivers;
}

std::size_t server::publish(std::string_view channel, std::string_view message) {
  std::size_t receivers = 0;
  if (publish_observers_) modules_publish(channel, message);
  if (auto it = channels_.find(std::string(channel)); it != channels_.end())
    receivers += deliver(it->second, "message", channel, message);
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

std::size_t server::spublish(std::string_view channel, std::string_view message) {
  // Shard channels have no patterns (Redis's pubsubPublishMessageInternal).
  std::size_t receivers = 0;
  if (auto it = shard_channels_.find(std::string(channel)); it != shard_channels_.end())
    receivers = deliver(it->second, "smessage", channel, message);
  ++stats_.pubsub_messages;
  return receivers;
}

void server::channel_subscribe(client& c, std::string_view channel, bool shard) {
  const bool was_subscribed = c.in_pubsub();
  std::set<std::string>& mine = shard ? c.shard_channels : c.channels;
  if (mine.emplace(channel).second) (shard ? shard_channels_ : channels_)[std::string(channel)].push_back(&c);
  if (!was_subscribed && c.in_pubsub()) ++pubsub_clients_;
  subscription_reply(*this, c, shard ? "ssubscribe" : "subscribe", channel, false, shard);
}

void server::channel_unsubscribe(client& c, std::string_view channel, bool notify, bool shard) {
  const bool was_subscribed = c.in_pubsub();
  std::string ch(channel);
  if ((shard ? c.shard_channels : c.channels).erase(ch)) {
    auto& all = shard ? shard_channels_ : channels_;
    auto it = all.find(ch);
    if (it != all.end()) {
      it->second.remove(&c);
      if (it->second.empty()) all.erase(it);
    }
  }
  if (was_subscribed && !c.in_pubsub()) --pubsub_clients_;
  if (notify) subscription_reply(*this, c, shard ? "sunsubscribe" : "unsubscribe", channel, false, shard);
}

void server::channel_unsubscribe_all(client& c, bool notify, bool shard) {
  const std::set<std::string>& mine = shard ? c.shard_channels : c.channels;
  if (mine.empty()) {
    if (notify) subscription_reply(*this, c, shard ? "sunsubscribe" : "unsubscribe", {}, true, shard);
    return;
  }
  std::vector<std::string> all(mine.begin(), mine.end());
  for (const auto& ch : all) channel_unsubscribe(c, ch, notify, shard);
}

void server::subscribe(client& c, std::string_view channel) { channel_subscribe(c, channel, false); }
void server::unsubscribe(client& c, std::string_view channel, bool notify) {
  channel_unsubscribe(c, channel, notify, false);
}
void server::unsubscribe_all(client& c, bool notify) { channel_unsubscribe_all(c, notify, false); }
void server::ssubscribe(client& c, std::string_view channel) { channel_subscribe(c, channel, true); }
void server::sunsubscribe(client& c, std::string_view channel, bool notify) {
  channel_unsubscribe(c, channel, notify, true);
}
void server::sunsubscribe_all(client& c, bool notify) { channel_unsubscribe_all(c, notify, true); }

std::size_t server::pattern_count() const {
  std::unordered_set<std::string_view> distinct;
  for (const auto& [p, c] : patterns_) distinct.insert(p);
  return distinct.size();
}

void server::psubscribe(client& c, std::string_view pattern) {
  const bool was_subscribed = c.in_pubsub();
  if (c.patterns.emplace(pattern).second) patterns_.emplace_back(std::string(pattern), &c);
  if (!was_subscribed && c.in_pubsub()) ++pubsub_clients_;
  subscription_reply(*this, c, "psubscribe", pattern, false);
}

void server::punsubscribe(client& c, std::string_view pattern, bool notify) {
  const bool was_subscribed = c.in_pubsub();
  std::string p(pattern);
  if (c.patterns.erase(p)) {
    patterns_.remove_if([&](const auto& e) { return e.second == &c && e.first == p; });
  }
  if (was_subscribed && !c.in_pubsub()) --pubsub_clients_;
  if (notify) subscription_reply(*this, c, "punsubscribe", pattern, false);
}

void server::punsubscribe_all(client& c, bool notify) {
  if (c.patterns.empty()) {
    if (notify) subscription_reply(*this, c, "punsubscribe", {}, true);
    return;
  }
  // In the order they were subscribed, as Redis 7.0 walks a client's pattern list.
  std::vector<std::string> all;
  all.reserve(c.patterns.size());
  for (const auto& [p, owner] : patterns_)
    if (owner == &c) all.push_back(p);
  for (const auto& p : all) punsubscribe(c, p, notify);
}

}  // namespace respq::core
