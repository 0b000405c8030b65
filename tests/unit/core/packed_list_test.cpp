// packed_list against a std::deque model: every operation, random sequences, element
// sizes across the 1/2/5-byte length encodings and larger than a chunk.
#include <catch2/catch.hpp>

#include <deque>
#include <random>
#include <string>

#include "broker/core/packed_list.hpp"

using respq::core::packed_list;

namespace {

std::string random_value(std::mt19937& rng) {
  static const std::size_t sizes[] = {0, 1, 5, 100, 127, 128, 200, 16383, 16384, 20000, 9000};
  std::size_t n = sizes[rng() % std::size(sizes)];
  std::string v(n, '\0');
  for (auto& ch : v) ch = static_cast<char>(rng() % 256);
  return v;
}

void check_equal(const packed_list& l, const std::deque<std::string>& m) {
  REQUIRE(l.size() == m.size());
  std::size_t i = 0;
  for (auto cur = l.seek(0); cur.valid(); cur.next(), ++i) REQUIRE(cur.value() == m[i]);
  REQUIRE(i == m.size());
  if (!m.empty()) {
    REQUIRE(l.front() == m.front());
    REQUIRE(l.back() == m.back());
    std::size_t j = m.size();
    for (auto cur = l.seek(m.size() - 1); cur.valid(); cur.prev()) REQUIRE(cur.value() == m[--j]);
    REQUIRE(j == 0);
  }
}

}  // namespace

TEST_CASE("packed_list behaves like a deque under random operations", "[packed_list]") {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    packed_list l;
    std::deque<std::string> m;
    for (int step = 0; step < 3000; ++step) {
      int op = static_cast<int>(rng() % 12);
      std::string v = random_value(rng);
      switch (op) {
        case 0: case 1: l.push_front(v); m.push_front(v); break;
        case 2: case 3: l.push_back(v); m.push_back(v); break;
        case 4: if (!m.empty()) { l.pop_front(); m.pop_front(); } break;
        case 5: if (!m.empty()) { l.pop_back(); m.pop_back(); } break;
        case 6: if (!m.empty()) { std::size_t i = rng() % m.size(); REQUIRE(l.at(i) == m[i]); } break;
        case 7: if (!m.empty()) { std::size_t i = rng() % m.size(); l.set(i, v); m[i] = v; } break;
        case 8: { std::size_t i = m.empty() ? 0 : rng() % (m.size() + 1); l.insert(i, v); m.insert(m.begin() + static_cast<long>(i), v); } break;
        case 9: if (!m.empty()) { std::size_t i = rng() % m.size(); l.erase(i); m.erase(m.begin() + static_cast<long>(i)); } break;
        case 10: if (!m.empty() && rng() % 10 == 0) {
            std::size_t a = rng() % m.size(), n = rng() % (m.size() - a + 1);
            l.keep_range(a, n);
            m = std::deque<std::string>(m.begin() + static_cast<long>(a), m.begin() + static_cast<long>(a + n));
          } break;
        case 11: if (!m.empty()) {
            std::string target = m[rng() % m.size()];
            long long count = static_cast<long long>(rng() % 5) - 2;
            std::size_t removed = l.remove(target, count);
            std::size_t expect = 0;
            std::size_t limit = count == 0 ? m.size() : static_cast<std::size_t>(count < 0 ? -count : count);
            if (count >= 0) {
              for (auto it = m.begin(); it != m.end() && expect < limit;) {
                if (*it == target) { it = m.erase(it); ++expect; } else ++it;
              }
            } else {
              for (std::size_t k = m.size(); k-- > 0 && expect < limit;) {
                if (m[k] == target) { m.erase(m.begin() + static_cast<long>(k)); ++expect; }
              }
            }
            REQUIRE(removed == expect);
          } break;
      }
      if (step % 97 == 0) check_equal(l, m);
    }
    check_equal(l, m);
  }
}

TEST_CASE("packed_list queue pattern keeps memory close to the payload", "[packed_list]") {
  packed_list l;
  std::string v(100, 'x');
  for (int i = 0; i < 100000; ++i) l.push_front(v);
  // 100 bytes + 2 length bytes per element, in 8 KB chunks.
  REQUIRE(l.allocated_bytes() < 100000 * 102 * 105 / 100);
  for (int i = 0; i < 100000; ++i) l.pop_back();
  REQUIRE(l.empty());
  REQUIRE(l.allocated_bytes() == 0);
}

TEST_CASE("packed_list keeps many short lists small", "[packed_list]") {
  packed_list l;
  l.push_back("a");
  REQUIRE(l.allocated_bytes() <= 64 + 16);
}

TEST_CASE("packed_list moves leave the source empty", "[packed_list]") {
  packed_list a;
  a.push_back("x");
  packed_list b(std::move(a));
  REQUIRE(b.size() == 1);
  REQUIRE(a.size() == 0);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  a = std::move(b);
  REQUIRE(a.front() == "x");
}
