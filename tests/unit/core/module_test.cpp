// server_module (module.hpp): what a registered module is called for, in which order,
// and that an unregistered (or destroyed) one is never called again, also when it goes
// away while the server is walking its modules.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core_fixture.hpp"

using namespace respq;
using test::fake_client;

namespace {

core::config quiet_config() {
  core::config c;
  c.queues.clear();
  return c;
}

// Every call it gets, as a line, appended to a log that outlives it: a call reaching a
// destroyed recorder would be a use after free (ASan) and a line in the log.
struct recorder : core::server_module {
  core::server& s;
  std::string name;
  std::shared_ptr<std::vector<std::string>> log;
  std::string info_lines;    // INFO section "mirror" when not empty
  std::string refusal;       // write_refusal()
  std::size_t requests = 0;  // in_flight()

  recorder(core::server& srv, std::string n, std::shared_ptr<std::vector<std::string>> l, unsigned extras = 0)
      : s(srv), name(std::move(n)), log(std::move(l)) {
    s.register_module(*this, extras);
  }
  ~recorder() override { s.unregister_module(*this); }

  void note(const std::string& what) { log->push_back(name + " " + what); }
  void cron() override { note("cron"); }
  bool info_section(std::string_view section, std::string& body) override {
    if (section != "mirror" || info_lines.empty()) return false;
    note("info");
    body += info_lines;
    return true;
  }
  void on_config(const std::string& setting) override { note("config " + setting); }
  std::string write_refusal() const override {
    log->push_back(name + " refusal?");
    return refusal;
  }
  std::string bgrewriteaof() override {
    note("bgrewriteaof");
    return "Background append only file rewriting started";
  }
  void on_publish(std::string_view channel, std::string_view message) override {
    note("publish " + std::string(channel) + " " + std::string(message));
  }
  void before_key_write(int db, std::string_view key, bool flush) override {
    note("key " + std::to_string(db) + " '" + std::string(key) + "'" + (flush ? " flush" : ""));
  }
  void before_swapdb(int a, int b) override { note("swapdb " + std::to_string(a) + " " + std::to_string(b)); }
  void drain() override { note("drain"); }
  std::size_t in_flight() const override { return requests; }
};

using log_ptr = std::shared_ptr<std::vector<std::string>>;
using lines = std::vector<std::string>;

std::string info(fake_client& c, std::string_view section) { return c({"INFO", section}); }

}  // namespace

TEST_CASE("a registered module gets cron - INFO and CONFIG SET in registration order - after unregister nothing",
          "[core][module]") {
  core::server s(quiet_config());
  fake_client a(s);
  auto log = std::make_shared<lines>();
  {
    recorder one(s, "one", log);
    recorder two(s, "two", log);
    two.info_lines = "mirror_enabled:1\r\n";
    s.cron();
    CHECK(*log == lines{"one cron", "two cron"});
    log->clear();

    const std::string r = info(a, "mirror");
    CHECK(r.find("# Mirror\r\nmirror_enabled:1\r\n") != std::string::npos);
    CHECK(*log == lines{"two info"});
    log->clear();
    // Two providers of one section: both, in registration order.
    one.info_lines = "link_status:up\r\n";
    CHECK(info(a, "mirror").find("# Mirror\r\nlink_status:up\r\nmirror_enabled:1\r\n") != std::string::npos);
    log->clear();

    CHECK(a({"CONFIG", "SET", "maxmemory", "10mb", "slowlog-max-len", "64"}) == "+OK\r\n");
    CHECK(*log == lines{"one config maxmemory", "two config maxmemory", "one config slowlog-max-len", "two config slowlog-max-len"});
    log->clear();
    // A failed CONFIG SET changed nothing: nobody hears of it.
    CHECK(a({"CONFIG", "SET", "slowlog-max-len", "x"}).rfind("-ERR", 0) == 0);
    CHECK(log->empty());

    s.unregister_module(one);
    s.cron();
    CHECK(*log == lines{"two cron"});
    log->clear();
    s.unregister_module(one);  // not registered: nothing happens
  }
  // Both destroyed (unregistered by their destructors): no call reaches them.
  s.cron();
  CHECK(a({"CONFIG", "SET", "slowlog-max-len", "128"}) == "+OK\r\n");
  const std::string r = info(a, "everything");
  CHECK(log->empty());
  // Without a provider INFO mirror is the core's own text again.
  CHECK(r.find("# Mirror\r\nmirror_enabled:0\r\n") != std::string::npos);
  CHECK(info(a, "default").find("# Mirror") == std::string::npos);
}

TEST_CASE("a module that stops being registered from inside a call is skipped - one registered then waits for the next walk",
          "[core][module]") {
  core::server s(quiet_config());
  auto log = std::make_shared<lines>();
  auto late = std::unique_ptr<recorder>();
  auto victim = std::make_unique<recorder>(s, "victim", log);  // registered first, survives
  struct killer : recorder {
    std::unique_ptr<recorder>* prey;
    std::unique_ptr<recorder>* newborn;
    killer(core::server& srv, log_ptr l, std::unique_ptr<recorder>* p, std::unique_ptr<recorder>* n)
        : recorder(srv, "killer", std::move(l)), prey(p), newborn(n) {}
    void cron() override {
      note("cron");
      prey->reset();  // destroys (and so unregisters) the module after this one
      *newborn = std::make_unique<recorder>(s, "late", log);
      s.unregister_module(*this);  // and itself
    }
  };
  std::unique_ptr<recorder> after;
  killer k(s, log, &after, &late);
  after = std::make_unique<recorder>(s, "after", log);
  s.cron();
  CHECK(*log == lines{"victim cron", "killer cron"});
  log->clear();
  s.cron();
  CHECK(*log == lines{"victim cron", "late cron"});
  log->clear();
  victim.reset();
  late.reset();
  s.cron();
  CHECK(log->empty());
}

