// Command semantics through the core without sockets: replies byte for byte as Redis 7
// gives them, blocking order, pub/sub, transactions and the effects logged.
#include <catch2/catch.hpp>

#include <thread>

#include "core_fixture.hpp"

using namespace respq;
using test::capture_sink;
using test::fake_client;

namespace {

core::config quiet_config() {
  core::config c;
  c.queues.clear();  // no HTTP queues: plain lists only
  return c;
}

}  // namespace

TEST_CASE("list commands reply as Redis does", "[core]") {
  core::server s(quiet_config());
  fake_client a(s);
  CHECK(a({"LPUSH", "q", "a", "b", "c"}) == ":3\r\n");
  CHECK(a({"LRANGE", "q", "0", "-1"}) == "*3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n");
  CHECK(a({"RPOP", "q"}) == "$1\r\na\r\n");
  CHECK(a({"LPOP", "q", "5"}) == "*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
  CHECK(a({"LPOP", "q"}) == "$-1\r\n");
  CHECK(a({"LPOP", "q", "2"}) == "*-1\r\n");
  CHECK(a({"EXISTS", "q"}) == ":0\r\n");
  CHECK(a({"RPUSH", "q", "x"}) == ":1\r\n");
  CHECK(a({"LPOP", "q", "0"}) == "*0\r\n");
  CHECK(a({"LPOP", "q", "-1"}) == "-ERR value is out of range, must be positive\r\n");
  CHECK(a({"LINDEX", "q", "-1"}) == "$1\r\nx\r\n");
  CHECK(a({"LSET", "q", "5", "y"}) == "-ERR index out of range\r\n");
  CHECK(a({"LSET", "nokey", "0", "y"}) == "-ERR no such key\r\n");
  CHECK(a({"LINSERT", "q", "BEFORE", "x", "w"}) == ":2\r\n");
  CHECK(a({"LINSERT", "q", "AFTER", "zz", "w"}) == ":-1\r\n");
  CHECK(a({"LPOS", "q", "x"}) == ":1\r\n");
  CHECK(a({"LREM", "q", "0", "w"}) == ":1\r\n");
  CHECK(a({"LMOVE", "q", "r", "LEFT", "RIGHT"}) == "$1\r\nx\r\n");
  CHECK(a({"TYPE", "r"}) == "+list\r\n");
  CHECK(a({"SET", "s", "v"}) == "+OK\r\n");
  CHECK(a({"LPUSH", "s", "v"}) == "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  CHECK(a({"LPUSH", "s"}) == "-ERR wrong number of arguments for 'lpush' command\r\n");
  CHECK(a({"NOSUCH", "a", "b"}) == "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n");
}

TEST_CASE("a push wakes the longest waiting client after the command completes", "[core][blocking]") {
  core::server s(quiet_config());
  fake_client w1(s), w2(s), p(s);
  CHECK(w1({"BLPOP", "k", "0"}).empty());
  CHECK(w2({"BLPOP", "k", "0"}).empty());
  CHECK(s.blocked_clients() == 2);
  CHECK(p({"LPUSH", "k", "a", "b"}) == ":2\r\n");
  // LPUSH k a b leaves b at the head: the first waiter gets b, the second a.
  CHECK(w1.take() == "*2\r\n$1\r\nk\r\n$1\r\nb\r\n");
  CHECK(w2.take() == "*2\r\n$1\r\nk\r\n$1\r\na\r\n");
  CHECK(s.blocked_clients() == 0);
  CHECK(p({"EXISTS", "k"}) == ":0\r\n");
}

TEST_CASE("MULTI with LPUSH and DEL wakes nobody", "[core][blocking]") {
  core::server s(quiet_config());
  fake_client w(s), p(s);
  w({"BRPOP", "k", "0"});
  p({"MULTI"});
  p({"LPUSH", "k", "a"});
  p({"DEL", "k"});
  CHECK(p({"EXEC"}) == "*2\r\n:1\r\n:1\r\n");
  CHECK(w.take().empty());
  CHECK(s.blocked_clients() == 1);
}

TEST_CASE("blocking commands inside MULTI answer as timed out", "[core][blocking]") {
  core::server s(quiet_config());
  fake_client a(s);
  a({"MULTI"});
  CHECK(a({"BLPOP", "k", "0"}) == "+QUEUED\r\n");
  CHECK(a({"EXEC"}) == "*1\r\n*-1\r\n");
}

TEST_CASE("BLMOVE chains serve waiters on the destination", "[core][blocking]") {
  core::server s(quiet_config());
  fake_client m(s), w(s), p(s);
  m({"BLMOVE", "a", "b", "RIGHT", "LEFT", "0"});
  w({"BLPOP", "b", "0"});
  p({"RPUSH", "a", "x"});
  CHECK(m.take() == "$1\r\nx\r\n");
  CHECK(w.take() == "*2\r\n$1\r\nb\r\n$1\r\nx\r\n");
}

TEST_CASE("a disconnected waiter takes nothing", "[core][blocking]") {
  core::server s(quiet_config());
  fake_client w(s), p(s);
  w({"BRPOP", "k", "0"});
  w.disconnect();
  p({"LPUSH", "k", "v"});
  CHECK(p({"LLEN", "k"}) == ":1\r\n");
}

TEST_CASE("the pipeline after a blocked command waits", "[core][blocking]") {
  core::server s(quiet_config());
  fake_client w(s), p(s);
  CHECK(w.send_raw(test::cmd({"BLPOP", "k", "0"}) + test::cmd({"PING"})).empty());
  p({"RPUSH", "k", "v"});
  CHECK(w.take() == "*2\r\n$1\r\nk\r\n$1\r\nv\r\n+PONG\r\n");
}

TEST_CASE("blocking timeouts: float, negative, invalid, expiry", "[core][blocking]") {
  core::server s(quiet_config());
  fake_client a(s);
  CHECK(a({"BLPOP", "k", "-1"}) == "-ERR timeout is negative\r\n");
  CHECK(a({"BLPOP", "k", "abc"}) == "-ERR timeout is not a float or out of range\r\n");
  CHECK(a({"BLPOP", "k", "0.05"}).empty());
  auto deadline = s.next_deadline();
  CHECK(deadline != core::clock::time_point::max());
  std::this_thread::sleep_until(deadline + std::chrono::milliseconds(1));
  s.on_timer();
  CHECK(a.take() == "*-1\r\n");
}

TEST_CASE("served blocking pops are logged as plain pops", "[core][effects]") {
  core::server s(quiet_config());
  capture_sink sink;
  s.stream().add_sink(&sink);
  fake_client w(s), p(s), m(s);
  w({"BRPOP", "k", "0"});
  p({"LPUSH", "k", "v"});
  m({"BLMPOP", "0", "1", "k2", "LEFT", "COUNT", "2"});
  p({"RPUSH", "k2", "a", "b", "c"});
  CHECK(sink.bytes == test::cmd({"LPUSH", "k", "v"}) + test::cmd({"RPOP", "k"}) +
                          test::cmd({"RPUSH", "k2", "a", "b", "c"}) + test::cmd({"LPOP", "k2", "2"}));
}

TEST_CASE("transactions queue, abort and wrap their effects", "[core][multi]") {
  core::server s(quiet_config());
  capture_sink sink;
  s.stream().add_sink(&sink);
  fake_client a(s);
  CHECK(a({"MULTI"}) == "+OK\r\n");
  CHECK(a({"MULTI"}) == "-ERR MULTI calls can not be nested\r\n");
  CHECK(a({"RPUSH", "q", "1"}) == "+QUEUED\r\n");
  CHECK(a({"RPUSH", "q", "2"}) == "+QUEUED\r\n");
  CHECK(a({"EXEC"}) == "*2\r\n:1\r\n:2\r\n");
  CHECK(sink.bytes == test::cmd({"MULTI"}) + test::cmd({"RPUSH", "q", "1"}) + test::cmd({"RPUSH", "q", "2"}) +
                          test::cmd({"EXEC"}));
  a({"MULTI"});
  CHECK(a({"NOPE"}) == "-ERR unknown command 'NOPE', with args beginning with: \r\n");
  CHECK(a({"EXEC"}) == "-EXECABORT Transaction discarded because of previous errors.\r\n");
  CHECK(a({"EXEC"}) == "-ERR EXEC without MULTI\r\n");
}

TEST_CASE("pub/sub delivers messages and enforces subscribe mode", "[core][pubsub]") {
  core::server s(quiet_config());
  fake_client sub(s), pub(s);
  CHECK(sub({"SUBSCRIBE", "ch"}) == "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
  CHECK(sub({"PSUBSCRIBE", "c*"}) == "*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:2\r\n");
  CHECK(pub({"PUBLISH", "ch", "hi"}) == ":2\r\n");
  CHECK(sub.take() == "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n");
  CHECK(sub({"LPUSH", "x", "1"}) ==
        "-ERR Can't execute 'lpush': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
  CHECK(sub({"PING"}) == "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  CHECK(sub({"HELLO", "3"}) ==
        "-ERR Can't execute 'hello': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
  fake_client sub3(s);
  CHECK(sub3({"HELLO", "3"}).substr(0, 3) == "%7\r");
  CHECK(sub3({"SUBSCRIBE", "ch"}) == ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
  CHECK(pub({"PUBLISH", "ch", "x"}) == ":3\r\n");
  CHECK(sub3.take() == ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n");
  CHECK(sub3({"PING"}) == "+PONG\r\n");
  // More subscribers of each protocol: the message is encoded once per protocol and
  // copied to the others; each must still get its own protocol's bytes.
  fake_client sub2(s), sub4(s);
  sub.take();
  sub2({"SUBSCRIBE", "ch"});
  sub4({"HELLO", "3"});
  sub4({"SUBSCRIBE", "ch"});
  CHECK(pub({"PUBLISH", "ch", "yz"}) == ":5\r\n");
  const std::string resp2 = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nyz\r\n";
  const std::string resp3 = ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nyz\r\n";
  CHECK(sub.take() == resp2 + "*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nyz\r\n");
  CHECK(sub2.take() == resp2);
  CHECK(sub3.take() == resp3);
  CHECK(sub4.take() == resp3);
}

TEST_CASE("requirepass gates commands until AUTH", "[core][auth]") {
  core::config cfg = quiet_config();
  cfg.requirepass = "secret";
  core::server s(cfg);
  fake_client a(s);
  CHECK(a({"PING"}) == "-NOAUTH Authentication required.\r\n");
  CHECK(a({"AUTH", "wrong"}) == "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  CHECK(a({"AUTH", "secret"}) == "+OK\r\n");
  CHECK(a({"PING"}) == "+PONG\r\n");
}

TEST_CASE("protocol errors reply and close", "[core][protocol]") {
  core::server s(quiet_config());
  fake_client a(s);
  CHECK(a.send_raw("*1\r\n$x\r\n") == "-ERR Protocol error: invalid bulk length\r\n");
  CHECK(a.c->close_after_reply);
}

TEST_CASE("cross protocol requests close the connection silently", "[core][protocol]") {
  core::server s(quiet_config());
  fake_client a(s);
  CHECK(a.send_raw("POST / HTTP/1.1\r\nHost: x\r\n\r\n").empty());
  CHECK(a.c->close_asap);
}

TEST_CASE("maxclients refuses with Redis's error", "[core]") {
  core::config cfg = quiet_config();
  cfg.maxclients = 1;
  core::server s(cfg);
  fake_client a(s);
  std::string refusal;
  CHECK(s.accept_client("127.0.0.1:1", "127.0.0.1:2", -1, refusal) == nullptr);
  CHECK(refusal == "-ERR max number of clients reached\r\n");
}

TEST_CASE("SCAN returns every key exactly once across calls", "[core][keys]") {
  core::server s(quiet_config());
  fake_client a(s);
  for (int i = 0; i < 250; ++i) a({"RPUSH", "k" + std::to_string(i), "v"});
  std::set<std::string> seen;
  std::string cursor = "0";
  do {
    std::string r = a({"SCAN", cursor, "COUNT", "7"});
    // *2 $n cursor *m $k key ...
    std::size_t p = r.find("\r\n", 4);
    std::size_t cstart = r.find("\r\n", p + 2);
    cursor = r.substr(p + 2, cstart - p - 2);
    std::size_t pos = r.find("\r\n", cstart + 2) + 2;
    while (pos < r.size()) {
      std::size_t e = r.find("\r\n", pos);
      std::size_t len = std::stoul(r.substr(pos + 1, e - pos - 1));
      std::string key = r.substr(e + 2, len);
      CHECK(seen.insert(key).second);
      pos = e + 2 + len + 2;
    }
  } while (cursor != "0");
  CHECK(seen.size() == 250);
}

TEST_CASE("command names match case-insensitively and odd bytes are unknown commands", "[core]") {
  core::server s(quiet_config());
  fake_client a(s);
  CHECK(a({"lPuSh", "q", "x"}) == ":1\r\n");
  CHECK(a({"\xff\xfe", "x"}) == "-ERR unknown command '\xff\xfe', with args beginning with: 'x' \r\n");
  CHECK(a({"PINGPINGPINGPINGPINGPINGPINGPING"}).substr(0, 20) == "-ERR unknown command");
  CHECK(a({"POSTX"}).substr(0, 20) == "-ERR unknown command");
}

TEST_CASE("RESET ends MONITOR: the client can then leave without dangling", "[core]") {
  core::server s(quiet_config());
  auto* m = new fake_client(s);
  fake_client other(s);
  CHECK((*m)({"MONITOR"}) == "+OK\r\n");
  CHECK((*m)({"RESET"}) == "+RESET\r\n");
  other({"PING"});
  CHECK(m->take().empty());  // no longer fed
  m->disconnect();
  delete m;
  CHECK(other({"PING"}) == "+PONG\r\n");  // feeding monitors must not touch the freed client
  CHECK(s.monitors() == 0);
}

TEST_CASE("a killed blocked client takes no element pushed later in the same turn", "[core][blocking]") {
  core::server s(quiet_config());
  fake_client w(s), p(s);
  CHECK(w({"BLPOP", "qk", "0"}).empty());
  std::string id = std::to_string(w.c->id);
  std::string out = p.send_raw(test::cmd({"CLIENT", "KILL", "ID", id}) + test::cmd({"LPUSH", "qk", "x"}) +
                               test::cmd({"LLEN", "qk"}));
  CHECK(out == ":1\r\n:1\r\n:1\r\n");
  CHECK(s.blocked_clients() == 0);
}

TEST_CASE("SPOP counts the members it popped as changes, and SUNION of one table Redis would rebuild replies in order",
          "[core][sets]") {
  core::server s(quiet_config());
  fake_client a(s);
  CHECK(a({"SADD", "k", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}) == ":10\r\n");
  std::uint64_t before = s.dirty();
  CHECK(a({"SPOP", "k", "3"}).substr(0, 4) == "*3\r\n");
  CHECK(s.dirty() - before == 3);
  before = s.dirty();
  CHECK(a({"SPOP", "k", "9223372036854775807"}).substr(0, 4) == "*7\r\n");
  CHECK(s.dirty() - before == 7);  // Redis: the count, at most the size
  // A table of integers only (a string member added and removed): Redis's SUNION builds
  // an intset from it, and replies in the intset's order.
  std::string add = "*43\r\n$4\r\nSADD\r\n$1\r\nt\r\n$1\r\nx\r\n";
  for (int i = 40; i >= 1; --i) {
    const std::string m = std::to_string(i * 7);
    add += "$" + std::to_string(m.size()) + "\r\n" + m + "\r\n";
  }
  CHECK(a.send_raw(add) == ":41\r\n");
  CHECK(a({"SREM", "t", "x"}) == ":1\r\n");
  CHECK(a({"OBJECT", "ENCODING", "t"}) == "$9\r\nhashtable\r\n");
  std::string sorted = "*40\r\n";
  for (int i = 1; i <= 40; ++i) {
    const std::string m = std::to_string(i * 7);
    sorted += "$" + std::to_string(m.size()) + "\r\n" + m + "\r\n";
  }
  CHECK(a({"SUNION", "t"}) == sorted);
  CHECK(a({"SUNIONSTORE", "u", "t"}) == ":40\r\n");
  CHECK(a({"OBJECT", "ENCODING", "u"}) == "$6\r\nintset\r\n");
}
