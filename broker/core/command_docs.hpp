// command_docs: Redis 7.0's COMMAND INFO and COMMAND DOCS entries for the commands respq
// implements (generated into command_docs_data.inc by scripts/gen-command-docs), parsed
// once into small trees and written in the client's protocol. Subcommands respq does not
// have are left out. Owner: immutable after first use; broker thread.
#pragma once

#include <functional>
#include <string_view>

#include "resp/reply_writer.hpp"

namespace respq::core {

// Writes the entry for `name` (a command, or a subcommand as "container|sub", lower case);
// returns false when there is none (a respq-only command or subcommand).
// `has_subcommand` tells which "container|sub" entries of a container to keep.
bool write_command_info(resp::reply_writer& w, std::string_view name,
                        const std::function<bool(std::string_view)>& has_subcommand);
bool write_command_docs(resp::reply_writer& w, std::string_view name,
                        const std::function<bool(std::string_view)>& has_subcommand);

}  // namespace respq::core
