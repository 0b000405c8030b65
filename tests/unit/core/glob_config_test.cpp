// glob_match (Redis's stringmatchlen) and configuration parsing.
#include <catch2/catch.hpp>

#include <limits>

#include "broker/core/config.hpp"
#include "broker/core/glob.hpp"

using namespace respq::core;

TEST_CASE("glob_match follows Redis's stringmatchlen", "[glob]") {
  CHECK(glob_match("*", "x"));
  // As in Redis, a pattern never matches the empty string (KEYS * special-cases "*").
  CHECK_FALSE(glob_match("*", ""));
  CHECK(glob_match("h?llo", "hello"));
  CHECK(glob_match("h*llo", "heeeello"));
  CHECK(glob_match("h[ae]llo", "hallo"));
  CHECK_FALSE(glob_match("h[ae]llo", "hillo"));
  CHECK(glob_match("h[^e]llo", "hallo"));
  CHECK_FALSE(glob_match("h[^e]llo", "hello"));
  CHECK(glob_match("h[a-b]llo", "hbllo"));
  CHECK(glob_match("h\\*llo", "h*llo"));
  CHECK_FALSE(glob_match("h\\*llo", "hello"));
  CHECK(glob_match("tasks:*", "tasks:results"));
  CHECK(glob_match("MaXcLiEnTs", "maxclients", true));
  CHECK_FALSE(glob_match("a*b", "acd"));
  // A hostile pattern finishes quickly.
  CHECK_FALSE(glob_match(std::string(200, '*') + "b", std::string(5000, 'a')));
}

TEST_CASE("memory values parse like Redis", "[config]") {
  CHECK(parse_memory("512mb") == 512ull * 1024 * 1024);
  CHECK(parse_memory("1gb") == 1024ull * 1024 * 1024);
  CHECK(parse_memory("1k") == 1000);
  CHECK(parse_memory("1KB") == 1024);
  CHECK(parse_memory("100") == 100);
  CHECK_FALSE(parse_memory("-1").has_value());
  CHECK_FALSE(parse_memory("abc").has_value());
  // Redis's memtoull: no digits read as 0, a 'b' unit, leading zeros; at most 127 digits;
  // a number past 2^64 - 1 saturates and the product wraps.
  CHECK(parse_memory("") == 0u);
  CHECK(parse_memory("kb") == 0u);
  CHECK(parse_memory("7b") == 7u);
  CHECK(parse_memory("0010K") == 10000u);
  CHECK(parse_memory(std::string(127, '0') + "1") == std::nullopt);
  CHECK(parse_memory(std::string(126, '0') + "1") == 1u);
  CHECK(parse_memory(std::string(127, '9')) == std::numeric_limits<std::uint64_t>::max());
  CHECK(parse_memory("18446744073709551615k") == 18446744073709550616ull);
  CHECK(parse_memory("9223372036854775808k") == 0u);
  CHECK_FALSE(parse_memory("+5").has_value());
  CHECK_FALSE(parse_memory(" 5").has_value());
  CHECK_FALSE(parse_memory("5 ").has_value());
  CHECK_FALSE(parse_memory("1.5mb").has_value());
  CHECK_FALSE(parse_memory("5kbb").has_value());
}

TEST_CASE("config lines split like sdssplitargs", "[config]") {
  auto a = split_args("bind 127.0.0.1 \"::1\"");
  REQUIRE(a);
  CHECK(*a == std::vector<std::string>{"bind", "127.0.0.1", "::1"});
  auto b = split_args("requirepass \"a b\\x41\"");
  REQUIRE(b);
  CHECK((*b)[1] == "a bA");
  CHECK_FALSE(split_args("requirepass \"abc").has_value());
  CHECK_FALSE(split_args("requirepass \"abc\"x").has_value());
}

TEST_CASE("http-queue directives create and change queues", "[config]") {
  config c;
  CHECK(c.queues.count("tasks") == 1);
  CHECK(apply_directive(c, "http-queue", {"jobs", "concurrency", "8", "rate", "2.5", "retries", "0"}).empty());
  REQUIRE(c.queues.count("jobs") == 1);
  CHECK(c.queues["jobs"].concurrency == 8);
  CHECK(c.queues["jobs"].rate == 2.5);
  CHECK(c.queues["jobs"].retries == 0);
  CHECK(apply_directive(c, "http-queue", {"tasks", "timeout", "0.5"}).empty());
  CHECK(c.queues["tasks"].timeout == 0.5);
  CHECK(c.queues["tasks"].concurrency == 64);
  CHECK_FALSE(apply_directive(c, "http-queue", {"x", "bogus", "1"}).empty());
  CHECK_FALSE(apply_directive(c, "http-queue", {"x", "concurrency"}).empty());
  CHECK(apply_directive(c, "http-queue", {"q\nnl"}) == "http-queue name can't hold control characters");
  CHECK(apply_directive(c, "http-queue", {"mail:high", "retries", "1"}).empty());  // ':' is an ordinary name
  CHECK_FALSE(apply_directive(c, "http-queue", {"x", "backoff-min", "5", "backoff-max", "1"}).empty());
  CHECK(apply_directive(c, "http-queue", {"tasks", "off"}).empty());
  CHECK(c.queues.count("tasks") == 0);
}

