// MIGRATE through the core, its target a scripted stand-in (what the command writes is
// recorded, each reply line or failure is given in turn): the bytes sent (AUTH, SELECT
// only when the database changes, RESTORE with the TTL left), Redis's replies and
// errors, the one retry on a connection found closed, no retry after a time-out, the keys
// deleted and logged as one DEL, COPY logging nothing, and no connection at all.
#include <catch2/catch.hpp>

#include <cerrno>
#include <deque>
#include <map>
#include <memory>

#include "broker/core/migrate.hpp"
#include "core_fixture.hpp"

using namespace respq;
using test::capture_sink;
using test::fake_client;

namespace {

// What the stand-in answers: a reply line, or a failed read with this errno.
struct step {
  std::string line;
  int fail = 0;
  bool bare = false;  // a line feed alone
};

struct script {
  std::deque<step> replies;
  std::vector<std::string> written;  // each write_all, in order
  int connects = 0, closes = 0;
  bool refuse = false;                // no connection can be made
  int fail_writes = 0;                // the next writes fail (EPIPE)
};

class scripted_target final : public core::migrate_target {
 public:
  explicit scripted_target(script& s) : s_(s) {}
  bool write_all(std::string_view data, long long) override {
    if (s_.fail_writes > 0) {
      --s_.fail_writes;
      errno = EPIPE;
      return false;
    }
    s_.written.emplace_back(data);
    return true;
  }
  long read_line(std::string& line, long long) override {
    if (s_.replies.empty()) {
      errno = ETIMEDOUT;
      return -1;
    }
    step st = s_.replies.front();
    s_.replies.pop_front();
    if (st.fail) {
      errno = st.fail;
      return -1;
    }
    line = st.line;
    return st.bare ? 0 : static_cast<long>(line.size()) + 1;  // (its CR counted)
  }

 private:
  script& s_;
};

class scripted_connections final : public core::migrate_connections {
 public:
  explicit scripted_connections(script& s) : s_(s) {}
  core::migrate_target* get(std::string_view, std::string_view, long long, std::int64_t) override {
    if (!target_) {
      if (s_.refuse) return nullptr;
      ++s_.connects;
      target_ = std::make_unique<scripted_target>(s_);
    }
    return target_.get();
  }
  void close(std::string_view, std::string_view) override {
    if (target_) ++s_.closes;
    target_.reset();
  }
  void close_idle(std::int64_t) override {}
  std::size_t size() const override { return target_ ? 1 : 0; }

 private:
  script& s_;
  std::unique_ptr<scripted_target> target_;
};

core::config quiet_config() {
  core::config c;
  c.queues.clear();
  return c;
}

struct fixture {
  script sc;
  core::server s{quiet_config()};
  capture_sink sink;
  fake_client c{s};
  fixture() {
    s.set_migrate_connections(std::make_unique<scripted_connections>(sc));
    s.stream().add_sink(&sink);
  }
};

}  // namespace

