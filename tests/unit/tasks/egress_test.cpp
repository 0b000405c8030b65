// egress: the policy as a pure function, table by table: every range each level denies
// (link-local, cloud metadata, this network, multicast, reserved, documentation, loopback,
// RFC 1918, CGNAT, unique local, ...), IPv4 embedded in IPv6 judged as IPv4 (mapped,
// translated, compatible, NAT64, 6to4), the allow and deny lists and their order, CIDR
// parsing, and the text a denial reports.
#include <string>

#include <catch2/catch.hpp>

#include "tasks/egress.hpp"

using namespace respq::tasks;

namespace {

ip_address ip(const char* text) {
  auto a = parse_ip(text);
  REQUIRE(a);
  return *a;
}

cidr_block block(const char* text) {
  auto b = parse_cidr(text);
  REQUIRE(std::holds_alternative<cidr_block>(b));
  return std::get<cidr_block>(b);
}

egress_rules level(egress_level l) {
  egress_rules r;
  r.level = l;
  return r;
}

}  // namespace

TEST_CASE("each level denies its ranges and names the narrowest rule", "[egress]") {
  struct row {
    const char* addr;
    const char* metadata;  // the rule under `metadata`, "" = allowed
    const char* pub;       // the rule under `public`, "" = allowed
  };
  const row rows[] = {
      // cloud metadata, named before the link-local or private range around them
      {"169.254.169.254", "cloud metadata 169.254.169.254/32", "cloud metadata 169.254.169.254/32"},
      {"169.254.170.2", "cloud metadata 169.254.170.2/32", "cloud metadata 169.254.170.2/32"},
      {"169.254.170.23", "cloud metadata 169.254.170.23/32", "cloud metadata 169.254.170.23/32"},
      {"100.100.100.200", "cloud metadata 100.100.100.200/32", "cloud metadata 100.100.100.200/32"},
      {"168.63.129.16", "cloud metadata 168.63.129.16/32", "cloud metadata 168.63.129.16/32"},
      {"192.0.0.192", "cloud metadata 192.0.0.192/32", "cloud metadata 192.0.0.192/32"},
      {"fd00:ec2::254", "cloud metadata fd00:ec2::254/128", "cloud metadata fd00:ec2::254/128"},
      {"fd00:ec2::23", "cloud metadata fd00:ec2::23/128", "cloud metadata fd00:ec2::23/128"},
      // link-local
      {"169.254.0.1", "link-local 169.254.0.0/16", "link-local 169.254.0.0/16"},
      {"169.254.255.255", "link-local 169.254.0.0/16", "link-local 169.254.0.0/16"},
      {"fe80::1", "link-local fe80::/10", "link-local fe80::/10"},
      {"febf:ffff::1", "link-local fe80::/10", "link-local fe80::/10"},
      // this network, unspecified
      {"0.0.0.0", "this network 0.0.0.0/8", "this network 0.0.0.0/8"},
      {"0.255.1.2", "this network 0.0.0.0/8", "this network 0.0.0.0/8"},
      {"::", "unspecified ::/128", "unspecified ::/128"},
      // multicast
      {"224.0.0.1", "multicast 224.0.0.0/4", "multicast 224.0.0.0/4"},
      {"239.255.255.250", "multicast 224.0.0.0/4", "multicast 224.0.0.0/4"},
      {"ff02::1", "multicast ff00::/8", "multicast ff00::/8"},
      // reserved, broadcast, documentation, discard
      {"240.0.0.1", "reserved 240.0.0.0/4", "reserved 240.0.0.0/4"},
      {"255.255.255.254", "reserved 240.0.0.0/4", "reserved 240.0.0.0/4"},
      {"255.255.255.255", "broadcast 255.255.255.255/32", "broadcast 255.255.255.255/32"},
      {"192.0.2.10", "documentation 192.0.2.0/24", "documentation 192.0.2.0/24"},
      {"198.51.100.7", "documentation 198.51.100.0/24", "documentation 198.51.100.0/24"},
      {"203.0.113.99", "documentation 203.0.113.0/24", "documentation 203.0.113.0/24"},
      {"2001:db8::1", "documentation 2001:db8::/32", "documentation 2001:db8::/32"},
      {"3fff::1", "documentation 3fff::/20", "documentation 3fff::/20"},
      {"100::1", "discard-only 100::/64", "discard-only 100::/64"},
      // reachable under metadata, denied under public
      {"127.0.0.1", "", "loopback 127.0.0.0/8"},
      {"127.0.0.2", "", "loopback 127.0.0.0/8"},
      {"127.255.255.254", "", "loopback 127.0.0.0/8"},
      {"::1", "", "loopback ::1/128"},
      {"10.0.0.1", "", "private (RFC 1918) 10.0.0.0/8"},
      {"10.255.255.255", "", "private (RFC 1918) 10.0.0.0/8"},
      {"172.16.0.1", "", "private (RFC 1918) 172.16.0.0/12"},
      {"172.31.255.254", "", "private (RFC 1918) 172.16.0.0/12"},
      {"192.168.1.20", "", "private (RFC 1918) 192.168.0.0/16"},
      {"100.64.0.1", "", "shared address space (CGNAT) 100.64.0.0/10"},
      {"100.127.255.254", "", "shared address space (CGNAT) 100.64.0.0/10"},
      {"192.0.0.8", "", "IETF protocol assignments 192.0.0.0/24"},
      {"198.18.0.1", "", "benchmarking 198.18.0.0/15"},
      {"192.88.99.1", "", "6to4 relay anycast 192.88.99.0/24"},
      {"fc00::1", "", "unique local fc00::/7"},
      {"fd12:3456::1", "", "unique local fc00::/7"},
      {"fec0::1", "", "site-local fec0::/10"},
      {"64:ff9b:1::1", "", "local-use NAT64 64:ff9b:1::/48"},
      {"2001::1", "", "IETF protocol assignments 2001::/23"},
      // just outside the ranges: public addresses, allowed by both
      {"8.8.8.8", "", ""},
      {"1.1.1.1", "", ""},
      {"172.15.255.255", "", ""},
      {"172.32.0.0", "", ""},
      {"100.63.255.255", "", ""},
      {"100.128.0.0", "", ""},
      {"169.253.255.255", "", ""},
      {"169.255.0.0", "", ""},
      {"11.0.0.1", "", ""},
      {"223.255.255.255", "", ""},
      {"192.169.0.1", "", ""},
      {"2606:4700:4700::1111", "", ""},
      {"2a00:1450::1", "", ""},
      {"fe00::1", "", ""},
      {"2001:200::1", "", ""},
  };
  for (const auto& r : rows) {
    INFO(r.addr);
    const ip_address a = ip(r.addr);
    const auto m = check_egress(a, level(egress_level::metadata));
    CHECK(m.allowed == (*r.metadata == '\0'));
    CHECK(m.rule == (*r.metadata ? std::string("policy metadata: ") + r.metadata : std::string()));
    const auto p = check_egress(a, level(egress_level::public_only));
    CHECK(p.allowed == (*r.pub == '\0'));
    CHECK(p.rule == (*r.pub ? std::string("policy public: ") + r.pub : std::string()));
    const auto any = check_egress(a, level(egress_level::any));
    CHECK(any.allowed);
    CHECK(any.rule.empty());
  }
}

