// egress: which network addresses an HTTP attempt may connect to. The policy is judged
// here, once, as a pure function; the delivery engine (workers/) asks it for every address
// it is about to dial (the lean client after resolving, curl from its open-socket and
// pre-request callbacks), so every redirect hop and every callback goes through it, and a
// name that resolves somewhere new (DNS rebinding) is judged on the address it resolved to.
//
//   egress-policy metadata|public|any    the level (global; per queue: http-queue <q> egress <level>)
//   egress-allow <cidr ...>              always allowed
//   egress-deny <cidr ...>               always denied, unless egress-allow matches too
//
// The order of judgement, first match decides:
//   1. egress-allow: allowed ("allow overrides deny": an operator can open one address of
//      a range the level or egress-deny closes, e.g. one internal service under public).
//   2. egress-deny: denied.
//   3. the level's ranges: denied.
//   4. otherwise allowed.
// An IPv6 address that embeds an IPv4 one is judged as that IPv4 address: IPv4-mapped
// (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), the deprecated IPv4-compatible
// (::a.b.c.d, other than :: and ::1), NAT64's well-known prefix (64:ff9b::/96) and 6to4
// (2002:AABB:CCDD::/16). The allow and deny lists match either form.
//
// Levels (see the tables in egress.cpp for every range):
//   metadata (default)  denies cloud metadata addresses (169.254.169.254, 169.254.170.2,
//                       fd00:ec2::254, 100.100.100.200, 168.63.129.16, ...), link-local
//                       (169.254.0.0/16, fe80::/10), 0.0.0.0/8 and ::, multicast,
//                       reserved (240.0.0.0/4, broadcast) and documentation ranges;
//                       loopback and private networks stay reachable (a sidecar calls
//                       internal services).
//   public              also denies loopback (127.0.0.0/8, ::1), RFC 1918, CGNAT
//                       (100.64.0.0/10), unique local (fc00::/7), site-local, and the other
//                       special-purpose ranges that are not globally reachable.
//   any                 the level denies nothing (egress-deny still applies).
//
// Pure functions of their arguments; any thread. A rules value is immutable once built
// and shared between threads through a shared_ptr<const egress_rules>.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace respq::tasks {

enum class egress_level : unsigned char { metadata, public_only, any };

// "metadata", "public", "any".
std::string_view egress_level_name(egress_level l);
std::optional<egress_level> parse_egress_level(std::string_view s);

// An IPv4 or IPv6 address: IPv4 in the first 4 bytes.
struct ip_address {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;

  static ip_address from_v4(const std::uint8_t (&b)[4]);
  static ip_address from_v4(std::uint32_t host_order);
  static ip_address from_v6(const std::uint8_t* b16);
  friend bool operator==(const ip_address&, const ip_address&) = default;
};

// Dotted IPv4 or IPv6 text (no brackets, no zone); nullopt otherwise.
std::optional<ip_address> parse_ip(std::string_view text);
// inet_ntop's form: "127.0.0.1", "::ffff:127.0.0.1", "fe80::1".
std::string format_ip(const ip_address& a);
// The IPv4 address an IPv6 address carries in one of the forms above, if any.
std::optional<ip_address> embedded_ipv4(const ip_address& a);

struct cidr_block {
  ip_address base;  // host bits cleared
  unsigned prefix = 0;
  bool contains(const ip_address& a) const;
  std::string text() const;  // "10.0.0.0/8"
  friend bool operator==(const cidr_block&, const cidr_block&) = default;
};

// "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128). Host bits set below the
// prefix are an error (as "10.0.0.1/8" is likely a typo). The error names the input.
std::variant<cidr_block, std::string> parse_cidr(std::string_view text);

struct egress_rules {
  egress_level level = egress_level::metadata;
  std::vector<cidr_block> allow, deny;
  friend bool operator==(const egress_rules&, const egress_rules&) = default;
};

struct egress_verdict {
  bool allowed = true;
  // What decided: "egress-allow 10.0.0.0/8", "egress-deny 127.0.0.2/32",
  // "policy public: loopback 127.0.0.0/8"; empty when nothing matched (allowed).
  std::string rule;
};

egress_verdict check_egress(const ip_address& a, const egress_rules& rules);

// The text a denied attempt reports, the start of the dead letter's reason:
//   "egress denied: 127.0.0.1 port 8080 (policy public: loopback 127.0.0.0/8)"
//   "egress denied: ::ffff:169.254.169.254 port 80 (as IPv4 169.254.169.254; policy metadata: ...)"
std::string egress_denial_text(const ip_address& a, unsigned port, const egress_verdict& v);

// The rules of the default policy (metadata, no lists), for pools nobody configured.
const egress_rules& default_egress_rules();

}  // namespace respq::tasks
