// respq_outcome_bench: what one task's outcome costs the broker thread while a queue's
// dashboard page is open (its stream: that queue, at most 20 outcomes a second), in
// nanoseconds: building the outcome's JSON (what every outcome of every queue cost while
// any outcome stream was open, before the publish and the stream's filter even ran) vs
// the event hub's decision for an outcome the stream will not send (admin/event_hub.hpp:
// counted, never built), and for one of another queue. Divided by the CPU a delivery
// costs (bench/run delivery, dashboard), it bounds an open page's share of it.
//
//   respq_outcome_bench [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "admin/event_hub.hpp"
#include "tasks/records.hpp"

using namespace respq;

namespace {

template <typename F>
double ns_per_call(long n, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t sum = 0;
  for (long i = 0; i < n; ++i) sum += f();
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  if (sum == 1) std::puts("");  // keeps the loop's result alive
  return ns / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 2000000;
  tasks::outcome_fields f;
  f.id = "0000000000abcdef00001234";
  f.queue = "tasks";
  f.url = "http://127.0.0.1:8080/send_mail";
  f.status = "delivered";
  f.code = 200;
  f.attempts = 1;
  f.duration_ms = 1.234;
  double build = 1e9, counted = 1e9, other = 1e9;
  std::size_t taken = 0;
  for (int rep = 0; rep < 5; ++rep) {  // the best of 5: what the code costs, not the machine's load
    admin::event_hub hub;
    auto page = hub.subscribe(4, {"tasks", 20});
    build = std::min(build, ns_per_call(n, [&] { return tasks::outcome_json(f).size(); }));
    counted = std::min(counted, ns_per_call(n, [&] { return hub.offer("tasks", [&] { return tasks::outcome_json(f); }); }));
    other = std::min(other, ns_per_call(n, [&] { return hub.offer("mail", [&] { return tasks::outcome_json(f); }); }));
    std::vector<std::string> got;
    page->next(got, std::chrono::milliseconds(0));
    taken += got.size();
  }
  std::printf("an outcome's JSON built: %.1f ns\n", build);
  std::printf("the hub's decision, the watched queue over its rate (counted): %.1f ns\n", counted);
  std::printf("the hub's decision, another queue: %.1f ns\n", other);
  std::printf("(taken by the page: %zu of %ld offers, 20 a second at most)\n", taken, 5 * n);
}
