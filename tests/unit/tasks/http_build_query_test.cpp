// http_build_query: byte-for-byte against the real PHP. Hundreds of random nested param
// objects (unicode, reserved characters, numbers of every magnitude, booleans, nulls,
// empty containers, deep nesting) go through `php` (json_decode(..., true) then
// http_build_query) and through ours; every line must match.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdlib.h>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tasks/query.hpp"

using respq::tasks::http_build_query;
using ojson = nlohmann::ordered_json;

namespace {

// A fresh directory under the system's temporary directory, removed with its content.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "respq-query-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Runs PHP over a file of JSON documents, one per line; returns one query per line.
std::vector<std::string> php_queries(const std::vector<std::string>& json_lines) {
  temp_dir dir;
  const auto input = dir.path() / "params.jsonl";
  {
    std::ofstream out(input, std::ios::binary);
    for (const auto& l : json_lines) out << l << '\n';
  }
  const std::string cmd =
      "php -r '$in = fopen($argv[1], \"r\");"
      " while (($l = fgets($in)) !== false) {"
      "   $d = json_decode($l, true, 512, JSON_THROW_ON_ERROR);"
      "   echo http_build_query($d), \"\\n\"; }' " +
      input.string();
  std::vector<std::string> lines;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string cur;
  for (int c; (c = std::fgetc(p)) != EOF;) {
    if (c == '\n') {
      lines.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(c);
    }
  }
  REQUIRE(::pclose(p) == 0);
  return lines;
}

class param_generator {
 public:
  explicit param_generator(std::uint64_t seed) : rng_(seed) {}

  ojson container(int depth) {
    const bool as_object = pick(4) != 0;
    ojson c = as_object ? ojson::object() : ojson::array();
    const int n = static_cast<int>(pick(depth == 0 ? 7 : 5));
    for (int i = 0; i < n; ++i) {
      ojson v = value(depth);
      if (as_object)
        c[text(true)] = std::move(v);
      else
        c.push_back(std::move(v));
    }
    return c;
  }

 private:
  std::uint64_t pick(std::uint64_t n) { return n ? rng_() % n : 0; }

  std::string text(bool key) {
    static const std::vector<std::string> pieces = {"a",
                                                    "Z",
                                                    "q",
                                                    "0",
                                                    "9",
                                                    " ",
                                                    "+",
                                                    "&",
                                                    "=",
                                                    "%",
                                                    "#",
                                                    "[",
                                                    "]",
                                                    "?",
                                                    "/",
                                                    "~",
                                                    "-",
                                                    "_",
                                                    ".",
                                                    "*",
                                                    "'",
                                                    "(",
                                                    ")",
                                                    "!",
                                                    "@",
                                                    ":",
                                                    ";",
                                                    ",",
                                                    "$",
                                                    "<",
                                                    ">",
                                                    "\\",
                                                    "\"",
                                                    "\t",
                                                    "\n",
                                                    "\x01",
                                                    "\x7f",
                                                    "%20",
                                                    "é",
                                                    "ß",
                                                    "日本",
                                                    "😀",
                                                    "\xe2\x80\x8b",
                                                    "user",
                                                    "name"};
    if (key && pick(5) == 0) {
      static const std::vector<std::string> numeric = {"0", "1", "7", "-3", "01", "1.5", "123456789012", ""};
      return numeric[pick(numeric.size())];
    }
    std::string s;
    const auto len = pick(key ? 5 : 8);
    for (std::uint64_t i = 0; i < len; ++i) s += pieces[pick(pieces.size())];
    return s;
  }