TEST_CASE("IPv4 embedded in IPv6 is judged as the IPv4 address", "[egress]") {
  struct row {
    const char* addr;
    const char* v4;        // the embedded address
    const char* metadata;  // the rule under `metadata`, "" = allowed
    const char* pub;
  };
  const row rows[] = {
      // IPv4-mapped
      {"::ffff:169.254.169.254", "169.254.169.254", "cloud metadata 169.254.169.254/32",
       "cloud metadata 169.254.169.254/32"},
      {"::ffff:127.0.0.1", "127.0.0.1", "", "loopback 127.0.0.0/8"},
      {"::ffff:10.1.2.3", "10.1.2.3", "", "private (RFC 1918) 10.0.0.0/8"},
      {"::ffff:8.8.8.8", "8.8.8.8", "", ""},
      {"::ffff:0.0.0.0", "0.0.0.0", "this network 0.0.0.0/8", "this network 0.0.0.0/8"},
      // IPv4-translated (SIIT)
      {"::ffff:0:169.254.1.1", "169.254.1.1", "link-local 169.254.0.0/16", "link-local 169.254.0.0/16"},
      {"::ffff:0:192.168.0.1", "192.168.0.1", "", "private (RFC 1918) 192.168.0.0/16"},
      // IPv4-compatible (deprecated)
      {"::169.254.169.254", "169.254.169.254", "cloud metadata 169.254.169.254/32",
       "cloud metadata 169.254.169.254/32"},
      {"::127.0.0.1", "127.0.0.1", "", "loopback 127.0.0.0/8"},
      // NAT64 well-known prefix
      {"64:ff9b::169.254.169.254", "169.254.169.254", "cloud metadata 169.254.169.254/32",
       "cloud metadata 169.254.169.254/32"},
      {"64:ff9b::a9fe:a9fe", "169.254.169.254", "cloud metadata 169.254.169.254/32",
       "cloud metadata 169.254.169.254/32"},
      {"64:ff9b::7f00:1", "127.0.0.1", "", "loopback 127.0.0.0/8"},
      {"64:ff9b::6464:64c8", "100.100.100.200", "cloud metadata 100.100.100.200/32",
       "cloud metadata 100.100.100.200/32"},
      {"64:ff9b::808:808", "8.8.8.8", "", ""},
      // 6to4
      {"2002:a9fe:a9fe::1", "169.254.169.254", "cloud metadata 169.254.169.254/32",
       "cloud metadata 169.254.169.254/32"},
      {"2002:7f00:1::", "127.0.0.1", "", "loopback 127.0.0.0/8"},
      {"2002:ac10:1::5", "172.16.0.1", "", "private (RFC 1918) 172.16.0.0/12"},
      {"2002:e000:1::", "224.0.0.1", "multicast 224.0.0.0/4", "multicast 224.0.0.0/4"},
      {"2002:808:808::1", "8.8.8.8", "", ""},
  };
  for (const auto& r : rows) {
    INFO(r.addr);
    const ip_address a = ip(r.addr);
    const auto v4 = embedded_ipv4(a);
    REQUIRE(v4);
    CHECK(format_ip(*v4) == r.v4);
    const auto m = check_egress(a, level(egress_level::metadata));
    CHECK(m.allowed == (*r.metadata == '\0'));
    CHECK(m.rule == (*r.metadata ? std::string("policy metadata: ") + r.metadata : std::string()));
    const auto p = check_egress(a, level(egress_level::public_only));
    CHECK(p.allowed == (*r.pub == '\0'));
    CHECK(p.rule == (*r.pub ? std::string("policy public: ") + r.pub : std::string()));
  }
  // Not embedding forms: loopback and the unspecified address are themselves; other
  // prefixes carry no IPv4 address.
  for (const char* plain : {"::", "::1", "64:ff9b:1::1", "2001:db8::1", "fe80::ffff:7f00:1", "::ffff:1:0:0:1"}) {
    INFO(plain);
    CHECK_FALSE(embedded_ipv4(ip(plain)));
  }
  CHECK_FALSE(embedded_ipv4(ip("127.0.0.1")));
}

