// The AOF writer: group commit of effects, what is (not) persisted, write failures
// refusing writes with MISCONF until the disk takes bytes again, everysec and clean stop.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/resource.h>

#include "broker/core/task_manager.hpp"
#include "persistence_fixture.hpp"
#include "tasks/http_request.hpp"

using namespace respq;
using test::cmd;

TEST_CASE("effects are in the file, fsynced, before the turn's replies are released", "[aof][writer]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(), d.path);
  REQUIRE(a.start_error.empty());
  test::fake_client c(a.s);
  // fake_client runs before_write() (the group commit) before handing back replies.
  CHECK(c.send_raw(cmd({"LPUSH", "q", "a"}) + cmd({"LPUSH", "q", "b"}) + cmd({"LLEN", "q"})) ==
        ":1\r\n:2\r\n:2\r\n");
  CHECK(test::read_file(a.aof.path()) == cmd({"LPUSH", "q", "a"}) + cmd({"LPUSH", "q", "b"}));
  CHECK(a.aof.write_refusal().empty());
}

TEST_CASE("PUBLISH reaches the stream but never the file", "[aof][writer]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(), d.path);
  test::fake_client c(a.s);
  c({"PUBLISH", "ch", "m"});
  a.s.stream_publish("tasks:results", "{}");
  c({"SET", "k", "v"});
  CHECK(test::read_file(a.aof.path()) == cmd({"SET", "k", "v"}));
}

TEST_CASE("a served BRPOP is logged as RPOP and replays to the same state", "[aof][writer]") {
  test::temp_dir d;
  std::map<std::string, std::string> live;
  {
    test::aof_server a(test::aof_config(), d.path);
    test::fake_client consumer(a.s), producer(a.s), mover(a.s);
    consumer({"BRPOP", "q", "0"});
    mover({"BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"});
    producer.send_raw(cmd({"LPUSH", "q", "a", "b"}) + cmd({"RPUSH", "src", "x", "y"}));
    CHECK(consumer.take() == "*2\r\n$1\r\nq\r\n$1\r\na\r\n");
    CHECK(mover.take() == "$1\r\nx\r\n");
    const std::string file = test::read_file(a.aof.path());
    CHECK(file.find(cmd({"RPOP", "q"})) != std::string::npos);
    CHECK(file.find("BRPOP") == std::string::npos);
    CHECK(file.find(cmd({"LMOVE", "src", "dst", "LEFT", "RIGHT"})) != std::string::npos);
    live = test::dump(a.s);
  }
  CHECK(test::reload(d.path) == live);
}

TEST_CASE("HTTP task records (dispatch, retry, delivery, dead letter) replay to the same state", "[aof][writer]") {
  test::temp_dir d;
  core::config cfg = test::aof_config(core::fsync_policy::always, true);
  cfg.queues["tasks"].retries = 1;
  cfg.queues["tasks"].backoff_min = 1000;
  cfg.queues["tasks"].backoff_max = 1000;
  std::map<std::string, std::string> live;
  {
    test::aof_server a(cfg, d.path);
    std::vector<tasks::http_request> sent;
    a.s.tasks().submit = [&](std::vector<tasks::http_request>&& b) {
      for (auto& r : b) sent.push_back(std::move(r));
    };
    test::fake_client c(a.s);
    for (int i = 0; i < 4; ++i)
      c({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/t","id":"t)" + std::to_string(i) + R"("})"});
    c({"LPUSH", "tasks", "not a task"});
    REQUIRE(sent.size() == 4);
    auto result = [&](const tasks::http_request& r, long code) {
      tasks::http_result res;
      res.ticket = r.ticket;
      res.code = code;
      std::vector<tasks::http_result> v{res};
      a.s.tasks().on_results(std::move(v));
      a.turn();
    };
    result(sent[0], 200);  // delivered
    result(sent[1], 503);  // retrying, far in the future
    result(sent[2], 404);  // dead
    // sent[3] stays in flight
    live = test::dump(a.s);
    CHECK(live.count("tasks:dead"));
    CHECK(live.count("tasks:inflight"));
  }
  core::config reload_cfg = cfg;
  reload_cfg.queues.clear();  // a plain replay, without the task manager acting on it
  CHECK(test::reload(d.path, reload_cfg) == live);
}

