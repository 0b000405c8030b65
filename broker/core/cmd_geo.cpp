// GEO commands, Redis 7.0 semantics (geo.c): GEOADD, GEODIST, GEOHASH, GEOPOS and the
// searches GEORADIUS[_RO], GEORADIUSBYMEMBER[_RO], GEOSEARCH and GEOSEARCHSTORE.
//
// A geo index is an ordinary sorted set: each member's score is its 52-bit geohash
// (geohash.hpp), so every Z* command works on it and the AOF and the mirror carry it as
// a sorted set. GEOADD is ZADD with the scores computed (and propagates as that ZADD, as
// Redis does); a search with STORE propagates as sent, since it replays the same.
//
// A search (georadius_generic, Redis's georadiusGeneric) parses its options in Redis's
// order, so the first error is Redis's; finds the centre box and its 8 neighbours at the
// estimated precision; collects the members of each box's score range that pass the
// distance test (stopping early for COUNT n ANY); then sorts by distance as Redis does:
// glibc's qsort (a stable merge sort here) when everything found is returned, Redis's
// partial quicksort (pqsort) when COUNT cuts the list, so that members at the same
// distance come out in Redis's order too.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "broker/core/commands.hpp"
#include "broker/core/geohash.hpp"

namespace respq::core {

namespace {

// strcasecmp on an argument: Redis compares C strings, so a NUL ends the argument.
bool opt_is(std::string_view arg, std::string_view name) {
  if (const std::size_t nul = arg.find('\0'); nul != std::string_view::npos) arg = arg.substr(0, nul);
  return iequals(arg, name);
}

// getDoubleFromObjectOrReply (parse_score); `msg` replaces Redis's default error text.
bool double_arg(server& s, client& c, std::string_view arg, double& out,
                std::string_view msg = "ERR value is not a valid float") {
  if (parse_score(arg, out)) return true;
  s.add_error(c, msg);
  return false;
}

// extractLongLatOrReply: longitude then latitude, inside Redis's limits.
bool long_lat_arg(server& s, client& c, args_t a, std::size_t at, double* xy) {
  for (std::size_t i = 0; i < 2; ++i)
    if (!double_arg(s, c, a[at + i], xy[i])) return false;
  if (xy[0] < geo::long_min || xy[0] > geo::long_max || xy[1] < geo::lat_min || xy[1] > geo::lat_max) {
    // %f of a coordinate such as 1e308 is over 300 digits: the whole text, as Redis's sds.
    const int n = std::snprintf(nullptr, 0, "ERR invalid longitude,latitude pair %f,%f", xy[0], xy[1]);
    std::string msg(static_cast<std::size_t>(std::max(n, 0)) + 1, '\0');
    std::snprintf(msg.data(), msg.size(), "ERR invalid longitude,latitude pair %f,%f", xy[0], xy[1]);
    msg.pop_back();
    s.add_error(c, msg);
    return false;
  }
  return true;
}

// extractUnitOrReply: meters per unit, or -1 after replying the error.
double unit_arg(server& s, client& c, std::string_view u) {
  if (opt_is(u, "m")) return 1;
  if (opt_is(u, "km")) return 1000;
  if (opt_is(u, "ft")) return 0.3048;
  if (opt_is(u, "mi")) return 1609.34;
  s.add_error(c, "ERR unsupported unit provided. please use M, KM, FT, MI");
  return -1;
}

// extractDistanceOrReply: <radius> <unit>.
bool distance_arg(server& s, client& c, args_t a, std::size_t at, double& conversion, double& radius) {
  double distance;
  if (!double_arg(s, c, a[at], distance, "ERR need numeric radius")) return false;
  if (distance < 0) {
    s.add_error(c, "ERR radius cannot be negative");
    return false;
  }
  radius = distance;
  const double to_meters = unit_arg(s, c, a[at + 1]);
  if (to_meters < 0) return false;
  conversion = to_meters;
  return true;
}

// extractBoxOrReply: <width> <height> <unit>.
bool box_arg(server& s, client& c, args_t a, std::size_t at, double& conversion, double& width, double& height) {
  double h, w;
  if (!double_arg(s, c, a[at], w, "ERR need numeric width") || !double_arg(s, c, a[at + 1], h, "ERR need numeric height"))
    return false;
  if (h < 0 || w < 0) {
    s.add_error(c, "ERR height or width cannot be negative");
    return false;
  }
  height = h;
  width = w;
  const double to_meters = unit_arg(s, c, a[at + 2]);
  if (to_meters < 0) return false;
  conversion = to_meters;
  return true;
}

// longLatFromMember: false when the member is absent (any score decodes).
bool long_lat_of_member(const zset_value& z, std::string_view member, double* xy) {
  double score;
  if (!z.score(member, score)) return false;
  return geo::decode_score(score, xy);
}

// Redis's fixedpoint_d2string(d, 4): distances with exactly four decimals (llrint, so
// halves go to even).
std::string distance_text(double d) {
  constexpr int fractional_digits = 4;
  if (d == 0) return "0.0000";
  const long long svalue = std::llrint(d * 10000.0);
  unsigned long long value;
  std::string sign;
  if (svalue < 0) {
    value = svalue != LLONG_MIN ? static_cast<unsigned long long>(-svalue) : static_cast<unsigned long long>(LLONG_MAX) + 1;
    sign = "-";
  } else {
    value = static_cast<unsigned long long>(svalue);
  }
  std::string digits = std::to_string(value);
  if (digits.size() <= fractional_digits) digits.insert(0, fractional_digits + 1 - digits.size(), '0');
  digits.insert(digits.size() - fractional_digits, 1, '.');
  return sign + digits;
}

// addReplyHumanLongDouble: a bulk string in RESP2, a RESP3 double, both in
// ld2string(LD_STR_HUMAN) form.
void reply_coordinate(resp::reply_writer& w, double v) {
  const std::string text = format_long_double(v);
  if (w.protocol() == 2) {
    w.bulk(text);
  } else {
    w.raw(",");
    w.raw(text);
    w.raw("\r\n");
  }
}

struct geo_point {
  double longitude, latitude, dist, score;
  std::string member;
};

// geoWithinShape: the point at `score`, and its distance from the centre, when inside.
bool within_shape(const geo::shape& sh, double score, double* xy, double& dist) {
  if (!geo::decode_score(score, xy)) return false;
  if (sh.kind == geo::shape::circular)
    return geo::distance_if_in_radius(sh.xy[0], sh.xy[1], xy[0], xy[1], sh.radius * sh.conversion, dist);
  if (sh.kind == geo::shape::rectangle)
    return geo::distance_if_in_rectangle(sh.width * sh.conversion, sh.height * sh.conversion, sh.xy[0], sh.xy[1],
                                         xy[0], xy[1], dist);
  return true;
}

// geoGetPointsInRange via membersOfGeoHashBox: the members scoring in [min, max) of the
// box that lie inside the shape, appended; stops once `limit` (0: none) are found.
void points_of_box(const zset_value& z, geo::hash_bits hash, const geo::shape& sh, std::vector<geo_point>& out,
                   std::size_t limit) {
  const auto min = static_cast<double>(geo::align_52bits(hash));
  hash.bits++;
  const auto max = static_cast<double>(geo::align_52bits(hash));
  const std::size_t lo = z.score_rank(min, false);
  const std::size_t hi = z.score_rank(max, false);
  if (hi <= lo) return;
  bool done = false;
  // With a limit (COUNT ... ANY) the box is walked in steps, so that the search ends once
  // enough are found instead of visiting every member of the box (Redis breaks its loop).
  const std::size_t step = limit ? std::max<std::size_t>(limit, 32) : hi - lo;
  for (std::size_t pos = lo; pos < hi && !done; pos += step) {
    z.walk(pos, std::min(step, hi - pos), false, [&](const zset_value::entry& e) {
      if (done) return;
      double xy[2];
      double dist = 0;
      if (within_shape(sh, e.score, xy, dist)) out.push_back(geo_point{xy[0], xy[1], dist, e.score, std::string(e.member)});
      if (!out.empty() && limit && out.size() >= limit) done = true;
    });
  }
}

// membersOfAllNeighbors: the centre box, then N, S, E, W, NE, NW, SE, SW, each skipped
// when zeroed or the same as the one searched before it (huge radii).
void points_of_areas(const zset_value& z, const geo::search_areas& n, const geo::shape& sh,
                     std::vector<geo_point>& out, std::size_t limit) {
  const geo::hash_bits boxes[9] = {n.hash,
                                   n.around.north,
                                   n.around.south,
                                   n.around.east,
                                   n.around.west,
                                   n.around.north_east,
                                   n.around.north_west,
                                   n.around.south_east,
                                   n.around.south_west};
  std::size_t last_processed = 0;
  for (std::size_t i = 0; i < 9; ++i) {
    if (boxes[i].is_zero()) continue;
    if (last_processed && boxes[i].bits == boxes[last_processed].bits && boxes[i].step == boxes[last_processed].step)
      continue;
    if (!out.empty() && limit && out.size() >= limit) break;
    points_of_box(z, boxes[i], sh, out, limit);
    last_processed = i;
  }
}

// sort_gp_asc / sort_gp_desc.
int compare_points(const geo_point& x, const geo_point& y, bool desc) {
  const int r = x.dist > y.dist ? 1 : x.dist == y.dist ? 0 : -1;
  return desc ? -r : r;
}

// Redis's pqsort.c (NetBSD's qsort cut to the ranks [lrange, rrange]), over indices: with
// equal distances the order it leaves is part of Redis's answer.
class partial_sort {
 public:
  partial_sort(std::vector<geo_point>& v, bool desc) : v_(v), desc_(desc) {}

