// String and hash commands: the basic ones operators and apps expect next to lists.
// HSCAN and HRANDFIELD at the end.
// SET's expiry options, SETEX, PSETEX and GETEX set deadlines as Redis 7 does.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <vector>

#include "broker/core/commands.hpp"
#include "broker/core/glob.hpp"
#include "broker/core/random_pick.hpp"

namespace respq::core {

std::string* lookup_string(server& s, client& c, std::string_view key, bool& wrong) {
  wrong = false;
  value* v = s.db().find(key);
  if (!v) return nullptr;
  if (v->type() != value_type::string) {
    wrong = true;
    s.add_error(c, wrongtype_error);
    return nullptr;
  }
  return &v->str();
}

namespace {

// The string at `key` for GETEX and GETDEL; when there is none, the reply (nil, or
// WRONGTYPE) is already written and nullptr returned.
std::string* existing_string(server& s, client& c, std::string_view key) {
  bool wrong;
  std::string* v = lookup_string(s, c, key, wrong);
  if (!v && !wrong) s.reply(c).null();
  return v;
}

hash_value* lookup_hash(server& s, client& c, std::string_view key, bool& wrong) {
  wrong = false;
  value* v = s.db().find(key);
  if (!v) return nullptr;
  if (v->type() != value_type::hash) {
    wrong = true;
    s.add_error(c, wrongtype_error);
    return nullptr;
  }
  return &v->hash();
}

// Stores a string value. Replacing a key (SET, GETSET, MSET) drops its deadline as in
// Redis; changing the value in place (INCR, INCRBYFLOAT, SET KEEPTTL) keeps it.
enum class ttl { drop, keep };
void store_string(server& s, std::string_view key, std::string_view val, ttl t) {
  value* v = s.db().find(key);
  if (!v || v->type() != value_type::string) {
    const std::int64_t deadline = v && t == ttl::keep ? v->expire_at : 0;  // SET KEEPTTL over a list
    v = &s.db().create(key, value_type::string);
    if (deadline) s.db().set_expire(key, deadline);
  } else if (t == ttl::drop && v->expire_at) {
    s.db().set_expire(key, 0);
  }
  v->str().assign(val);
  v->str_enc = string_encoding::by_content;
  s.add_dirty();
}

// INCRBY's and HINCRBY's overflow check: would v + by leave the range of long long?
bool sum_overflows(long long v, long long by) {
  return (by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v);
}

void incr_generic(server& s, client& c, std::string_view key, long long by) {
  bool wrong;
  std::string* cur = lookup_string(s, c, key, wrong);
  if (wrong) return;
  long long v = 0;
  if (cur && !string2ll(*cur, v)) {
    s.add_error(c, not_integer_error);
    return;
  }
  if (sum_overflows(v, by)) {
    s.add_error(c, "ERR increment or decrement would overflow");
    return;
  }
  v += by;
  store_string(s, key, std::to_string(v), ttl::keep);
  s.notify(notify_string, "incrby", key);
  s.reply(c).integer(v);
}

// Redis's string2ld: a long double written in full, nothing before or after it, not NaN,
// and not out of range.
bool parse_long_double(std::string_view text, long double& out) {
  char buf[5 * 1024];
  if (text.empty() || text.size() >= sizeof buf || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  errno = 0;
  char* end = nullptr;
  long double v = std::strtold(buf, &end);
  // All of it: a NUL byte inside the value ends strtold early.
  if (end != buf + text.size() || errno == EINVAL || std::isnan(v)) return false;
  if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || std::fpclassify(v) == FP_ZERO)) return false;
  out = v;
  return true;
}

// INCRBYFLOAT and HINCRBYFLOAT: `current` (absent: 0) plus `by`; replies the error itself
// and returns nullopt when the current value is not a number or the sum is not finite.
std::optional<std::string> add_float(server& s, client& c, const std::string* current, long double by,
                                     std::string_view not_float) {
  long double v = 0;
  if (current && !parse_long_double(*current, v)) {
    s.add_error(c, not_float);
    return std::nullopt;
  }
  v += by;
  if (std::isnan(v) || std::isinf(v)) {
    s.add_error(c, "ERR increment would produce NaN or Infinity");
    return std::nullopt;
  }
  return format_long_double(v);
}

}  // namespace

