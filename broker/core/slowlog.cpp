// slowlog: entries and the SLOWLOG command. See slowlog.hpp.
#include "broker/core/slowlog.hpp"

#include <chrono>
#include <strings.h>

#include "broker/core/commands.hpp"
#include "broker/core/config.hpp"

namespace respq::core {

namespace {

// Whether an http-queue value names a signing secret: one of its words, split as CONFIG
// SET splits it (quotes and escapes undone), is the option in any case; a value that does
// not split counts too. The whole value is then shown redacted, as Redis redacts a
// sensitive setting's value.
bool has_signing_secret(std::string_view v) {
  const auto words = split_args(v);
  if (!words) return true;
  for (const auto& w : *words)
    if (iequals(w, "signing-secret")) return true;
  return false;
}

}  // namespace

std::vector<bool> redacted_args(std::span<const std::string_view> args) {
  std::vector<bool> r(args.size(), false);
  if (args.empty()) return r;
  if (iequals(args[0], "auth")) {
    if (args.size() <= 3)  // longer: a syntax error, replied before redacting
      for (std::size_t i = 1; i < args.size(); ++i) r[i] = true;
  } else if (iequals(args[0], "hello")) {
    // As helloCommand parses: a protocol version it takes (2 or 3), then its options in
    // order (SETNAME's argument skipped), up to the first it refuses.
    long long ver = 0;
    if (args.size() < 2 || !string2ll(args[1], ver) || ver < 2 || ver > 3) return r;
    for (std::size_t j = 2; j < args.size(); ++j) {
      const std::size_t more = args.size() - 1 - j;
      if (iequals(args[j], "auth") && more >= 2) {
        r[j + 1] = r[j + 2] = true;
        j += 2;
      } else if (iequals(args[j], "setname") && more >= 1) {
        ++j;
      } else {
        break;
      }
    }
  } else if (iequals(args[0], "migrate")) {
    // Its AUTH password and AUTH2 pair, as its option parser meets them.
    for (std::size_t j = 6; j < args.size(); ++j) {
      const std::size_t more = args.size() - 1 - j;
      if (iequals(args[j], "auth") && more >= 1) {
        r[++j] = true;
      } else if (iequals(args[j], "auth2") && more >= 2) {
        r[j + 1] = r[j + 2] = true;
        j += 2;
      } else if (!iequals(args[j], "copy") && !iequals(args[j], "replace")) {
        break;  // KEYS, or a syntax error
      }
    }
  } else if (iequals(args[0], "config") && args.size() >= 4 && iequals(args[1], "set")) {
    for (std::size_t i = 2; i + 1 < args.size(); i += 2)
      if (iequals(args[i], "requirepass") || iequals(args[i], "upstream-password") ||
          iequals(args[i], "masterauth") || iequals(args[i], "masteruser") ||
          (iequals(args[i], "http-queue") && has_signing_secret(args[i + 1])))
        r[i + 1] = true;
  }
  return r;
}

std::vector<std::string> slowlog::logged_args(std::span<const std::string_view> args) {
  const std::vector<bool> red = redacted_args(args);
  const std::size_t argc = args.size();
  const std::size_t n = argc > max_argc ? max_argc : argc;
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t j = 0; j < n; ++j) {
    if (n != argc && j == n - 1) {
      out.push_back("... (" + std::to_string(argc - n + 1) + " more arguments)");
    } else if (red[j]) {
      out.emplace_back("(redacted)");
    } else if (args[j].size() > max_string) {
      std::string s(args[j].substr(0, max_string));
      s += "... (" + std::to_string(args[j].size() - max_string) + " more bytes)";
      out.push_back(std::move(s));
    } else {
      out.emplace_back(args[j]);
    }
  }
  return out;
}

void slowlog::push(std::span<const std::string_view> args, std::int64_t duration_us, std::string peer,
                   std::string name, std::size_t max_len) {
  push_logged(logged_args(args), duration_us, std::move(peer), std::move(name), max_len);
}

void slowlog::push_logged(std::vector<std::string> logged, std::int64_t duration_us, std::string peer,
                          std::string name, std::size_t max_len) {
  slowlog_entry e;
  e.id = next_id_++;
  e.time = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
               .count();
  e.duration_us = duration_us;
  e.argv = std::move(logged);
  e.peer = std::move(peer);
  e.name = std::move(name);
  entries_.push_front(std::move(e));
  while (entries_.size() > max_len) entries_.pop_back();
}

void cmd_slowlog(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  if (a.size() == 2 && sub == "help") {
    static const char* lines[] = {
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help."};
    help_reply(s, c, lines);
  } else if (a.size() == 2 && sub == "reset") {
    s.slow_log().reset();
    s.reply(c).ok();
  } else if (a.size() == 2 && sub == "len") {
    s.reply(c).integer(static_cast<long long>(s.slow_log().size()));
  } else if ((a.size() == 2 || a.size() == 3) && sub == "get") {
    long long count = 10;
    if (a.size() == 3) {
      // getRangeLongFromObjectOrReply: one message for a non-integer and for a number
      // out of range.
      if (!string2ll(a[2], count) || count < -1) {
        s.add_error(c, "ERR count should be greater than or equal to -1");
        return;
      }
    }
    const auto& entries = s.slow_log().entries();
    const std::size_t n = count == -1 ? entries.size() : std::min<std::size_t>(entries.size(), static_cast<std::size_t>(count));
    auto w = s.reply(c);
    w.array(n);
    for (std::size_t i = 0; i < n; ++i) {
      const slowlog_entry& e = entries[i];
      w.array(6);
      w.integer(static_cast<long long>(e.id));
      w.integer(e.time);
      w.integer(e.duration_us);
      w.array(e.argv.size());
      for (const auto& arg : e.argv) w.bulk(arg);
      w.bulk(e.peer);
      w.bulk(e.name);
    }
  } else {
    subcommand_syntax_error(s, c, a);
  }
}

}  // namespace respq::core