  void run(std::size_t n, std::size_t lrange, std::size_t rrange) { sort(0, n, lrange, rrange); }

 private:
  int cmp(std::size_t a, std::size_t b) const { return compare_points(v_[a], v_[b], desc_); }
  void swap(std::size_t a, std::size_t b) {
    if (a != b) std::swap(v_[a], v_[b]);
  }
  void vecswap(std::size_t a, std::size_t b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) swap(a + i, b + i);
  }
  std::size_t med3(std::size_t a, std::size_t b, std::size_t c) const {
    return cmp(a, b) < 0 ? (cmp(b, c) < 0 ? b : (cmp(a, c) < 0 ? c : a)) : (cmp(b, c) > 0 ? b : (cmp(a, c) < 0 ? a : c));
  }
  // Whether the ranks [first, first + n) hold none of [L, R] (Redis's pointer test).
  static bool outside(std::size_t first, std::size_t n, std::size_t L, std::size_t R) {
    return (L < first && R < first) || (L >= first + n && R >= first + n);
  }

  void sort(std::size_t a, std::size_t n, std::size_t L, std::size_t R) {
    for (;;) {
      if (n < 7) {
        for (std::size_t pm = a + 1; pm < a + n; ++pm)
          for (std::size_t pl = pm; pl > a && cmp(pl - 1, pl) > 0; --pl) swap(pl, pl - 1);
        return;
      }
      std::size_t pm = a + n / 2;
      if (n > 7) {
        std::size_t pl = a;
        std::size_t pn = a + n - 1;
        if (n > 40) {
          const std::size_t d = n / 8;
          pl = med3(pl, pl + d, pl + 2 * d);
          pm = med3(pm - d, pm, pm + d);
          pn = med3(pn - 2 * d, pn - d, pn);
        }
        pm = med3(pl, pm, pn);
      }
      swap(a, pm);
      std::size_t pa = a + 1, pb = a + 1;
      // pc and pd may pass below a + 1: signed.
      long long pc = static_cast<long long>(a + n - 1), pd = pc;
      for (;;) {
        int r;
        while (static_cast<long long>(pb) <= pc && (r = cmp(pb, a)) <= 0) {
          if (r == 0) {
            swap(pa, pb);
            ++pa;
          }
          ++pb;
        }
        while (static_cast<long long>(pb) <= pc && (r = cmp(static_cast<std::size_t>(pc), a)) >= 0) {
          if (r == 0) {
            swap(static_cast<std::size_t>(pc), static_cast<std::size_t>(pd));
            --pd;
          }
          --pc;
        }
        if (static_cast<long long>(pb) > pc) break;
        swap(pb, static_cast<std::size_t>(pc));
        ++pb;
        --pc;
      }
      const std::size_t pn = a + n;
      std::size_t r = std::min(pa - a, pb - pa);
      vecswap(a, pb - r, r);
      r = std::min(static_cast<std::size_t>(pd - pc), pn - static_cast<std::size_t>(pd) - 1);
      vecswap(pb, pn - r, r);
      if ((r = pb - pa) > 1 && !outside(a, r, L, R)) sort(a, r, L, R);
      if ((r = static_cast<std::size_t>(pd - pc)) > 1) {
        a = pn - r;
        n = r;
        if (!outside(a, n, L, R)) continue;
      }
      return;
    }
  }

