// command_docs: Redis 7.0's COMMAND INFO and COMMAND DOCS entries for the commands respq
// implements (generated into command_docs_data.inc by scripts/gen-command-docs), parsed
// once into small trees and written in the client's protocol. Subcommands respq does not
// have are left out. Owner: immutable after first use; broker thread.
#pragma once

#include <functional>
#include <optional>
#include <utility>
#include <span>
#include <string_view>

#include "resp/reply_writer.hpp"

namespace respq::core {

using command_args = std::span<const std::string_view>;

// Writes the entry for `name` (a command, or a subcommand as "container|sub", lower case);
// returns false when there is none (a respq-only command or subcommand).
// `has_subcommand` tells which "container|sub" entries of a container to keep.
bool write_command_info(resp::reply_writer& w, std::string_view name,
                        const std::function<bool(std::string_view)>& has_subcommand);
bool write_command_docs(resp::reply_writer& w, std::string_view name,
                        const std::function<bool(std::string_view)>& has_subcommand);

// COMMAND GETKEYS: whether `name` (a command or "container|sub") has key arguments by
// Redis 7.0's key specifications; nullopt when there is no entry for it.
std::optional<bool> command_has_keys(std::string_view name);
// COMMAND GETKEYS and GETKEYSANDFLAGS: writes the keys of `args` (args[0] is the command,
// its arity already checked), found as Redis 7.0 finds them with its key specifications, each
// with its specification's flags when `with_flags`. Nothing is written when there is no
// entry for `name`, or when the arguments do not fit the specifications (the caller
// replies "ERR Invalid arguments specified for command").
enum class keys_reply { written, no_entry, invalid_arguments };
// SORT's STORE destination, which no key specification can find (Redis's sortGetKeys): the
// position of the last STORE's argument, skipping LIMIT's two arguments and BY's and GET's
// one; nullopt when there is none.
std::optional<std::size_t> sort_store_position(command_args args);
// MIGRATE's keys (Redis's migrateGetKeys): the key at 3, or those after the KEYS option
// (none when the key argument is not empty then); as {first position, count}.
std::pair<std::size_t, std::size_t> migrate_key_range(command_args args);
keys_reply write_command_keys(resp::reply_writer& w, std::string_view name, command_args args, bool with_flags);

}  // namespace respq::core
