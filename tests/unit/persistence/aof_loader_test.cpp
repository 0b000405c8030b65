// The AOF loader: valid files, torn tails (every cut point of the last record), corrupt
// records in the middle, MULTI without EXEC at the end.
#include <catch2/catch.hpp>

#include "persistence/aof_loader.hpp"
#include "persistence_fixture.hpp"

using namespace respq;
using test::cmd;

namespace {

core::config plain() {
  core::config c;
  c.queues.clear();
  return c;
}

std::string multi(std::initializer_list<std::string> cmds) {
  std::string out = cmd({"MULTI"});
  for (const auto& c : cmds) out += c;
  return out + cmd({"EXEC"});
}

const std::string prefix = cmd({"RPUSH", "q", "a", "b", "c"}) + cmd({"HSET", "h", "f1", "v1", "f2", "v2"}) +
                           cmd({"SET", "s", "hello\r\nworld"}) + cmd({"LPOP", "q"}) +
                           multi({cmd({"RPOP", "q"}), cmd({"HSET", "q:inflight", "id1", "{}"})});

}  // namespace

TEST_CASE("a valid file replays every command, MULTI blocks included", "[aof][loader]") {
  test::temp_dir d;
  test::write_file(d.file("appendonly.aof"), prefix);
  core::server s(plain());
  auto r = persistence::load_aof(s, d.file("appendonly.aof"), true);
  REQUIRE(r.error.empty());
  CHECK(r.found);
  CHECK_FALSE(r.truncated);
  CHECK(r.commands == 6);
  CHECK(r.size == prefix.size());
  test::fake_client c(s);
  CHECK(c({"LRANGE", "q", "0", "-1"}) == "*1\r\n$1\r\nb\r\n");
  CHECK(c({"HGET", "h", "f2"}) == "$2\r\nv2\r\n");
  CHECK(c({"GET", "s"}) == "$12\r\nhello\r\nworld\r\n");
  CHECK(c({"HEXISTS", "q:inflight", "id1"}) == ":1\r\n");
  CHECK_FALSE(s.loading());
}

TEST_CASE("SELECT moves the replay between databases, inside MULTI too", "[aof][loader]") {
  test::temp_dir d;
  const std::string file = cmd({"SET", "k", "zero"}) + cmd({"SELECT", "3"}) + cmd({"SET", "k", "three"}) +
                           multi({cmd({"RPUSH", "l", "a"}), cmd({"SELECT", "5"}), cmd({"RPUSH", "l", "b"})}) +
                           cmd({"SET", "after", "5"});
  test::write_file(d.file("appendonly.aof"), file);
  core::server s(plain());
  auto r = persistence::load_aof(s, d.file("appendonly.aof"), true);
  REQUIRE(r.error.empty());
  CHECK(r.ends_in_db == 5);
  CHECK(s.internal_client().db == 0);
  test::fake_client c(s);
  CHECK(c({"GET", "k"}) == "$4\r\nzero\r\n");
  CHECK(c({"SELECT", "3"}) == "+OK\r\n");
  CHECK(c({"GET", "k"}) == "$5\r\nthree\r\n");
  CHECK(c({"LRANGE", "l", "0", "-1"}) == "*1\r\n$1\r\na\r\n");
  CHECK(c({"SELECT", "5"}) == "+OK\r\n");
  CHECK(c({"LRANGE", "l", "0", "-1"}) == "*1\r\n$1\r\nb\r\n");
  CHECK(c({"GET", "after"}) == "$1\r\n5\r\n");
  // A server with fewer databases refuses the file rather than mix them up.
  core::config few = plain();
  few.databases = 4;
  core::server small(few);
  auto r2 = persistence::load_aof(small, d.file("appendonly.aof"), true);
  CHECK_THAT(r2.error, Catch::Contains("SELECT 5, but databases is 4"));
}

TEST_CASE("a missing file is an empty dataset and an empty file too", "[aof][loader]") {
  test::temp_dir d;
  core::server s(plain());
  auto r = persistence::load_aof(s, d.file("none.aof"), true);
  CHECK(r.error.empty());
  CHECK_FALSE(r.found);
  test::write_file(d.file("empty.aof"), "");
  r = persistence::load_aof(s, d.file("empty.aof"), true);
  CHECK(r.error.empty());
  CHECK(r.found);
  CHECK(s.db().size() == 0);
}

