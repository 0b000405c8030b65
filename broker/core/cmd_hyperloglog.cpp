// HyperLogLog commands: PFADD PFCOUNT PFMERGE PFDEBUG, on strings in Redis's own format,
// so that a HyperLogLog made here reads the same in redis-server (DUMP aside) and every
// count matches Redis's:
//   - a 16-byte header: "HYLL", the encoding (0 dense, 1 sparse), 3 unused bytes, and the
//     cached cardinality (8 bytes, little endian; its top bit set means "stale");
//   - 16,384 registers of 6 bits (p = 14), the rank of the first 1 bit of the 50 hash
//     bits left after the register index, MurmurHash64A with Redis's seed;
//   - dense: the registers packed 6 bits each, least significant bits first (12,288
//     bytes); sparse: run-length opcodes, ZERO (00llllll: 1 to 64 zero registers),
//     XZERO (01llllll llllllll: 1 to 16,384) and VAL (1vvvvvll: 1 to 4 registers of value
//     1 to 32), kept as Redis edits them in place (split, then adjacent VALs merged) so the
//     bytes match; past hll-sparse-max-bytes or for a value over 32 it becomes dense;
//   - the count is Ertl's estimator over the register histogram (Redis 5 and later).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "broker/core/commands.hpp"

namespace respq::core {

namespace {

constexpr int hll_p = 14;
constexpr int hll_q = 64 - hll_p;
constexpr int registers = 1 << hll_p;
constexpr int reg_bits = 6;
constexpr std::size_t header_size = 16;
constexpr std::size_t dense_size = header_size + (registers * reg_bits + 7) / 8;
constexpr int dense_encoding = 0, sparse_encoding = 1;
constexpr int zero_max_len = 64, xzero_max_len = 16384, val_max_value = 32, val_max_len = 4;

constexpr std::string_view not_hll_error = "WRONGTYPE Key is not a valid HyperLogLog string value.";
constexpr std::string_view corrupted_error = "INVALIDOBJ Corrupted HLL object detected";

using u8 = std::uint8_t;

std::uint64_t murmur64a(std::string_view key, std::uint64_t seed) {
  constexpr std::uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  const auto len = key.size();
  std::uint64_t h = seed ^ (static_cast<std::uint64_t>(len) * m);
  const auto* data = reinterpret_cast<const u8*>(key.data());
  const u8* end = data + (len - (len & 7));
  for (; data != end; data += 8) {
    std::uint64_t k;
    std::memcpy(&k, data, 8);  // little endian, as Redis reads it on x86 and ARM
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  switch (len & 7) {
    case 7: h ^= std::uint64_t{data[6]} << 48; [[fallthrough]];
    case 6: h ^= std::uint64_t{data[5]} << 40; [[fallthrough]];
    case 5: h ^= std::uint64_t{data[4]} << 32; [[fallthrough]];
    case 4: h ^= std::uint64_t{data[3]} << 24; [[fallthrough]];
    case 3: h ^= std::uint64_t{data[2]} << 16; [[fallthrough]];
    case 2: h ^= std::uint64_t{data[1]} << 8; [[fallthrough]];
    case 1:
      h ^= std::uint64_t{data[0]};
      h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

// The register an element goes to, and the rank it offers there.
int pattern(std::string_view element, int& index) {
  std::uint64_t hash = murmur64a(element, 0xadc83b19ULL);
  index = static_cast<int>(hash & (registers - 1));
  hash >>= hll_p;
  hash |= std::uint64_t{1} << hll_q;  // the loop ends
  int count = 1;
  for (std::uint64_t bit = 1; !(hash & bit); bit <<= 1) ++count;
  return count;
}

// ---- dense registers ----
int dense_get(const u8* regs, int i) {
  const std::size_t byte = static_cast<std::size_t>(i) * reg_bits / 8;
  const unsigned fb = static_cast<unsigned>(i * reg_bits) & 7, fb8 = 8 - fb;
  const unsigned b0 = regs[byte], b1 = byte + 1 < dense_size - header_size ? regs[byte + 1] : 0;
  return static_cast<int>(((b0 >> fb) | (b1 << fb8)) & 63);
}

void dense_set(u8* regs, int i, int v) {
  const std::size_t byte = static_cast<std::size_t>(i) * reg_bits / 8;
  const unsigned fb = static_cast<unsigned>(i * reg_bits) & 7, fb8 = 8 - fb;
  const auto val = static_cast<unsigned>(v);
  regs[byte] = static_cast<u8>((regs[byte] & ~(63u << fb)) | (val << fb));
  if (byte + 1 < dense_size - header_size)
    regs[byte + 1] = static_cast<u8>((regs[byte + 1] & ~(63u >> fb8)) | (val >> fb8));
}

// ---- sparse opcodes ----
bool is_zero(const u8* p) { return (*p & 0xc0) == 0; }
bool is_xzero(const u8* p) { return (*p & 0xc0) == 0x40; }
bool is_val(const u8* p) { return (*p & 0x80) != 0; }
int zero_len(const u8* p) { return (*p & 0x3f) + 1; }
int xzero_len(const u8* p) { return (((*p & 0x3f) << 8) | p[1]) + 1; }
int val_value(const u8* p) { return ((*p >> 2) & 0x1f) + 1; }
int val_len(const u8* p) { return (*p & 0x3) + 1; }
void zero_set(u8* p, int len) { *p = static_cast<u8>(len - 1); }
void xzero_set(u8* p, int len) {
  p[0] = static_cast<u8>(((len - 1) >> 8) | 0x40);
  p[1] = static_cast<u8>((len - 1) & 0xff);
}
void val_set(u8* p, int v, int len) { *p = static_cast<u8>((((v - 1) << 2) | (len - 1)) | 0x80); }

u8* bytes(std::string& s) { return reinterpret_cast<u8*>(s.data()); }
const u8* bytes(const std::string& s) { return reinterpret_cast<const u8*>(s.data()); }
int encoding_of(const std::string& s) { return s[4]; }

void invalidate_cache(std::string& s) { s[15] = static_cast<char>(static_cast<u8>(s[15]) | 0x80); }
bool cache_valid(const std::string& s) { return !(static_cast<u8>(s[15]) & 0x80); }

// Redis's createHLLObject: sparse, every register zero, cached count 0.
std::string new_hll() {
  std::string s(header_size + 2, '\0');
  std::memcpy(s.data(), "HYLL", 4);
  s[4] = static_cast<char>(sparse_encoding);
  xzero_set(bytes(s) + header_size, registers);
  return s;
}

// Calls fn(first register, run length, value) for each opcode; false when the opcodes
// do not cover exactly the registers (a corrupted value).
template <class Fn>
bool walk_sparse(const std::string& s, Fn&& fn) {
  const u8* p = bytes(s) + header_size;
  const u8* end = bytes(s) + s.size();
  int i = 0;
  while (p < end) {
    int run, v = 0;
    if (is_zero(p)) {
      run = zero_len(p);
      ++p;
    } else if (is_xzero(p)) {
      if (p + 1 >= end) return false;
      run = xzero_len(p);
      p += 2;
    } else {
      run = val_len(p);
      v = val_value(p);
      ++p;
    }
    if (i + run > registers) return false;
    fn(i, run, v);
    i += run;
  }
  return i == registers;
}

// Redis's hllSparseToDense (the cached count is kept).
bool to_dense(std::string& s) {
  if (encoding_of(s) == dense_encoding) return true;
  std::string d(dense_size, '\0');
  std::memcpy(d.data(), s.data(), header_size);
  d[4] = static_cast<char>(dense_encoding);
  u8* regs = bytes(d) + header_size;
  if (!walk_sparse(s, [&](int first, int run, int v) {
        if (v)
          for (int j = 0; j < run; ++j) dense_set(regs, first + j, v);
      }))
    return false;
  s = std::move(d);
  return true;
}

// Sets register `index` to `count` when that is higher: 1 when it changed, 0 when not,
// -1 for a corrupted value. Redis's hllSparseSet, step for step, so that the opcodes
// come out as Redis's.
int sparse_set(std::string& s, int index, int count, std::uint64_t max_bytes) {
  auto promote = [&]() {
    if (!to_dense(s)) return -1;
    u8* regs = bytes(s) + header_size;
    if (dense_get(regs, index) < count) dense_set(regs, index, count);
    return 1;
  };
  if (count > val_max_value) return promote();
  // Step 1: the opcode covering the register.
  u8* sparse = bytes(s) + header_size;
  u8* end = bytes(s) + s.size();
  u8* p = sparse;
  u8* prev = nullptr;
  long first = 0, span = 0;
  while (p < end) {
    long oplen = 1;
    if (is_zero(p)) span = zero_len(p);
    else if (is_val(p)) span = val_len(p);
    else {
      span = xzero_len(p);
      oplen = 2;
    }
    if (index <= first + span - 1) break;
    prev = p;
    p += oplen;
    first += span;
  }
  if (span == 0 || p >= end) return -1;
  const bool zero = is_zero(p), xzero = is_xzero(p), val = is_val(p);
  const long runlen = zero ? zero_len(p) : xzero ? xzero_len(p) : val_len(p);
  const std::size_t p_off = static_cast<std::size_t>(p - sparse) + header_size;
  const std::size_t prev_off = prev ? static_cast<std::size_t>(prev - sparse) + header_size : header_size;
  // Step 2: the trivial cases, in place.
  bool updated_in_place = false;
  if (val) {
    if (val_value(p) >= count) return 0;
    if (runlen == 1) {
      val_set(p, count, 1);
      updated_in_place = true;
    }
  }
  if (!updated_in_place && zero && runlen == 1) {
    val_set(p, count, 1);
    updated_in_place = true;
  }
  if (!updated_in_place) {
    // The general case: the opcode is split into up to three (at most 5 bytes).
    u8 seq[5];
    u8* n = seq;
    const long last = first + span - 1;
    if (zero || xzero) {
      if (index != first) {
        const int len = static_cast<int>(index - first);
        if (len > zero_max_len) xzero_set(n, len), n += 2;
        else zero_set(n, len), ++n;
      }
      val_set(n++, count, 1);
      if (index != last) {
        const int len = static_cast<int>(last - index);
        if (len > zero_max_len) xzero_set(n, len), n += 2;
        else zero_set(n, len), ++n;
      }
    } else {
      const int cur = val_value(p);
      if (index != first) val_set(n++, cur, static_cast<int>(index - first));
      val_set(n++, count, 1);
      if (index != last) val_set(n++, cur, static_cast<int>(last - index));
    }
    const auto seqlen = static_cast<std::size_t>(n - seq);
    const std::size_t oldlen = xzero ? 2 : 1;
    if (seqlen > oldlen && s.size() + (seqlen - oldlen) > max_bytes) return promote();
    s.replace(p_off, oldlen, reinterpret_cast<const char*>(seq), seqlen);
  }
  // Step 4: adjacent VAL opcodes of one value merged, scanning up to 5 opcodes from prev.
  std::size_t at = prev_off;
  int scan = 5;
  while (at < s.size() && scan--) {
    const u8* q = bytes(s) + at;
    if (is_xzero(q)) {
      at += 2;
      continue;
    }
    if (is_zero(q)) {
      ++at;
      continue;
    }
    if (at + 1 < s.size() && is_val(q + 1) && val_value(q) == val_value(q + 1)) {
      const int len = val_len(q) + val_len(q + 1);
      if (len <= val_max_len) {
        val_set(bytes(s) + at + 1, val_value(q), len);
        s.erase(at, 1);
        continue;  // the merged opcode may merge with the next one too
      }
    }
    ++at;
  }
  invalidate_cache(s);
  return 1;
}

// Adds an element: 1 when a register changed, 0 when not, -1 when the value is corrupted.
int hll_add(std::string& s, std::string_view element, std::uint64_t max_bytes) {
  int index;
  const int count = pattern(element, index);
  if (encoding_of(s) == dense_encoding) {
    u8* regs = bytes(s) + header_size;
    if (dense_get(regs, index) >= count) return 0;
    dense_set(regs, index, count);
    return 1;
  }
  return sparse_set(s, index, count, max_bytes);
}

// max[i] = max(max[i], register i); false for a corrupted value.
bool merge_into(std::vector<u8>& max, const std::string& s) {
  if (encoding_of(s) == dense_encoding) {
    const u8* regs = bytes(s) + header_size;
    for (int i = 0; i < registers; ++i) max[static_cast<std::size_t>(i)] = std::max<u8>(max[static_cast<std::size_t>(i)], static_cast<u8>(dense_get(regs, i)));
    return true;
  }
  return walk_sparse(s, [&](int first, int run, int v) {
    for (int j = 0; j < run; ++j) {
      auto& m = max[static_cast<std::size_t>(first + j)];
      if (v > m) m = static_cast<u8>(v);
    }
  });
}

double sigma(double x) {
  if (x == 1.) return INFINITY;
  double z_prime, y = 1, z = x;
  do {
    x *= x;
    z_prime = z;
    z += x * y;
    y += y;
  } while (z_prime != z);
  return z;
}

double tau(double x) {
  if (x == 0. || x == 1.) return 0.;
  double z_prime, y = 1.0, z = 1 - x;
  do {
    x = std::sqrt(x);
    z_prime = z;
    y *= 0.5;
    z -= std::pow(1 - x, 2) * y;
  } while (z_prime != z);
  return z / 3;
}

// Ertl's estimator over the histogram of register values.
std::uint64_t estimate(const int (&histo)[64]) {
  const double m = registers;
  double z = m * tau((m - histo[hll_q + 1]) / m);
  for (int j = hll_q; j >= 1; --j) {
    z += histo[j];
    z *= 0.5;
  }
  z += m * sigma(histo[0] / m);
  constexpr double alpha_inf = 0.721347520444481703680;  // 1 / (2 ln 2)
  return static_cast<std::uint64_t>(std::llroundl(alpha_inf * m * m / z));
}

// The count of one HyperLogLog; false for a corrupted value.
bool count_of(const std::string& s, std::uint64_t& out) {
  int histo[64] = {};
  if (encoding_of(s) == dense_encoding) {
    const u8* regs = bytes(s) + header_size;
    for (int i = 0; i < registers; ++i) ++histo[dense_get(regs, i)];
  } else if (!walk_sparse(s, [&](int, int run, int v) { histo[v] += run; })) {
    return false;
  }
  out = estimate(histo);
  return true;
}

// The HyperLogLog at `key` (nullptr when absent); WRONGTYPE replied and `bad` set when the
// key holds something else.
std::string* hll_at(server& s, client& c, std::string_view key, bool& bad) {
  std::string* v = lookup_string(s, c, key, bad);
  if (bad || !v) return v;
  if (v->size() < header_size || v->compare(0, 4, "HYLL") != 0 || static_cast<u8>((*v)[4]) > sparse_encoding ||
      (encoding_of(*v) == dense_encoding && v->size() != dense_size)) {
    s.add_error(c, not_hll_error);
    bad = true;
    return nullptr;
  }
  return v;
}

// What Redis's dbUnshareStringValue leaves: the string raw (OBJECT ENCODING).
void unshare(server& s, std::string_view key) { s.db().peek(key)->str_enc = string_encoding::raw; }

}  // namespace

void cmd_pfadd(server& s, client& c, args_t a) {
  bool bad;
  std::string* v = hll_at(s, c, a[1], bad);
  if (bad) return;
  int updated = 0;
  if (v) unshare(s, a[1]);
  if (!v) {
    value& nv = s.db().create(a[1], value_type::string);
    nv.str() = new_hll();
    nv.str_enc = string_encoding::raw;
    v = &nv.str();
    ++updated;
  }
  for (std::size_t j = 2; j < a.size(); ++j) {
    const int r = hll_add(*v, a[j], s.cfg().hll_sparse_max_bytes);
    if (r < 0) {
      s.add_error(c, corrupted_error);
      return;
    }
    updated += r;
  }
  if (updated) {
    invalidate_cache(*v);
    s.add_dirty(static_cast<std::uint64_t>(updated));
    s.notify(notify_string, "pfadd", a[1]);
  }
  s.reply(c).integer(updated ? 1 : 0);
}

void cmd_pfcount(server& s, client& c, args_t a) {
  if (a.size() > 2) {  // the count of the union
    std::vector<u8> max(registers, 0);
    for (std::size_t j = 1; j < a.size(); ++j) {
      bool bad;
      const std::string* v = hll_at(s, c, a[j], bad);
      if (bad) return;
      if (v && !merge_into(max, *v)) {
        s.add_error(c, corrupted_error);
        return;
      }
    }
    int histo[64] = {};
    for (u8 r : max) ++histo[r];
    s.reply(c).integer(static_cast<long long>(estimate(histo)));
    return;
  }
  bool bad;
  std::string* v = hll_at(s, c, a[1], bad);
  if (bad) return;
  if (!v) {
    s.reply(c).integer(0);
    return;
  }
  unshare(s, a[1]);
  std::uint64_t card = 0;
  if (cache_valid(*v)) {
    for (int i = 7; i >= 0; --i) card = (card << 8) | static_cast<u8>((*v)[8 + static_cast<std::size_t>(i)]);
  } else {
    if (!count_of(*v, card)) {
      s.add_error(c, corrupted_error);
      return;
    }
    // The count is cached in the value: a change of the string that WATCH sees and the
    // AOF and the mirror get (as Redis propagates this PFCOUNT).
    for (int i = 0; i < 8; ++i) (*v)[8 + static_cast<std::size_t>(i)] = static_cast<char>((card >> (8 * i)) & 0xff);
    s.add_dirty();
    s.stream().append({"PFCOUNT", a[1]});
    s.effects_logged();
  }
  s.reply(c).integer(static_cast<long long>(card));
}

void cmd_pfmerge(server& s, client& c, args_t a) {
  std::vector<u8> max(registers, 0);
  bool use_dense = false;
  {
    server::read_lookups reading(s);
    for (std::size_t j = 1; j < a.size(); ++j) {
      bool bad;
      const std::string* v = hll_at(s, c, a[j], bad);
      if (bad) return;
      if (!v) continue;
      if (encoding_of(*v) == dense_encoding) use_dense = true;
      if (!merge_into(max, *v)) {
        s.add_error(c, corrupted_error);
        return;
      }
    }
  }
  value* dv = s.db().find(a[1]);
  if (!dv) {
    dv = &s.db().create(a[1], value_type::string);
    dv->str() = new_hll();
    dv->str_enc = string_encoding::raw;
  }
  dv->str_enc = string_encoding::raw;
  std::string& d = dv->str();
  if (use_dense && !to_dense(d)) {
    s.add_error(c, corrupted_error);
    return;
  }
  for (int j = 0; j < registers; ++j) {
    const int m = max[static_cast<std::size_t>(j)];
    if (!m) continue;
    if (encoding_of(d) == dense_encoding) {
      u8* regs = bytes(d) + header_size;
      if (dense_get(regs, j) < m) dense_set(regs, j, m);
    } else {
      sparse_set(d, j, m, s.cfg().hll_sparse_max_bytes);
    }
  }
  invalidate_cache(d);
  s.add_dirty();
  s.signal_modified_key(a[1]);
  s.keys_signalled();
  s.notify(notify_string, "pfadd", a[1]);  // as Redis: a merge is a mass PFADD
  s.reply(c).ok();
}

// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key: Redis's debugging aid (its own test suite
// uses it). GETREG and TODENSE leave the value dense, as Redis does.
void cmd_pfdebug(server& s, client& c, args_t a) {
  const std::string cmd = to_lower(a[1]);
  value* kv = s.db().find(a[2]);
  if (!kv) {
    s.add_error(c, "ERR The specified key does not exist");
    return;
  }
  bool bad;
  std::string* v = hll_at(s, c, a[2], bad);
  if (bad) return;
  unshare(s, a[2]);
  s.keys_signalled();  // as Redis: a change of encoding only, WATCH is not told
  if (cmd == "getreg") {
    if (encoding_of(*v) == sparse_encoding) {
      if (!to_dense(*v)) {
        s.add_error(c, corrupted_error);
        return;
      }
      s.add_dirty();
    }
    auto w = s.reply(c);
    w.array(registers);
    const u8* regs = bytes(*v) + header_size;
    for (int i = 0; i < registers; ++i) w.integer(dense_get(regs, i));
  } else if (cmd == "decode") {
    if (encoding_of(*v) != sparse_encoding) {
      s.add_error(c, "ERR HLL encoding is not sparse");
      return;
    }
    std::string out;
    const u8* p = bytes(*v) + header_size;
    const u8* end = bytes(*v) + v->size();
    while (p < end) {
      if (is_zero(p)) out += "z:" + std::to_string(zero_len(p)) + " ", ++p;
      else if (is_xzero(p)) out += "Z:" + std::to_string(xzero_len(p)) + " ", p += 2;
      else out += "v:" + std::to_string(val_value(p)) + "," + std::to_string(val_len(p)) + " ", ++p;
    }
    if (!out.empty()) out.pop_back();
    s.reply(c).bulk(out);
  } else if (cmd == "encoding") {
    s.reply(c).simple(encoding_of(*v) == dense_encoding ? "dense" : "sparse");
  } else if (cmd == "todense") {
    const bool conv = encoding_of(*v) == sparse_encoding;
    if (conv) {
      if (!to_dense(*v)) {
        s.add_error(c, corrupted_error);
        return;
      }
      s.add_dirty();
    }
    s.reply(c).integer(conv ? 1 : 0);
  } else {
    s.add_error(c, "ERR Unknown PFDEBUG subcommand '" + std::string(a[1]) + "'");
  }
}

// PFSELFTEST: Redis's self test of the implementation: random register values read back
// unchanged (and their neighbours untouched), then 10 million elements added to a dense
// and a sparse HyperLogLog side by side, which must agree and stay within six standard
// errors of the true count at every power of ten (about 0.3 s here).
void cmd_pfselftest(server& s, client& c, args_t) {
  std::mt19937 rng(std::random_device{}());
  std::string dense(dense_size, '\0');
  std::memcpy(dense.data(), "HYLL", 4);
  u8* regs = bytes(dense) + header_size;
  std::vector<u8> expect(registers);
  for (int cycle = 0; cycle < 1000; ++cycle) {
    for (int i = 0; i < registers; ++i) {
      expect[static_cast<std::size_t>(i)] = static_cast<u8>(rng() & 63);
      dense_set(regs, i, expect[static_cast<std::size_t>(i)]);
    }
    for (int i = 0; i < registers; ++i)
      if (dense_get(regs, i) != expect[static_cast<std::size_t>(i)]) {
        s.add_error(c, "TESTFAILED Register " + std::to_string(i) + " should be " +
                           std::to_string(expect[static_cast<std::size_t>(i)]) + " but is " +
                           std::to_string(dense_get(regs, i)));
        return;
      }
  }
  std::memset(regs, 0, dense_size - header_size);
  std::string sparse = new_hll();
  const double relerr = 1.04 / std::sqrt(static_cast<double>(registers));
  const std::uint64_t seed = (static_cast<std::uint64_t>(rng()) << 32) | rng();
  std::uint64_t checkpoint = 1;
  for (std::uint64_t j = 1; j <= 10'000'000; ++j) {
    const std::uint64_t ele = j ^ seed;
    const std::string_view e(reinterpret_cast<const char*>(&ele), sizeof ele);
    hll_add(dense, e, s.cfg().hll_sparse_max_bytes);
    if (hll_add(sparse, e, s.cfg().hll_sparse_max_bytes) < 0) {
      s.add_error(c, "TESTFAILED sparse representation corrupted");
      return;
    }
    if (j != checkpoint) continue;
    if (j < s.cfg().hll_sparse_max_bytes / 2 && encoding_of(sparse) != sparse_encoding) {
      s.add_error(c, "TESTFAILED sparse encoding not used");
      return;
    }
    std::uint64_t from_dense = 0, from_sparse = 0;
    count_of(dense, from_dense);
    count_of(sparse, from_sparse);
    if (from_dense != from_sparse) {
      s.add_error(c, "TESTFAILED dense/sparse disagree");
      return;
    }
    const auto abserr = static_cast<std::uint64_t>(std::llabs(static_cast<long long>(checkpoint) - static_cast<long long>(from_dense)));
    // Cardinality 10 often errs by one through a collision (as Redis allows).
    const auto maxerr = j == 10 ? 1 : static_cast<std::uint64_t>(std::ceil(relerr * 6 * static_cast<double>(checkpoint)));
    if (abserr > maxerr) {
      s.add_error(c, "TESTFAILED Too big error. card:" + std::to_string(checkpoint) + " abserr:" + std::to_string(abserr));
      return;
    }
    checkpoint *= 10;
  }
  s.reply(c).ok();
}

}  // namespace respq::core