  std::vector<geo_point>& v_;
  bool desc_;
};

enum geo_flags : unsigned {
  radius_coords = 1u << 0,  // around coordinates
  radius_member = 1u << 1,  // around a member
  radius_nostore = 1u << 2,  // no STORE / STOREDIST
  geosearch = 1u << 3,       // GEOSEARCH's arguments
  geosearchstore = 1u << 4,  // GEOSEARCHSTORE: STOREDIST alone
};

enum class order { none, asc, desc };

void georadius_generic(server& s, client& c, args_t a, std::size_t src_index, unsigned flags) {
  std::optional<std::string_view> storekey;
  bool storedist = false;

  bool wrong;
  const zset_value* z;
  {
    server::read_lookups reading(s);  // the source is read (lookupKeyRead) by the writers too
    z = lookup_zset(s, c, a[src_index], wrong);
  }
  if (wrong) return;

  std::size_t base_args;
  geo::shape sh;
  if (flags & radius_coords) {
    base_args = 6;
    sh.kind = geo::shape::circular;
    if (!long_lat_arg(s, c, a, 2, sh.xy)) return;
    if (!distance_arg(s, c, a, base_args - 2, sh.conversion, sh.radius)) return;
  } else if ((flags & radius_member) && !z) {
    base_args = 5;  // no source: parse the options anyway, for the reply's kind
  } else if (flags & radius_member) {
    base_args = 5;
    sh.kind = geo::shape::circular;
    if (!long_lat_of_member(*z, a[2], sh.xy)) {
      s.add_error(c, "ERR could not decode requested zset member");
      return;
    }
    if (!distance_arg(s, c, a, base_args - 2, sh.conversion, sh.radius)) return;
  } else {
    base_args = 2;
    if (flags & geosearchstore) {
      base_args = 3;
      storekey = a[1];
    }
  }

  bool withdist = false, withhash = false, withcoords = false;
  bool frommember = false, fromloc = false, byradius = false, bybox = false;
  order sort = order::none;
  bool any = false;
  long long count = 0;  // 0: all
  if (a.size() > base_args) {
    const std::size_t remaining = a.size() - base_args;
    for (std::size_t i = 0; i < remaining; ++i) {
      const std::string_view arg = a[base_args + i];
      if (opt_is(arg, "withdist")) {
        withdist = true;
      } else if (opt_is(arg, "withhash")) {
        withhash = true;
      } else if (opt_is(arg, "withcoord")) {
        withcoords = true;
      } else if (opt_is(arg, "any")) {
        any = true;
      } else if (opt_is(arg, "asc")) {
        sort = order::asc;
      } else if (opt_is(arg, "desc")) {
        sort = order::desc;
      } else if (opt_is(arg, "count") && i + 1 < remaining) {
        if (!integer_arg(s, c, a[base_args + i + 1], count)) return;
        if (count <= 0) {
          s.add_error(c, "ERR COUNT must be > 0");
          return;
        }
        ++i;
      } else if (opt_is(arg, "store") && i + 1 < remaining && !(flags & radius_nostore) && !(flags & geosearch)) {
        storekey = a[base_args + i + 1];
        storedist = false;
        ++i;
      } else if (opt_is(arg, "storedist") && i + 1 < remaining && !(flags & radius_nostore) && !(flags & geosearch)) {
        storekey = a[base_args + i + 1];
        storedist = true;
        ++i;
      } else if (opt_is(arg, "storedist") && (flags & geosearch) && (flags & geosearchstore)) {
        storedist = true;
      } else if (opt_is(arg, "frommember") && i + 1 < remaining && (flags & geosearch) && !fromloc) {
        if (z && !long_lat_of_member(*z, a[base_args + i + 1], sh.xy)) {
          s.add_error(c, "ERR could not decode requested zset member");
          return;
        }
        frommember = true;  // without a source: the error comes once everything is parsed
        ++i;
      } else if (opt_is(arg, "fromlonlat") && i + 2 < remaining && (flags & geosearch) && !frommember) {
        if (!long_lat_arg(s, c, a, base_args + i + 1, sh.xy)) return;
        fromloc = true;
        i += 2;
      } else if (opt_is(arg, "byradius") && i + 2 < remaining && (flags & geosearch) && !bybox) {
        if (!distance_arg(s, c, a, base_args + i + 1, sh.conversion, sh.radius)) return;
        sh.kind = geo::shape::circular;
        byradius = true;
        i += 2;
      } else if (opt_is(arg, "bybox") && i + 3 < remaining && (flags & geosearch) && !byradius) {
        if (!box_arg(s, c, a, base_args + i + 1, sh.conversion, sh.width, sh.height)) return;
        sh.kind = geo::shape::rectangle;
        bybox = true;
        i += 3;
      } else {
        s.add_error(c, syntax_error);
        return;
      }
    }
  }

  if (storekey && (withdist || withhash || withcoords)) {
    s.add_error(c, (flags & geosearchstore)
                       ? "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
                       : "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options");
    return;
  }
  // Redis names the command as the client typed it.
  const std::string typed(a[0].substr(0, a[0].find('\0')));
  if ((flags & geosearch) && !(frommember || fromloc)) {
    s.add_error(c, "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for " + typed);
    return;
  }
  if ((flags & geosearch) && !(byradius || bybox)) {
    s.add_error(c, "ERR exactly one of BYRADIUS and BYBOX can be specified for " + typed);
    return;
  }
  if (any && !count) {
    s.add_error(c, "ERR the ANY argument requires COUNT argument");
    return;
  }

  if (!z) {
    if (storekey) {
      // As Redis: the destination is deleted, the answer is 0.
      if (s.db().erase(*storekey)) {
        s.key_deleted(*storekey);
        s.signal_modified_key(*storekey);
        s.notify(notify_generic, "del", *storekey);
        s.add_dirty();
      }
      s.keys_signalled();
      s.reply(c).integer(0);
    } else {
      s.reply(c).array(0);
    }
    return;
  }

  // COUNT needs an order (the closest N), unless ANY.
  if (count != 0 && sort == order::none && !any) sort = order::asc;

  const geo::search_areas areas = geo::areas_by_shape(sh);
  std::vector<geo_point> found;
  points_of_areas(*z, areas, sh, found, any ? static_cast<std::size_t>(count) : 0);

  if (found.empty() && !storekey) {
    s.reply(c).array(0);
    return;
  }
  const std::size_t result_length = found.size();
  const std::size_t returned_items =
      (count == 0 || static_cast<unsigned long long>(count) > result_length) ? result_length : static_cast<std::size_t>(count);

  if (sort != order::none) {
    const bool desc = sort == order::desc;
    if (returned_items == result_length) {
      std::stable_sort(found.begin(), found.end(),
                       [desc](const geo_point& x, const geo_point& y) { return compare_points(x, y, desc) < 0; });
    } else {
      partial_sort(found, desc).run(result_length, 0, returned_items - 1);
    }
  }

  if (!storekey) {
    const std::size_t option_length = (withdist ? 1 : 0) + (withcoords ? 1 : 0) + (withhash ? 1 : 0);
    auto w = s.reply(c);
    w.array(returned_items);
    for (std::size_t i = 0; i < returned_items; ++i) {
      const geo_point& gp = found[i];
      if (option_length) w.array(option_length + 1);
      w.bulk(gp.member);
      if (withdist) w.bulk(distance_text(gp.dist / sh.conversion));
      if (withhash) w.integer(static_cast<long long>(gp.score));
      if (withcoords) {
        w.array(2);
        reply_coordinate(w, gp.longitude);
        reply_coordinate(w, gp.latitude);
      }
    }
    return;
  }

  const std::string_view dst = *storekey;
  if (returned_items) {
    zset_value result;
    result.expect(returned_items);
    for (std::size_t i = 0; i < returned_items; ++i) {
      const geo_point& gp = found[i];
      result.set(gp.member, storedist ? gp.dist / sh.conversion : gp.score);
    }
    result.compact_if_small();
    const bool existed = s.db().find(dst) != nullptr;
    s.db().create(dst, value_type::zset).zset() = std::move(result);
    s.signal_modified_key(dst);
    if (!existed) s.signal_key_as_ready(dst);
    s.notify(notify_zset, (flags & geosearch) ? "geosearchstore" : "georadiusstore", dst);
    s.add_dirty(returned_items);
  } else if (s.db().erase(dst)) {
    s.key_deleted(dst);
    s.signal_modified_key(dst);
    s.notify(notify_generic, "del", dst);
    s.add_dirty();
  }
  s.keys_signalled();
  s.reply(c).integer(static_cast<long long>(returned_items));
}

}  // namespace

// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD with the geohashes as
// scores, run and propagated as that ZADD (its keyspace event is "zadd").
void cmd_geoadd(server& s, client& c, args_t a) {
  bool xx = false, nx = false;
  std::size_t longidx = 2;
  for (; longidx < a.size(); ++longidx) {
    if (opt_is(a[longidx], "nx")) nx = true;
    else if (opt_is(a[longidx], "xx")) xx = true;
    else if (opt_is(a[longidx], "ch")) continue;  // ZADD's
    else break;
  }
  if ((a.size() - longidx) % 3 || (xx && nx)) {
    s.add_error(c, syntax_error);
    return;
  }
  const std::size_t elements = (a.size() - longidx) / 3;
  std::vector<std::string> scores(elements);
  for (std::size_t i = 0; i < elements; ++i) {
    double xy[2];
    if (!long_lat_arg(s, c, a, longidx + i * 3, xy)) return;
    geo::hash_bits hash;
    geo::encode_wgs84(xy[0], xy[1], geo::step_max, hash);
    scores[i] = std::to_string(geo::align_52bits(hash));
  }
  std::vector<std::string_view> zadd;
  zadd.reserve(longidx + elements * 2);
  zadd.push_back("ZADD");
  for (std::size_t i = 1; i < longidx; ++i) zadd.push_back(a[i]);
  for (std::size_t i = 0; i < elements; ++i) {
    zadd.push_back(scores[i]);
    zadd.push_back(a[longidx + i * 3 + 2]);
  }
  const std::uint64_t dirty_before = s.dirty();
  cmd_zadd(s, c, args_t(zadd.data(), zadd.size()));
  if (s.dirty() != dirty_before) s.stream().append(std::span<const std::string_view>(zadd.data(), zadd.size()));
  s.effects_logged();
}