  double number() {
    static const std::vector<double> special = {0.1,
                                                1.0,
                                                -0.0,
                                                0.0,
                                                1e14,
                                                1e15,
                                                1e13,
                                                123456789012345.0,
                                                0.0001,
                                                0.00001,
                                                2.5,
                                                1.5e-7,
                                                99999999999999.5,
                                                1234567890123.45,
                                                0.30000000000000004,
                                                1e300,
                                                5e-324,
                                                1.7976931348623157e308,
                                                -123.456,
                                                100.0,
                                                1e21,
                                                9007199254740993.0};
    switch (pick(3)) {
      case 0:
        return special[pick(special.size())];
      case 1: {
        const double mant = static_cast<double>(pick(2'000'000'000)) / 1e6 - 1000.0;
        return mant * std::pow(10.0, static_cast<int>(pick(61)) - 30);
      }
      default: {
        for (;;) {  // any finite bit pattern
          const std::uint64_t bits = rng_();
          double d;
          std::memcpy(&d, &bits, sizeof d);
          if (std::isfinite(d)) return d;
        }
      }
    }
  }

  ojson value(int depth) {
    const auto kind = pick(depth < 4 ? 11 : 8);
    switch (kind) {
      case 0:
      case 1:
        return text(false);
      case 2: {
        static const std::vector<std::int64_t> ints = {0,
                                                       1,
                                                       -1,
                                                       42,
                                                       -42,
                                                       1000000,
                                                       std::numeric_limits<std::int64_t>::max(),
                                                       std::numeric_limits<std::int64_t>::min()};
        if (pick(2)) return ints[pick(ints.size())];
        return static_cast<std::int64_t>(rng_());
      }
      case 3:
        // Beyond int64: PHP's json_decode makes a float of it.
        return std::numeric_limits<std::uint64_t>::max() - pick(std::uint64_t{1} << 62);
      case 4:
        return number();
      case 5:
        return pick(2) == 0;
      case 6:
        return nullptr;
      case 7:
        return pick(2) ? ojson::object() : ojson::array();
      default:
        return container(depth + 1);
    }
  }

  std::mt19937_64 rng_;
};

}  // namespace

TEST_CASE("http_build_query encodes like PHP for known cases", "[query]") {
  auto q = [](const char* json) { return http_build_query(ojson::parse(json)); };
  CHECK(q(R"({"user":"a b","n":[1,2]})") == "user=a+b&n%5B0%5D=1&n%5B1%5D=2");
  CHECK(q(R"({"~ a":"~!*()'-_."})") == "%7E+a=%7E%21%2A%28%29%27-_.");
  CHECK(q(R"({"a":{},"b":[],"c":null,"d":true,"e":false})") == "d=1&e=0");
  CHECK(q(R"({"a":{"b":[1,{"c d":"e"}]}})") == "a%5Bb%5D%5B0%5D=1&a%5Bb%5D%5B1%5D%5Bc+d%5D=e");
  CHECK(q(R"({"":{"a":1,"":2}})") == "%5Ba%5D=1&%5B%5D=2");
  CHECK(q(R"({"x":["",null,[],[null],"y"]})") == "x%5B0%5D=&x%5B4%5D=y");
  CHECK(q(R"({"b":1,"a":2,"b":3})") == "b=3&a=2");  // duplicate key: last value, first place
  CHECK(q(R"([1,2,3])") == "0=1&1=2&2=3");
  CHECK(q(R"({"a":"\u0000\u00e9\ud83d\ude00"})") == "a=%00%C3%A9%F0%9F%98%80");
  CHECK(q(R"({"a":0.1,"b":1.0,"c":1e20,"d":1.5e-7,"e":-0.0,"f":1e15,"g":1e14,"h":1e13})") ==
        "a=0.1&b=1&c=1.0E%2B20&d=1.5E-7&e=-0&f=1.0E%2B15&g=1.0E%2B14&h=10000000000000");
  CHECK(q(R"({"a":12345678901234567890,"b":-9223372036854775808,"c":9223372036854775807,"d":-0})") ==
        "a=1.2345678901235E%2B19&b=-9223372036854775808&c=9223372036854775807&d=0");
  CHECK(q(R"({"a":0.0001,"b":0.00001,"c":123456789012345.0,"d":5e-324})") ==
        "a=0.0001&b=1.0E-5&c=1.2345678901234E%2B14&d=4.9406564584125E-324");
  // Not a container: PHP raises a TypeError; we give nothing.
  CHECK(q(R"("text")").empty());
  CHECK(q("5").empty());
  // Plain json iterates sorted keys.
  CHECK(http_build_query(nlohmann::json::parse(R"({"b":1,"a":2})")) == "a=2&b=1");
}

TEST_CASE("http_build_query matches real PHP on hundreds of random params", "[query][php]") {
  param_generator gen(20240611);
  std::vector<std::string> lines;
  for (int i = 0; i < 600; ++i) lines.push_back(gen.container(0).dump());
  // Duplicate keys only exist in text.
  lines.push_back(R"({"k":1,"j":{"x":1},"k":{"a":"z"},"j":null})");
  lines.push_back(R"({"0":"a","1":{"1":2},"-1":3,"01":4})");

  const std::vector<std::string> php = php_queries(lines);
  REQUIRE(php.size() == lines.size());
  int mismatches = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string ours = http_build_query(ojson::parse(lines[i]));
    if (ours != php[i] && ++mismatches <= 5) {
      INFO("json: " << lines[i]);
      INFO("php:  " << php[i]);
      INFO("ours: " << ours);
      CHECK(ours == php[i]);
    }
  }
  CHECK(mismatches == 0);
  // The generator must exercise what it claims to.
  std::string all;
  for (const auto& l : php) all += l;
  CHECK(all.find("%5B") != std::string::npos);
  CHECK(all.find("E%2B") != std::string::npos);
  CHECK(all.find("%F0%9F%98%80") != std::string::npos);
  CHECK(all.find('+') != std::string::npos);
}

TEST_CASE("http_build_query survives deep nesting", "[query]") {
  ojson deep = 1;
  for (int i = 0; i < 2000; ++i) {
    ojson outer = ojson::array();
    outer.push_back(std::move(deep));
    deep = std::move(outer);
  }
  std::string q;
  CHECK_NOTHROW(q = http_build_query(deep));
  CHECK(q.empty());  // deeper than max_json_depth: cut off, never a stack overflow

  ojson ok_depth = 1;
  for (int i = 0; i < 100; ++i) {
    ojson outer = ojson::array();
    outer.push_back(std::move(ok_depth));
    ok_depth = std::move(outer);
  }
  std::string expected;
  for (int i = 0; i < 100; ++i) expected += i == 0 ? "0" : "%5B0%5D";
  CHECK(http_build_query(ok_depth) == expected + "=1");
}
