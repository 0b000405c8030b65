// list_bench: two measurements redis-benchmark can't make, run against any server that
// speaks RESP (respq or redis-server), with hiredis so the client costs the same for both.
//
//   list_bench brpop <port> <n>     one producer LPUSHes n items, one consumer BRPOPs them;
//                                   prints ops/s and the wake latency (LPUSH sent ->
//                                   BRPOP reply received) p50/p99 in microseconds.
//   list_bench pubsub <port> <n> <subscribers>
//                                   subscribers SUBSCRIBE one channel; a publisher sends
//                                   n PUBLISHes pipelined 64 deep; prints messages
//                                   delivered per second (all subscribers together).
//   list_bench xconsume <port> <n> <consumers> <count>
//                                   n entries of one 100-byte field are XADDed to a stream
//                                   with a group; <consumers> connections then take them with
//                                   XREADGROUP GROUP g <name> COUNT <count> STREAMS s > and
//                                   acknowledge each batch with one XACK, sent in the same
//                                   write as the next XREADGROUP (a pipelining consumer);
//                                   prints entries consumed and acknowledged per second.
//                                   Fails unless every entry was read once and nothing is
//                                   left pending.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

redisContext* connect_or_die(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) {
    std::fprintf(stderr, "connect failed: %s\n", c ? c->errstr : "alloc");
    std::exit(1);
  }
  return c;
}

long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now().time_since_epoch()).count();
}

int bench_brpop(int port, int n) {
  redisContext* prod = connect_or_die(port);
  redisContext* cons = connect_or_die(port);
  freeReplyObject(redisCommand(prod, "DEL bench:brpop"));
  std::vector<long long> sent(static_cast<std::size_t>(n)), got(static_cast<std::size_t>(n));
  std::atomic<int> consumed{0};
  std::thread consumer([&] {
    for (int i = 0; i < n; ++i) {
      auto* r = static_cast<redisReply*>(redisCommand(cons, "BRPOP bench:brpop 0"));
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        std::fprintf(stderr, "bad BRPOP reply\n");
        std::exit(1);
      }
      long long t = now_ns();
      int idx = std::atoi(r->element[1]->str);
      got[static_cast<std::size_t>(idx)] = t;
      freeReplyObject(r);
      consumed.store(i + 1, std::memory_order_release);
    }
  });
  auto t0 = clk::now();
  for (int i = 0; i < n; ++i) {
    // Keep the consumer blocked when each push arrives (measure wake-ups, not a backlog):
    // wait until it has taken the previous element.
    while (consumed.load(std::memory_order_acquire) < i) std::this_thread::yield();
    std::string v = std::to_string(i);
    sent[static_cast<std::size_t>(i)] = now_ns();
    freeReplyObject(redisCommand(prod, "LPUSH bench:brpop %s", v.c_str()));
  }
  consumer.join();
  double secs = std::chrono::duration<double>(clk::now() - t0).count();
  std::vector<double> lat;
  lat.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) lat.push_back(static_cast<double>(got[static_cast<std::size_t>(i)] - sent[static_cast<std::size_t>(i)]) / 1000.0);
  std::sort(lat.begin(), lat.end());
  std::printf("ops_per_sec %.0f p50_us %.1f p99_us %.1f\n", n / secs, lat[lat.size() / 2], lat[lat.size() * 99 / 100]);
  redisFree(prod);
  redisFree(cons);
  return 0;
}

int bench_pubsub(int port, int n, int subs) {
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  std::atomic<long long> received{0};
  clk::time_point last_recv;
  std::vector<clk::time_point> done(static_cast<std::size_t>(subs));
  for (int s = 0; s < subs; ++s) {
    threads.emplace_back([&, s] {
      redisContext* c = connect_or_die(port);
      freeReplyObject(redisCommand(c, "SUBSCRIBE bench:ch"));
      ready.fetch_add(1);
      for (int i = 0; i < n; ++i) {
        void* r = nullptr;
        if (redisGetReply(c, &r) != REDIS_OK) std::exit(1);
        freeReplyObject(r);
      }
      received.fetch_add(n);
      done[static_cast<std::size_t>(s)] = clk::now();
      redisFree(c);
    });
  }
  while (ready.load() < subs) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  redisContext* pub = connect_or_die(port);
  auto t0 = clk::now();
  const int depth = 64;
  for (int i = 0; i < n; i += depth) {
    int k = std::min(depth, n - i);
    for (int j = 0; j < k; ++j) redisAppendCommand(pub, "PUBLISH bench:ch %d", i + j);
    for (int j = 0; j < k; ++j) {
      void* r = nullptr;
      if (redisGetReply(pub, &r) != REDIS_OK) std::exit(1);
      freeReplyObject(r);
    }
  }
  for (auto& t : threads) t.join();
  auto end = *std::max_element(done.begin(), done.end());
  double secs = std::chrono::duration<double>(end - t0).count();
  std::printf("messages_per_sec %.0f publishes_per_sec %.0f\n", static_cast<double>(received.load()) / secs, n / secs);
  redisFree(pub);
  return 0;
}

