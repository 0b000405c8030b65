// Helpers for the persistence tests: a temp dir per test, a server with the AOF wired as
// respq-server wires it, and a dump of the whole keyspace to compare datasets.
#pragma once

#include <cstdio>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <memory>
#include <sstream>
#include <string>

#include "broker/core/server.hpp"
#include "persistence/aof.hpp"
#include "tests/unit/core/core_fixture.hpp"

namespace respq::test {

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/respq-aof-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
}

inline core::config aof_config(core::fsync_policy p = core::fsync_policy::always, bool with_tasks = false) {
  core::config c;
  if (!with_tasks) c.queues.clear();
  c.appendonly = true;
  c.appendfsync = p;
  return c;
}

// Every key as "type:contents" (lists and sorted sets in order, hashes and sets sorted),
// keyed by name (prefixed with "<n>/" in database n > 0).
inline std::map<std::string, std::string> dump(core::server& s) {
  std::map<std::string, std::string> out;
  for (int db = 0; db < s.db_count(); ++db)
  for (auto& [k, cv] : s.db(db).all()) {
    auto& v = const_cast<core::value&>(cv);
    std::string d;
    switch (v.type()) {
      case core::value_type::string: d = "string:" + v.str(); break;
      case core::value_type::list: {
        d = "list:";
        for (auto c = v.list().seek(0); c.valid(); c.next()) {
          d += std::to_string(c.value().size()) + ":";
          d += c.value();
          d += ",";
        }
        break;
      }
      case core::value_type::hash: {
        std::map<std::string, std::string> sorted;
        for (const auto& [f, x] : v.hash()) sorted.emplace(f, core::hash_text(f, x).view());
        d = "hash:";
        for (auto& [f, x] : sorted) d += f + "=" + x + ",";
        break;
      }
      case core::value_type::set: {
        std::set<std::string> sorted;
        v.set().for_each([&](std::string_view m) { sorted.emplace(m); });
        d = "set:";
        for (auto& m : sorted) d += m + ",";
        break;
      }
      case core::value_type::stream: {
        auto& st = v.stream();
        d = "stream:" + st.last_id.str() + "/" + std::to_string(st.entries_added) + "/" + st.max_deleted_id.str() + ":";
        st.range(core::stream_id{0, 0}, core::stream_id{UINT64_MAX, UINT64_MAX}, 0, false,
                 [&](const core::stream_value::entry& e) {
                   d += e.id.str() + "{";
                   for (const auto& [f, x] : e.fields) d += std::string(f) + "=" + std::string(x) + ",";
                   d += "}";
                   return true;
                 });
        break;
      }
      case core::value_type::zset: {
        // In order, with the score's exact bits (%a), so a rewrite that rounds shows.
        d = "zset:";
        v.zset().walk(0, v.zset().size(), false, [&](const core::zset_value::entry& e) {
          char buf[64];
          std::snprintf(buf, sizeof buf, "%a", e.score);
          d += std::string(e.member) + "=" + buf + ",";
        });
        break;
      }
    }
    out[db ? std::to_string(db) + "/" + k : k] = d;
  }
  return out;
}

// A server with an AOF in `dir`, started as services.cpp starts it.
struct aof_server {
  core::server s;
  persistence::aof aof;
  std::string start_error;
  aof_server(core::config cfg, const std::string& dir) : s(std::move(cfg)), aof(s, dir) { start_error = aof.start(); }
  // One loop turn with no input: effects of timers and task results reach the sinks.
  void turn() { s.before_write(); }
  // Cron ticks until the rewrite finished (fails the test after many ticks).
  bool finish_rewrite(int max_ticks = 10000) {
    for (int i = 0; i < max_ticks && aof.rewrite_in_progress(); ++i) {
      s.cron();
      s.before_write();
      if (i % 8 == 7) aof.wait_background();
    }
    return !aof.rewrite_in_progress();
  }
};

// Loads the AOF of `dir` into a fresh server and returns its dataset.
inline std::map<std::string, std::string> reload(const std::string& dir, core::config cfg = aof_config()) {
  aof_server r(std::move(cfg), dir);
  if (!r.start_error.empty()) return {{"<error>", r.start_error}};
  return dump(r.s);
}

}  // namespace respq::test
