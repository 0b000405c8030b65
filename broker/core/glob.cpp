// glob_match: a port of Redis's stringmatchlen, with its recursion depth bounded so a
// hostile pattern ("*****...") cannot blow the stack.
#include "broker/core/glob.hpp"

#include <cctype>

namespace respq::core {

namespace {

bool match(const char* p, int plen, const char* s, int slen, bool nocase, bool& skip_longer, int nesting) {
  if (nesting > 1000) return false;
  while (plen && slen) {
    switch (p[0]) {
      case '*':
        while (plen > 1 && p[1] == '*') {
          ++p;
          --plen;
        }
        if (plen == 1) return true;
        while (slen) {
          if (match(p + 1, plen - 1, s, slen, nocase, skip_longer, nesting + 1)) return true;
          if (skip_longer) return false;
          ++s;
          --slen;
        }
        skip_longer = true;
        return false;
      case '?':
        ++s;
        --slen;
        break;
      case '[': {
        ++p;
        --plen;
        bool negate = plen > 0 && p[0] == '^';
        if (negate) {
          ++p;
          --plen;
        }
        bool matched = false;
        while (true) {
          if (plen == 0) {
            --p;
            ++plen;
            break;
          }
          if (p[0] == '\\' && plen >= 2) {
            ++p;
            --plen;
            if (p[0] == s[0]) matched = true;
          } else if (p[0] == ']') {
            break;
          } else if (plen >= 3 && p[1] == '-') {
            int start = static_cast<unsigned char>(p[0]);
            int end = static_cast<unsigned char>(p[2]);
            int c = static_cast<unsigned char>(s[0]);
            if (start > end) std::swap(start, end);
            if (nocase) {
              start = std::tolower(start);
              end = std::tolower(end);
              c = std::tolower(c);
            }
            p += 2;
            plen -= 2;
            if (c >= start && c <= end) matched = true;
          } else {
            if (!nocase) {
              if (p[0] == s[0]) matched = true;
            } else if (std::tolower(static_cast<unsigned char>(p[0])) == std::tolower(static_cast<unsigned char>(s[0]))) {
              matched = true;
            }
          }
          ++p;
          --plen;
        }
        if (negate) matched = !matched;
        if (!matched) return false;
        ++s;
        --slen;
        break;
      }
      case '\\':
        if (plen >= 2) {
          ++p;
          --plen;
        }
        [[fallthrough]];
      default:
        if (!nocase) {
          if (p[0] != s[0]) return false;
        } else if (std::tolower(static_cast<unsigned char>(p[0])) != std::tolower(static_cast<unsigned char>(s[0]))) {
          return false;
        }
        ++s;
        --slen;
        break;
    }
    ++p;
    --plen;
    if (slen == 0) {
      while (plen && *p == '*') {
        ++p;
        --plen;
      }
      break;
    }
  }
  return plen == 0 && slen == 0;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view str, bool nocase) {
  bool skip_longer = false;
  return match(pattern.data(), static_cast<int>(pattern.size()), str.data(), static_cast<int>(str.size()), nocase,
               skip_longer, 0);
}

}  // namespace respq::core
