// http1_client on its own io_context against nginx: origins it no longer uses are
// forgotten, so delivering to ever new hosts does not grow its memory.
#include <chrono>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "test_servers.hpp"
#include "workers/http1_client.hpp"

using namespace respq::workers;
using namespace std::chrono_literals;
using respq::test::get;
using respq::test::run_until;

TEST_CASE("http1_client forgets origins once their connections went idle and closed", "[http1]") {
  respq::test::nginx_server nginx;
  asio::io_context io;
  std::vector<http_result> results;
  http1_client client(io, "respq-test", [&](http_result&& r) { results.push_back(std::move(r)); }, 200ms);

  // Three delivery pools to one server are three origins, as three hosts would be.
  const std::vector<std::string> pools{"a", "b", "c"};
  std::uint64_t ticket = 0;
  for (const auto& p : pools)
    for (int i = 0; i < 4; ++i) client.submit(get(++ticket, nginx.url("/x?i=" + std::to_string(i)), p));
  REQUIRE(run_until(io, [&] { return results.size() == 12; }, 10s));
  for (const auto& r : results) CHECK(r.code == 204);
  CHECK(client.origins() == 3);

  // Past the idle limit the connections close and the origins go.
  REQUIRE(run_until(io, [&] { return client.origins() == 0; }, 3s));

  // A forgotten origin comes back on the next request.
  client.submit(get(++ticket, nginx.url("/again"), "a"));
  REQUIRE(run_until(io, [&] { return results.size() == 13; }, 10s));
  CHECK(results.back().code == 204);
  CHECK(client.origins() == 1);

  // An origin whose request takes longer than the idle limit keeps it going meanwhile:
  // its connection is in use, not idle.
  respq::test::php_server php;
  client.submit(get(++ticket, php.url("/sleep/0.8"), "slow"));
  REQUIRE_FALSE(run_until(io, [&] { return results.size() == 14; }, 500ms));
  CHECK(client.origins() == 1);  // "a" idled past the limit meanwhile; "slow" stays
  REQUIRE(run_until(io, [&] { return results.size() == 14; }, 10s));
  CHECK(results.back().code == 200);
  client.shutdown();
}