// Redis's ld2string(LD_STR_HUMAN): 17 decimals, trailing zeros dropped, no "-0".
std::string format_long_double(long double v) {
  char buf[5 * 1024];
  int n = std::snprintf(buf, sizeof buf, "%.17Lf", v);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) return "0";
  std::string out(buf, static_cast<std::size_t>(n));
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  if (out == "-0") out = "0";
  return out;
}

void cmd_get(server& s, client& c, args_t a) {
  bool wrong;
  std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  if (v) s.reply(c).bulk(*v);
  else s.reply(c).null();
}

namespace {

enum set_flag {
  set_nx = 1, set_xx = 2, set_get = 4, set_keepttl = 8, set_persist = 16,
  set_ex = 32, set_px = 64, set_exat = 128, set_pxat = 256
};
constexpr int set_expiry = set_ex | set_px | set_exat | set_pxat;

// Redis 7's parseExtendedStringArgumentsOrReply, for SET (from argument 3) and GETEX
// (from argument 2): the same conflicts, the same "syntax error" for all of them.
bool parse_string_options(server& s, client& c, args_t a, bool for_set, int& flags, std::string_view& expire) {
  for (std::size_t j = for_set ? 3 : 2; j < a.size(); ++j) {
    const std::string opt = to_lower(a[j]);
    const bool has_next = j + 1 < a.size();
    if (opt == "nx" && !(flags & set_xx) && for_set) flags |= set_nx;
    else if (opt == "xx" && !(flags & set_nx) && for_set) flags |= set_xx;
    else if (opt == "get" && for_set) flags |= set_get;
    else if (opt == "keepttl" && !(flags & (set_persist | set_expiry)) && for_set) flags |= set_keepttl;
    else if (opt == "persist" && !for_set && !(flags & (set_expiry | set_keepttl))) flags |= set_persist;
    else if (opt == "ex" && !(flags & (set_keepttl | set_persist | set_exat | set_px | set_pxat)) && has_next)
      flags |= set_ex, expire = a[++j];
    else if (opt == "px" && !(flags & (set_keepttl | set_persist | set_ex | set_exat | set_pxat)) && has_next)
      flags |= set_px, expire = a[++j];
    else if (opt == "exat" && !(flags & (set_keepttl | set_persist | set_ex | set_px | set_pxat)) && has_next)
      flags |= set_exat, expire = a[++j];
    else if (opt == "pxat" && !(flags & (set_keepttl | set_persist | set_ex | set_exat | set_px)) && has_next)
      flags |= set_pxat, expire = a[++j];
    else {
      s.add_error(c, syntax_error);
      return false;
    }
  }
  return true;
}

// The absolute deadline in milliseconds an EX/PX/EXAT/PXAT argument names (Redis's
// getExpireMillisecondsOrReply): positive, and no overflow.
bool expire_millis(server& s, client& c, std::string_view arg, int flags, std::string_view command,
                   std::int64_t& out) {
  long long v;
  if (!integer_arg(s, c, arg, v)) return false;
  const bool seconds = flags & (set_ex | set_exat);
  if (v <= 0 || (seconds && v > LLONG_MAX / 1000)) {
    expire_time_error(s, c, command);
    return false;
  }
  if (seconds) v *= 1000;
  if (flags & (set_ex | set_px)) {
    const long long now = keyspace::now_ms();
    if (v > LLONG_MAX - now) {
      expire_time_error(s, c, command);
      return false;
    }
    v += now;
  }
  out = v;
  return true;
}

// SET's work once its options are known (SETEX and PSETEX come here too). Logged as
// SET key value [PXAT ms | KEEPTTL]: what it did, whatever options it was given.
void set_generic(server& s, client& c, std::string_view key, std::string_view val, int flags,
                 std::string_view expire, std::string_view command) {
  std::int64_t deadline = 0;
  if ((flags & set_expiry) && !expire_millis(s, c, expire, flags, command, deadline)) return;
  value* v;
  {
    server::read_lookups reading(s, flags & set_get);  // GET reads the old value first
    v = s.db().find(key);
  }
  if ((flags & set_get) && v && v->type() != value_type::string) {
    s.add_error(c, wrongtype_error);
    return;
  }
  std::string old;
  const bool had_old = v && v->type() == value_type::string;
  if (had_old && (flags & set_get)) old = v->str();
  auto reply_old = [&] {
    if (had_old) s.reply(c).bulk(old);
    else s.reply(c).null();
  };
  if (((flags & set_nx) && v) || ((flags & set_xx) && !v)) {
    if (flags & set_get) reply_old();
    else s.reply(c).null();
    return;
  }
  store_string(s, key, val, (flags & set_keepttl) ? ttl::keep : ttl::drop);
  s.notify(notify_string, "set", key);
  if (deadline) {
    // A deadline already past is kept as given and expires on the next access, as in
    // Redis 7.0.
    s.db().set_expire(key, deadline);
    s.notify(notify_generic, "expire", key);
    const std::string at = std::to_string(deadline);
    s.stream().append({"SET", key, val, "PXAT", at});
  } else if (flags & set_keepttl) {
    s.stream().append({"SET", key, val, "KEEPTTL"});
  } else {
    s.stream().append({"SET", key, val});
  }
  s.effects_logged();
  s.signal_modified_key(key);
  if (flags & set_get) reply_old();
  else s.reply(c).ok();
}

}  // namespace

