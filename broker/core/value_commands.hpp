// value_commands: the commands that rebuild a value, as Redis's AOF rewrite writes them.
// One serializer for the two places that need it: the AOF rewrite (persistence/) and the
// mirror's resync of a key on the upstream (redis-compat/).
//  - string: SET; hash: HSET, list: RPUSH, set: SADD, sorted set: ZADD (scores as %.17g,
//    read back exactly), `per_command` items (pairs for HSET/ZADD) a command, sets and
//    sorted sets at most 64 (Redis's AOF_REWRITE_ITEMS_PER_CMD);
//  - stream: XADD per entry with its id (an empty stream as XADD key MAXLEN 0 0-1 x y),
//    XSETID with the last id, entries added and the greatest deleted id, then the consumer
//    groups (XGROUP CREATE, XCLAIM per pending entry, XGROUP CREATECONSUMER);
//  - no deadline: the caller adds PEXPIREAT once the value is complete.
// A list may be written in parts: from element `from`, and `sink` returning false stops
// after the command it was given. Returns the list index reached (0 for other types,
// which are always written whole).
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string_view>

#include "broker/core/keyspace.hpp"

namespace respq::core {

using command_sink = std::function<bool(std::span<const std::string_view> argv)>;

std::size_t value_commands(std::string_view key, value& v, std::size_t per_command, std::size_t from,
                           const command_sink& sink);

}  // namespace respq::core
