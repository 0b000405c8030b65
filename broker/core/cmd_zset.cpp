// Sorted set commands, Redis 7.0 semantics (t_zset.c): argument order of checks, error
// texts, reply shapes in RESP2 and RESP3 (WITHSCORES: a flat array in RESP2, [member,
// score] pairs in RESP3), and effects as Redis propagates them (ZMPOP and the blocking
// pops as ZPOPMIN/ZPOPMAX key [count]; everything else as sent). Blocking variants park
// the client (blocking.cpp) when every key is empty, except inside EXEC.
//
// Inputs of ZUNION/ZINTER/ZDIFF may be plain sets in Redis (every member scoring 1):
// read_set_input() reads a plain set input (every member scoring 1).
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "broker/core/commands.hpp"
#include "broker/core/random_pick.hpp"
#include "broker/core/glob.hpp"

namespace respq::core {

bool parse_score(std::string_view arg, double& out) {
  if (arg.empty() || std::isspace(static_cast<unsigned char>(arg[0]))) return false;
  std::string tmp(arg);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(tmp.c_str(), &end);
  if (static_cast<std::size_t>(end - tmp.c_str()) != tmp.size()) return false;
  if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || std::fpclassify(v) == FP_ZERO)) return false;
  if (std::isnan(v)) return false;
  out = v;
  return true;
}

zset_value* lookup_zset(server& s, client& c, std::string_view key, bool& wrong) {
  wrong = false;
  value* v = s.db().find(key);
  if (!v) return nullptr;
  if (v->type() != value_type::zset) {
    wrong = true;
    s.add_error(c, wrongtype_error);
    return nullptr;
  }
  return &v->zset();
}

namespace {

constexpr std::string_view not_float_error = "ERR value is not a valid float";
constexpr std::string_view range_float_error = "ERR min or max is not a float";
constexpr std::string_view range_lex_error = "ERR min or max not valid string range item";


// zslParseRange's item: "(x" exclusive, else x; strtod up to a NUL, NaN refused.
bool parse_range_item(std::string_view arg, double& out, bool& exclusive) {
  std::string tmp(arg);
  const char* p = tmp.c_str();
  exclusive = false;
  if (!tmp.empty() && tmp[0] == '(') {
    exclusive = true;
    ++p;
  }
  char* end = nullptr;
  double v = std::strtod(p, &end);
  if (*end != '\0' || std::isnan(v)) return false;
  out = v;
  return true;
}

struct score_range {
  double min, max;
  bool minex, maxex;
};

bool parse_score_range(std::string_view a, std::string_view b, score_range& r) {
  return parse_range_item(a, r.min, r.minex) && parse_range_item(b, r.max, r.maxex);
}

// Ranks [lo, hi) of the members inside a score range.
void score_range_ranks(const zset_value& z, const score_range& r, std::size_t& lo, std::size_t& hi) {
  if (r.min > r.max || (r.min == r.max && (r.minex || r.maxex))) {
    lo = hi = 0;
    return;
  }
  lo = z.score_rank(r.min, r.minex);
  hi = z.score_rank(r.max, !r.maxex);
  if (hi < lo) hi = lo;
}

// zslParseLexRangeItem: "-", "+", "[x" or "(x".
struct lex_item {
  enum { minus, plus, inclusive, exclusive } kind;
  std::string_view value;
};
bool parse_lex_item(std::string_view arg, lex_item& out) {
  if (arg.empty()) return false;
  if (arg == "-") out.kind = lex_item::minus;
  else if (arg == "+") out.kind = lex_item::plus;
  else if (arg[0] == '[') out.kind = lex_item::inclusive;
  else if (arg[0] == '(') out.kind = lex_item::exclusive;
  else return false;
  out.value = arg.substr(1);
  return true;
}

void lex_range_ranks(const zset_value& z, const lex_item& min, const lex_item& max, std::size_t& lo, std::size_t& hi) {
  auto rank_of = [&](const lex_item& it, bool is_min) -> std::size_t {
    switch (it.kind) {
      case lex_item::minus: return 0;
      case lex_item::plus: return z.size();
      case lex_item::inclusive: return z.lex_rank(it.value, !is_min);
      case lex_item::exclusive: return z.lex_rank(it.value, is_min);
    }
    return 0;
  };
  lo = rank_of(min, true);
  hi = rank_of(max, false);
  if (hi < lo) hi = lo;
}

// ZSCAN's score text, as Redis's: a listpack holds a whole score within +-2^62 as an
// integer (double2ll) and prints it whole, any other as d2string (%.17g); the skiplist's
// dictionary scan prints %.17Lg, which for a double is %.17g (1e+17 and up in exponent
// form, a negative zero as "-0").
std::string zscan_score(double v, bool packed) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  constexpr double two_62 = 4611686018427387904.0;
  if (packed && v >= -two_62 && v <= two_62 && v == std::trunc(v)) {
    return std::to_string(static_cast<long long>(v));
  }
  return resp::format_double(v);
}

