// Helpers shared by the stream command files: cmd_stream.cpp (entries: XADD, XRANGE,
// XREAD, ...) and cmd_stream_group.cpp (consumer groups: XGROUP, XREADGROUP's group
// reads, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO GROUPS / CONSUMERS). Owner: the
// broker thread, like every command handler.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "broker/core/commands.hpp"

namespace respq::core::streams {

inline constexpr std::string_view invalid_id_error = "ERR Invalid stream ID specified as stream command argument";

// streamGenericParseIDOrReply without the reply. seq_given non-null allows "<ms>-*".
bool parse_id(std::string_view arg, stream_id& id, std::uint64_t missing_seq, bool strict, bool* seq_given);
// The same, replying Redis's invalid id error on failure.
bool id_arg(server& s, client& c, std::string_view arg, stream_id& id, bool strict = true,
            std::uint64_t missing_seq = 0);
// streamParseIntervalIDOrReply: "(id" is exclusive (and then strict).
bool interval_id_arg(server& s, client& c, std::string_view arg, stream_id& id, bool& exclusive,
                     std::uint64_t missing_seq);
// The stream at key, or nullptr; WRONGTYPE replied (and `wrong` set) for another type.
stream_value* lookup_stream(server& s, client& c, std::string_view key, bool& wrong);
// An entry as [id, [field, value, ...]].
void write_entry(resp::reply_writer& w, const stream_value::entry& e);
// The entries of a range as an array.
void write_range(resp::reply_writer& w, const stream_value& st, stream_id start, stream_id end, std::size_t count,
                 bool rev);
// Appends one effect (head followed by rest) to the command stream; key_index is the
// position of the key in it.
void append_effect(server& s, const std::vector<std::string>& head, args_t rest = {}, std::size_t key_index = 1);

// ---- consumer groups (cmd_stream_group.cpp) ----

// The consumer `name` of a group, its seen-time refreshed; created when missing (then
// dirty, and logged as XGROUP CREATECONSUMER when `log_creation`, which XREADGROUP
// NOACK needs since no XCLAIM will create it on replay).
stream_consumer& touch_consumer(server& s, std::string_view key, stream_group& g, std::string_view group_name,
                                std::string_view name, bool log_creation);
// XREADGROUP's read of one stream (streamReplyWithRange with a group): the entries after
// `start` (new ones: the group's last id advances, each enters the PEL unless noack) or,
// with history, the consumer's own pending entries from `start` on. Writes the array of
// entries and logs the effects as Redis propagates them (XCLAIM ... per new pending
// entry, XGROUP SETID when NOACK moved the last id). Returns the number written.
std::size_t group_read(server& s, resp::reply_writer& w, std::string_view key, stream_value& st, stream_group& g,
                       std::string_view group_name, std::string_view consumer, stream_id start, std::size_t count,
                       bool noack, bool history);
// The "groups" array of XINFO STREAM FULL (count: PEL entries per group / consumer, 0
// for all).
void write_full_groups(resp::reply_writer& w, const stream_value& st, std::size_t count);
// XINFO GROUPS key / XINFO CONSUMERS key group, on a stream already looked up.
void xinfo_groups(server& s, client& c, const stream_value& st);
void xinfo_consumers(server& s, client& c, std::string_view key, const stream_value& st, std::string_view group);

}  // namespace respq::core::streams