TEST_CASE("egress-allow overrides egress-deny and the level, egress-deny overrides the level", "[egress]") {
  egress_rules r = level(egress_level::public_only);
  r.allow = {block("10.1.0.0/16"), block("127.0.0.1"), block("fd00:ec2::254/128")};
  r.deny = {block("127.0.0.0/8"), block("93.184.216.0/24"), block("2606:4700::/32"), block("10.0.0.0/8")};
  struct row {
    const char* addr;
    bool allowed;
    const char* rule;
  };
  const row rows[] = {
      {"10.1.2.3", true, "egress-allow 10.1.0.0/16"},       // allow beats deny and the level
      {"10.2.0.1", false, "egress-deny 10.0.0.0/8"},        // deny names itself before the level
      {"127.0.0.1", true, "egress-allow 127.0.0.1/32"},     // a bare address is a /32
      {"127.0.0.2", false, "egress-deny 127.0.0.0/8"},
      {"::ffff:127.0.0.1", true, "egress-allow 127.0.0.1/32"},   // lists match the embedded IPv4
      {"::ffff:127.0.0.3", false, "egress-deny 127.0.0.0/8"},
      {"64:ff9b::5db8:d822", false, "egress-deny 93.184.216.0/24"},
      {"93.184.216.34", false, "egress-deny 93.184.216.0/24"},   // deny closes a public address
      {"2606:4700::6810:84e5", false, "egress-deny 2606:4700::/32"},
      {"fd00:ec2::254", true, "egress-allow fd00:ec2::254/128"},  // even a metadata address, when allowed
      {"192.168.0.1", false, "policy public: private (RFC 1918) 192.168.0.0/16"},
      {"8.8.4.4", true, ""},
  };
  for (const auto& row : rows) {
    INFO(row.addr);
    const auto v = check_egress(ip(row.addr), r);
    CHECK(v.allowed == row.allowed);
    CHECK(v.rule == row.rule);
  }
  // Under `any` only the lists judge.
  r.level = egress_level::any;
  CHECK(check_egress(ip("169.254.169.254"), r).allowed);
  CHECK_FALSE(check_egress(ip("127.0.0.5"), r).allowed);
  CHECK(check_egress(ip("127.0.0.1"), r).allowed);
}

