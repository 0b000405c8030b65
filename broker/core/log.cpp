// Logging: see log.hpp. Redis marks levels with . - * # after the timestamp.
#include "broker/core/log.hpp"

#include <unistd.h>

#include <memory>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace respq::core {

namespace {

std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stdout_logger_mt("respq");
    lg->set_pattern(std::to_string(::getpid()) + ":M %d %b %Y %H:%M:%S.%e %v");
    lg->set_level(spdlog::level::info);
    lg->flush_on(spdlog::level::trace);
    return lg;
  }();
  return l;
}

spdlog::level::level_enum to_level(const std::string& level) {
  if (level == "debug") return spdlog::level::trace;
  if (level == "verbose") return spdlog::level::debug;
  if (level == "warning") return spdlog::level::warn;
  if (level == "nothing") return spdlog::level::off;
  return spdlog::level::info;
}

}  // namespace

std::string log_init(const std::string& file, const std::string& level) {
  if (!file.empty()) {
    try {
      auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, false);
      auto lg = std::make_shared<spdlog::logger>("respq-file", sink);
      lg->set_pattern(std::to_string(::getpid()) + ":M %d %b %Y %H:%M:%S.%e %v");
      lg->flush_on(spdlog::level::trace);
      logger() = lg;
    } catch (const std::exception& e) {
      return std::string("Can't open the log file: ") + e.what();
    }
  }
  logger()->set_level(to_level(level));
  return {};
}

void log_set_level(const std::string& level) { logger()->set_level(to_level(level)); }

void log_debug(std::string_view msg) { logger()->trace(". {}", msg); }
void log_verbose(std::string_view msg) { logger()->debug("- {}", msg); }
void log_notice(std::string_view msg) { logger()->info("* {}", msg); }
void log_warning(std::string_view msg) { logger()->warn("# {}", msg); }

}  // namespace respq::core