void cmd_georadius(server& s, client& c, args_t a) { georadius_generic(s, c, a, 1, radius_coords); }
void cmd_georadiusbymember(server& s, client& c, args_t a) { georadius_generic(s, c, a, 1, radius_member); }
void cmd_georadius_ro(server& s, client& c, args_t a) {
  georadius_generic(s, c, a, 1, radius_coords | radius_nostore);
}
void cmd_georadiusbymember_ro(server& s, client& c, args_t a) {
  georadius_generic(s, c, a, 1, radius_member | radius_nostore);
}
void cmd_geosearch(server& s, client& c, args_t a) { georadius_generic(s, c, a, 1, geosearch); }
void cmd_geosearchstore(server& s, client& c, args_t a) {
  georadius_generic(s, c, a, 2, geosearch | geosearchstore);
}

// GEOHASH key member...: 11-character standard geohashes (re-encoded over latitude
// -90..90, the last character always '0': only 52 bits are known).
void cmd_geohash(server& s, client& c, args_t a) {
  static constexpr char alphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
  bool wrong;
  const zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.array(a.size() - 2);
  for (std::size_t j = 2; j < a.size(); ++j) {
    double score, xy[2];
    if (!z || !z->score(a[j], score) || !geo::decode_score(score, xy)) {
      w.null();
      continue;
    }
    const geo::range lon{-180, 180}, lat{-90, 90};
    geo::hash_bits hash;
    geo::encode(lon, lat, xy[0], xy[1], 26, hash);
    char buf[11];
    for (int i = 0; i < 11; ++i) {
      const std::size_t idx = i == 10 ? 0 : static_cast<std::size_t>((hash.bits >> (52 - ((i + 1) * 5))) & 0x1f);
      buf[i] = alphabet[idx];
    }
    w.bulk(std::string_view(buf, 11));
  }
}