TEST_CASE("MIGRATE sends SELECT once, RESTORE per key, and deletes what the target took", "[core][migrate]") {
  fixture f;
  f.c({"SET", "a", "1"});
  f.c({"SET", "b", "2"});
  f.c({"SET", "c", "3"});
  f.sink.bytes.clear();
  f.sc.replies = {{"+OK"}, {"+OK"}, {"-BUSYKEY Target key name already exists."}};
  CHECK(f.c({"MIGRATE", "h", "1", "", "4", "1000", "KEYS", "a", "nope", "b"}) ==
        "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n");
  REQUIRE(f.sc.written.size() == 1);
  const std::string& w = f.sc.written[0];
  CHECK(w.starts_with(test::cmd({"SELECT", "4"}) + "*4\r\n$7\r\nRESTORE\r\n$1\r\na\r\n$1\r\n0\r\n"));
  CHECK(w.find("$7\r\nRESTORE\r\n$1\r\nb\r\n") != std::string::npos);
  CHECK(w.find("nope") == std::string::npos);
  // "a" went; "b" was refused and stays; logged as DEL of "a" alone.
  CHECK(f.c({"EXISTS", "a", "b"}) == ":1\r\n");
  CHECK(f.sink.bytes == test::cmd({"DEL", "a"}));
  // A target error forgets the selected database: SELECT again next time.
  f.sc.replies = {{"+OK"}, {"+OK"}};
  CHECK(f.c({"MIGRATE", "h", "1", "c", "4", "1000", "COPY"}) == "+OK\r\n");
  CHECK(f.sc.written[1].starts_with(test::cmd({"SELECT", "4"})));
  CHECK(f.c({"GET", "c"}) == "$1\r\n3\r\n");
  CHECK(f.sink.bytes == test::cmd({"DEL", "a"}));  // COPY: nothing logged
  // Same database, all well: no SELECT, and REPLACE and AUTH2 in the commands.
  f.sc.replies = {{"+OK"}, {"+OK"}};
  CHECK(f.c({"MIGRATE", "h", "1", "c", "4", "1000", "REPLACE", "AUTH2", "u", "pw"}) == "+OK\r\n");
  CHECK(f.sc.written[2].starts_with(test::cmd({"AUTH", "u", "pw"}) + "*5\r\n$7\r\nRESTORE\r\n"));
  CHECK(f.sc.written[2].ends_with("$7\r\nREPLACE\r\n"));
  CHECK(f.c({"EXISTS", "c"}) == ":0\r\n");
  CHECK(f.c({"INFO", "stats"}).find("migrate_cached_sockets:1\r\n") != std::string::npos);
}

TEST_CASE("MIGRATE carries the time to live left", "[core][migrate]") {
  fixture f;
  f.c({"SET", "t", "v", "PX", "50000"});
  f.sc.replies = {{"+OK"}, {"+OK"}};
  CHECK(f.c({"MIGRATE", "h", "1", "t", "0", "1000"}) == "+OK\r\n");
  const std::string& w = f.sc.written.at(0);
  const std::string head = "$7\r\nRESTORE\r\n$1\r\nt\r\n$5\r\n";
  const auto at = w.find(head);
  REQUIRE(at != std::string::npos);
  const long long ttl = std::stoll(w.substr(at + head.size(), 5));
  CHECK(ttl > 40000);
  CHECK(ttl <= 50000);
}

TEST_CASE("MIGRATE retries once on a connection found closed, never after a time-out", "[core][migrate]") {
  fixture f;
  f.c({"SET", "k", "v"});
  // The first read finds the connection closed: a new connection, the same commands.
  f.sc.replies = {{"", ECONNRESET}, {"+OK"}, {"+OK"}};
  CHECK(f.c({"MIGRATE", "h", "1", "k", "0", "1000", "COPY"}) == "+OK\r\n");
  CHECK(f.sc.connects == 2);
  CHECK(f.sc.closes == 1);
  REQUIRE(f.sc.written.size() == 2);
  CHECK(f.sc.written[0] == f.sc.written[1]);
  // Closed twice: the error, and the connection dropped.
  f.sc.replies = {{"", ECONNRESET}, {"", ECONNRESET}};
  CHECK(f.c({"MIGRATE", "h", "1", "k", "9", "1000"}) == "-IOERR error or timeout reading to target instance\r\n");
  CHECK(f.sc.connects == 3);
  CHECK(f.c({"EXISTS", "k"}) == ":1\r\n");
  // A time-out is not retried.
  f.sc.replies = {{"+OK"}};  // SELECT answered, RESTORE never
  const int before = f.sc.connects;
  CHECK(f.c({"MIGRATE", "h", "1", "k", "3", "1000"}) == "-IOERR error or timeout reading to target instance\r\n");
  CHECK(f.sc.connects == before + 1);
  CHECK(f.c({"INFO", "stats"}).find("migrate_cached_sockets:0\r\n") != std::string::npos);
  // A bare line feed is no reply (Redis's syncReadLine reads 0 bytes): the key stays.
  f.sc.replies = {{"+OK"}, {"", 0, true}, {"+OK"}, {"", 0, true}};
  CHECK(f.c({"MIGRATE", "h", "1", "k", "5", "1000"}) == "-IOERR error or timeout reading to target instance\r\n");
  CHECK(f.c({"EXISTS", "k"}) == ":1\r\n");
  // Writes failing twice: "writing".
  f.sc.fail_writes = 2;
  CHECK(f.c({"MIGRATE", "h", "1", "k", "3", "1000"}) == "-IOERR error or timeout writing to target instance\r\n");
}

