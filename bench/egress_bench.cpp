// respq_egress_bench: what one egress judgement costs, in nanoseconds, for the checks the
// delivery engine makes: check_egress on an address in hand (the lean client, once per new
// connection; curl's open-socket callback) and parse_ip + check_egress on curl's text form
// (its pre-request callback, once per request on the curl path), per policy. Divided by
// the CPU a delivery costs (bench/run delivery), it bounds the policy's share of it.
//
//   respq_egress_bench [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tasks/egress.hpp"

using namespace respq::tasks;

namespace {

template <typename F>
double ns_per_call(long n, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  long allowed = 0;
  for (long i = 0; i < n; ++i) allowed += f();
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  if (allowed < 0) std::puts("");  // keeps the loop's result alive
  return ns / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 2'000'000;
  egress_rules any, metadata, pub;
  any.level = egress_level::any;
  pub.level = egress_level::public_only;
  pub.allow = {std::get<cidr_block>(parse_cidr("127.0.0.1/32"))};
  struct policy {
    const char* name;
    const egress_rules* rules;
  } policies[] = {{"any", &any}, {"metadata", &metadata}, {"public+allow", &pub}};
  for (const char* text : {"127.0.0.1", "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"}) {
    const ip_address a = *parse_ip(text);
    for (const auto& p : policies) {
      const double check = ns_per_call(n, [&] { return check_egress(a, *p.rules).allowed ? 1 : 0; });
      const std::string s = text;
      const double parse_check =
          ns_per_call(n, [&] { return check_egress(*parse_ip(s), *p.rules).allowed ? 1 : 0; });
      std::printf("%-36s %-13s check %7.1f ns   parse+check %7.1f ns\n", text, p.name, check, parse_check);
    }
  }
  return 0;
}
