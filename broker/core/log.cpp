// Logging: see log.hpp. Redis marks levels with . - * # after the timestamp.
#include "broker/core/log.hpp"

#include <algorithm>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace respq::core {

namespace {

// A file sink that can reopen its path (SIGHUP, after logrotate renamed the file). The
// new file is opened before the old one is closed, so a failed reopen keeps logging to
// the old file and says why. base_sink's mutex serialises writes and the swap.
class reopenable_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit reopenable_file_sink(std::string path) : path_(std::move(path)) {
    file_ = std::fopen(path_.c_str(), "a");
    if (!file_) throw spdlog::spdlog_ex("Failed opening file " + path_ + " for writing", errno);
  }
  ~reopenable_file_sink() override {
    if (file_) std::fclose(file_);
  }
  std::string reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::FILE* f = std::fopen(path_.c_str(), "a");
    if (!f) return "Can't reopen the log file '" + path_ + "': " + std::strerror(errno);
    std::fclose(file_);
    file_ = f;
    return {};
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::fwrite(buf.data(), 1, buf.size(), file_);
  }
  void flush_() override { std::fflush(file_); }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

std::string pattern() { return std::to_string(::getpid()) + ":M %d %b %Y %H:%M:%S.%e %v"; }

std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stdout_logger_mt("respq");
    lg->set_pattern(pattern());
    lg->set_level(spdlog::level::info);
    lg->flush_on(spdlog::level::trace);
    return lg;
  }();
  return l;
}

// The file sink when logging to a file (log_reopen() needs it); set once at start-up.
std::shared_ptr<reopenable_file_sink> file_sink;

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
      auto sink = std::make_shared<reopenable_file_sink>(file);
      auto lg = std::make_shared<spdlog::logger>("respq-file", sink);
      lg->set_pattern(pattern());
      lg->flush_on(spdlog::level::trace);
      logger() = lg;
      file_sink = sink;
    } catch (const std::exception& e) {
      return std::string("Can't open the log file: ") + e.what();
    }
  }
  logger()->set_level(to_level(level));
  return {};
}

void log_set_pid() { logger()->set_pattern(pattern()); }

std::string log_reopen() { return file_sink ? file_sink->reopen() : std::string(); }

void log_set_level(const std::string& level) { logger()->set_level(to_level(level)); }

namespace {

// One line per message: the control characters a message may carry from a client (a key,
// a task id, a record's field; "\n12345:M ... * forged" would start a line of its own)
// are written escaped, as \n, \r, \t or \xHH.
struct one_line {
  std::string_view msg;
  std::string escaped;
  explicit one_line(std::string_view m) : msg(m) {
    const auto control = [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; };
    if (std::none_of(m.begin(), m.end(), [&](char ch) { return control(static_cast<unsigned char>(ch)); })) return;
    for (const char c : m) {
      const auto ch = static_cast<unsigned char>(c);
      if (!control(ch)) escaped += c;
      else if (ch == '\n') escaped += "\\n";
      else if (ch == '\r') escaped += "\\r";
      else if (ch == '\t') escaped += "\\t";
      else {
        char b[8];
        std::snprintf(b, sizeof b, "\\x%02x", ch);
        escaped += b;
      }
    }
    msg = escaped;
  }
};

}  // namespace

void log_debug(std::string_view msg) {
  if (logger()->should_log(spdlog::level::trace)) logger()->trace(". {}", one_line(msg).msg);
}
void log_verbose(std::string_view msg) {
  if (logger()->should_log(spdlog::level::debug)) logger()->debug("- {}", one_line(msg).msg);
}
void log_notice(std::string_view msg) { logger()->info("* {}", one_line(msg).msg); }
void log_warning(std::string_view msg) { logger()->warn("# {}", one_line(msg).msg); }

}  // namespace respq::core
