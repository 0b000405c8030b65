// The AOF rewrite: load(rewrite(state)) == state, with writes arriving between the
// slices of a rewrite (the copy-on-write hook), FLUSHALL in the middle, automatic
// rewrites, and CONFIG SET appendonly yes creating the file.
#include <catch2/catch.hpp>

#include <array>
#include <random>

#include "persistence/aof_rewriter.hpp"
#include "persistence_fixture.hpp"

using namespace respq;
using test::cmd;

namespace {

void fill(test::fake_client& c, int lists, int per_list) {
  for (int l = 0; l < lists; ++l) {
    std::string key = "list" + std::to_string(l);
    for (int i = 0; i < per_list; ++i) c({"RPUSH", key, "element-" + std::to_string(l) + "-" + std::to_string(i)});
  }
  c({"HSET", "h", "a", "1", "b", "2"});
  c({"SET", "str", std::string("bin\0ary\r\n", 9)});
}

}  // namespace

TEST_CASE("a rewrite compacts the file to the live data and replays to the same state", "[aof][rewrite]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(), d.path);
  test::fake_client c(a.s);
  fill(c, 3, 200);
  for (int i = 0; i < 150; ++i) c({"LPOP", "list0"});
  for (int i = 0; i < 100; ++i) c({"HSET", "big", "f" + std::to_string(i), std::string(50, 'x')});
  const std::size_t before = a.aof.current_size();
  CHECK(c({"BGREWRITEAOF"}) == "+Background append only file rewriting started\r\n");
  CHECK(c({"BGREWRITEAOF"}) == "-ERR Background append only file rewriting already in progress\r\n");
  REQUIRE(a.finish_rewrite());
  CHECK(a.aof.current_size() < before);
  const std::string file = test::read_file(a.aof.path());
  CHECK(file.find("LPOP") == std::string::npos);
  CHECK(file.find("*52\r\n$5\r\nRPUSH\r\n$5\r\nlist0\r\n$13\r\nelement-0-150\r\n") != std::string::npos);
  CHECK(file.find("element-0-149") == std::string::npos);
  CHECK(test::reload(d.path) == test::dump(a.s));
  CHECK_THAT(c({"INFO", "persistence"}), Catch::Contains("aof_rewrites:1\r\n"));
  // Appending goes on in the new file.
  c({"RPUSH", "list1", "after"});
  CHECK(test::reload(d.path) == test::dump(a.s));
}

TEST_CASE("writes between the slices of a rewrite: every key ends up as it is live", "[aof][rewrite]") {
  for (unsigned seed = 1; seed <= 12; ++seed) {
    INFO("seed " << seed);
    test::temp_dir d;
    test::aof_server a(test::aof_config(core::fsync_policy::everysec), d.path);
    a.aof.set_slice_budget(700);  // a few RPUSH batches per slice: lists split across slices
    test::fake_client c(a.s), waiter(a.s);
    fill(c, 8, 150);
    REQUIRE(c({"BGREWRITEAOF"}) == "+Background append only file rewriting started\r\n");
    std::mt19937 rng(seed);
    auto key = [&] { return "list" + std::to_string(rng() % 10); };
    int ticks = 0;
    while (a.aof.rewrite_in_progress() && ticks < 5000) {
      switch (rng() % 12) {
        case 0: c({"LPUSH", key(), "new" + std::to_string(rng())}); break;
        case 1: c({"RPOP", key()}); break;
        case 2: c({"DEL", key()}); break;
        case 3: c({"RENAME", key(), key()}); break;
        case 4: c({"LMOVE", key(), key(), "LEFT", "RIGHT"}); break;
        case 5: c({"HSET", "h", "f" + std::to_string(rng() % 5), std::to_string(rng())}); break;
        case 6: c({"LSET", key(), "0", "changed"}); break;
        case 7: c({"LTRIM", key(), "1", "-2"}); break;
        case 8:
          // A blocking pop served by a later push (its effect is an RPOP).
          waiter({"BRPOP", "blk", "0"});
          c.send_raw(cmd({"RPUSH", "blk", "v1", "v2"}) + cmd({"RPUSH", key(), "x"}));
          waiter.take();
          break;
        case 9:
          if (seed % 4 == 0 && rng() % 8 == 0) c({"FLUSHALL"});
          else c({"SET", "str", std::to_string(rng())});
          break;
        default:
          a.s.cron();
          a.s.before_write();
          ++ticks;
          if (ticks % 16 == 0) a.aof.wait_background();
      }
    }
    REQUIRE_FALSE(a.aof.rewrite_in_progress());
    c({"RPUSH", "list3", "after-switch"});
    a.aof.wait_background();
    CHECK(test::reload(d.path) == test::dump(a.s));
  }
}

