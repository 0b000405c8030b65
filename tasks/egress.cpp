// egress: see egress.hpp for the order of judgement. The tables below are the ranges each
// level denies, most specific first, so a reason names the narrowest rule (the metadata
// address rather than the link-local range around it). Sources: the IANA IPv4 and IPv6
// Special-Purpose Address Registries (RFC 6890 and updates) and the cloud providers'
// documented instance metadata endpoints.
#include "tasks/egress.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace respq::tasks {
namespace {

struct range {
  const char* name;
  cidr_block block;
};

cidr_block must_parse(const char* text) { return std::get<cidr_block>(parse_cidr(text)); }

std::vector<range> make(std::initializer_list<std::pair<const char*, const char*>> rows) {
  std::vector<range> out;
  out.reserve(rows.size());
  for (const auto& [name, text] : rows) out.push_back({name, must_parse(text)});
  return out;
}

// Denied from `metadata` up (so also by `public`).
const std::vector<range>& metadata_v4() {
  static const std::vector<range> t = make({
      {"cloud metadata", "169.254.169.254/32"},  // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, ...
      {"cloud metadata", "169.254.170.2/32"},    // AWS ECS task metadata
      {"cloud metadata", "169.254.170.23/32"},   // AWS EKS pod identity
      {"cloud metadata", "100.100.100.200/32"},  // Alibaba Cloud
      {"cloud metadata", "168.63.129.16/32"},    // Azure WireServer
      {"cloud metadata", "192.0.0.192/32"},      // Oracle Cloud (legacy)
      {"this network", "0.0.0.0/8"},
      {"link-local", "169.254.0.0/16"},
      {"multicast", "224.0.0.0/4"},
      {"broadcast", "255.255.255.255/32"},
      {"reserved", "240.0.0.0/4"},
      {"documentation", "192.0.2.0/24"},
      {"documentation", "198.51.100.0/24"},
      {"documentation", "203.0.113.0/24"},
  });
  return t;
}

// Denied by `public` only.
const std::vector<range>& public_v4() {
  static const std::vector<range> t = make({
      {"loopback", "127.0.0.0/8"},
      {"private (RFC 1918)", "10.0.0.0/8"},
      {"private (RFC 1918)", "172.16.0.0/12"},
      {"private (RFC 1918)", "192.168.0.0/16"},
      {"shared address space (CGNAT)", "100.64.0.0/10"},
      {"IETF protocol assignments", "192.0.0.0/24"},
      {"benchmarking", "198.18.0.0/15"},
      {"6to4 relay anycast", "192.88.99.0/24"},
  });
  return t;
}

const std::vector<range>& metadata_v6() {
  static const std::vector<range> t = make({
      {"cloud metadata", "fd00:ec2::254/128"},  // AWS (IPv6 instance metadata)
      {"cloud metadata", "fd00:ec2::23/128"},   // AWS EKS pod identity
      {"unspecified", "::/128"},
      {"link-local", "fe80::/10"},
      {"multicast", "ff00::/8"},
      {"discard-only", "100::/64"},
      {"documentation", "2001:db8::/32"},
      {"documentation", "3fff::/20"},
  });
  return t;
}

const std::vector<range>& public_v6() {
  static const std::vector<range> t = make({
      {"loopback", "::1/128"},
      {"unique local", "fc00::/7"},
      {"site-local", "fec0::/10"},
      {"local-use NAT64", "64:ff9b:1::/48"},
      {"IETF protocol assignments", "2001::/23"},
  });
  return t;
}

const range* first_match(const std::vector<range>& t, const ip_address& a) {
  for (const auto& r : t)
    if (r.block.contains(a)) return &r;
  return nullptr;
}

// An entry matches the address as dialled, the IPv4 address it embeds, and that IPv4
// address (or a plain one) in its IPv4-mapped form (::ffff:a.b.c.d) against entries inside
// ::ffff:0:0/96: an entry written in that form covers the plain address too, as the lists
// match either form (a wider IPv6 block such as ::/0 does not take in every IPv4 address).
const cidr_block* list_match(const std::vector<cidr_block>& list, const ip_address& a,
                             const std::optional<ip_address>& v4) {
  std::optional<ip_address> mapped;
  if (const ip_address* plain = a.v4 ? &a : v4 ? &*v4 : nullptr) {
    std::uint8_t b[16] = {};
    b[10] = b[11] = 0xff;
    std::memcpy(b + 12, plain->bytes.data(), 4);
    mapped = ip_address::from_v6(b);
  }
  for (const auto& b : list)
    if (b.contains(a) || (v4 && b.contains(*v4)) || (mapped && !b.base.v4 && b.prefix >= 96 && b.contains(*mapped))) return &b;
  return nullptr;
}

bool all_zero(const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

}  // namespace

std::string_view egress_level_name(egress_level l) {
  switch (l) {
    case egress_level::metadata: return "metadata";
    case egress_level::public_only: return "public";
    case egress_level::any: return "any";
  }
  return "metadata";
}

std::optional<egress_level> parse_egress_level(std::string_view s) {
  auto is = [s](std::string_view w) {
    if (s.size() != w.size()) return false;
    for (std::size_t i = 0; i < s.size(); ++i)
      if ((s[i] | 0x20) != w[i]) return false;
    return true;
  };
  if (is("metadata")) return egress_level::metadata;
  if (is("public")) return egress_level::public_only;
  if (is("any")) return egress_level::any;
  return std::nullopt;
}

ip_address ip_address::from_v4(const std::uint8_t (&b)[4]) {
  ip_address a;
  a.v4 = true;
  std::memcpy(a.bytes.data(), b, 4);
  return a;
}

ip_address ip_address::from_v4(std::uint32_t host_order) {
  const std::uint8_t b[4] = {static_cast<std::uint8_t>(host_order >> 24), static_cast<std::uint8_t>(host_order >> 16),
                             static_cast<std::uint8_t>(host_order >> 8), static_cast<std::uint8_t>(host_order)};
  return from_v4(b);
}

ip_address ip_address::from_v6(const std::uint8_t* b16) {
  ip_address a;
  std::memcpy(a.bytes.data(), b16, 16);
  return a;
}

std::optional<ip_address> parse_ip(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  std::uint8_t out[16];
  if (::inet_pton(AF_INET, buf, out) == 1) {
    const std::uint8_t b[4] = {out[0], out[1], out[2], out[3]};
    return ip_address::from_v4(b);
  }
  if (::inet_pton(AF_INET6, buf, out) == 1) return ip_address::from_v6(out);
  return std::nullopt;
}

std::string format_ip(const ip_address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(a.v4 ? AF_INET : AF_INET6, a.bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<ip_address> embedded_ipv4(const ip_address& a) {
  if (a.v4) return std::nullopt;
  const std::uint8_t* b = a.bytes.data();
  auto v4_at = [b](std::size_t off) {
    const std::uint8_t x[4] = {b[off], b[off + 1], b[off + 2], b[off + 3]};
    return ip_address::from_v4(x);
  };
  // ::ffff:a.b.c.d (mapped)
  if (all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff) return v4_at(12);
  // ::ffff:0:a.b.c.d (translated, SIIT)
  if (all_zero(b, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0) return v4_at(12);
  // 64:ff9b::a.b.c.d (NAT64 well-known prefix)
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && all_zero(b + 4, 8)) return v4_at(12);
  // 2002:AABB:CCDD::/48 (6to4)
  if (b[0] == 0x20 && b[1] == 0x02) return v4_at(2);
  // ::a.b.c.d (IPv4-compatible, deprecated); :: and ::1 are themselves
  if (all_zero(b, 12) && !(all_zero(b + 12, 3) && b[15] <= 1)) return v4_at(12);
  return std::nullopt;
}

bool cidr_block::contains(const ip_address& a) const {
  if (a.v4 != base.v4) return false;
  const unsigned full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == base.bytes[full];
}

std::string cidr_block::text() const { return format_ip(base) + "/" + std::to_string(prefix); }

std::variant<cidr_block, std::string> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  const auto addr = parse_ip(text.substr(0, slash));
  if (!addr) return "'" + std::string(text) + "' is not an IP address or CIDR block";
  const unsigned bits = addr->v4 ? 32 : 128;
  unsigned prefix = bits;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return "'" + std::string(text) + "' has an invalid prefix length";
    prefix = 0;
    for (char ch : p) {
      if (ch < '0' || ch > '9') return "'" + std::string(text) + "' has an invalid prefix length";
      prefix = prefix * 10 + static_cast<unsigned>(ch - '0');
    }
    if (prefix > bits) return "'" + std::string(text) + "' has an invalid prefix length";
  }
  cidr_block b;
  b.base = *addr;
  b.prefix = prefix;
  for (unsigned i = prefix; i < bits; ++i) b.base.bytes[i / 8] &= static_cast<std::uint8_t>(~(0x80u >> (i % 8)));
  if (b.base != *addr) return "'" + std::string(text) + "' has host bits set (the block is " + b.text() + ")";
  return b;
}

egress_verdict check_egress(const ip_address& a, const egress_rules& rules) {
  egress_verdict v;
  const std::optional<ip_address> v4 = embedded_ipv4(a);
  if (const cidr_block* b = list_match(rules.allow, a, v4)) {
    v.rule = "egress-allow " + b->text();
    return v;
  }
  if (const cidr_block* b = list_match(rules.deny, a, v4)) {
    v.allowed = false;
    v.rule = "egress-deny " + b->text();
    return v;
  }
  if (rules.level == egress_level::any) return v;
  const ip_address& judged = v4 ? *v4 : a;
  const range* r = first_match(judged.v4 ? metadata_v4() : metadata_v6(), judged);
  if (!r && rules.level == egress_level::public_only) r = first_match(judged.v4 ? public_v4() : public_v6(), judged);
  if (r) {
    v.allowed = false;
    v.rule = "policy " + std::string(egress_level_name(rules.level)) + ": " + r->name + " " + r->block.text();
  }
  return v;
}

std::string egress_denial_text(const ip_address& a, unsigned port, const egress_verdict& v) {
  std::string out = "egress denied: " + format_ip(a) + " port " + std::to_string(port) + " (";
  if (const auto v4 = embedded_ipv4(a)) out += "as IPv4 " + format_ip(*v4) + "; ";
  out += v.rule;
  out += ')';
  return out;
}

const egress_rules& default_egress_rules() {
  static const egress_rules r;
  return r;
}

}  // namespace respq::tasks
