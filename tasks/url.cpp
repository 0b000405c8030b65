// url: see url.hpp. The error texts in parentheses are libcurl's own
// (curl_url_strerror), so a reason reads the same as when libcurl did the check.
#include "tasks/url.hpp"
#include "resp/ascii.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace respq::tasks {
namespace {

constexpr std::size_t max_scheme_len = 40;
constexpr std::size_t max_url_len = 8000000;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Byte classes, one table lookup per byte: every task's URL is checked on the broker
// thread, so this stays a single pass without per-byte searches.
enum : std::uint8_t {
  c_junk = 1,       // control bytes and space: never in a URL
  c_auth_end = 2,   // '/', '?', '#': the authority ends
  c_bad_host = 4,   // libcurl's hostname_check refuses these in a (decoded) host name
};
constexpr std::array<std::uint8_t, 256> byte_classes = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c <= 0x20; ++c) t[static_cast<std::size_t>(c)] |= c_junk;
  t[0x7f] |= c_junk;
  for (char c : std::string_view("/?#")) t[static_cast<unsigned char>(c)] |= c_auth_end;
  // A '%' left over after decoding (not followed by two hex digits) is allowed, as
  // libcurl 7.88 allows it.
  for (char c : std::string_view(" \r\n\t/:#?!@{}[]\\$'\"^`*<>=;,+&()"))
    t[static_cast<unsigned char>(c)] |= c_bad_host;
  return t;
}();
std::uint8_t byte_class(char c) { return byte_classes[static_cast<unsigned char>(c)]; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A scheme at the start of `s` followed by ':': its length, else 0.
std::size_t scheme_length(std::string_view s) {
  if (s.empty() || !is_alpha(s[0])) return 0;
  std::size_t i = 1;
  while (i < s.size() && i < max_scheme_len &&
         (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
    ++i;
  return i < s.size() && s[i] == ':' ? i : 0;
}

// The authority of a URL with a scheme: [begin, end) after the slashes following
// "scheme:" up to the first of "/?#". slashes: how many slashes came before it.
struct authority_span {
  std::size_t begin = 0, end = 0, slashes = 0;
};

authority_span authority_of(std::string_view url, std::size_t scheme_len) {
  authority_span a;
  std::size_t p = scheme_len + 1;
  while (p < url.size() && url[p] == '/' && a.slashes < 4) {
    ++p;
    ++a.slashes;
  }
  a.begin = p;
  while (p < url.size() && !(byte_class(url[p]) & c_auth_end)) ++p;
  a.end = p;
  return a;
}

std::string invalid(std::string_view field, std::string_view why) {
  std::string out(field);
  out += " is not a valid URL (";
  out += why;
  out += ')';
  return out;
}

// Quotes a scheme for a reason: bounded (a scheme is at most 40 bytes already).
std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

bool valid_ipv6(std::string_view inside) {
  // An optional zone after '%' (written %25 in a URL): letters, digits and "-._~%".
  std::string_view address = inside;
  if (const auto pct = inside.find('%'); pct != std::string_view::npos) {
    address = inside.substr(0, pct);
    std::string_view zone = inside.substr(pct + 1);
    if (zone.substr(0, 2) == "25") zone.remove_prefix(2);
    if (zone.empty()) return false;
    for (char c : zone)
      if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%')) return false;
  }
  if (address.empty() || address.size() > 45) return false;
  char buf[46];
  address.copy(buf, address.size());
  buf[address.size()] = '\0';
  unsigned char out[16];
  return ::inet_pton(AF_INET6, buf, out) == 1;
}

const char* check_host_name(std::string_view host) {
  std::string decoded;
  if (host.find('%') != std::string_view::npos) {  // libcurl decodes a host name first
    for (std::size_t i = 0; i < host.size(); ++i) {
      int hi = 0, lo = 0;
      if (host[i] == '%' && i + 2 < host.size() && (hi = hex_value(host[i + 1])) >= 0 &&
          (lo = hex_value(host[i + 2])) >= 0) {
        const char c = static_cast<char>(hi * 16 + lo);
        if (static_cast<unsigned char>(c) < 0x20) return "Bad hostname";
        decoded += c;
        i += 2;
      } else {
        decoded += host[i];
      }
    }
    host = decoded;
  }
  if (host.empty()) return "No host part in the URL";
  for (char c : host)
    if (byte_class(c) & c_bad_host) return "Bad hostname";
  return nullptr;
}

// Checks host[:port] (the authority without its userinfo). nullptr when fine.
const char* check_host_port(std::string_view hp) {
  std::string_view host = hp, port;
  if (!hp.empty() && hp.front() == '[') {
    const auto close = hp.find(']');
    if (close == std::string_view::npos) return "Bad IPv6 address";
    if (!valid_ipv6(hp.substr(1, close - 1))) return "Bad IPv6 address";
    std::string_view after = hp.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "Bad IPv6 address";
      port = after.substr(1);
    }
    host = {};
  } else if (const auto colon = hp.rfind(':'); colon != std::string_view::npos) {
    host = hp.substr(0, colon);
    port = hp.substr(colon + 1);
  }
  if (!port.empty()) {
    unsigned long value = 0;
    for (char c : port) {
      if (!is_digit(c)) return "Port number was not a decimal number between 0 and 65535";
      value = value * 10 + static_cast<unsigned long>(c - '0');
      if (value > 65535) return "Port number was not a decimal number between 0 and 65535";
    }
  }
  if (hp.empty() || hp.front() != '[') return check_host_name(host);
  return nullptr;
}

// Appends url[from, to) to out with the userinfo of its authority hidden, when the text
// at `from` starts a URL with a scheme and an authority that has one. Returns where the
// URL's authority ends (or `from` when nothing was recognised and nothing appended).
std::size_t append_redacted_authority(std::string_view text, std::size_t scheme_begin, std::string& out,
                                      std::string_view authority_stop) {
  const std::size_t sl = scheme_length(text.substr(scheme_begin));
  if (sl == 0) return scheme_begin;
  std::size_t p = scheme_begin + sl + 1;
  std::size_t slashes = 0;
  while (p < text.size() && text[p] == '/' && slashes < 4) {
    ++p;
    ++slashes;
  }
  if (slashes == 0) return scheme_begin;
  const std::size_t end = std::min(text.find_first_of(authority_stop, p), text.size());
  const std::string_view authority = text.substr(p, end - p);
  const auto at = authority.find('@');
  if (at == std::string_view::npos) return scheme_begin;
  out.append(text.substr(scheme_begin, p - scheme_begin));
  const std::string_view userinfo = authority.substr(0, at);
  if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) {
    out.append(userinfo.substr(0, colon));
    out += ":***";
  } else {
    out += "***";
  }
  out.append(authority.substr(at));
  return end;
}

// The last URLs check_url accepted, per thread. An app sends most tasks to a handful of
// endpoints, and comparing with them costs less than checking again (a twentieth of the
// broker thread's work per task went to the check). Only accepted URLs are kept, so a
// hit gives the answer a check would.
class accepted_urls {
 public:
  bool contains(std::string_view url) const {
    return std::find(urls_.begin(), urls_.end(), url) != urls_.end();
  }
  void add(std::string_view url) {
    if (url.size() > max_url_bytes) return;
    urls_[next_] = url;
    next_ = (next_ + 1) % urls_.size();
  }

 private:
  static constexpr std::size_t max_url_bytes = 2048;
  std::array<std::string, 8> urls_;
  std::size_t next_ = 0;
};

std::string check_url_uncached(std::string_view url, std::string_view field);

// How many bytes of `s` are past ASCII (each goes out as three: encode_non_ascii).
std::size_t bytes_past_ascii(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }));
}

}  // namespace