TEST_CASE("a rewrite walks every database, writes, MOVE, SWAPDB and FLUSHDB between its slices", "[aof][rewrite]") {
  for (unsigned seed = 1; seed <= 12; ++seed) {
    INFO("seed " << seed);
    test::temp_dir d;
    test::aof_server a(test::aof_config(core::fsync_policy::everysec), d.path);
    a.aof.set_slice_budget(700);
    test::fake_client c(a.s), waiter(a.s);
    for (int db : {0, 1, 3, 7}) {
      c({"SELECT", std::to_string(db)});
      fill(c, 4, 120);
      c({"SET", "ttl", "v", "EX", "1000"});
    }
    c({"SELECT", "0"});
    REQUIRE(c({"BGREWRITEAOF"}) == "+Background append only file rewriting started\r\n");
    std::mt19937 rng(seed);
    auto key = [&] { return "list" + std::to_string(rng() % 5); };
    auto db = [&] { return std::to_string(std::array<int, 5>{0, 1, 3, 7, 9}[rng() % 5]); };
    int ticks = 0;
    while (a.aof.rewrite_in_progress() && ticks < 5000) {
      switch (rng() % 12) {
        case 0: c({"SELECT", db()}); break;
        case 1: c({"RPUSH", key(), "new" + std::to_string(rng())}); break;
        case 2: c({"LPOP", key()}); break;
        case 3: c({"MOVE", key(), db()}); break;
        case 4:
          if (rng() % 3 == 0) c({"SWAPDB", db(), db()});
          else c({"LMOVE", key(), key(), "LEFT", "RIGHT"});
          break;
        case 5: c({"HSET", "h", "f" + std::to_string(rng() % 5), std::to_string(rng())}); break;
        case 6:
          if (seed % 3 == 0 && rng() % 6 == 0) c({"FLUSHDB"});
          else c({"DEL", key()});
          break;
        case 7:
          // A client blocked in its own database, served by a push there.
        {
          // A key of its own each time: a list left from an earlier round would answer at once.
          const std::string in = db(), blk = "blk" + std::to_string(ticks) + "-" + std::to_string(rng() % 1000);
          waiter({"SELECT", in});
          c.send_raw(cmd({"SELECT", in}) + cmd({"DEL", blk}));
          waiter({"BRPOP", blk, "0"});
          c.send_raw(cmd({"RPUSH", blk, "v1", "v2"}));
          CHECK(waiter.take() == cmd({blk, "v2"}));  // (an array reply is encoded like a command)
          break;
        }
        case 8: {
          // A transaction that changes database in the middle.
          const std::string other = db();
          c.send_raw(cmd({"MULTI"}) + cmd({"RPUSH", key(), "tx"}) + cmd({"SELECT", other}) +
                     cmd({"LPOP", key()}) + cmd({"EXEC"}));
          c({"SELECT", other});
          break;
        }
        default:
          a.s.cron();
          a.s.before_write();
          ++ticks;
          if (ticks % 16 == 0) a.aof.wait_background();
      }
    }
    REQUIRE_FALSE(a.aof.rewrite_in_progress());
    c({"SELECT", "3"});
    c({"RPUSH", "list3", "after-switch"});
    a.aof.wait_background();
    CHECK(test::reload(d.path) == test::dump(a.s));
  }
}

TEST_CASE("a rewrite started with unflushed effects begins at the end of the batch", "[aof][rewrite]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(), d.path);
  test::fake_client c(a.s);
  c({"RPUSH", "q", "a"});
  // A pipeline: the push is not flushed when BGREWRITEAOF runs. Starting the snapshot
  // there would write the push twice (in the snapshot and as an effect).
  CHECK(c.send_raw(cmd({"RPUSH", "q", "b"}) + cmd({"BGREWRITEAOF"})) ==
        ":2\r\n+Background append only file rewriting started\r\n");
  REQUIRE(a.finish_rewrite());
  CHECK(test::read_file(a.aof.path()) == cmd({"RPUSH", "q", "a", "b"}));
}

TEST_CASE("FLUSHALL during a rewrite: pending keys need no snapshot", "[aof][rewrite]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(), d.path);
  a.aof.set_slice_budget(100);
  test::fake_client c(a.s);
  fill(c, 4, 50);
  c({"BGREWRITEAOF"});
  a.s.cron();  // one slice: some keys done, most pending
  c.send_raw(cmd({"FLUSHALL"}) + cmd({"RPUSH", "list2", "fresh"}));
  REQUIRE(a.finish_rewrite());
  CHECK(test::reload(d.path) == test::dump(a.s));
  CHECK(test::dump(a.s).size() == 1);
}