redisReply* reply_or_die(redisContext* c) {
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK || !r) {
    std::fprintf(stderr, "connection error: %s\n", c->errstr);
    std::exit(1);
  }
  auto* rep = static_cast<redisReply*>(r);
  if (rep->type == REDIS_REPLY_ERROR) {
    std::fprintf(stderr, "error reply: %s\n", rep->str);
    std::exit(1);
  }
  return rep;
}

redisReply* reply_or_die_cmd(redisContext* c, const char* cmd) {
  redisAppendCommand(c, cmd);
  return reply_or_die(c);
}

int bench_xconsume(int port, int n, int consumers, int count) {
  redisContext* setup = connect_or_die(port);
  freeReplyObject(redisCommand(setup, "DEL bench:stream"));
  freeReplyObject(reply_or_die_cmd(setup, "XGROUP CREATE bench:stream g $ MKSTREAM"));
  const std::string value(100, 'v');
  for (int i = 0; i < n; i += 1000) {
    const int k = std::min(1000, n - i);
    for (int j = 0; j < k; ++j)
      redisAppendCommand(setup, "XADD bench:stream * f %b", value.data(), value.size());
    for (int j = 0; j < k; ++j) freeReplyObject(reply_or_die(setup));
  }
  std::vector<std::thread> threads;
  std::atomic<long long> consumed{0};
  auto t0 = clk::now();
  for (int t = 0; t < consumers; ++t) {
    threads.emplace_back([&, t] {
      redisContext* c = connect_or_die(port);
      const std::string name = "c" + std::to_string(t);
      std::vector<std::string> ids;
      long long mine = 0;
      while (true) {
        // The previous batch's XACK and the next read, in one write.
        if (!ids.empty()) {
          std::vector<const char*> argv{"XACK", "bench:stream", "g"};
          for (const auto& id : ids) argv.push_back(id.c_str());
          redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), nullptr);
        }
        redisAppendCommand(c, "XREADGROUP GROUP g %s COUNT %d STREAMS bench:stream >", name.c_str(), count);
        if (!ids.empty()) {
          redisReply* ack = reply_or_die(c);
          if (ack->type != REDIS_REPLY_INTEGER || ack->integer != static_cast<long long>(ids.size())) {
            std::fprintf(stderr, "XACK acknowledged %lld of %zu\n", ack->integer, ids.size());
            std::exit(1);
          }
          freeReplyObject(ack);
          ids.clear();
        }
        redisReply* r = reply_or_die(c);
        if (r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_ARRAY && r->elements == 0)) {
          freeReplyObject(r);
          break;
        }
        // [[key, [[id, [f, v]], ...]]]
        redisReply* entries = r->element[0]->element[1];
        for (std::size_t i = 0; i < entries->elements; ++i) {
          redisReply* e = entries->element[i];
          if (e->elements != 2 || e->element[1]->elements != 2 || e->element[1]->element[1]->len != 100) {
            std::fprintf(stderr, "bad entry\n");
            std::exit(1);
          }
          ids.emplace_back(e->element[0]->str, e->element[0]->len);
        }
        mine += static_cast<long long>(entries->elements);
        freeReplyObject(r);
      }
      consumed.fetch_add(mine);
      redisFree(c);
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(clk::now() - t0).count();
  redisReply* pending = reply_or_die_cmd(setup, "XPENDING bench:stream g");
  const long long left = pending->element[0]->integer;
  freeReplyObject(pending);
  if (consumed.load() != n || left != 0) {
    std::fprintf(stderr, "consumed %lld of %d, %lld pending\n", consumed.load(), n, left);
    return 1;
  }
  std::printf("entries_per_sec %.0f\n", n / secs);
  freeReplyObject(redisCommand(setup, "DEL bench:stream"));
  redisFree(setup);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::strcmp(argv[1], "brpop") == 0) return bench_brpop(std::atoi(argv[2]), std::atoi(argv[3]));
  if (argc >= 5 && std::strcmp(argv[1], "pubsub") == 0)
    return bench_pubsub(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]));
  if (argc >= 6 && std::strcmp(argv[1], "xconsume") == 0)
    return bench_xconsume(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]));
  std::fprintf(stderr,
               "usage: list_bench brpop <port> <n> | pubsub <port> <n> <subscribers> | "
               "xconsume <port> <n> <consumers> <count>\n");
  return 2;
}