void cmd_set(server& s, client& c, args_t a) {
  int flags = 0;
  std::string_view expire;
  if (!parse_string_options(s, c, a, true, flags, expire)) return;
  set_generic(s, c, a[1], a[2], flags, expire, "set");
}

void cmd_setex(server& s, client& c, args_t a) { set_generic(s, c, a[1], a[3], set_ex, a[2], "setex"); }
void cmd_psetex(server& s, client& c, args_t a) { set_generic(s, c, a[1], a[3], set_px, a[2], "psetex"); }

// GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]: never logged as is, but as the
// PEXPIREAT, DEL or PERSIST it amounts to (as Redis does).
void cmd_getex(server& s, client& c, args_t a) {
  int flags = 0;
  std::string_view expire;
  if (!parse_string_options(s, c, a, false, flags, expire)) return;
  std::string* v;
  {
    server::read_lookups reading(s);
    v = existing_string(s, c, a[1]);
  }
  if (!v) return;
  std::int64_t deadline = 0;
  if ((flags & set_expiry) && !expire_millis(s, c, expire, flags, "getex", deadline)) return;
  s.reply(c).bulk(*v);
  if (deadline) {
    s.set_key_deadline(a[1], deadline);
    s.add_dirty();
  } else if ((flags & set_persist) && s.db().peek(a[1])->expire_at) {
    s.db().set_expire(a[1], 0);
    s.stream().append({"PERSIST", a[1]});
    s.effects_logged();
    s.add_dirty();
    s.notify(notify_generic, "persist", a[1]);
  }
}

void cmd_getset(server& s, client& c, args_t a) {
  bool wrong;
  std::string* v;
  {
    server::read_lookups reading(s);
    v = lookup_string(s, c, a[1], wrong);
  }
  if (wrong) return;
  if (v) s.reply(c).bulk(*v);
  else s.reply(c).null();
  store_string(s, a[1], a[2], ttl::drop);
  s.notify(notify_string, "set", a[1]);
}

void cmd_getdel(server& s, client& c, args_t a) {
  std::string* v;
  {
    server::read_lookups reading(s);
    v = existing_string(s, c, a[1]);
  }
  if (!v) return;
  s.reply(c).bulk(*v);
  s.db().erase(a[1]);
  s.add_dirty();
  s.notify(notify_generic, "del", a[1]);
}

void cmd_getrange(server& s, client& c, args_t a) {
  long long start, end;
  if (!integer_arg(s, c, a[2], start) || !integer_arg(s, c, a[3], end)) return;
  bool wrong;
  std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  const long long len = v ? static_cast<long long>(v->size()) : 0;
  // Redis's arithmetic: negative indexes count from the end, both ends are clamped.
  if (start < 0 && end < 0 && start > end) {
    s.reply(c).bulk("");
    return;
  }
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (len == 0 || start > end) {
    s.reply(c).bulk("");
    return;
  }
  s.reply(c).bulk(std::string_view(*v).substr(static_cast<std::size_t>(start), static_cast<std::size_t>(end - start + 1)));
}

