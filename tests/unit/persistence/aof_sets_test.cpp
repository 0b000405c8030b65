// Sets in the AOF: what the set commands log (SPOP as SREMs or DEL, the *STORE commands
// as they are) replays to the same members and encodings, and a rewrite writes sets as
// SADD batches of 64 followed by their deadline.
#include <catch2/catch.hpp>

#include <random>

#include "persistence/aof_rewriter.hpp"
#include "persistence_fixture.hpp"

using namespace respq;
using test::cmd;

namespace {

void fill_sets(test::fake_client& c) {
  for (int i = 0; i < 300; ++i) c({"SADD", "ints", std::to_string(i * 3 - 100)});
  for (int i = 0; i < 700; ++i) c({"SADD", "big", std::to_string(i)});  // past 512: a hashtable
  for (int i = 0; i < 200; ++i) c({"SADD", "strs", "member:" + std::to_string(i)});
  c({"SADD", "bin", std::string("a\0b\r\n", 5), "", "x"});
  c({"SADD", "ttl", "a", "b"});
  c({"PEXPIRE", "ttl", "100000000"});
}

}  // namespace

TEST_CASE("sets survive an AOF restart: SADD, SREM, SPOP, SMOVE and the STORE commands", "[aof][sets]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(), d.path);
  test::fake_client c(a.s);
  fill_sets(c);
  c({"SREM", "strs", "member:1", "member:2", "nope"});
  c({"SPOP", "strs"});
  c({"SPOP", "ints", "7"});
  c({"SPOP", "big", "150"});
  for (int i = 0; i < 700; ++i) c({"SADD", "most", std::to_string(i)});
  c({"SPOP", "most", "650"});  // most of it: the 50 that stay are a new set, an intset
  c({"SADD", "gone", "1", "2"});
  c({"SPOP", "gone", "5"});  // the whole set: logged as DEL
  c({"SMOVE", "strs", "moved", "member:10"});
  c({"SUNIONSTORE", "u", "ints", "bin"});
  c({"SINTERSTORE", "i", "ints", "big"});
  c({"SDIFFSTORE", "dd", "strs", "missing"});
  c({"SINTERSTORE", "u2", "ints", "missing"});  // empty: nothing stored
  const std::string file = test::read_file(a.aof.path());
  CHECK(file.find("SPOP") == std::string::npos);
  CHECK(file.find(cmd({"DEL", "gone"})) != std::string::npos);
  const auto live = test::dump(a.s);
  CHECK(live.count("gone") == 0);
  CHECK(test::reload(d.path) == live);
  // The replay goes through the same conversions: the encodings match too.
  test::aof_server r(test::aof_config(), d.path);
  REQUIRE(r.start_error.empty());
  for (const char* k : {"ints", "big", "strs", "bin", "u", "i", "dd", "moved"}) {
    INFO(k);
    core::value* lv = a.s.db().peek(k);
    core::value* rv = r.s.db().peek(k);
    REQUIRE(lv);
    REQUIRE(rv);
    CHECK(std::string(lv->set().encoding_name()) == rv->set().encoding_name());
  }
  CHECK(std::string(a.s.db().peek("big")->set().encoding_name()) == "hashtable");
  // As Redis, SPOP logs the members it popped; the replay removes them from the table it
  // built, so the same 50 members come back as a hashtable (a replica of Redis's does too).
  CHECK(std::string(a.s.db().peek("most")->set().encoding_name()) == "intset");
  CHECK(std::string(r.s.db().peek("most")->set().encoding_name()) == "hashtable");
  CHECK(a.s.db().peek("most")->set().size() == 50);
  CHECK(std::string(a.s.db().peek("ints")->set().encoding_name()) == "intset");
}

TEST_CASE("a rewrite writes sets as SADD batches of 64 and replays to the same sets", "[aof][sets][rewrite]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(), d.path);
  test::fake_client c(a.s);
  fill_sets(c);
  for (int i = 0; i < 100; ++i) c({"SPOP", "big"});
  REQUIRE(c({"BGREWRITEAOF"}) == "+Background append only file rewriting started\r\n");
  REQUIRE(a.finish_rewrite());
  const std::string file = test::read_file(a.aof.path());
  CHECK(file.find("SPOP") == std::string::npos);
  CHECK(file.find("SREM") == std::string::npos);
  // 300 integers: 64 * 4 + 44; every SADD carries at most 64 members.
  std::size_t sadd = 0, pos = 0;
  while ((pos = file.find("$4\r\nSADD\r\n$4\r\nints\r\n", pos)) != std::string::npos) ++sadd, ++pos;
  CHECK(sadd == 5);
  CHECK(file.find("*66\r\n$4\r\nSADD\r\n") != std::string::npos);
  CHECK(file.find("*67\r\n$4\r\nSADD\r\n") == std::string::npos);
  CHECK(file.find("PEXPIREAT\r\n$3\r\nttl\r\n") != std::string::npos);
  CHECK(test::reload(d.path) == test::dump(a.s));
  // Appending goes on in the new file.
  c({"SADD", "strs", "after"});
  CHECK(test::reload(d.path) == test::dump(a.s));
}

TEST_CASE("set writes between the slices of a rewrite end up as they are live", "[aof][sets][rewrite]") {
  for (unsigned seed = 1; seed <= 6; ++seed) {
    INFO("seed " << seed);
    test::temp_dir d;
    test::aof_server a(test::aof_config(core::fsync_policy::everysec), d.path);
    a.aof.set_slice_budget(500);
    test::fake_client c(a.s);
    for (int k = 0; k < 8; ++k)
      for (int i = 0; i < 100; ++i) c({"SADD", "s" + std::to_string(k), (k % 2 ? "m" : "") + std::to_string(i)});
    REQUIRE(c({"BGREWRITEAOF"}) == "+Background append only file rewriting started\r\n");
    std::mt19937 rng(seed);
    auto key = [&] { return "s" + std::to_string(rng() % 9); };
    int ticks = 0;
    while (a.aof.rewrite_in_progress() && ticks < 5000) {
      switch (rng() % 8) {
        case 0: c({"SADD", key(), std::to_string(rng() % 1000)}); break;
        case 1: c({"SPOP", key(), std::to_string(rng() % 5)}); break;
        case 2: c({"SREM", key(), std::to_string(rng() % 100)}); break;
        case 3: c({"SMOVE", key(), key(), std::to_string(rng() % 100)}); break;
        case 4: c({"SUNIONSTORE", key(), key(), key()}); break;
        default:
          a.s.cron();
          a.s.before_write();
          ++ticks;
          if (ticks % 16 == 0) a.aof.wait_background();
      }
    }
    REQUIRE_FALSE(a.aof.rewrite_in_progress());
    a.aof.wait_background();
    CHECK(test::reload(d.path) == test::dump(a.s));
  }
}