TEST_CASE("list entries in the IPv4-mapped form match the plain IPv4 address", "[egress]") {
  // A deny entry written as a mapped /128 closes the plain address as it does the mapped one.
  egress_rules deny = level(egress_level::metadata);
  deny.deny = {block("::ffff:127.0.0.2")};
  for (const char* addr : {"127.0.0.2", "::ffff:127.0.0.2"}) {
    INFO(addr);
    CHECK_FALSE(check_egress(ip(addr), deny).allowed);
    CHECK(check_egress(ip(addr), deny).rule == "egress-deny ::ffff:127.0.0.2/128");
  }
  CHECK(check_egress(ip("127.0.0.3"), deny).allowed);
  // So are the other forms that embed the same IPv4 address (NAT64, SIIT, 6to4).
  for (const char* addr : {"64:ff9b::7f00:2", "::ffff:0:7f00:2", "2002:7f00:2::1"}) {
    INFO(addr);
    CHECK_FALSE(check_egress(ip(addr), deny).allowed);
  }
  // An allow entry as a mapped block opens the plain addresses it covers.
  egress_rules allow = level(egress_level::public_only);
  allow.allow = {block("::ffff:127.0.0.0/104")};
  CHECK(check_egress(ip("127.0.0.9"), allow).allowed);
  CHECK(check_egress(ip("127.0.0.9"), allow).rule == "egress-allow ::ffff:127.0.0.0/104");
  CHECK_FALSE(check_egress(ip("10.0.0.1"), allow).allowed);
  // A wider IPv6 block does not take in every IPv4 address.
  egress_rules wide = level(egress_level::any);
  wide.deny = {block("::/0"), block("::/95")};
  CHECK(check_egress(ip("8.8.8.8"), wide).allowed);
  CHECK(check_egress(ip("127.0.0.1"), wide).allowed);
  CHECK_FALSE(check_egress(ip("2001:db8::1"), wide).allowed);
}

TEST_CASE("the default rules are the metadata level with no lists", "[egress]") {
  const egress_rules& d = default_egress_rules();
  CHECK(d.level == egress_level::metadata);
  CHECK(d.allow.empty());
  CHECK(d.deny.empty());
  CHECK_FALSE(check_egress(ip("169.254.169.254"), d).allowed);
  CHECK(check_egress(ip("127.0.0.1"), d).allowed);
  CHECK(check_egress(ip("192.168.1.1"), d).allowed);
}