TEST_CASE("MIGRATE answers Redis's argument errors and NOKEY before connecting", "[core][migrate]") {
  fixture f;
  f.c({"SET", "k", "v"});
  CHECK(f.c({"MIGRATE", "h", "1", "k", "0", "1000", "KEYS", "k"}) ==
        "-ERR When using MIGRATE KEYS option, the key argument must be set to the empty string\r\n");
  CHECK(f.c({"MIGRATE", "h", "1", "k", "0", "1000", "AUTH"}) == "-ERR syntax error\r\n");
  CHECK(f.c({"MIGRATE", "h", "1", "k", "0", "1000", "AUTH2", "u"}) == "-ERR syntax error\r\n");
  CHECK(f.c({"MIGRATE", "h", "1", "k", "x", "1000"}) == "-ERR value is not an integer or out of range\r\n");
  CHECK(f.c({"MIGRATE", "h", "1", "k", "0", "x"}) == "-ERR value is not an integer or out of range\r\n");
  CHECK(f.c({"MIGRATE", "h", "1", "nope", "0", "1000"}) == "+NOKEY\r\n");
  CHECK(f.sc.connects == 0);
  f.sc.refuse = true;
  CHECK(f.c({"MIGRATE", "h", "1", "k", "0", "1000"}) == "-IOERR error or timeout connecting to the client\r\n");
  // A target's AUTH error is the one replied.
  f.sc.refuse = false;
  f.sc.replies = {{"-WRONGPASS invalid username-password pair or user is disabled."}, {"+OK"}, {"+OK"}};
  CHECK(f.c({"MIGRATE", "h", "1", "k", "0", "1000", "AUTH", "pw"}) ==
        "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n");
  CHECK(f.c({"EXISTS", "k"}) == ":1\r\n");
  // A target's error text up to a NUL byte, as Redis's %s (here SELECT's, told with the
  // first RESTORE reply).
  f.sc.replies = {{std::string("-ERR a\0b", 8)}, {"+OK"}};
  CHECK(f.c({"MIGRATE", "h", "1", "k", "0", "1000"}) == "-ERR Target instance replied with error: ERR a\r\n");
  // The lookups count as reads (keyspace_hits and keyspace_misses).
  f.c({"CONFIG", "RESETSTAT"});
  f.sc.replies = {{"+OK"}, {"+OK"}};
  f.c({"MIGRATE", "h", "1", "", "0", "1000", "COPY", "KEYS", "k", "nope"});
  const std::string stats = f.c({"INFO", "stats"});
  CHECK(stats.find("keyspace_hits:1\r\n") != std::string::npos);
  CHECK(stats.find("keyspace_misses:1\r\n") != std::string::npos);
}

TEST_CASE("MIGRATE without a network cannot connect", "[core][migrate]") {
  core::server s(quiet_config());
  fake_client c(s);
  c({"SET", "k", "v"});
  CHECK(c({"MIGRATE", "h", "1", "k", "0", "1000"}) == "-IOERR error or timeout connecting to the client\r\n");
  CHECK(c({"INFO", "stats"}).find("migrate_cached_sockets:0\r\n") != std::string::npos);
}