TEST_CASE("key writes reach only a module that wants them - with the key - the flush or the swapped databases",
          "[core][module]") {
  core::server s(quiet_config());
  fake_client a(s);
  auto log = std::make_shared<lines>();
  recorder m(s, "m", log);
  recorder other(s, "other", log);
  CHECK_FALSE(s.key_writes_wanted());
  CHECK(a({"SET", "k", "v"}) == "+OK\r\n");
  CHECK(a({"SWAPDB", "0", "1"}) == "+OK\r\n");
  CHECK(log->empty());

  s.want_key_writes(m, true);
  CHECK(s.key_writes_wanted());
  CHECK(a({"SET", "k", "v"}) == "+OK\r\n");
  CHECK(a({"MSET", "x", "1", "y", "2"}) == "+OK\r\n");
  CHECK(a({"GET", "k"}) == "$1\r\nv\r\n");  // a read is no write
  CHECK(a({"MOVE", "k", "3"}) == ":1\r\n");  // the key in both databases
  CHECK(a({"SWAPDB", "0", "2"}) == "+OK\r\n");
  CHECK(a({"FLUSHDB"}) == "+OK\r\n");
  CHECK(a({"FLUSHALL"}) == "+OK\r\n");
  CHECK(*log == lines{"m key 0 'k'", "m key 0 'x'", "m key 0 'y'", "m key 0 'k'", "m key 3 'k'", "m swapdb 0 2",
                      "m key 0 '' flush", "m key -1 '' flush"});
  log->clear();

  // Writers other than commands announce their keys too.
  s.will_write("spool");
  CHECK(*log == lines{"m key 0 'spool'"});
  log->clear();

  s.want_key_writes(m, false);
  CHECK_FALSE(s.key_writes_wanted());
  CHECK(a({"SET", "k", "v"}) == "+OK\r\n");
  CHECK(a({"FLUSHALL"}) == "+OK\r\n");
  CHECK(log->empty());

  // Unregistering also ends the key writes.
  s.want_key_writes(other, true);
  s.unregister_module(other);
  CHECK_FALSE(s.key_writes_wanted());
  CHECK(a({"SET", "k", "v"}) == "+OK\r\n");
  CHECK(log->empty());
}

TEST_CASE("write refusal and PUBLISH go only to the modules that asked when registering", "[core][module]") {
  core::server s(quiet_config());
  fake_client a(s);
  auto log = std::make_shared<lines>();
  recorder plain(s, "plain", log);
  plain.refusal = "MISCONF never asked";
  CHECK(a({"SET", "k", "v"}) == "+OK\r\n");
  CHECK(a({"PUBLISH", "ch", "hello"}) == ":0\r\n");
  CHECK(log->empty());
  {
    recorder refuser(s, "refuser", log, core::server_module::refuses_writes | core::server_module::observes_publish);
    CHECK(a({"SET", "k", "v"}) == "+OK\r\n");
    CHECK(*log == lines{"refuser refusal?"});
    log->clear();
    refuser.refusal = "MISCONF Errors writing to the AOF file: No space left on device";
    CHECK(a({"SET", "k", "w"}) == "-MISCONF Errors writing to the AOF file: No space left on device\r\n");
    CHECK(a({"GET", "k"}) == "$1\r\nv\r\n");
    log->clear();
    CHECK(a({"PUBLISH", "ch", "hello"}) == ":0\r\n");
    CHECK(*log == lines{"refuser publish ch hello"});
    log->clear();
  }
  CHECK(a({"SET", "k", "w"}) == "+OK\r\n");
  CHECK(a({"PUBLISH", "ch", "again"}) == ":0\r\n");
  CHECK(log->empty());
}

TEST_CASE("BGREWRITEAOF is answered by the module that rewrites the AOF - else persistence is not available",
          "[core][module]") {
  core::server s(quiet_config());
  fake_client a(s);
  auto log = std::make_shared<lines>();
  recorder plain(s, "plain", log);
  CHECK(a({"BGREWRITEAOF"}) == "-ERR persistence is not available\r\n");
  CHECK(log->empty());
  {
    recorder aof(s, "aof", log, core::server_module::rewrites_aof);
    CHECK(a({"BGREWRITEAOF"}) == "+Background append only file rewriting started\r\n");
    CHECK(*log == lines{"aof bgrewriteaof"});
  }
  CHECK(a({"BGREWRITEAOF"}) == "-ERR persistence is not available\r\n");
}

TEST_CASE("the shutdown grace period drains every module and counts their requests in flight", "[core][module]") {
  core::server s(quiet_config());
  auto log = std::make_shared<lines>();
  recorder one(s, "one", log);
  recorder two(s, "two", log);
  CHECK(s.modules_in_flight() == 0);
  one.requests = 2;
  two.requests = 3;
  CHECK(s.modules_in_flight() == 5);
  s.drain_modules();
  CHECK(*log == lines{"one drain", "two drain"});
  s.unregister_module(two);
  CHECK(s.modules_in_flight() == 2);
}
