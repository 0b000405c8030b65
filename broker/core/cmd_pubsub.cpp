// Pub/sub commands. The mechanics (fan-out, subscription bookkeeping) are in pubsub.cpp.
#include <algorithm>

#include "broker/core/commands.hpp"
#include "broker/core/glob.hpp"

namespace respq::core {

void cmd_publish(server& s, client& c, args_t a) {
  std::size_t n = s.publish(a[1], a[2]);
  // PUBLISH goes to the mirror (not to the AOF): a keyless effect marked as such.
  s.stream_publish(a[1], a[2]);
  s.reply(c).integer(static_cast<long long>(n));
}

void cmd_subscribe(server& s, client& c, args_t a) {
  for (std::size_t i = 1; i < a.size(); ++i) s.subscribe(c, a[i]);
}

void cmd_unsubscribe(server& s, client& c, args_t a) {
  if (a.size() == 1) s.unsubscribe_all(c, true);
  else
    for (std::size_t i = 1; i < a.size(); ++i) s.unsubscribe(c, a[i], true);
}

void cmd_psubscribe(server& s, client& c, args_t a) {
  for (std::size_t i = 1; i < a.size(); ++i) s.psubscribe(c, a[i]);
}

void cmd_punsubscribe(server& s, client& c, args_t a) {
  if (a.size() == 1) s.punsubscribe_all(c, true);
  else
    for (std::size_t i = 1; i < a.size(); ++i) s.punsubscribe(c, a[i], true);
}

// SPUBLISH: to the subscribers of a shard channel (no patterns). Outside cluster mode
// Redis 7.0 sends it to replicas too: here to the mirror, as PUBLISH goes.
void cmd_spublish(server& s, client& c, args_t a) {
  const std::size_t n = s.spublish(a[1], a[2]);
  s.stream_publish(a[1], a[2], true);
  s.reply(c).integer(static_cast<long long>(n));
}

void cmd_ssubscribe(server& s, client& c, args_t a) {
  // Redis 7.0 refuses it where a client may not block (inside EXEC), unlike SUBSCRIBE.
  if (c.in_exec) {
    s.add_error(c, "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
    return;
  }
  for (std::size_t i = 1; i < a.size(); ++i) s.ssubscribe(c, a[i]);
}

void cmd_sunsubscribe(server& s, client& c, args_t a) {
  if (a.size() == 1) s.sunsubscribe_all(c, true);
  else
    for (std::size_t i = 1; i < a.size(); ++i) s.sunsubscribe(c, a[i], true);
}

void cmd_pubsub(server& s, client& c, args_t a) {
  std::string sub = to_lower(a[1]);
  auto w = s.reply(c);
  const bool shard = sub == "shardchannels" || sub == "shardnumsub";
  const auto& channels = shard ? s.shard_channels() : s.channels();
  if ((sub == "channels" || sub == "shardchannels") && a.size() <= 3) {
    std::vector<std::string_view> out;
    for (const auto& [ch, subs] : channels)
      if (a.size() == 2 || glob_match(a[2], ch)) out.push_back(ch);
    w.array(out.size());
    for (auto ch : out) w.bulk(ch);
  } else if (sub == "numsub" || sub == "shardnumsub") {
    // Redis 7 answers a flat array here even over RESP3.
    w.array(2 * (a.size() - 2));
    for (std::size_t i = 2; i < a.size(); ++i) {
      w.bulk(a[i]);
      auto it = channels.find(std::string(a[i]));
      w.integer(it == channels.end() ? 0 : static_cast<long long>(it->second.size()));
    }
  } else if (sub == "numpat" && a.size() == 2) {
    w.integer(static_cast<long long>(s.pattern_count()));
  } else if (sub == "help" && a.size() == 2) {
    static const char* lines[] = {
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Print this help."};
    w.array(std::size(lines));
    for (const char* l : lines) w.simple(l);
  } else if (sub == "channels" || sub == "numpat" || sub == "shardchannels" || sub == "help") {
    subcommand_syntax_error(s, c, a);
  } else {
    s.add_error(c, "ERR unknown subcommand '" + std::string(a[1].substr(0, 128)) + "'. Try PUBSUB HELP.");
  }
}

}  // namespace respq::core