TEST_CASE("a torn last record is cut off at every byte offset, the rest is loaded", "[aof][loader]") {
  const std::string last = cmd({"RPUSH", "q", "late-element"});
  core::server ref(plain());
  test::temp_dir rd;
  test::write_file(rd.file("a.aof"), prefix);
  REQUIRE(persistence::load_aof(ref, rd.file("a.aof"), true).error.empty());
  const auto expected = test::dump(ref);
  for (std::size_t cut = 1; cut < last.size(); ++cut) {
    INFO("cut after " << cut << " bytes of the last record");
    test::temp_dir d;
    const std::string path = d.file("appendonly.aof");
    test::write_file(path, prefix + last.substr(0, cut));
    core::server s(plain());
    auto r = persistence::load_aof(s, path, true);
    REQUIRE(r.error.empty());
    CHECK(r.truncated);
    CHECK(r.size == prefix.size());
    CHECK(test::read_file(path) == prefix);
    CHECK(test::dump(s) == expected);
  }
}

TEST_CASE("with aof-load-truncated no a torn tail stops the start and names the offset", "[aof][loader]") {
  test::temp_dir d;
  const std::string path = d.file("appendonly.aof");
  const std::string bytes = prefix + cmd({"RPUSH", "q", "x"}).substr(0, 7);
  test::write_file(path, bytes);
  core::server s(plain());
  auto r = persistence::load_aof(s, path, false);
  CHECK_THAT(r.error, Catch::Contains("Unexpected end of file") && Catch::Contains(std::to_string(prefix.size())) &&
                          Catch::Contains("aof-load-truncated"));
  CHECK(test::read_file(path) == bytes);  // untouched
}

TEST_CASE("a MULTI without EXEC at the end is a torn tail: none of the block applies", "[aof][loader]") {
  const std::string open_block = cmd({"MULTI"}) + cmd({"RPOP", "q"}) + cmd({"HSET", "q:inflight", "id2", "{}"});
  for (std::size_t cut = 1; cut <= open_block.size(); ++cut) {
    INFO("block cut after " << cut << " bytes");
    test::temp_dir d;
    const std::string path = d.file("appendonly.aof");
    test::write_file(path, prefix + open_block.substr(0, cut));
    core::server s(plain());
    auto r = persistence::load_aof(s, path, true);
    REQUIRE(r.error.empty());
    CHECK(r.truncated);
    CHECK(test::read_file(path) == prefix);
    test::fake_client c(s);
    CHECK(c({"LLEN", "q"}) == ":1\r\n");
    CHECK(c({"HEXISTS", "q:inflight", "id2"}) == ":0\r\n");
  }
}

TEST_CASE("a corrupt record in the middle refuses the start, names the offset, leaves the file", "[aof][loader]") {
  const std::string tail = cmd({"RPUSH", "q", "after"});
  struct bad_case {
    const char* what;
    std::string bytes;
    const char* says;
  };
  const bad_case cases[] = {
      {"not an array", "+OK\r\n", "expected '*'"},
      {"bad bulk header", "*2\r\n$3\r\nDEL\r\nx1\r\n", "protocol error"},
      {"unknown command", cmd({"FROB", "q"}), "unknown command 'FROB'"},
      {"wrong arity", cmd({"LLEN", "q", "extra"}), "wrong number of arguments for 'llen'"},
      {"EXEC without MULTI", cmd({"EXEC"}), "EXEC without MULTI"},
      {"nested MULTI", cmd({"MULTI"}) + cmd({"MULTI"}), "MULTI inside MULTI"},
      {"empty command", "*0\r\n", "empty command"},
  };
  for (const auto& bc : cases) {
    INFO(bc.what);
    test::temp_dir d;
    const std::string path = d.file("appendonly.aof");
    const std::string bytes = prefix + bc.bytes + tail;
    test::write_file(path, bytes);
    core::server s(plain());
    auto r = persistence::load_aof(s, path, true);
    const std::size_t at = bc.what == std::string("nested MULTI") ? prefix.size() + cmd({"MULTI"}).size() : prefix.size();
    CHECK_THAT(r.error, Catch::Contains("Bad file format") && Catch::Contains("offset " + std::to_string(at)) &&
                            Catch::Contains(bc.says));
    CHECK(test::read_file(path) == bytes);
  }
}

TEST_CASE("an RDB preamble is refused with a clear message", "[aof][loader]") {
  test::temp_dir d;
  test::write_file(d.file("appendonly.aof"), "REDIS0009\xfa\x09redis-ver");
  core::server s(plain());
  auto r = persistence::load_aof(s, d.file("appendonly.aof"), true);
  CHECK_THAT(r.error, Catch::Contains("RDB preamble"));
}

TEST_CASE("loaded effects are not written back to the file", "[aof][loader]") {
  test::temp_dir d;
  test::write_file(d.file("appendonly.aof"), prefix);
  {
    test::aof_server a(test::aof_config(), d.path);
    REQUIRE(a.start_error.empty());
    a.turn();
    CHECK(a.aof.current_size() == prefix.size());
  }
  CHECK(test::read_file(d.file("appendonly.aof")) == prefix);
}