TEST_CASE("CIDR blocks parse strictly and contain what they should", "[egress][cidr]") {
  CHECK(block("10.0.0.0/8").text() == "10.0.0.0/8");
  CHECK(block("127.0.0.2").text() == "127.0.0.2/32");
  CHECK(block("::1").text() == "::1/128");
  CHECK(block("0.0.0.0/0").text() == "0.0.0.0/0");
  CHECK(block("::/0").text() == "::/0");
  CHECK(block("fd00::/8").text() == "fd00::/8");
  CHECK(block("172.16.0.0/12").contains(ip("172.31.1.1")));
  CHECK_FALSE(block("172.16.0.0/12").contains(ip("172.32.0.0")));
  CHECK(block("0.0.0.0/0").contains(ip("203.0.113.1")));
  CHECK_FALSE(block("0.0.0.0/0").contains(ip("::1")));  // families never mix
  CHECK(block("::/0").contains(ip("2001:db8::1")));
  CHECK_FALSE(block("::/0").contains(ip("10.0.0.1")));
  CHECK(block("fe80::/10").contains(ip("febf::1")));
  CHECK_FALSE(block("fe80::/10").contains(ip("fec0::1")));

  struct bad {
    const char* text;
    const char* error;
  };
  const bad rows[] = {
      {"", "'' is not an IP address or CIDR block"},
      {"example.com", "'example.com' is not an IP address or CIDR block"},
      {"10.0.0/8", "'10.0.0/8' is not an IP address or CIDR block"},
      {"10.0.0.0/33", "'10.0.0.0/33' has an invalid prefix length"},
      {"::/129", "'::/129' has an invalid prefix length"},
      {"10.0.0.0/", "'10.0.0.0/' has an invalid prefix length"},
      {"10.0.0.0/-1", "'10.0.0.0/-1' has an invalid prefix length"},
      {"10.0.0.0/8x", "'10.0.0.0/8x' has an invalid prefix length"},
      {"10.0.0.1/8", "'10.0.0.1/8' has host bits set (the block is 10.0.0.0/8)"},
      {"fe80::1/10", "'fe80::1/10' has host bits set (the block is fe80::/10)"},
      {"[::1]", "'[::1]' is not an IP address or CIDR block"},
  };
  for (const auto& b : rows) {
    INFO(b.text);
    auto r = parse_cidr(b.text);
    REQUIRE(std::holds_alternative<std::string>(r));
    CHECK(std::get<std::string>(r) == b.error);
  }
}

TEST_CASE("levels have names and parse case-insensitively", "[egress]") {
  CHECK(parse_egress_level("metadata") == egress_level::metadata);
  CHECK(parse_egress_level("PUBLIC") == egress_level::public_only);
  CHECK(parse_egress_level("Any") == egress_level::any);
  CHECK_FALSE(parse_egress_level("private"));
  CHECK_FALSE(parse_egress_level(""));
  CHECK(egress_level_name(egress_level::public_only) == "public");
  CHECK(egress_level_name(egress_level::metadata) == "metadata");
  CHECK(egress_level_name(egress_level::any) == "any");
}

TEST_CASE("a denial names the address, the port, the embedded IPv4 and the rule", "[egress]") {
  const auto v4 = check_egress(ip("127.0.0.1"), level(egress_level::public_only));
  CHECK(egress_denial_text(ip("127.0.0.1"), 8080, v4) ==
        "egress denied: 127.0.0.1 port 8080 (policy public: loopback 127.0.0.0/8)");
  const auto mapped = check_egress(ip("::ffff:169.254.169.254"), level(egress_level::metadata));
  CHECK(egress_denial_text(ip("::ffff:169.254.169.254"), 80, mapped) ==
        "egress denied: ::ffff:169.254.169.254 port 80 (as IPv4 169.254.169.254; policy metadata: cloud metadata "
        "169.254.169.254/32)");
  egress_rules r;
  r.deny = {block("127.0.0.2/32")};
  CHECK(egress_denial_text(ip("127.0.0.2"), 9, check_egress(ip("127.0.0.2"), r)) ==
        "egress denied: 127.0.0.2 port 9 (egress-deny 127.0.0.2/32)");
}