TEST_CASE("unknown directives and bad values are refused", "[config]") {
  config c;
  CHECK_FALSE(apply_directive(c, "nosuch", {"1"}).empty());
  CHECK_FALSE(apply_directive(c, "port", {"abc"}).empty());
  CHECK_FALSE(apply_directive(c, "port", {"70000"}).empty());
  CHECK_FALSE(apply_directive(c, "appendfsync", {"sometimes"}).empty());
  CHECK(apply_directive(c, "PORT", {"7000"}).empty());
  CHECK(c.port == 7000);
}

TEST_CASE("Redis settings respq has no use for are kept and shown, others only at respq's value", "[config]") {
  config c;
  const auto get = [&c](const char* name) {
    for (const auto& e : config_table())
      if (std::string(e.name) == name) return e.get(c);
    return std::string("(no such setting)");
  };
  CHECK(get("rdbcompression") == "yes");  // Redis 7.0's default until set
  CHECK(apply_directive(c, "rdbcompression", {"NO"}).empty());
  CHECK(get("rdbcompression") == "no");
  CHECK_FALSE(apply_directive(c, "rdbcompression", {"maybe"}).empty());
  CHECK(apply_directive(c, "tcp-backlog", {"1024"}).empty());
  CHECK_FALSE(apply_directive(c, "tcp-backlog", {"lots"}).empty());
  CHECK(apply_directive(c, "repl-backlog-size", {"2mb"}).empty());
  CHECK(get("repl-backlog-size") == "2097152");
  CHECK(apply_directive(c, "oom-score-adj-values", {"0", "100", "900"}).empty());
  CHECK(get("oom-score-adj-values") == "0 100 900");
  CHECK_FALSE(apply_directive(c, "dbfilename", {"a", "b"}).empty());
  // Redis's ranges and choices.
  CHECK(apply_directive(c, "repl-backlog-ttl", {"-5"}) == "argument must be between 0 and 9223372036854775807 inclusive");
  CHECK(apply_directive(c, "active-expire-effort", {"11"}) == "argument must be between 1 and 10 inclusive");
  CHECK(apply_directive(c, "list-max-listpack-size", {"-7"}).empty());
  CHECK(apply_directive(c, "oom-score-adj", {"bogus"}) ==
        "argument(s) must be one of the following: no, yes, relative, absolute");
  CHECK(apply_directive(c, "oom-score-adj", {"Relative"}).empty());
  CHECK(get("oom-score-adj") == "relative");
  // An old name and its new one are one setting.
  CHECK(apply_directive(c, "slave-read-only", {"no"}).empty());
  CHECK(get("replica-read-only") == "no");
  CHECK(c.inert_given == std::vector<std::string>{"rdbcompression", "tcp-backlog", "repl-backlog-size",
                                                  "oom-score-adj-values", "list-max-listpack-size",
                                                  "oom-score-adj", "replica-read-only"});
  // Only at the value respq has: any other would promise what it does not do.
  CHECK(apply_directive(c, "replicaof", {""}).empty());
  CHECK_FALSE(apply_directive(c, "replicaof", {"127.0.0.1", "6379"}).empty());
  CHECK(apply_directive(c, "supervised", {"no"}).empty());
  CHECK_FALSE(apply_directive(c, "supervised", {"systemd"}).empty());
  CHECK_FALSE(apply_directive(c, "tls-protocols", {"TLSv1.3"}).empty());
  CHECK_FALSE(apply_directive(c, "rename-command", {"CONFIG", ""}).empty());
  CHECK_FALSE(apply_directive(c, "enable-debug-command", {"no"}).empty());
  // CONFIG REWRITE: text quoted, numbers and yes/no bare, defaults not added.
  const std::string out = rewrite_config_text(c, "proc-title-template \"{title}\"\n");
  // A line the file had is rewritten in place with the running value.
  CHECK(out.rfind("proc-title-template \"{title} {listen-addr} {server-mode}\"\n", 0) == 0);
  CHECK(out.find("\nrdbcompression no\n") != std::string::npos);
  CHECK(out.find("\ntcp-backlog 1024\n") != std::string::npos);
  CHECK(out.find("\noom-score-adj-values 0 100 900\n") != std::string::npos);
  CHECK(out.find("dbfilename") == std::string::npos);
  CHECK(out.find("slave-read-only") == std::string::npos);
  CHECK(out.find("\nreplica-read-only no\n") != std::string::npos);
}

TEST_CASE("CONFIG REWRITE writes an empty value as \"\", which reads back", "[config]") {
  config c;
  const std::string out = rewrite_config_text(c, "notify-keyspace-events \"\"\n");
  CHECK(out.rfind("notify-keyspace-events \"\"\n", 0) == 0);
  config back;
  CHECK(load_config_text(back, out).empty());
}