namespace {

// An injected write failure: a file size limit makes write() fail with EFBIG (SIGXFSZ
// ignored), as a full disk makes it fail with ENOSPC.
struct file_size_limit {
  rlimit old{};
  explicit file_size_limit(rlim_t bytes) {
    ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old);
    rlimit l = old;
    l.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &l);
  }
  void lift() { ::setrlimit(RLIMIT_FSIZE, &old); }
  ~file_size_limit() { lift(); }
};

}  // namespace

TEST_CASE("always: a failed write withholds the reply, refuses writes with MISCONF, keeps reads, recovers",
          "[aof][writer]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(core::fsync_policy::always), d.path);
  test::fake_client c(a.s), other(a.s);
  CHECK(c({"RPUSH", "q", "acked"}) == ":1\r\n");
  const std::size_t good = a.aof.current_size();
  file_size_limit limit(good + 8);
  // The write of this turn fails: the client gets no reply, and its connection is closed.
  CHECK(c({"RPUSH", "q", "x-unacknowledged-element"}) == "");
  CHECK(c.c->close_asap);
  CHECK(test::read_file(a.aof.path()).size() == good);  // the partial record was cut off
  CHECK(other({"RPUSH", "q", "y"}) == "-MISCONF Errors writing to the AOF file: File too large\r\n");
  CHECK(other({"LLEN", "q"}) == ":2\r\n");
  a.s.cron();  // retry: still failing
  CHECK_FALSE(a.aof.write_refusal().empty());
  std::string info = other({"INFO", "persistence"});
  CHECK_THAT(info, Catch::Contains("aof_last_write_status:err"));
  limit.lift();
  a.s.cron();  // retry: the buffered bytes are written and synced
  CHECK(a.aof.write_refusal().empty());
  CHECK(other({"RPUSH", "q", "z"}) == ":3\r\n");
  CHECK(test::read_file(a.aof.path()) ==
        cmd({"RPUSH", "q", "acked"}) + cmd({"RPUSH", "q", "x-unacknowledged-element"}) + cmd({"RPUSH", "q", "z"}));
}

TEST_CASE("everysec: writes are acknowledged, fsync runs in the background, a failure refuses writes",
          "[aof][writer]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(core::fsync_policy::everysec), d.path);
  test::fake_client c(a.s);
  CHECK(c({"SET", "k", "1"}) == "+OK\r\n");
  a.aof.wait_background();
  CHECK(test::read_file(a.aof.path()) == cmd({"SET", "k", "1"}));
  {
    file_size_limit limit(a.aof.current_size() + 4);
    CHECK(c({"SET", "k", "2"}) == "+OK\r\n");  // everysec acknowledges, as Redis does
    CHECK(c({"SET", "k", "3"}) == "-MISCONF Errors writing to the AOF file: File too large\r\n");
    CHECK(c({"GET", "k"}) == "$1\r\n2\r\n");
  }
  a.s.cron();
  CHECK(c({"SET", "k", "3"}) == "+OK\r\n");
  CHECK(test::reload(d.path) == test::dump(a.s));
}

TEST_CASE("appendfsync no: a clean stop writes and syncs everything", "[aof][writer]") {
  test::temp_dir d;
  std::map<std::string, std::string> live;
  {
    test::aof_server a(test::aof_config(core::fsync_policy::no), d.path);
    test::fake_client c(a.s);
    for (int i = 0; i < 100; ++i) c({"RPUSH", "q", std::to_string(i)});
    live = test::dump(a.s);
    a.aof.shutdown();
  }
  CHECK(test::reload(d.path) == live);
}

TEST_CASE("INFO persistence reports the AOF state", "[aof][writer]") {
  test::temp_dir d;
  test::aof_server a(test::aof_config(), d.path);
  test::fake_client c(a.s);
  c({"SET", "k", "v"});
  std::string info = c({"INFO", "persistence"});
  for (const char* f : {"loading:0", "aof_enabled:1", "aof_rewrite_in_progress:0", "aof_rewrite_scheduled:0",
                        "aof_last_rewrite_time_sec:-1", "aof_current_rewrite_time_sec:-1",
                        "aof_last_bgrewrite_status:ok", "aof_last_write_status:ok", "aof_current_size:27",
                        "aof_base_size:0", "aof_pending_bio_fsync:0", "aof_delayed_fsync:0",
                        "rdb_bgsave_in_progress:0", "rdb_last_bgsave_status:ok"})
    CHECK_THAT(info, Catch::Contains(std::string(f) + "\r\n"));
}