void cmd_substr(server& s, client& c, args_t a) { cmd_getrange(s, c, a); }

void cmd_setrange(server& s, client& c, args_t a) {
  long long offset;
  if (!integer_arg(s, c, a[2], offset)) return;
  if (offset < 0) {
    s.add_error(c, "ERR offset is out of range");
    return;
  }
  bool wrong;
  std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  const std::string_view part = a[3];
  if (part.empty()) {  // nothing to write: no key is created
    s.reply(c).integer(v ? static_cast<long long>(v->size()) : 0);
    return;
  }
  if (static_cast<unsigned long long>(offset) + part.size() > s.cfg().proto_max_bulk_len) {
    s.add_error(c, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    return;
  }
  if (!v) v = &s.db().create(a[1], value_type::string).str();
  s.db().find(a[1])->str_enc = string_encoding::raw;  // as Redis: SETRANGE leaves a raw string
  const std::size_t at = static_cast<std::size_t>(offset);
  if (v->size() < at + part.size()) v->resize(at + part.size(), '\0');
  v->replace(at, part.size(), part);
  s.add_dirty();
  s.notify(notify_string, "setrange", a[1]);
  s.reply(c).integer(static_cast<long long>(v->size()));
}

void cmd_incrbyfloat(server& s, client& c, args_t a) {
  bool wrong;
  std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  long double by;
  if (!parse_long_double(a[2], by)) {
    s.add_error(c, "ERR value is not a valid float");
    return;
  }
  auto sum = add_float(s, c, v, by, "ERR value is not a valid float");
  if (!sum) return;
  store_string(s, a[1], *sum, ttl::keep);
  s.db().find(a[1])->str_enc = string_encoding::not_int;  // Redis stores the result as a plain string
  // Logged as the value it produced (as Redis does), so replaying the log never depends
  // on floating-point rounding; KEEPTTL, as the key keeps its deadline.
  s.stream().append({"SET", a[1], *sum, "KEEPTTL"});
  s.effects_logged();
  s.notify(notify_string, "incrbyfloat", a[1]);
  s.reply(c).bulk(*sum);
}

void cmd_msetnx(server& s, client& c, args_t a) {
  if (a.size() % 2 != 1) {
    s.add_error(c, "ERR wrong number of arguments for 'msetnx' command");
    return;
  }
  for (std::size_t i = 1; i < a.size(); i += 2)
    if (s.db().find(a[i])) {
      s.reply(c).integer(0);
      return;
    }
  for (std::size_t i = 1; i + 1 < a.size(); i += 2) {
    store_string(s, a[i], a[i + 1], ttl::drop);
    s.notify(notify_string, "set", a[i]);
  }
  s.reply(c).integer(1);
}

void cmd_setnx(server& s, client& c, args_t a) {
  if (s.db().find(a[1])) {
    s.reply(c).integer(0);
    return;
  }
  store_string(s, a[1], a[2], ttl::drop);
  s.notify(notify_string, "set", a[1]);
  s.reply(c).integer(1);
}

void cmd_mget(server& s, client& c, args_t a) {
  auto w = s.reply(c);
  w.array(a.size() - 1);
  for (std::size_t i = 1; i < a.size(); ++i) {
    value* v = s.db().find(a[i]);
    if (v && v->type() == value_type::string) w.bulk(v->str());
    else w.null();
  }
}

void cmd_mset(server& s, client& c, args_t a) {
  if (a.size() % 2 != 1) {
    s.add_error(c, "ERR wrong number of arguments for 'mset' command");
    return;
  }
  for (std::size_t i = 1; i + 1 < a.size(); i += 2) {
    store_string(s, a[i], a[i + 1], ttl::drop);
    s.notify(notify_string, "set", a[i]);
  }
  s.reply(c).ok();
}

void cmd_incr(server& s, client& c, args_t a) { incr_generic(s, c, a[1], 1); }
void cmd_decr(server& s, client& c, args_t a) { incr_generic(s, c, a[1], -1); }

void cmd_incrby(server& s, client& c, args_t a) {
  long long by;
  if (!integer_arg(s, c, a[2], by)) return;
  incr_generic(s, c, a[1], by);
}

void cmd_decrby(server& s, client& c, args_t a) {
  long long by;
  if (!integer_arg(s, c, a[2], by)) return;
  if (by == LLONG_MIN) {
    s.add_error(c, "ERR decrement would overflow");
    return;
  }
  incr_generic(s, c, a[1], -by);
}

void cmd_append(server& s, client& c, args_t a) {
  bool wrong;
  std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  if (!v) v = &s.db().create(a[1], value_type::string).str();
  else s.db().find(a[1])->str_enc = string_encoding::raw;  // as Redis: appending makes a raw string
  v->append(a[2]);
  s.add_dirty();
  s.notify(notify_string, "append", a[1]);
  s.reply(c).integer(static_cast<long long>(v->size()));
}

void cmd_strlen(server& s, client& c, args_t a) {
  bool wrong;
  std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(v ? static_cast<long long>(v->size()) : 0);
}

// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN], as Redis 7.0's lcsCommand:
// the longest common subsequence by the table of LCS lengths of every pair of prefixes
// (O(len1 * len2) time and 4 bytes of transient memory per cell, bounded by
// proto-max-bulk-len), walked back from the end; IDX reports the matching ranges from
// the last to the first, as Redis does.
void cmd_lcs(server& s, client& c, args_t a) {
  value* va = s.db().find(a[1]);
  value* vb = s.db().find(a[2]);
  if ((va && va->type() != value_type::string) || (vb && vb->type() != value_type::string)) {
    s.add_error(c, "ERR The specified keys must contain string values");
    return;
  }
  long long minmatchlen = 0;
  bool getlen = false, getidx = false, withmatchlen = false;
  for (std::size_t j = 3; j < a.size(); ++j) {
    const bool more = j + 1 < a.size();
    if (iequals(a[j], "idx")) {
      getidx = true;
    } else if (iequals(a[j], "len")) {
      getlen = true;
    } else if (iequals(a[j], "withmatchlen")) {
      withmatchlen = true;
    } else if (iequals(a[j], "minmatchlen") && more) {
      if (!integer_arg(s, c, a[j + 1], minmatchlen)) return;
      if (minmatchlen < 0) minmatchlen = 0;
      ++j;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  if (getlen && getidx) {
    s.add_error(c, "ERR If you want both the length and indexes, please just use IDX.");
    return;
  }
  const std::string_view sa = va ? std::string_view(va->str()) : std::string_view();
  const std::string_view sb = vb ? std::string_view(vb->str()) : std::string_view();
  if (sa.size() >= UINT32_MAX - 1 || sb.size() >= UINT32_MAX - 1) {
    s.add_error(c, "ERR String too long for LCS");
    return;
  }
  const auto alen = static_cast<std::uint32_t>(sa.size()), blen = static_cast<std::uint32_t>(sb.size());
  const unsigned long long cells = static_cast<unsigned long long>(alen + 1ull) * (blen + 1ull);
  if (cells * sizeof(std::uint32_t) > s.cfg().proto_max_bulk_len) {
    s.add_error(c, "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    return;
  }
  std::unique_ptr<std::uint32_t[]> table(new (std::nothrow) std::uint32_t[cells]);
  if (!table) {
    s.add_error(c, "ERR Insufficient memory, failed allocating transient memory for LCS");
    return;
  }
  auto lcs = [&](std::uint32_t i, std::uint32_t j) -> std::uint32_t& { return table[j + i * (blen + 1ull)]; };
  for (std::uint32_t i = 0; i <= alen; ++i) {
    for (std::uint32_t j = 0; j <= blen; ++j) {
      if (i == 0 || j == 0) lcs(i, j) = 0;
      else if (sa[i - 1] == sb[j - 1]) lcs(i, j) = lcs(i - 1, j - 1) + 1;
      else lcs(i, j) = std::max(lcs(i - 1, j), lcs(i, j - 1));
    }
  }
  const std::uint32_t total = lcs(alen, blen);
  // The walk back: the subsequence, and the ranges of contiguous matches.
  struct range {
    std::uint32_t a0, a1, b0, b1;
  };
  std::vector<range> ranges;
  std::string result;
  const bool computelcs = getidx || !getlen;
  if (computelcs) result.assign(total, '\0');
  std::uint32_t idx = total, i = alen, j = blen;
  std::uint32_t astart = alen, aend = 0, bstart = 0, bend = 0;  // astart == alen: no range open
  while (computelcs && i > 0 && j > 0) {
    bool emit = false;
    if (sa[i - 1] == sb[j - 1]) {
      result[idx - 1] = sa[i - 1];
      if (astart == alen) {
        astart = aend = i - 1;
        bstart = bend = j - 1;
      } else if (astart == i && bstart == j) {
        --astart;
        --bstart;
      } else {
        emit = true;
      }
      if (astart == 0 || bstart == 0) emit = true;
      --idx;
      --i;
      --j;
    } else {
      if (lcs(i - 1, j) > lcs(i, j - 1)) --i;
      else --j;
      if (astart != alen) emit = true;
    }
    if (emit) {
      const std::uint32_t match_len = aend - astart + 1;
      if (getidx && (minmatchlen == 0 || match_len >= static_cast<unsigned long long>(minmatchlen)))
        ranges.push_back({astart, aend, bstart, bend});
      astart = alen;
    }
  }
  auto w = s.reply(c);
  if (getidx) {
    w.map(2);
    w.bulk("matches");
    w.array(ranges.size());
    for (const auto& r : ranges) {
      w.array(withmatchlen ? 3 : 2);
      w.array(2);
      w.integer(r.a0);
      w.integer(r.a1);
      w.array(2);
      w.integer(r.b0);
      w.integer(r.b1);
      if (withmatchlen) w.integer(r.a1 - r.a0 + 1);
    }
    w.bulk("len");
    w.integer(total);
  } else if (getlen) {
    w.integer(total);
  } else {
    w.bulk(result);
  }
}

namespace {

// HSET and HMSET: sets the field/value pairs; returns how many fields were new, or -1
// after replying the error.
long long hash_set_fields(server& s, client& c, args_t a, std::string_view command) {
  if (a.size() % 2 != 0) {
    s.add_error(c, "ERR wrong number of arguments for '" + std::string(command) + "' command");
    return -1;
  }
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return -1;
  if (!h) h = &s.db().create(a[1], value_type::hash).hash();
  long long added = 0;
  for (std::size_t i = 2; i + 1 < a.size(); i += 2)
    if (hash_text::plain(a[i + 1]) ? h->set(a[i], a[i + 1]) : h->set(a[i], hash_store(a[i + 1]))) ++added;
  s.add_dirty();
  s.notify(notify_hash, "hset", a[1]);
  return added;
}

}  // namespace

void cmd_hset(server& s, client& c, args_t a) {
  if (long long added = hash_set_fields(s, c, a, "hset"); added >= 0) s.reply(c).integer(added);
}

// HMSET: HSET that answers +OK (deprecated in Redis, still what phpredis's hMset sends).
void cmd_hmset(server& s, client& c, args_t a) {
  if (hash_set_fields(s, c, a, "hmset") >= 0) s.reply(c).ok();
}

void cmd_hsetnx(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  if (h && h->contains(a[2])) {
    s.reply(c).integer(0);
    return;
  }
  if (!h) h = &s.db().create(a[1], value_type::hash).hash();
  h->set(a[2], hash_store(a[3]));
  s.add_dirty();
  s.notify(notify_hash, "hset", a[1]);
  s.reply(c).integer(1);
}

void cmd_hincrby(server& s, client& c, args_t a) {
  long long by;
  if (!integer_arg(s, c, a[3], by)) return;
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  long long v = 0;
  if (h)
    if (auto it = h->find(a[2]); it != h->end() && !string2ll(hash_text((*it).field, (*it).value), v)) {
      s.add_error(c, "ERR hash value is not an integer");
      return;
    }
  if (sum_overflows(v, by)) {
    s.add_error(c, "ERR increment or decrement would overflow");
    return;
  }
  v += by;
  if (!h) h = &s.db().create(a[1], value_type::hash).hash();
  h->set(a[2], std::to_string(v));
  s.add_dirty();
  s.notify(notify_hash, "hincrby", a[1]);
  s.reply(c).integer(v);
}

void cmd_hincrbyfloat(server& s, client& c, args_t a) {
  long double by;
  if (!parse_long_double(a[3], by)) {
    s.add_error(c, "ERR value is not a valid float");
    return;
  }
  if (std::isnan(by) || std::isinf(by)) {
    s.add_error(c, "ERR value is NaN or Infinity");
    return;
  }
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  const std::string* cur = nullptr;
  std::string shown;  // the current value as text
  if (h)
    if (auto it = h->find(a[2]); it != h->end()) {
      shown.assign(hash_text((*it).field, (*it).value).view());
      cur = &shown;
    }
  auto sum = add_float(s, c, cur, by, "ERR hash value is not a float");
  if (!sum) return;
  if (!h) h = &s.db().create(a[1], value_type::hash).hash();
  h->set(a[2], *sum);
  s.add_dirty();
  s.stream().append({"HSET", a[1], a[2], *sum});
  s.effects_logged();
  s.notify(notify_hash, "hincrbyfloat", a[1]);
  s.reply(c).bulk(*sum);
}

void cmd_hstrlen(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  long long n = 0;
  if (h)
    if (auto it = h->find(a[2]); it != h->end())
      n = static_cast<long long>(hash_text((*it).field, (*it).value).view().size());
  s.reply(c).integer(n);
}

void cmd_hget(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  if (h) {
    auto it = h->find(a[2]);
    if (it != h->end()) {
      s.reply(c).bulk(hash_text((*it).field, (*it).value));
      return;
    }
  }
  s.reply(c).null();
}

void cmd_hdel(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  long long n = 0;
  if (h) {
    for (std::size_t i = 2; i < a.size(); ++i)
      if (h->erase(a[i])) ++n;
    const bool emptied = h->empty();
    if (emptied) s.db().erase(a[1]);
    if (n) {
      s.add_dirty(static_cast<std::uint64_t>(n));
      s.notify(notify_hash, "hdel", a[1]);
      if (emptied) s.notify(notify_generic, "del", a[1]);
    }
  }
  s.reply(c).integer(n);
}

void cmd_hlen(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(h ? static_cast<long long>(h->size()) : 0);
}

void cmd_hgetall(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.map(h ? h->size() : 0);
  if (h)
    for (const auto& [f, v] : *h) {
      w.bulk(f);
      w.bulk(hash_text(f, v));
    }
}

namespace {

// HKEYS / HVALS: one side of every field-value pair.
void hash_side_generic(server& s, client& c, args_t a, bool keys) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.array(h ? h->size() : 0);
  if (h)
    for (const auto& [field, val] : *h) {
      if (keys) w.bulk(field);
      else w.bulk(hash_text(field, val));
    }
}

}  // namespace

void cmd_hkeys(server& s, client& c, args_t a) { hash_side_generic(s, c, a, true); }
void cmd_hvals(server& s, client& c, args_t a) { hash_side_generic(s, c, a, false); }

void cmd_hexists(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(h && h->contains(a[2]) ? 1 : 0);
}

void cmd_hmget(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.array(a.size() - 2);
  for (std::size_t i = 2; i < a.size(); ++i) {
    auto it = h ? h->find(a[i]) : hash_value::iterator{};
    if (h && it != h->end()) w.bulk(hash_text((*it).field, (*it).value));
    else w.null();
  }
}

}  // namespace respq::core

namespace respq::core {

// HSCAN key cursor [MATCH pattern] [COUNT count]. A hash small enough for Redis's
// listpack is answered whole with cursor 0, as Redis does. A larger one is walked by home
// slot with Redis's reverse-binary cursor (hash_value::scan_step), so every field present
// for the whole iteration is returned at least once (Redis's promise), across resizes
// too, possibly more than once. As Redis's scanGenericCommand, a call stops once it has
// visited COUNT fields (matching or not) or taken COUNT * 10 steps.
void cmd_hscan(server& s, client& c, args_t a) {
  scan_args sa;
  if (!parse_scan_cursor(s, c, a[2], sa.cursor)) return;
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  if (h && !parse_scan_args(s, c, a, 2, false, sa)) return;
  std::vector<hash_value::entry> found;
  std::uint64_t next = 0;
  auto take = [&](const hash_value::entry& e) {
    if (!sa.has_pattern || glob_match(sa.pattern, e.field)) found.push_back(e);
  };
  if (h && hash_is_small(*h)) {
    for (const auto& e : *h) take(e);
  } else if (h) {
    const std::uint64_t want = static_cast<std::uint64_t>(sa.count);
    std::uint64_t visited = 0, steps_left = want > UINT64_MAX / 10 ? UINT64_MAX : want * 10;
    next = sa.cursor;
    do {
      next = h->scan_step(next, [&](const hash_value::entry& e) {
        ++visited;
        take(e);
      });
    } while (next != 0 && steps_left-- && visited < want);
  }
  auto w = s.reply(c);
  w.array(2);
  w.bulk(std::to_string(next));
  w.array(found.size() * 2);
  for (const auto& e : found) {
    w.bulk(e.field);
    w.bulk(hash_text(e.field, e.value));
  }
}

// HRANDFIELD key [count [WITHVALUES]], as Redis 7.0's hrandfieldWithCountCommand: a
// negative count may repeat fields; a positive one returns distinct fields, all of them
// when count >= the size.
void cmd_hrandfield(server& s, client& c, args_t a) {
  if (a.size() == 2) {
    bool wrong;
    hash_value* h = lookup_hash(s, c, a[1], wrong);
    if (wrong) return;
    if (!h) s.reply(c).null();
    else s.reply(c).bulk(h->random_entry().field);
    return;
  }
  long long count;
  if (!string2ll(a[2], count)) {
    s.add_error(c, not_integer_error);
    return;
  }
  if (count == LLONG_MIN) {
    s.add_error(c, "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
    return;
  }
  bool with_values = false;
  if (a.size() == 4 && to_lower(a[3]) == "withvalues") {
    with_values = true;
  } else if (a.size() >= 4) {
    s.add_error(c, syntax_error);
    return;
  }
  if (with_values && (count < -LLONG_MAX / 2 || count > LLONG_MAX / 2)) {
    s.add_error(c, "ERR value is out of range");
    return;
  }
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  if (!h || count == 0) {
    w.array(0);
    return;
  }
  auto emit = [&](const hash_value::entry& e) {
    if (with_values && c.resp == 3) w.array(2);
    w.bulk(e.field);
    if (with_values) w.bulk(hash_text(e.field, e.value));
  };
  const std::size_t per = with_values && c.resp == 2 ? 2 : 1;
  if (count < 0) {  // repeats allowed
    const auto n = static_cast<std::size_t>(-count);
    w.array(n * per);
    for (std::size_t i = 0; i < n; ++i) emit(h->random_entry());
    return;
  }
  const auto n = static_cast<std::size_t>(count);
  if (n >= h->size()) {
    w.array(h->size() * per);
    for (const auto& e : *h) emit(e);
    return;
  }
  if (h->ordered()) {
    // A small hash (Redis's listpack: lpRandomPairsUnique): n distinct fields, each set of
    // n equally likely, given in the hash's order (selection sampling).
    w.array(n * per);
    std::size_t left = h->size(), want = n;
    for (auto it = h->begin(); want; ++it, --left)
      if (random_index(left) < want) {
        emit(*it);
        --want;
      }
    return;
  }
  // Distinct fields: draw n of them (Redis copies the hash and removes random ones when n
  // is close to the size; a partial shuffle of the entries does the same work).
  std::vector<hash_value::entry> all(h->begin(), h->end());
  for (std::size_t i = 0; i < n; ++i) std::swap(all[i], all[i + random_index(all.size() - i)]);
  w.array(n * per);
  for (std::size_t i = 0; i < n; ++i) emit(all[i]);
}

}  // namespace respq::core