TEST_CASE("command line directives take arguments up to the next --name", "[config]") {
  config c;
  const char* argv[] = {"respq-server", "--port", "7001", "--http-queue", "jobs", "retries", "-1"};
  // "-1" is a value, not a directive; retries -1 is out of range and names the directive.
  std::string err = load_config(c, 7, const_cast<char**>(argv));
  CHECK(err.find("--http-queue jobs retries -1") != std::string::npos);
  config d;
  const char* argv2[] = {"respq-server", "--port", "7001", "--bind", "127.0.0.1", "::1"};
  CHECK(load_config(d, 6, const_cast<char**>(argv2)).empty());
  CHECK(d.port == 7001);
  CHECK(d.bind.size() == 2);
}

TEST_CASE("egress directives set the level, the lists and each queue's own level", "[config][egress]") {
  config c;
  CHECK(c.egress_policy == respq::tasks::egress_level::metadata);
  CHECK(apply_directive(c, "egress-policy", {"PUBLIC"}).empty());
  CHECK(c.egress_policy == respq::tasks::egress_level::public_only);
  CHECK(apply_directive(c, "egress-policy", {"private"}) ==
        "argument(s) must be one of the following: metadata, public, any");
  CHECK(apply_directive(c, "egress-allow", {"10.0.0.0/8", "127.0.0.1"}).empty());
  CHECK(apply_directive(c, "egress-deny", {"127.0.0.2/32 fd00::/8"}).empty());  // CONFIG SET's one string
  const auto get = [&c](const char* name) {
    for (const auto& e : config_table())
      if (std::string_view(e.name) == name) return e.get(c);
    return std::string("?");
  };
  CHECK(get("egress-policy") == "public");
  CHECK(get("egress-allow") == "10.0.0.0/8 127.0.0.1/32");
  CHECK(get("egress-deny") == "127.0.0.2/32 fd00::/8");
  CHECK(apply_directive(c, "egress-deny", {"10.0.0.1/8"}) == "'10.0.0.1/8' has host bits set (the block is 10.0.0.0/8)");
  CHECK(get("egress-deny") == "127.0.0.2/32 fd00::/8");  // a refused list leaves the old one
  CHECK(apply_directive(c, "egress-deny", {""}).empty());
  CHECK(get("egress-deny").empty());

  CHECK(apply_directive(c, "http-queue", {"hooks", "egress", "any"}).empty());
  CHECK(c.queues["hooks"].egress == respq::tasks::egress_level::any);
  CHECK(format_queue("hooks", c.queues["hooks"]).find(" egress any") != std::string::npos);
  CHECK(format_queue("tasks", c.queues["tasks"]).find("egress") == std::string::npos);
  // The rules a queue obeys: its own level or the global one, with the global lists.
  auto hooks = egress_rules_for(c, c.queues["hooks"]);
  CHECK(hooks->level == respq::tasks::egress_level::any);
  CHECK(hooks->allow.size() == 2);
  CHECK(egress_rules_for(c, c.queues["tasks"])->level == respq::tasks::egress_level::public_only);
  CHECK(apply_directive(c, "http-queue", {"hooks", "egress", "default"}).empty());
  CHECK_FALSE(c.queues["hooks"].egress);
  CHECK(apply_directive(c, "http-queue", {"hooks", "egress", "open"}) ==
        "egress must be metadata, public, any or default");
}

TEST_CASE("signing secrets: one or two per directive, shown redacted", "[config][signing]") {
  config c;
  const std::string a = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", b = "whsec_c2Vjb25kIHNlY3JldA==";
  CHECK(apply_directive(c, "http-queue", {"hooks", "signing-secret", a}).empty());
  REQUIRE(c.queues["hooks"].signing_secrets.size() == 1);
  CHECK(apply_directive(c, "http-queue", {"hooks", "signing-secret", b, "signing-secret", a}).empty());
  REQUIRE(c.queues["hooks"].signing_secrets.size() == 2);  // a directive's secrets replace the queue's
  CHECK(c.queues["hooks"].signing_secrets[0].text == b);
  CHECK(apply_directive(c, "http-queue", {"hooks", "retries", "2"}).empty());
  CHECK(c.queues["hooks"].signing_secrets.size() == 2);  // other options leave them
  const std::string shown = format_queue("hooks", c.queues["hooks"]);
  CHECK(shown.find(" signing-secret whsec_c2Vj... signing-secret whsec_MfKQ...") != std::string::npos);
  CHECK(shown.find("MfKQ9r8G") == std::string::npos);
  for (const auto& e : config_table())
    if (std::string_view(e.name) == "http-queue") CHECK(e.get(c).find("LaLaSw") == std::string::npos);
  CHECK(apply_directive(c, "http-queue", {"hooks", "signing-secret", "secret"}) ==
        "signing-secret: a signing secret is written whsec_<base64>");
  CHECK(c.queues["hooks"].signing_secrets.size() == 2);
  CHECK(apply_directive(c, "http-queue", {"hooks", "signing-secret", "none"}).empty());
  CHECK(c.queues["hooks"].signing_secrets.empty());
}
