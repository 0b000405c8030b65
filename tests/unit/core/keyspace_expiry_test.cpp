// keyspace deadlines: the ordered index and the TTL sum follow every change (create over
// a key, erase, rename, clear), expired keys vanish from find() but not from peek(), and
// expire_due() takes keys in deadline order and nothing before its time.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "broker/core/keyspace.hpp"

using respq::core::keyspace;
using respq::core::value_type;

namespace {

struct recorder {
  keyspace db;
  std::vector<std::string> expired;
  recorder() {
    db.on_expire = [this](const std::string& k) {
      expired.push_back(k);
      db.erase(k);
    };
  }
};

}  // namespace

TEST_CASE("deadlines follow create, erase, rename and clear", "[keyspace][expiry]") {
  recorder r;
  const auto later = keyspace::now_ms() + 100000;
  r.db.create("a", value_type::string);
  r.db.create("b", value_type::list).list().push_back("x");
  r.db.set_expire("a", later);
  r.db.set_expire("b", later + 1000);
  CHECK(r.db.volatile_keys() == 2);
  CHECK(r.db.avg_ttl_ms() > 99000);
  CHECK(r.db.avg_ttl_ms() <= 100500);

  // Replacing a key's value drops its deadline, as SET does.
  r.db.create("a", value_type::string);
  CHECK(r.db.find("a")->expire_at == 0);
  CHECK(r.db.volatile_keys() == 1);

  // RENAME moves the deadline and replaces the target's.
  r.db.set_expire("a", later + 5);
  r.db.rename("b", "a");
  REQUIRE(r.db.find("a"));
  CHECK(r.db.find("a")->expire_at == later + 1000);
  CHECK(r.db.volatile_keys() == 1);
  CHECK_FALSE(r.db.find("b"));

  // PERSIST.
  r.db.set_expire("a", 0);
  CHECK(r.db.volatile_keys() == 0);
  CHECK(r.db.avg_ttl_ms() == 0);

  r.db.set_expire("a", later);
  CHECK(r.db.erase("a"));
  CHECK(r.db.volatile_keys() == 0);

  r.db.create("c", value_type::string);
  r.db.set_expire("c", later);
  r.db.clear();
  CHECK(r.db.volatile_keys() == 0);
  CHECK(r.db.expire_due(100) == 0);
  CHECK(r.expired.empty());
}

TEST_CASE("a key past its deadline is gone for find, still there for peek", "[keyspace][expiry]") {
  recorder r;
  r.db.create("k", value_type::string).str() = "v";
  r.db.set_expire("k", keyspace::now_ms() - 1);
  r.db.update_clock();
  REQUIRE(r.db.peek("k"));
  CHECK(r.db.is_expired(*r.db.peek("k")));

  r.db.pause_expiry(true);  // an AOF being loaded
  CHECK(r.db.find("k"));
  CHECK(r.db.expire_due(10) == 0);
  r.db.pause_expiry(false);

  CHECK_FALSE(r.db.find("k"));
  CHECK(r.expired == std::vector<std::string>{"k"});
  CHECK_FALSE(r.db.peek("k"));
  CHECK(r.db.volatile_keys() == 0);
}

TEST_CASE("expire_due takes due keys in deadline order, within its limit", "[keyspace][expiry]") {
  recorder r;
  const auto now = keyspace::now_ms();
  const char* names[] = {"late", "first", "second", "future", "third"};
  const long long offsets[] = {-10, -300, -200, 100000, -100};
  for (int i = 0; i < 5; ++i) {
    r.db.create(names[i], value_type::string);
    r.db.set_expire(names[i], now + offsets[i]);
  }
  r.db.update_clock();
  CHECK(r.db.expire_due(2) == 2);
  CHECK(r.expired == std::vector<std::string>{"first", "second"});
  CHECK(r.db.expire_due(100) == 2);
  CHECK(r.expired == std::vector<std::string>{"first", "second", "third", "late"});
  CHECK(r.db.find("future"));
  CHECK(r.db.volatile_keys() == 1);
  CHECK(r.db.size() == 1);
}

TEST_CASE("deadlines are judged by the clock the server last set", "[keyspace][expiry]") {
  recorder r;
  r.db.update_clock();
  r.db.create("k", value_type::string);
  r.db.set_expire("k", r.db.clock() + 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(r.db.find("k"));  // one command's lookups all see the same time
  CHECK(r.db.expire_due(10) == 0);
  r.db.update_clock();
  CHECK_FALSE(r.db.find("k"));
  CHECK(r.expired == std::vector<std::string>{"k"});
}