// Replaces `key` with the result of a *STORE command (or deletes it when the result is
// empty), as Redis's setKey/dbDelete; replies the new size. `event` is the command's
// keyspace event ("zunionstore", ...; "del" when an empty result deletes the key).
// The destination alone is signalled (WATCH, client-side caching), not the sources read.
void store_result(server& s, client& c, std::string_view key, zset_value&& result, const char* event) {
  s.keys_signalled();
  if (result.empty()) {
    if (s.db().find(key)) {
      s.db().erase(key);
      s.add_dirty();
      s.signal_modified_key(key);
      s.notify(notify_generic, "del", key);
    }
    s.reply(c).integer(0);
    return;
  }
  result.compact_if_small();
  const auto n = static_cast<long long>(result.size());
  value& v = s.db().create(key, value_type::zset);
  v.zset() = std::move(result);
  s.add_dirty();
  s.signal_modified_key(key);
  s.signal_key_as_ready(key);
  s.reply(c).integer(n);
  s.notify(notify_zset, event, key);
}

void reply_entry(resp::reply_writer& w, const zset_value::entry& e, bool withscores, bool nested) {
  if (withscores && nested) w.array(2);
  w.bulk(e.member);
  if (withscores) w.double_value(e.score);
}

// ---- ZADD / ZINCRBY ----
void zadd_generic(server& s, client& c, args_t a, bool zincrby) {
  bool nx = false, xx = false, gt = false, lt = false, ch = false, incr = zincrby;
  std::size_t i = 2;
  if (!zincrby) {
    for (; i < a.size(); ++i) {
      auto o = a[i];
      if (iequals(o, "nx")) nx = true;
      else if (iequals(o, "xx")) xx = true;
      else if (iequals(o, "gt")) gt = true;
      else if (iequals(o, "lt")) lt = true;
      else if (iequals(o, "ch")) ch = true;
      else if (iequals(o, "incr")) incr = true;
      else break;
    }
  }
  const std::size_t elements = a.size() - i;
  if (elements == 0 || elements % 2) {
    s.add_error(c, syntax_error);
    return;
  }
  const std::size_t pairs = elements / 2;
  if (nx && xx) {
    s.add_error(c, "ERR XX and NX options at the same time are not compatible");
    return;
  }
  if ((gt && nx) || (lt && nx) || (gt && lt)) {
    s.add_error(c, "ERR GT, LT, and/or NX options at the same time are not compatible");
    return;
  }
  if (incr && pairs > 1) {
    s.add_error(c, "ERR INCR option supports a single increment-element pair");
    return;
  }
  std::vector<double> scores(pairs);
  for (std::size_t j = 0; j < pairs; ++j) {
    if (!parse_score(a[i + 2 * j], scores[j])) {
      s.add_error(c, not_float_error);
      return;
    }
  }
  value* v = s.db().find(a[1]);
  if (v && v->type() != value_type::zset) {
    s.add_error(c, wrongtype_error);
    return;
  }
  std::size_t added = 0, updated = 0, processed = 0;
  double last_score = 0;
  bool created = false;
  if (!v && !xx) {
    v = &s.db().create(a[1], value_type::zset);
    created = true;
  }
  if (v) {
    zset_value& z = v->zset();
    for (std::size_t j = 0; j < pairs; ++j) {
      std::string_view member = a[i + 2 * j + 1];
      double score = scores[j];
      double cur;
      if (z.score(member, cur)) {
        if (nx) continue;
        if (incr) {
          score += cur;
          if (std::isnan(score)) {
            if (z.empty()) s.db().erase(a[1]);
            s.add_error(c, "ERR resulting score is not a number (NaN)");
            if (added + updated) {
              s.add_dirty(added + updated);
              s.signal_key_as_ready(a[1]);
              s.notify(notify_zset, incr ? "zincr" : "zadd", a[1]);
            }
            return;
          }
        }
        if ((lt && score >= cur) || (gt && score <= cur)) continue;
        ++processed;
        last_score = score;
        if (score != cur) {
          z.set(member, score);
          ++updated;
        }
      } else {
        if (xx) continue;
        z.set(member, score);
        ++added;
        ++processed;
        last_score = score;
      }
    }
    if (z.empty() && created) s.db().erase(a[1]);
  }
  if (added + updated) {
    s.add_dirty(added + updated);
    if (added) s.signal_key_as_ready(a[1]);
    s.notify(notify_zset, incr ? "zincr" : "zadd", a[1]);
  }
  auto w = s.reply(c);
  if (incr) {
    if (processed) w.double_value(last_score);
    else w.null();
  } else {
    w.integer(static_cast<long long>(ch ? added + updated : added));
  }
}

// ---- ranges ----
enum class range_kind { automatic, rank, score, lex };

