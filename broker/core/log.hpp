// Logging in Redis's format ("pid:M 24 Nov 2026 05:51:00.123 * message"), via spdlog.
// Levels as Redis names them: debug, verbose, notice, warning. Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace respq::core {

// Sets up the logger: file path (empty = standard output) and level name.
// Returns an error text when the file can't be opened.
std::string log_init(const std::string& file, const std::string& level);
// The pid in every line is taken when this is called: call it again after daemonizing.
void log_set_pid();
// Opens the log file again at its path (SIGHUP: logrotate moved it away). Returns an
// error text, and keeps writing to the old file, when the path can't be opened.
// Nothing to do when logging to standard output.
std::string log_reopen();
void log_set_level(const std::string& level);
void log_debug(std::string_view msg);
void log_verbose(std::string_view msg);
void log_notice(std::string_view msg);
void log_warning(std::string_view msg);

}  // namespace respq::core