// GEOPOS key member...: [longitude, latitude] per member, null for a missing one.
void cmd_geopos(server& s, client& c, args_t a) {
  bool wrong;
  const zset_value* z = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.array(a.size() - 2);
  for (std::size_t j = 2; j < a.size(); ++j) {
    double score, xy[2];
    if (!z || !z->score(a[j], score) || !geo::decode_score(score, xy)) {
      w.null_array();
      continue;
    }
    w.array(2);
    reply_coordinate(w, xy[0]);
    reply_coordinate(w, xy[1]);
  }
}

// GEODIST key member1 member2 [unit]: null when the key or a member is missing.
void cmd_geodist(server& s, client& c, args_t a) {
  double to_meter = 1;
  if (a.size() == 5) {
    to_meter = unit_arg(s, c, a[4]);
    if (to_meter < 0) return;
  } else if (a.size() > 5) {
    s.add_error(c, syntax_error);
    return;
  }
  bool wrong;
  const zset_value* found = lookup_zset(s, c, a[1], wrong);
  if (wrong) return;
  if (!found) {
    s.reply(c).null();
    return;
  }
  const zset_value& z = *found;
  double score1, score2, xyxy[4];
  if (!z.score(a[2], score1) || !z.score(a[3], score2) || !geo::decode_score(score1, xyxy) ||
      !geo::decode_score(score2, xyxy + 2)) {
    s.reply(c).null();
    return;
  }
  s.reply(c).bulk(distance_text(geo::distance(xyxy[0], xyxy[1], xyxy[2], xyxy[3]) / to_meter));
}

}  // namespace respq::core