// zrangeGenericCommand. `at` is the index of the source key; dst non-empty for ZRANGESTORE.
void zrange_generic(server& s, client& c, args_t a, std::size_t at, const std::string_view* dst, range_kind kind,
                    int direction /* 0 auto, 1 forward, -1 reverse */) {
  const bool store = dst != nullptr;
  std::size_t minidx = at + 1, maxidx = at + 2;
  bool withscores = false;
  long long offset = 0, limit = -1;
  bool has_limit = false;
  for (std::size_t j = at + 3; j < a.size(); ++j) {
    const std::size_t left = a.size() - j - 1;
    if (!store && iequals(a[j], "withscores")) {
      withscores = true;
    } else if (iequals(a[j], "limit") && left >= 2) {
      if (!integer_arg(s, c, a[j + 1], offset) || !integer_arg(s, c, a[j + 2], limit)) return;
      has_limit = true;
      j += 2;
    } else if (direction == 0 && iequals(a[j], "rev")) {
      direction = -1;
    } else if (kind == range_kind::automatic && iequals(a[j], "bylex")) {
      kind = range_kind::lex;
    } else if (kind == range_kind::automatic && iequals(a[j], "byscore")) {
      kind = range_kind::score;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  if (direction == 0) direction = 1;
  if (kind == range_kind::automatic) kind = range_kind::rank;
  if (has_limit && limit != -1 && kind == range_kind::rank) {
    s.add_error(c, "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    return;
  }
  if (withscores && kind == range_kind::lex) {
    s.add_error(c, "ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    return;
  }
  const bool reverse = direction < 0;
  if (reverse && kind != range_kind::rank) std::swap(minidx, maxidx);
  long long start = 0, end = 0;
  score_range sr{};
  lex_item lmin{}, lmax{};
  switch (kind) {
    case range_kind::automatic:
    case range_kind::rank:
      if (!integer_arg(s, c, a[minidx], start) || !integer_arg(s, c, a[maxidx], end)) return;
      break;
    case range_kind::score:
      if (!parse_score_range(a[minidx], a[maxidx], sr)) {
        s.add_error(c, range_float_error);
        return;
      }
      break;
    case range_kind::lex:
      if (!parse_lex_item(a[minidx], lmin) || !parse_lex_item(a[maxidx], lmax)) {
        s.add_error(c, range_lex_error);
        return;
      }
      break;
  }
  bool wrong;
  zset_value* z;
  {
    server::read_lookups reading(s);  // ZRANGESTORE reads its source
    z = lookup_zset(s, c, a[at], wrong);
  }
  if (wrong) return;
  // The selection: n members walked from rank `from` (downwards when reverse).
  std::size_t from = 0, n = 0;
  if (z) {
    const auto len = static_cast<long long>(z->size());
    if (kind == range_kind::rank) {
      if (start < 0) start += len;
      if (end < 0) end += len;
      if (start < 0) start = 0;
      if (!(start > end || start >= len)) {
        if (end >= len) end = len - 1;
        n = static_cast<std::size_t>(end - start + 1);
        from = reverse ? static_cast<std::size_t>(len - 1 - start) : static_cast<std::size_t>(start);
      }
    } else {
      std::size_t lo, hi;
      if (kind == range_kind::score) score_range_ranks(*z, sr, lo, hi);
      else lex_range_ranks(*z, lmin, lmax, lo, hi);
      std::size_t total = hi - lo;
      // A negative offset skips everything, as Redis's "while (offset--)" does.
      if (offset < 0 || static_cast<unsigned long long>(offset) >= total) {
        n = 0;
      } else {
        n = total - static_cast<std::size_t>(offset);
        if (limit >= 0) n = std::min<std::size_t>(n, static_cast<std::size_t>(limit));
        from = reverse ? hi - 1 - static_cast<std::size_t>(offset) : lo + static_cast<std::size_t>(offset);
      }
    }
  }
  if (store) {
    zset_value result;
    result.expect(n);
    if (z) z->walk(from, n, reverse, [&](const zset_value::entry& e) { result.set(e.member, e.score); });
    store_result(s, c, *dst, std::move(result), "zrangestore");
    return;
  }
  auto w = s.reply(c);
  if (!z) {
    w.array(0);
    return;
  }
  const bool nested = c.resp > 2;
  w.array(withscores && !nested ? 2 * n : n);
  z->walk(from, n, reverse, [&](const zset_value::entry& e) { reply_entry(w, e, withscores, nested); });
}

// ---- ZREMRANGEBY* ----
void zremrange_generic(server& s, client& c, args_t a, range_kind kind) {
  long long start = 0, end = 0;
  score_range sr{};
  lex_item lmin{}, lmax{};
  if (kind == range_kind::rank) {
    if (!integer_arg(s, c, a[2], start) || !integer_arg(s, c, a[3], end)) return;
  } else if (kind == range_kind::score) {
    if (!parse_score_range(a[2], a[3], sr)) {
      s.add_error(c, range_float_error);
      return;
    }
  } else if (!parse_lex_item(a[2], lmin) || !parse_lex_item(a[3], lmax)) {
    s.add_error(c, range_lex_error);
    return;
  }
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  if (!z) {
    s.reply(c).integer(0);
    return;
  }
  std::size_t lo = 0, hi = 0;
  if (kind == range_kind::rank) {
    const auto len = static_cast<long long>(z->size());
    if (start < 0) start += len;
    if (end < 0) end += len;
    if (start < 0) start = 0;
    if (!(start > end || start >= len)) {
      if (end >= len) end = len - 1;
      lo = static_cast<std::size_t>(start);
      hi = static_cast<std::size_t>(end + 1);
    }
  } else if (kind == range_kind::score) {
    score_range_ranks(*z, sr, lo, hi);
  } else {
    lex_range_ranks(*z, lmin, lmax, lo, hi);
  }
  const std::size_t n = hi - lo;
  if (n) {
    z->erase_ranks(lo, n);
    s.notify(notify_zset,
             kind == range_kind::rank ? "zremrangebyrank" : kind == range_kind::score ? "zremrangebyscore" : "zremrangebylex",
             a[1]);
    if (z->empty()) {
      s.db().erase(a[1]);
      s.notify(notify_generic, "del", a[1]);
    }
    s.add_dirty(n);
  }
  s.reply(c).integer(static_cast<long long>(n));
}

// ---- pops ----
// The first non-empty key of `keys`: its zset, or nullptr (after a WRONGTYPE when `wrong`).
zset_value* first_zset(server& s, client& c, const std::vector<std::string_view>& keys, std::string_view& key,
                       bool& wrong) {
  wrong = false;
  for (auto k : keys) {
    zset_value* z = lookup_zset(s, c, k, wrong);
    if (wrong) return nullptr;
    if (z && !z->empty()) {
      key = k;
      return z;
    }
  }
  return nullptr;
}

// Pops from a known zset, replying as `shape`: 'f' flat [m, s, ...] (ZPOPMIN), 'k' key
// first then flat (BZPOPMIN), 'n' [key, [[m, s], ...]] (ZMPOP/BZMPOP), 'r' ZPOPMIN with
// count in RESP3: [[m, s], ...]. Deletes the key when it empties. Returns how many.
std::size_t pop_reply(server& s, client& c, std::string_view key, zset_value& z, bool min, std::size_t count,
                      char shape) {
  auto w = s.reply(c);
  std::size_t n = zset_pop_reply(w, z, key, min, count, shape);
  zset_popped(s, key, z, min, n);
  s.add_dirty(n);
  return n;
}

void zpop_generic(server& s, client& c, args_t a, bool min) {
  if (a.size() > 3) {
    s.add_error(c, syntax_error);
    return;
  }
  long long count = -1;
  if (a.size() == 3 && (!string2ll(a[2], count) || count < 0)) {
    s.add_error(c, "ERR value is out of range, must be positive");
    return;
  }
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  if (!z || count == 0) {
    s.reply(c).array(0);
    return;
  }
  const bool nested = c.resp > 2 && count != -1;
  pop_reply(s, c, a[1], *z, min, count == -1 ? 1 : static_cast<std::size_t>(count), nested ? 'r' : 'f');
}

// ZMPOP / BZMPOP arguments from numkeys at `at`.
bool parse_zmpop(server& s, client& c, args_t a, std::size_t at, std::vector<std::string_view>& keys, bool& min,
                 long long& count) {
  long long numkeys;
  if (!string2ll(a[at], numkeys) || numkeys < 1) {
    s.add_error(c, "ERR numkeys should be greater than 0");
    return false;
  }
  // MIN|MAX comes after the keys: its place must be inside the arguments (Redis's
  // where_idx >= argc).
  if (static_cast<unsigned long long>(numkeys) >= a.size() - at - 1) {
    s.add_error(c, syntax_error);
    return false;
  }
  const std::size_t where = at + 1 + static_cast<std::size_t>(numkeys);
  if (iequals(a[where], "min")) min = true;
  else if (iequals(a[where], "max")) min = false;
  else {
    s.add_error(c, syntax_error);
    return false;
  }
  count = -1;
  for (std::size_t j = where + 1; j < a.size(); ++j) {
    if (count == -1 && iequals(a[j], "count") && j + 1 < a.size()) {
      ++j;
      if (!string2ll(a[j], count) || count < 1) {
        s.add_error(c, "ERR count should be greater than 0");
        return false;
      }
    } else {
      s.add_error(c, syntax_error);
      return false;
    }
  }
  if (count == -1) count = 1;
  keys.assign(a.begin() + static_cast<std::ptrdiff_t>(at + 1), a.begin() + static_cast<std::ptrdiff_t>(where));
  return true;
}

// Pops for ZMPOP (and BZMPOP when a key has members): true when something was popped or
// an error replied.
bool zmpop_now(server& s, client& c, const std::vector<std::string_view>& keys, bool min, long long count) {
  std::string_view key;
  bool wrong;
  zset_value* z = first_zset(s, c, keys, key, wrong);
  if (wrong) return true;
  if (!z) return false;
  pop_reply(s, c, key, *z, min, static_cast<std::size_t>(count), 'n');
  // Redis logs the requested count, not the number popped.
  std::string cnt = std::to_string(count);
  s.stream().append({min ? "ZPOPMIN" : "ZPOPMAX", key, cnt});
  s.effects_logged();
  s.signal_modified_key(key);  // the sorted set popped from, not every key named
  s.keys_signalled();
  return true;
}

void block_or_timeout(server& s, client& c, std::unique_ptr<blocked_state> b) {
  if (c.in_exec || c.is_fake) {
    s.reply(c).null_array();
    return;
  }
  s.block_client(c, std::move(b));
}

void bzpop_generic(server& s, client& c, args_t a, bool min) {
  clock::time_point deadline;
  if (!parse_timeout(s, c, a.back(), deadline)) return;
  std::vector<std::string_view> keys(a.begin() + 1, a.end() - 1);
  std::string_view key;
  bool wrong;
  zset_value* z = first_zset(s, c, keys, key, wrong);
  if (wrong) return;
  if (z) {
    pop_reply(s, c, key, *z, min, 1, 'k');
    s.stream().append({min ? "ZPOPMIN" : "ZPOPMAX", key});
    s.effects_logged();
    return;
  }
  auto b = std::make_unique<blocked_state>();
  b->what = blocked_state::kind::zpop;
  b->pop_left = min;
  b->deadline = deadline;
  b->command = min ? "bzpopmin" : "bzpopmax";
  for (auto k : keys)
    if (std::find(b->keys.begin(), b->keys.end(), k) == b->keys.end()) b->keys.emplace_back(k);
  block_or_timeout(s, c, std::move(b));
}

// ---- ZUNION / ZINTER / ZDIFF ----
enum class set_op { union_, inter, diff };
enum class aggregate { sum, min, max };

struct op_input {
  const zset_value* z = nullptr;  // nullptr: missing key (an empty input)
  std::shared_ptr<zset_value> owned;  // a set input, as a sorted set (stays put when inputs are sorted)
  double weight = 1;
  std::size_t size() const { return z ? z->size() : 0; }
  bool find(std::string_view m, double& score) const { return z && z->score(m, score); }
};

// A plain set as an input: every member scores 1, as in Redis. Any other type is
// WRONGTYPE (false).
bool read_set_input(const value& v, op_input& in) {
  if (v.type() != value_type::set) return false;
  in.owned = std::make_shared<zset_value>();
  std::get<set_value>(v.data).for_each([&](std::string_view m) { in.owned->set(m, 1.0); });
  in.z = in.owned.get();
  return true;
}

void aggregate_into(double& target, double v, aggregate ag) {
  switch (ag) {
    case aggregate::sum:
      target += v;
      if (std::isnan(target)) target = 0;  // inf + -inf
      break;
    case aggregate::min: target = std::min(v, target); break;
    case aggregate::max: target = std::max(v, target); break;
  }
}

void set_op_generic(server& s, client& c, args_t a, const std::string_view* dst, std::size_t numkeys_at, set_op op,
                    bool card_only) {
  long long setnum;
  if (!integer_arg(s, c, a[numkeys_at], setnum)) return;
  if (setnum < 1) {
    s.add_error(c, "ERR at least 1 input key is needed for '" + to_lower(a[0]) + "' command");
    return;
  }
  if (static_cast<unsigned long long>(setnum) > a.size() - numkeys_at - 1) {
    s.add_error(c, syntax_error);
    return;
  }
  std::vector<op_input> src(static_cast<std::size_t>(setnum));
  std::size_t j = numkeys_at + 1;
  for (std::size_t i = 0; i < src.size(); ++i, ++j) {
    server::read_lookups reading(s);  // the sources are read, also by the *STORE forms
    value* v = s.db().find(a[j]);
    if (!v) continue;
    if (v->type() == value_type::zset) {
      src[i].z = &v->zset();
    } else if (!read_set_input(*v, src[i])) {
      s.add_error(c, wrongtype_error);
      return;
    }
  }
  aggregate ag = aggregate::sum;
  bool withscores = false;
  long long limit = 0;
  while (j < a.size()) {
    const std::size_t remaining = a.size() - j;
    if (op != set_op::diff && !card_only && remaining >= src.size() + 1 && iequals(a[j], "weights")) {
      ++j;
      for (auto& in : src) {
        if (!parse_score(a[j++], in.weight)) {
          s.add_error(c, "ERR weight value is not a float");
          return;
        }
      }
    } else if (op != set_op::diff && !card_only && remaining >= 2 && iequals(a[j], "aggregate")) {
      auto g = a[j + 1];
      if (iequals(g, "sum")) ag = aggregate::sum;
      else if (iequals(g, "min")) ag = aggregate::min;
      else if (iequals(g, "max")) ag = aggregate::max;
      else {
        s.add_error(c, syntax_error);
        return;
      }
      j += 2;
    } else if (!dst && !card_only && iequals(a[j], "withscores")) {
      ++j;
      withscores = true;
    } else if (card_only && remaining >= 2 && iequals(a[j], "limit")) {
      if (!string2ll(a[j + 1], limit) || limit < 0) {
        s.add_error(c, "ERR LIMIT can't be negative");
        return;
      }
      j += 2;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  // Smallest inputs first (after the first one, for a difference).
  auto by_size = [](const op_input& x, const op_input& y) { return x.size() < y.size(); };
  if (op == set_op::diff) std::stable_sort(src.begin() + 1, src.end(), by_size);
  else std::stable_sort(src.begin(), src.end(), by_size);

  zset_value result;
  if (!card_only && op != set_op::union_) result.expect(src[0].size());
  std::size_t cardinality = 0;
  if (op == set_op::inter) {
    if (src[0].size() > 0) {
      bool stop = false;
      src[0].z->walk(0, src[0].size(), false, [&](const zset_value::entry& e) {
        if (stop) return;
        double score = src[0].weight * e.score;
        if (std::isnan(score)) score = 0;
        std::size_t k = 1;
        for (; k < src.size(); ++k) {
          double v;
          if (src[k].z == src[0].z) v = e.score;
          else if (!src[k].find(e.member, v)) break;
          aggregate_into(score, v * src[k].weight, ag);
        }
        if (k != src.size()) return;
        if (card_only) {
          ++cardinality;
          if (limit && cardinality >= static_cast<std::size_t>(limit)) stop = true;
        } else {
          result.set(e.member, score);
        }
      });
    }
  } else if (op == set_op::union_) {
    // Accumulate in a hash (members copied once), then sort into the result.
    std::unordered_map<std::string, double, string_hash, std::equal_to<>> acc;
    for (auto& in : src) {
      if (!in.z) continue;
      in.z->walk(0, in.size(), false, [&](const zset_value::entry& e) {
        double score = in.weight * e.score;
        if (std::isnan(score)) score = 0;
        auto it = acc.find(e.member);
        if (it == acc.end()) acc.emplace(std::string(e.member), score);
        else aggregate_into(it->second, score, ag);
      });
    }
    result.expect(acc.size());
    for (auto& [m, sc] : acc) result.set(m, sc);
  } else {
    if (src[0].z) {
      src[0].z->walk(0, src[0].size(), false, [&](const zset_value::entry& e) {
        double v;
        for (std::size_t k = 1; k < src.size(); ++k) {
          if (src[k].z == src[0].z || src[k].find(e.member, v)) return;
        }
        result.set(e.member, e.score);
      });
    }
  }

  if (dst) {
    store_result(s, c, *dst, std::move(result),
                 op == set_op::union_ ? "zunionstore" : op == set_op::inter ? "zinterstore" : "zdiffstore");
    return;
  }
  auto w = s.reply(c);
  if (card_only) {
    w.integer(static_cast<long long>(cardinality));
    return;
  }
  const bool nested = c.resp > 2;
  w.array(withscores && !nested ? 2 * result.size() : result.size());
  result.walk(0, result.size(), false, [&](const zset_value::entry& e) { reply_entry(w, e, withscores, nested); });
}

}  // namespace

void zset_popped(server& s, std::string_view key, zset_value& z, bool min, std::size_t popped) {
  if (popped) s.notify(notify_zset, min ? "zpopmin" : "zpopmax", key);
  if (!z.empty()) return;
  s.db().erase(key);
  s.notify(notify_generic, "del", key);
}

std::size_t zset_pop_reply(resp::reply_writer& w, zset_value& z, std::string_view key, bool min, std::size_t count,
                           char shape) {
  const std::size_t n = std::min(count, z.size());
  switch (shape) {
    case 'f': w.array(2 * n); break;
    case 'r': w.array(n); break;
    case 'k':
      w.array(2 * n + 1);
      w.bulk(key);
      break;
    default:
      w.array(2);
      w.bulk(key);
      w.array(n);
      break;
  }
  const bool nested = shape == 'r' || shape == 'n';
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t r = min ? 0 : z.size() - 1;
    auto e = z.at(r);
    reply_entry(w, e, true, nested);
    z.erase_ranks(r, 1);
  }
  return n;
}

void cmd_zadd(server& s, client& c, args_t a) { zadd_generic(s, c, a, false); }
void cmd_zincrby(server& s, client& c, args_t a) { zadd_generic(s, c, a, true); }

void cmd_zrem(server& s, client& c, args_t a) {
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  long long deleted = 0;
  if (z) {
    bool emptied = false;
    for (std::size_t i = 2; i < a.size(); ++i) {
      if (z->erase(a[i])) ++deleted;
      if (z->empty()) {
        s.db().erase(a[1]);
        emptied = true;
        break;
      }
    }
    s.add_dirty(static_cast<std::uint64_t>(deleted));
    if (deleted) {
      s.notify(notify_zset, "zrem", a[1]);
      if (emptied) s.notify(notify_generic, "del", a[1]);
    }
  }
  s.reply(c).integer(deleted);
}

void cmd_zcard(server& s, client& c, args_t a) {
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(z ? static_cast<long long>(z->size()) : 0);
}

void cmd_zscore(server& s, client& c, args_t a) {
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  double sc;
  auto w = s.reply(c);
  if (z && z->score(a[2], sc)) w.double_value(sc);
  else w.null();
}

void cmd_zmscore(server& s, client& c, args_t a) {
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.array(a.size() - 2);
  for (std::size_t i = 2; i < a.size(); ++i) {
    double sc;
    if (z && z->score(a[i], sc)) w.double_value(sc);
    else w.null();
  }
}

namespace {
void zrank_generic(server& s, client& c, args_t a, bool rev) {
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  long long r = z ? z->rank(a[2]) : -1;
  if (r < 0) w.null();
  else w.integer(rev ? static_cast<long long>(z->size()) - 1 - r : r);
}
}  // namespace

void cmd_zrank(server& s, client& c, args_t a) { zrank_generic(s, c, a, false); }
void cmd_zrevrank(server& s, client& c, args_t a) { zrank_generic(s, c, a, true); }

void cmd_zcount(server& s, client& c, args_t a) {
  score_range r;
  if (!parse_score_range(a[2], a[3], r)) {
    s.add_error(c, range_float_error);
    return;
  }
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  std::size_t lo = 0, hi = 0;
  if (z) score_range_ranks(*z, r, lo, hi);
  s.reply(c).integer(static_cast<long long>(hi - lo));
}

void cmd_zlexcount(server& s, client& c, args_t a) {
  lex_item lmin, lmax;
  if (!parse_lex_item(a[2], lmin) || !parse_lex_item(a[3], lmax)) {
    s.add_error(c, range_lex_error);
    return;
  }
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  std::size_t lo = 0, hi = 0;
  if (z) lex_range_ranks(*z, lmin, lmax, lo, hi);
  s.reply(c).integer(static_cast<long long>(hi - lo));
}

void cmd_zrange(server& s, client& c, args_t a) { zrange_generic(s, c, a, 1, nullptr, range_kind::automatic, 0); }
void cmd_zrangestore(server& s, client& c, args_t a) {
  zrange_generic(s, c, a, 2, &a[1], range_kind::automatic, 0);
}
void cmd_zrevrange(server& s, client& c, args_t a) { zrange_generic(s, c, a, 1, nullptr, range_kind::rank, -1); }
void cmd_zrangebyscore(server& s, client& c, args_t a) { zrange_generic(s, c, a, 1, nullptr, range_kind::score, 1); }
void cmd_zrevrangebyscore(server& s, client& c, args_t a) { zrange_generic(s, c, a, 1, nullptr, range_kind::score, -1); }
void cmd_zrangebylex(server& s, client& c, args_t a) { zrange_generic(s, c, a, 1, nullptr, range_kind::lex, 1); }
void cmd_zrevrangebylex(server& s, client& c, args_t a) { zrange_generic(s, c, a, 1, nullptr, range_kind::lex, -1); }

void cmd_zremrangebyscore(server& s, client& c, args_t a) { zremrange_generic(s, c, a, range_kind::score); }
void cmd_zremrangebyrank(server& s, client& c, args_t a) { zremrange_generic(s, c, a, range_kind::rank); }
void cmd_zremrangebylex(server& s, client& c, args_t a) { zremrange_generic(s, c, a, range_kind::lex); }

void cmd_zpopmin(server& s, client& c, args_t a) { zpop_generic(s, c, a, true); }
void cmd_zpopmax(server& s, client& c, args_t a) { zpop_generic(s, c, a, false); }

void cmd_zmpop(server& s, client& c, args_t a) {
  std::vector<std::string_view> keys;
  bool min;
  long long count;
  if (!parse_zmpop(s, c, a, 1, keys, min, count)) return;
  if (!zmpop_now(s, c, keys, min, count)) s.reply(c).null_array();
}

void cmd_bzpopmin(server& s, client& c, args_t a) { bzpop_generic(s, c, a, true); }
void cmd_bzpopmax(server& s, client& c, args_t a) { bzpop_generic(s, c, a, false); }

void cmd_bzmpop(server& s, client& c, args_t a) {
  // As Redis: the keys, MIN|MAX and COUNT are read first, the timeout after them.
  std::vector<std::string_view> keys;
  bool min;
  long long count;
  if (!parse_zmpop(s, c, a, 2, keys, min, count)) return;
  clock::time_point deadline;
  if (!parse_timeout(s, c, a[1], deadline)) return;
  if (zmpop_now(s, c, keys, min, count)) return;
  auto b = std::make_unique<blocked_state>();
  b->what = blocked_state::kind::zmpop;
  b->pop_left = min;
  b->count = count;
  b->deadline = deadline;
  b->command = "bzmpop";
  for (auto k : keys)
    if (std::find(b->keys.begin(), b->keys.end(), k) == b->keys.end()) b->keys.emplace_back(k);
  block_or_timeout(s, c, std::move(b));
}

void cmd_zrandmember(server& s, client& c, args_t a) {
  if (a.size() == 2) {
    bool wrong;
    zset_value* z = lookup_zset(s, c, a[1], wrong);
    if (wrong) return;
    auto w = s.reply(c);
    if (!z) {
      w.null();
      return;
    }
    w.bulk(z->at(std::uniform_int_distribution<std::size_t>(0, z->size() - 1)(random_engine())).member);
    return;
  }
  long long l;
  if (!string2ll(a[2], l)) {
    s.add_error(c, not_integer_error);
    return;
  }
  if (l == LLONG_MIN) {
    s.add_error(c, "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
    return;
  }
  bool withscores = false;
  if (a.size() > 4 || (a.size() == 4 && !iequals(a[3], "withscores"))) {
    s.add_error(c, syntax_error);
    return;
  }
  if (a.size() == 4) {
    withscores = true;
    if (l < -LLONG_MAX / 2 || l > LLONG_MAX / 2) {
      s.add_error(c, "ERR value is out of range");
      return;
    }
  }
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  if (!z || l == 0) {
    w.array(0);
    return;
  }
  const bool nested = c.resp > 2;
  const std::size_t size = z->size();
  std::uniform_int_distribution<std::size_t> pick(0, size - 1);
  if (l < 0 || l == 1) {
    // With repetitions (or a single one): independent picks.
    const auto count = static_cast<std::size_t>(l < 0 ? -l : l);
    w.array(withscores && !nested ? 2 * count : count);
    for (std::size_t i = 0; i < count; ++i) reply_entry(w, z->at(pick(random_engine())), withscores, nested);
    return;
  }
  const auto count = static_cast<std::size_t>(l);
  if (count >= size) {  // the whole set, highest score first (as Redis 7.0)
    w.array(withscores && !nested ? 2 * size : size);
    z->walk(size - 1, size, true, [&](const zset_value::entry& e) { reply_entry(w, e, withscores, nested); });
    return;
  }
  // Distinct ranks (Floyd's sampling), in random order.
  std::unordered_set<std::size_t> chosen;
  std::vector<std::size_t> order;
  for (std::size_t j = size - count; j < size; ++j) {
    std::size_t t = std::uniform_int_distribution<std::size_t>(0, j)(random_engine());
    if (chosen.insert(t).second) order.push_back(t);
    else {
      chosen.insert(j);
      order.push_back(j);
    }
  }
  std::shuffle(order.begin(), order.end(), random_engine());
  w.array(withscores && !nested ? 2 * count : count);
  for (auto r : order) reply_entry(w, z->at(r), withscores, nested);
}

void cmd_zscan(server& s, client& c, args_t a) {
  scan_args sa;
  // Redis checks the cursor, then the key, then the options.
  if (!parse_scan_cursor(s, c, a[2], sa.cursor)) return;
  bool wrong;
  zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  if (!z) return empty_scan_reply(s, c);
  if (!parse_scan_args(s, c, a, 2, false, sa)) return;
  std::vector<std::pair<std::string, std::string>> found;
  std::uint64_t next = z->scan(sa.cursor, static_cast<std::size_t>(std::max<long long>(sa.count, 1)),
                               [&](const zset_value::entry& e) {
                                 if (sa.has_pattern && !glob_match(sa.pattern, e.member)) return;
                                 found.emplace_back(std::string(e.member), zscan_score(e.score, z->packed()));
                               });
  auto w = s.reply(c);
  w.array(2);
  w.bulk(std::to_string(next));
  w.array(2 * found.size());
  for (auto& [m, sc] : found) {
    w.bulk(m);
    w.bulk(sc);
  }
}

void cmd_zunion(server& s, client& c, args_t a) { set_op_generic(s, c, a, nullptr, 1, set_op::union_, false); }
void cmd_zinter(server& s, client& c, args_t a) { set_op_generic(s, c, a, nullptr, 1, set_op::inter, false); }
void cmd_zdiff(server& s, client& c, args_t a) { set_op_generic(s, c, a, nullptr, 1, set_op::diff, false); }
void cmd_zunionstore(server& s, client& c, args_t a) { set_op_generic(s, c, a, &a[1], 2, set_op::union_, false); }
void cmd_zinterstore(server& s, client& c, args_t a) { set_op_generic(s, c, a, &a[1], 2, set_op::inter, false); }
void cmd_zdiffstore(server& s, client& c, args_t a) { set_op_generic(s, c, a, &a[1], 2, set_op::diff, false); }
void cmd_zintercard(server& s, client& c, args_t a) { set_op_generic(s, c, a, nullptr, 1, set_op::inter, true); }

}  // namespace respq::core
