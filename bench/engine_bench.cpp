// engine_bench: how fast the delivery engine delivers to one URL.
//
//   respq_engine_bench URL [requests=200000] [concurrency=256] [per_host=32] [batch=64]
//
// The main thread plays the broker: it keeps at most `concurrency` requests in flight,
// submitting in batches of up to `batch` as results come back (the sink, on the engine
// thread, only counts and wakes it). Prints the delivery rate, the process CPU time and
// the CPU cost per request. Point it at an endpoint that answers at once, e.g. nginx with
// `location / { return 204; }`.
#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "workers/delivery_engine.hpp"

using respq::workers::delivery_engine;
using respq::workers::http_request;
using respq::workers::http_result;

namespace {

double cpu_seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

long arg(int argc, char** argv, int i, long fallback) {
  if (argc <= i) return fallback;
  const long v = std::strtol(argv[i], nullptr, 10);
  return v > 0 ? v : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s URL [requests=200000] [concurrency=256] [per_host=32] [batch=64]\n",
                 argv[0]);
    return 2;
  }
  const std::string url = argv[1];
  const auto total = static_cast<std::size_t>(arg(argc, argv, 2, 200000));
  const auto concurrency = static_cast<std::size_t>(arg(argc, argv, 3, 256));
  const auto per_host = static_cast<unsigned>(arg(argc, argv, 4, 32));
  const auto batch_size = static_cast<std::size_t>(arg(argc, argv, 5, 64));

  std::mutex mutex;
  std::condition_variable cv;
  std::size_t done = 0, failed = 0, sink_calls = 0;
  std::string first_error;

  delivery_engine engine([&](std::vector<http_result>&& results) {
    std::lock_guard<std::mutex> lock(mutex);
    ++sink_calls;
    for (const auto& r : results) {
      if (!r.error.empty() || r.code < 200 || r.code > 299) {
        ++failed;
        if (first_error.empty()) first_error = r.error.empty() ? "HTTP " + std::to_string(r.code) : r.error;
      }
    }
    done += results.size();
    cv.notify_one();
  });
  engine.set_pool("bench", {per_host});

  rusage ru0{};
  getrusage(RUSAGE_SELF, &ru0);
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t submitted = 0;
  std::unique_lock<std::mutex> lock(mutex);
  while (done < total) {
    const std::size_t in_flight = submitted - done;
    const std::size_t room = concurrency > in_flight ? concurrency - in_flight : 0;
    const std::size_t remaining = total - submitted;
    const std::size_t n = std::min(room, remaining);
    // Wait for a whole batch of room unless the tail is smaller.
    if (n == 0 || (n < batch_size && n < remaining)) {
      cv.wait(lock);
      continue;
    }
    lock.unlock();
    std::vector<http_request> batch;
    std::size_t left = n;
    while (left > 0) {
      const std::size_t k = std::min(left, batch_size);
      batch.clear();
      batch.reserve(k);
      for (std::size_t i = 0; i < k; ++i) {
        http_request r;
        r.ticket = submitted + i;
        r.pool = "bench";
        r.url = url;
        r.timeout_s = 10;
        batch.push_back(std::move(r));
      }
      submitted += k;
      left -= k;
      engine.submit(std::move(batch));
      batch = {};
    }
    lock.lock();
  }
  lock.unlock();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru1{};
  getrusage(RUSAGE_SELF, &ru1);
  engine.stop();

  const double user = cpu_seconds(ru1.ru_utime) - cpu_seconds(ru0.ru_utime);
  const double sys = cpu_seconds(ru1.ru_stime) - cpu_seconds(ru0.ru_stime);
  std::printf("requests %zu  concurrency %zu  per_host %u  batch %zu\n", total, concurrency, per_host,
              batch_size);
  std::printf("wall %.3f s  rate %.0f req/s\n", wall, static_cast<double>(total) / wall);
  std::printf("cpu user %.3f s  sys %.3f s  (%.1f us/request, %.0f%% of one core)\n", user, sys,
              (user + sys) / static_cast<double>(total) * 1e6, (user + sys) / wall * 100);
  std::printf("sink calls %zu (%.1f results per call)  failed %zu%s%s\n", sink_calls,
              static_cast<double>(total) / static_cast<double>(sink_calls ? sink_calls : 1), failed,
              first_error.empty() ? "" : "  first: ", first_error.c_str());
  return failed == 0 ? 0 : 1;
}