std::string check_url(std::string_view url, std::string_view field) {
  thread_local accepted_urls accepted;
  if (!url.empty() && accepted.contains(url)) return {};
  std::string reason = check_url_uncached(url, field);
  if (reason.empty()) accepted.add(url);
  return reason;
}

namespace {

std::string check_url_uncached(std::string_view url, std::string_view field) {
  for (char c : url) {
    if (byte_class(c) & c_junk) {
      if (url.find('\0') != std::string_view::npos) return std::string(field) + " contains a NUL byte";
      return invalid(field, "Malformed input to a URL function");
    }
  }
  if (url.size() > max_url_len) return invalid(field, "Malformed input to a URL function");
  // As sent (encode_non_ascii), each byte past ASCII takes three: within the limit too.
  if (url.size() + 2 * bytes_past_ascii(url) > max_url_len)
    return std::string(field) + " is too long once its bytes past ASCII are percent-encoded (8,000,000 bytes at most)";
  const std::size_t sl = scheme_length(url);
  if (sl == 0) return invalid(field, "Bad scheme");
  const std::string_view scheme = url.substr(0, sl);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
    std::string lowered(scheme);
    std::transform(lowered.begin(), lowered.end(), lowered.begin(), ascii_lower);
    return std::string(field) + " scheme " + quoted(lowered) + " is not allowed (http and https only)";
  }
  const authority_span a = authority_of(url, sl);
  if (a.slashes < 1 || a.slashes > 3) return invalid(field, "Unsupported number of slashes following scheme");
  std::string_view authority = url.substr(a.begin, a.end - a.begin);
  if (authority.empty()) return invalid(field, "No host part in the URL");
  if (const auto at = authority.find('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  if (const char* why = check_host_port(authority)) return invalid(field, why);
  return {};
}

}  // namespace

std::string encode_non_ascii(std::string url) {
  const std::size_t sl = scheme_length(url);
  if (sl == 0) return url;
  const std::size_t from = authority_of(url, sl).end;
  const std::size_t high = bytes_past_ascii(std::string_view(url).substr(from));
  if (high == 0) return url;
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(url.size() + 2 * high);
  out.append(url, 0, from);
  for (std::size_t i = from; i < url.size(); ++i) {
    const auto b = static_cast<unsigned char>(url[i]);
    if (b < 0x80) {
      out += url[i];
    } else {
      out += '%';
      out += hex[b >> 4];
      out += hex[b & 0xf];
    }
  }
  return out;
}

bool has_credentials(std::string_view url) {
  const std::size_t sl = scheme_length(url);
  if (sl == 0) return false;
  const authority_span a = authority_of(url, sl);
  return a.slashes > 0 && url.substr(a.begin, a.end - a.begin).find('@') != std::string_view::npos;
}

std::string redact_url(std::string_view url) {
  if (url.find('@') == std::string_view::npos) return std::string(url);
  std::string out;
  const std::size_t end = append_redacted_authority(url, 0, out, "/?#");
  if (end == 0) return std::string(url);
  out.append(url.substr(end));
  return out;
}

std::string redact_urls_in(std::string_view text) {
  if (text.find('@') == std::string_view::npos || text.find("://") == std::string_view::npos)
    return std::string(text);
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for (std::size_t p = text.find("://"); p != std::string_view::npos; p = text.find("://", p + 3)) {
    // Walk back over the scheme's characters to where the URL starts.
    std::size_t b = p;
    while (b > copied && (is_alpha(text[b - 1]) || is_digit(text[b - 1]) || text[b - 1] == '+' ||
                          text[b - 1] == '-' || text[b - 1] == '.'))
      --b;
    while (b < p && !is_alpha(text[b])) ++b;
    if (b == p) continue;
    std::string piece;
    const std::size_t end = append_redacted_authority(text, b, piece, "/?# \t\r\n\"'<>");
    if (end == b) continue;
    out.append(text.substr(copied, b - copied));
    out += piece;
    copied = end;
    p = end - 3;  // the next search starts at the end of this URL's authority
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace respq::tasks