TEST_CASE("the rewriter serializes lists in RPUSH batches of 64 and hashes as HSET", "[aof][rewrite]") {
  core::config cfg;
  cfg.queues.clear();
  core::server s(cfg);
  test::fake_client c(s);
  for (int i = 0; i < 130; ++i) c({"RPUSH", "l", std::to_string(i)});
  c({"HSET", "h", "f", "v"});
  test::temp_dir d;
  persistence::aof_rewriter rw(s, d.file("tmp.aof"));
  REQUIRE(rw.open() == 0);
  while (!rw.slice(1 << 20)) {
  }
  REQUIRE(rw.flush() == 0);
  const std::string file = test::read_file(d.file("tmp.aof"));
  std::size_t rpush = 0, pos = 0;
  while ((pos = file.find("RPUSH", pos)) != std::string::npos) ++rpush, ++pos;
  CHECK(rpush == 3);  // 64 + 64 + 2
  CHECK(file.find("*66\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\n0\r\n") != std::string::npos);
  CHECK(file.find(cmd({"HSET", "h", "f", "v"})) != std::string::npos);
}

TEST_CASE("automatic rewrite when the file doubled and passed the minimum size", "[aof][rewrite]") {
  test::temp_dir d;
  core::config cfg = test::aof_config();
  cfg.auto_aof_rewrite_min_size = 4096;
  cfg.auto_aof_rewrite_percentage = 100;
  test::aof_server a(cfg, d.path);
  test::fake_client c(a.s);
  for (int i = 0; i < 200; ++i) {
    c({"SET", "k", std::string(40, 'a' + i % 26)});  // one key, rewritten many times
    a.s.cron();
  }
  REQUIRE(a.finish_rewrite());
  CHECK_THAT(c({"INFO", "persistence"}), !Catch::Contains("aof_rewrites:0\r\n"));
  CHECK(a.aof.current_size() < 4096 * 2 + 100);
  CHECK(test::reload(d.path) == test::dump(a.s));
}

TEST_CASE("CONFIG SET appendonly yes writes the dataset to a new file, then appends", "[aof][rewrite]") {
  test::temp_dir d;
  core::config cfg = test::aof_config();
  cfg.appendonly = false;
  test::aof_server a(cfg, d.path);
  test::fake_client c(a.s);
  fill(c, 2, 10);
  CHECK_THAT(c({"INFO", "persistence"}), Catch::Contains("aof_enabled:0\r\n"));
  CHECK_FALSE(a.s.stream().active());  // off: the stream encodes nothing for the AOF
  CHECK(c({"CONFIG", "SET", "appendonly", "yes"}) == "+OK\r\n");
  CHECK(a.s.stream().active());
  c({"RPUSH", "list0", "during"});
  REQUIRE(a.finish_rewrite());
  c({"RPUSH", "list1", "after"});
  CHECK_THAT(c({"INFO", "persistence"}), Catch::Contains("aof_enabled:1\r\n"));
  CHECK(test::reload(d.path) == test::dump(a.s));
  CHECK(c({"CONFIG", "SET", "appendonly", "no"}) == "+OK\r\n");
  c({"RPUSH", "list1", "not-logged"});
  CHECK(test::read_file(a.aof.path()).find("not-logged") == std::string::npos);
  a.s.cron();
  CHECK_FALSE(a.s.stream().active());
}

TEST_CASE("sorted sets survive a restart and a rewrite: ZADD batches of 64, exact scores, deadlines", "[aof][rewrite][zset]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(), d.path);
  test::fake_client c(a.s), waiter(a.s);
  for (int i = 0; i < 300; ++i) c({"ZADD", "big", std::to_string(i * 0.1), "m" + std::to_string(i)});
  c({"ZADD", "small", "0.1", "a", "1e-300", "b", "-inf", "c", "inf", "d", "3.3333333333333335", "e"});
  c({"ZINCRBY", "small", "0.2", "a"});
  c({"ZPOPMAX", "big", "5"});
  c({"ZMPOP", "1", "big", "MIN", "COUNT", "3"});
  c({"ZREMRANGEBYRANK", "big", "0", "9"});
  c({"ZUNIONSTORE", "u", "2", "big", "small"});
  c({"ZADD", "ttl", "1", "x"});
  c({"PEXPIRE", "ttl", "100000"});
  // A BZPOPMIN served after a ZADD is logged as ZPOPMIN.
  waiter({"BZPOPMIN", "bz", "0"});
  c({"ZADD", "bz", "1", "one", "2", "two"});
  a.turn();
  // Restart: the appended commands replay to the same state.
  CHECK(test::reload(d.path) == test::dump(a.s));
  CHECK(test::read_file(a.aof.path()).find("ZPOPMIN") != std::string::npos);
  REQUIRE(c({"BGREWRITEAOF"}) == "+Background append only file rewriting started\r\n");
  REQUIRE(a.finish_rewrite());
  const std::string file = test::read_file(a.aof.path());
  CHECK(file.find("ZPOPMAX") == std::string::npos);
  // 282 members of "big": 64-pair batches (2 + 128 arguments), then the rest.
  CHECK(file.find("*130\r\n$4\r\nZADD\r\n$3\r\nbig\r\n") != std::string::npos);
  CHECK(file.find("$19\r\n0.30000000000000004\r\n") != std::string::npos);
  CHECK(file.find("PEXPIREAT") != std::string::npos);
  CHECK(test::reload(d.path) == test::dump(a.s));
}
