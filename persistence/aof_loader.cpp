// aof_loader: see aof_loader.hpp.
#include "persistence/aof_loader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string_view>
#include <vector>

#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "persistence/file_util.hpp"
#include "resp/request_parser.hpp"

namespace respq::persistence {

namespace {

// A read-only mapping of the whole file: the parser's views point into it, so a MULTI
// block can be held without copying its arguments.
struct mapped_file {
  const char* data = nullptr;
  std::size_t size = 0;
  ~mapped_file() {
    if (data) ::munmap(const_cast<char*>(data), size);
  }
};

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char ch : s.substr(0, 64)) {
    if (ch >= 32 && ch < 127) out += static_cast<char>(ch);
    else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", ch);
      out += b;
    }
  }
  return out;
}

// Runs one loaded command. The internal client is in exec mode, so a blocking command
// (never written by respq, but a hand-made file may hold one) does not block.
void apply(core::server& s, const core::command_def& def, std::span<const std::string_view> args) {
  core::client& c = s.internal_client();
  s.call(c, def, args);
  c.out.clear();
}

}  // namespace

load_result load_aof(core::server& s, const std::string& path, bool allow_truncated) {
  load_result res;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return res;
    res.error = "Fatal error: can't open the append only file " + path + " for reading: " + error_text(errno);
    return res;
  }
  res.found = true;
  long long size = file_size(fd);
  if (size < 0) {
    res.error = "Fatal error: can't stat the append only file " + path + ": " + error_text(errno);
    ::close(fd);
    return res;
  }
  res.original_size = res.size = static_cast<std::uint64_t>(size);
  mapped_file m;
  if (size > 0) {
    void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      res.error = "Fatal error: can't map the append only file " + path + ": " + error_text(errno);
      ::close(fd);
      return res;
    }
    ::madvise(p, static_cast<std::size_t>(size), MADV_SEQUENTIAL);
    m.data = static_cast<const char*>(p);
    m.size = static_cast<std::size_t>(size);
  }
  ::close(fd);

  if (m.size >= 5 && std::string_view(m.data, 5) == "REDIS") {
    res.error = "Bad file format reading the append only file " + path +
                ": it starts with an RDB preamble, which respq can't read. In Redis, CONFIG SET "
                "aof-use-rdb-preamble no, then BGREWRITEAOF: its appendonlydir then holds a .base.aof of "
                "commands, which respq reads, followed by the .incr.aof files (concatenated into one file, in "
                "the manifest's order)";
    return res;
  }

  const auto started = std::chrono::steady_clock::now();
  core::client& fake = s.internal_client();
  const bool was_in_exec = fake.in_exec;
  fake.in_exec = true;
  s.set_loading(true);

  resp::parser_limits limits;
  limits.max_bulk_len = s.cfg().proto_max_bulk_len;
  limits.nul_is_error = true;  // corrupt, not a file cut short
  resp::request_parser parser(limits);
  std::size_t off = 0;
  std::size_t good = 0;                  // end of the last command fully applied
  bool in_multi = false;
  struct held {
    const core::command_def* def;
    std::vector<std::string_view> args;
  };
  std::vector<held> block;
  std::string corrupt;  // what is wrong at `off`
  bool torn = false;
  std::uint64_t since_flush = 0;

  while (off < m.size) {
    if (m.data[off] != '*') {
      corrupt = "expected '*' (a RESP array), got '" + printable(std::string_view(m.data + off, 1)) + "'";
      break;
    }
    parser.reset();
    auto st = parser.parse(m.data + off, m.size - off);
    if (st == resp::request_parser::status::incomplete) {
      torn = true;
      break;
    }
    if (st == resp::request_parser::status::error) {
      corrupt = "protocol error: " + printable(parser.error());
      break;
    }
    auto args = parser.args();
    const std::size_t next = off + parser.consumed();
    if (args.empty()) {
      corrupt = "an empty command";
      break;
    }
    const core::command_def* def = s.lookup(args[0]);
    if (!def) {
      corrupt = "unknown command '" + printable(args[0]) + "'";
      break;
    }
    const int argc = static_cast<int>(args.size());
    if ((def->arity > 0 && argc != def->arity) || argc < -def->arity) {
      corrupt = "wrong number of arguments for '" + std::string(def->name) + "'";
      break;
    }
    if (def->name == "select") {
      // A database this server does not have: the file was written with a larger
      // `databases`; replaying on would put its keys in the wrong database.
      long long db = -1;
      if (!string2ll(args[1], db) || db < 0 || db >= s.db_count()) {
        corrupt = "SELECT " + printable(args[1]) + ", but databases is " + std::to_string(s.db_count()) +
                  " (start with a larger databases setting)";
        break;
      }
    }
    if (def->name == "multi") {
      if (in_multi) {
        corrupt = "MULTI inside MULTI";
        break;
      }
      in_multi = true;
    } else if (def->name == "exec") {
      if (!in_multi) {
        corrupt = "EXEC without MULTI";
        break;
      }
      for (auto& h : block) apply(s, *h.def, h.args);
      res.commands += block.size();
      since_flush += block.size();
      block.clear();
      in_multi = false;
    } else if (def->name == "discard") {
      if (!in_multi) {
        corrupt = "DISCARD without MULTI";
        break;
      }
      block.clear();
      in_multi = false;
    } else if (in_multi) {
      block.push_back({def, std::vector<std::string_view>(args.begin(), args.end())});
    } else {
      apply(s, *def, args);
      ++res.commands;
      ++since_flush;
    }
    off = next;
    if (!in_multi) good = off;
    // The effects of loaded commands go nowhere (no sink is registered yet); dropping
    // them as we go keeps memory flat on a large file.
    if (since_flush >= 1024) {
      s.stream().flush();
      since_flush = 0;
    }
  }
  if (off >= m.size && in_multi) torn = true;  // MULTI without EXEC at the end
  if (!s.stream().empty()) s.stream().flush();
  s.set_loading(false);
  fake.in_exec = was_in_exec;
  // The file's SELECTs moved the internal client; it serves internal calls in database 0.
  res.ends_in_db = fake.db;
  fake.db = 0;

  if (!corrupt.empty()) {
    res.error = "Bad file format reading the append only file " + path + " at byte offset " + std::to_string(off) +
                " (of " + std::to_string(m.size) + "): " + corrupt +
                ". The file is corrupt there, not just cut short: make a backup of it, then repair or remove "
                "that record (everything before offset " +
                std::to_string(off) + " is valid) and restart";
    return res;
  }
  if (torn) {
    const std::string what = in_multi ? "a MULTI block without its EXEC starts at offset " + std::to_string(good)
                                      : "the last command, from offset " + std::to_string(good) + ", is incomplete";
    if (!allow_truncated) {
      res.error = "Unexpected end of file reading the append only file " + path + " (" + what + ", file size " +
                  std::to_string(m.size) + "). You can: 1) Make a backup of your AOF file, then truncate it at offset " +
                  std::to_string(good) +
                  ". 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart "
                  "the server.";
      return res;
    }
    core::log_warning("!!! Warning: short read while loading the AOF file " + path + "!!! (" + what +
                      ", file size " + std::to_string(m.size) + ")");
    core::log_warning("!!! Truncating the AOF " + path + " at offset " + std::to_string(good) + " !!!");
    if (::truncate(path.c_str(), static_cast<off_t>(good)) != 0) {
      res.error = "Error truncating the AOF file " + path + " at offset " + std::to_string(good) + ": " +
                  error_text(errno);
      return res;
    }
    core::log_warning("AOF " + path + " loaded anyway because aof-load-truncated is enabled (" +
                      std::to_string(m.size - good) + " bytes dropped at offset " + std::to_string(good) + ")");
    res.truncated = true;
    res.size = good;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", secs);
  core::log_notice("DB loaded from append only file: " + std::string(buf) + " seconds (" +
                   std::to_string(res.commands) + " commands, " + std::to_string(res.size) + " bytes)");
  return res;
}

}  // namespace respq::persistence
