// DUMP payloads: writer and validating reader. See rdb_codec.hpp for the contract; the
// formats are Redis's (rdb.c, listpack.c, ziplist.c, intset.c, zipmap.c), described where
// each is read.
#include "broker/core/rdb_codec.hpp"

#include <liblzf/lzf.h>

#include <array>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "resp/ascii.hpp"

namespace respq::core::rdb {

namespace {

// RDB object types (rdb.h).
enum : unsigned char {
  type_string = 0,
  type_list = 1,
  type_set = 2,
  type_zset = 3,
  type_hash = 4,
  type_zset_2 = 5,
  type_module = 6,
  type_module_2 = 7,
  type_hash_zipmap = 9,
  type_list_ziplist = 10,
  type_set_intset = 11,
  type_zset_ziplist = 12,
  type_hash_ziplist = 13,
  type_list_quicklist = 14,
  type_stream_listpacks = 15,
  type_hash_listpack = 16,
  type_zset_listpack = 17,
  type_list_quicklist_2 = 18,
  type_stream_listpacks_2 = 19,
  opcode_function_rc = 246,  // Redis 7.0's release candidates' form of a library
  opcode_function_2 = 245,   // a library: its code as one string
};

constexpr std::size_t list_node_limit = 8192;  // list-max-listpack-size -2
constexpr std::size_t size_estimate_overhead = 8;  // quicklist.c SIZE_ESTIMATE_OVERHEAD
// An LZF back reference of 3 bytes expands to at most 264 bytes (88 per byte), a literal
// run to less than it takes: a larger claimed length is a lie, refused before it is
// allocated.
constexpr std::uint64_t lzf_max_ratio = 88;

// ---- writing --------------------------------------------------------------------------

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// rdbSaveLen: 6, 14, 32 or 64 bits, big-endian beyond the first byte.
void put_len(std::string& out, std::uint64_t len) {
  if (len < (1u << 6)) {
    out.push_back(static_cast<char>(len));
  } else if (len < (1u << 14)) {
    out.push_back(static_cast<char>(0x40 | (len >> 8)));
    out.push_back(static_cast<char>(len & 0xff));
  } else if (len <= 0xffffffffull) {
    out.push_back(static_cast<char>(0x80));
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  } else {
    out.push_back(static_cast<char>(0x81));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  }
}

// rdbEncodeInteger: an integer that fits 32 bits as 0xC0/0xC1/0xC2 + little-endian bytes.
bool put_encoded_int(std::string& out, long long v) {
  if (v >= -128 && v <= 127) {
    out.push_back(static_cast<char>(0xC0));
    put_le(out, static_cast<std::uint64_t>(v), 1);
  } else if (v >= -32768 && v <= 32767) {
    out.push_back(static_cast<char>(0xC1));
    put_le(out, static_cast<std::uint64_t>(v), 2);
  } else if (v >= -2147483648LL && v <= 2147483647LL) {
    out.push_back(static_cast<char>(0xC2));
    put_le(out, static_cast<std::uint64_t>(v), 4);
  } else {
    return false;
  }
  return true;
}

// rdbSaveRawString: an integer of at most 11 characters encoded, else LZF beyond 20 bytes
// when it saves at least 4 bytes, else the length and the bytes.
void put_string(std::string& out, std::string_view s) {
  long long n;
  if (s.size() <= 11 && string2ll(s, n) && put_encoded_int(out, n)) return;
  if (s.size() > 20) {
    const std::size_t room = s.size() - 4;
    auto buf = std::make_unique<char[]>(room + 1);
    const unsigned clen = lzf_compress(s.data(), static_cast<unsigned>(s.size()), buf.get(), static_cast<unsigned>(room));
    if (clen > 0) {
      out.push_back(static_cast<char>(0xC3));
      put_len(out, clen);
      put_len(out, s.size());
      out.append(buf.get(), clen);
      return;
    }
  }
  put_len(out, s.size());
  out.append(s);
}

// A listpack as Redis builds it by appending (listpack.c): 6 bytes of header (total bytes,
// element count), entries <encoding><data><backlen>, a 0xFF terminator. Strings that read
// as integers are stored as integers, as lpAppend does.
class listpack_writer {
 public:
  listpack_writer() { buf_.assign(6, '\0'); }
  void add(std::string_view s) {
    long long v;
    if (string2ll(s, v)) add_int(v);
    else add_string(s);
  }
  void add_int(long long v) {
    char enc[9];
    std::size_t n;
    if (v >= 0 && v <= 127) {
      enc[0] = static_cast<char>(v);
      n = 1;
    } else if (v >= -4096 && v <= 4095) {
      const std::uint64_t u = v < 0 ? (1u << 13) + v : v;
      enc[0] = static_cast<char>(0xC0 | (u >> 8));
      enc[1] = static_cast<char>(u & 0xff);
      n = 2;
    } else {
      int bytes;
      unsigned char tag;
      if (v >= -32768 && v <= 32767) bytes = 2, tag = 0xF1;
      else if (v >= -8388608 && v <= 8388607) bytes = 3, tag = 0xF2;
      else if (v >= -2147483648LL && v <= 2147483647LL) bytes = 4, tag = 0xF3;
      else bytes = 8, tag = 0xF4;
      enc[0] = static_cast<char>(tag);
      const auto u = static_cast<std::uint64_t>(v);
      for (int i = 0; i < bytes; ++i) enc[1 + i] = static_cast<char>((u >> (8 * i)) & 0xff);
      n = 1 + bytes;
    }
    buf_.append(enc, n);
    put_backlen(n);
    ++count_;
  }
  void add_string(std::string_view s) {
    const std::size_t l = s.size();
    std::size_t head;
    if (l < 64) {
      buf_.push_back(static_cast<char>(0x80 | l));
      head = 1;
    } else if (l < 4096) {
      buf_.push_back(static_cast<char>(0xE0 | (l >> 8)));
      buf_.push_back(static_cast<char>(l & 0xff));
      head = 2;
    } else {
      buf_.push_back(static_cast<char>(0xF0));
      put_le(buf_, l, 4);
      head = 5;
    }
    buf_.append(s);
    put_backlen(head + l);
    ++count_;
  }
  // Replaces the first entry (an integer) with v: a stream node's entry count.
  void set_first_int(long long v) {
    listpack_writer head;
    head.add_int(v);
    const std::size_t old_len = entry_len_at(6);
    buf_.replace(6, old_len, head.buf_, 6, std::string::npos);
  }
  // lpBytes of the listpack so far (its terminator included).
  std::size_t bytes() const { return buf_.size() + 1; }
  std::size_t count() const { return count_; }
  std::string finish() {
    buf_.push_back(static_cast<char>(0xFF));
    const std::uint64_t total = buf_.size();
    for (int i = 0; i < 4; ++i) buf_[i] = static_cast<char>((total >> (8 * i)) & 0xff);
    const std::uint64_t n = count_ < 65535 ? count_ : 65535;
    buf_[4] = static_cast<char>(n & 0xff);
    buf_[5] = static_cast<char>(n >> 8);
    return std::move(buf_);
  }

 private:
  // lpEncodeBacklen: the entry's length, 7 bits per byte, most significant first, every
  // byte but the first with the high bit set (it is read backwards).
  void put_backlen(std::uint64_t l) {
    if (l <= 127) {
      buf_.push_back(static_cast<char>(l));
      return;
    }
    int bytes = l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5;
    for (int i = bytes - 1; i >= 0; --i) {
      unsigned char b = static_cast<unsigned char>((l >> (7 * i)) & 127);
      if (i != bytes - 1) b |= 128;
      buf_.push_back(static_cast<char>(b));
    }
  }
  // The bytes of the integer entry at `pos` (encoding, data and back length).
  std::size_t entry_len_at(std::size_t pos) const {
    const auto b = static_cast<unsigned char>(buf_[pos]);
    std::size_t n;
    if ((b & 0x80) == 0) n = 1;
    else if ((b & 0xE0) == 0xC0) n = 2;
    else n = 1 + (b == 0xF1 ? 2 : b == 0xF2 ? 3 : b == 0xF3 ? 4 : 8);
    return n + 1;  // integer entries are at most 9 bytes: one back-length byte
  }
  std::string buf_;
  std::size_t count_ = 0;
};

// A sorted set's score as zzlInsertAt stores it: an integer when the double is one
// (double2ll), else d2string's text ("%.17g", inf, -inf).
void add_score(listpack_writer& lp, double d) {
  if (d >= static_cast<double>(-LLONG_MAX / 2) && d <= static_cast<double>(LLONG_MAX / 2)) {
    const auto ll = static_cast<long long>(d);
    if (static_cast<double>(ll) == d) {
      lp.add_int(ll);
      return;
    }
  }
  char buf[64];
  int n;
  if (std::isinf(d)) n = std::snprintf(buf, sizeof buf, d < 0 ? "-inf" : "inf");
  else n = std::snprintf(buf, sizeof buf, "%.17g", d);
  lp.add_string(std::string_view(buf, static_cast<std::size_t>(n)));
}

void put_binary_double(std::string& out, double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, 8);
  put_le(out, u, 8);
}

void dump_list(const packed_list& l, std::string& out) {
  // quicklistPushTail: a node takes the next element while its listpack plus the
  // element's length plus 8 stays within 8 KB.
  std::vector<std::string> nodes;
  listpack_writer lp;
  bool open = false;
  if (!l.empty())
    for (auto cur = l.seek(0); cur.valid(); cur.next()) {
      const std::string_view e = cur.value();
      if (open && lp.bytes() + e.size() + size_estimate_overhead > list_node_limit) {
        nodes.push_back(lp.finish());
        lp = listpack_writer();
        open = false;
      }
      lp.add(e);
      open = true;
    }
  if (open) nodes.push_back(lp.finish());
  out.push_back(static_cast<char>(type_list_quicklist_2));
  put_len(out, nodes.size());
  for (const std::string& n : nodes) {
    put_len(out, 2);  // QUICKLIST_NODE_CONTAINER_PACKED
    put_string(out, n);
  }
}

void dump_set(const set_value& s, std::string& out) {
  if (s.is_intset()) {
    // intset.c: encoding (2, 4 or 8 bytes per member), count, members ascending. The
    // width is the widest member's (Redis keeps a wider one after that member left).
    std::vector<long long> v;
    v.reserve(s.size());
    s.for_each([&](std::string_view m) {
      long long n = 0;
      string2ll(m, n);
      v.push_back(n);
    });
    std::uint32_t width = 2;
    for (long long n : v) {
      if (n < -2147483648LL || n > 2147483647LL) width = 8;
      else if ((n < -32768 || n > 32767) && width < 4) width = 4;
    }
    std::string blob;
    put_le(blob, width, 4);
    put_le(blob, v.size(), 4);
    for (long long n : v) put_le(blob, static_cast<std::uint64_t>(n), static_cast<int>(width));
    out.push_back(static_cast<char>(type_set_intset));
    put_string(out, blob);
    return;
  }
  out.push_back(static_cast<char>(type_set));
  put_len(out, s.size());
  s.for_each([&](std::string_view m) { put_string(out, m); });
}

void dump_zset(const zset_value& z, std::string& out) {
  if (z.packed()) {
    listpack_writer lp;
    z.walk(0, z.size(), false, [&](const zset_value::entry& e) {
      lp.add(e.member);
      add_score(lp, e.score);
    });
    out.push_back(static_cast<char>(type_zset_listpack));
    put_string(out, lp.finish());
    return;
  }
  // Greatest first, as Redis walks its skiplist from the tail.
  out.push_back(static_cast<char>(type_zset_2));
  put_len(out, z.size());
  z.walk(z.size() - 1, z.size(), true, [&](const zset_value::entry& e) {
    put_string(out, e.member);
    put_binary_double(out, e.score);
  });
}

void dump_hash(const hash_value& h, std::string& out) {
  if (hash_is_small(h)) {
    listpack_writer lp;
    for (const auto e : h) {
      lp.add(e.field);
      const hash_text t(e.field, e.value);
      lp.add(t.view());
    }
    out.push_back(static_cast<char>(type_hash_listpack));
    put_string(out, lp.finish());
    return;
  }
  out.push_back(static_cast<char>(type_hash));
  put_len(out, h.size());
  for (const auto e : h) {
    put_string(out, e.field);
    const hash_text t(e.field, e.value);
    put_string(out, t.view());
  }
}

// Streams (STREAM_LISTPACKS_2), as rdbSaveObject writes them: the entries in listpacks
// keyed by their master entry's id (16 bytes, big-endian ms then seq), the length, last,
// first and max-deleted ids, entries added, then the consumer groups with their PEL and
// consumers. The listpacks are built from the live entries as streamAppendItem builds
// them for XADDs in order (a node takes entries while its bytes plus the entry's field and
// value bytes stay under stream-node-max-bytes and it has fewer than
// stream-node-max-entries): the same bytes as Redis's for a stream that only had XADDs.
// Entries deleted from respq's stream are left out (Redis keeps them as flagged entries;
// its lag bookkeeping reads max-deleted-id, which is carried).
void put_raw_id(std::string& out, stream_id id) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((id.ms >> (8 * i)) & 0xff));
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((id.seq >> (8 * i)) & 0xff));
}

void put_stream_id_key(std::string& out, stream_id id) {
  std::string k;
  put_raw_id(k, id);
  put_string(out, k);
}

void dump_stream(const stream_value& st, std::string& out, const stream_node_limits& limits) {
  constexpr std::uint64_t listpack_max_size = 1ull << 30;  // STREAM_LISTPACK_MAX_SIZE
  const std::uint64_t max_bytes =
      limits.max_bytes == 0 || limits.max_bytes > listpack_max_size ? listpack_max_size : limits.max_bytes;
  struct node {
    stream_id key;
    std::string lp;
  };
  std::vector<node> nodes;
  listpack_writer lp;
  bool open = false;
  stream_id master;
  std::vector<std::string> master_fields;
  std::size_t count = 0;
  std::string scratch;
  st.range(stream_id{}, stream_id{UINT64_MAX, UINT64_MAX}, 0, false, [&](const stream_value::entry& e) {
    std::size_t total = 0;
    for (const auto& [f, v] : e.fields) total += f.size() + v.size();
    // The node's listpack as it would be now: count is patched into the first entry, so
    // its size is the writer's with that integer's width.
    if (open && (lp.bytes() + total >= max_bytes || (limits.max_entries && count >= limits.max_entries))) {
      nodes.push_back({master, lp.finish()});
      open = false;
    }
    bool same = false;
    if (!open) {
      lp = listpack_writer();
      master = e.id;
      master_fields.clear();
      count = 0;
      lp.add_int(1);  // count, patched when the node is closed
      lp.add_int(0);  // deleted
      lp.add_int(static_cast<long long>(e.fields.size()));
      for (const auto& [f, v] : e.fields) {
        lp.add(f);
        master_fields.emplace_back(f);
      }
      lp.add_int(0);  // master entry terminator
      open = true;
      same = true;
    } else if (e.fields.size() == master_fields.size()) {
      same = true;
      for (std::size_t i = 0; i < master_fields.size() && same; ++i) same = e.fields[i].first == master_fields[i];
    }
    ++count;
    lp.set_first_int(static_cast<long long>(count));
    lp.add_int(same ? 2 : 0);
    lp.add_int(static_cast<long long>(e.id.ms - master.ms));
    lp.add_int(static_cast<long long>(e.id.seq - master.seq));
    if (!same) lp.add_int(static_cast<long long>(e.fields.size()));
    for (const auto& [f, v] : e.fields) {
      if (!same) lp.add(f);
      lp.add(v);
    }
    const long long n = static_cast<long long>(e.fields.size());
    lp.add_int(n + 3 + (same ? 0 : n + 1));
    return true;
  });
  if (open) nodes.push_back({master, lp.finish()});
  out.push_back(static_cast<char>(type_stream_listpacks_2));
  put_len(out, nodes.size());
  for (const node& n : nodes) {
    put_stream_id_key(out, n.key);
    put_string(out, n.lp);
  }
  stream_id first;
  if (!st.first_entry_id(first)) first = stream_id{};
  put_len(out, st.size());
  put_len(out, st.last_id.ms);
  put_len(out, st.last_id.seq);
  put_len(out, first.ms);
  put_len(out, first.seq);
  put_len(out, st.max_deleted_id.ms);
  put_len(out, st.max_deleted_id.seq);
  put_len(out, st.entries_added);
  put_len(out, st.groups.size());
  for (const auto& [name, g] : st.groups) {
    put_string(out, name);
    put_len(out, g.last_id.ms);
    put_len(out, g.last_id.seq);
    put_len(out, static_cast<std::uint64_t>(g.entries_read));
    put_len(out, g.pel.size());
    for (const auto& [id, nack] : g.pel) {
      put_raw_id(out, id);
      put_le(out, static_cast<std::uint64_t>(nack.delivery_time), 8);
      put_len(out, nack.delivery_count);
    }
    put_len(out, g.consumers.size());
    for (const auto& [cname, consumer] : g.consumers) {
      put_string(out, cname);
      put_le(out, static_cast<std::uint64_t>(consumer.seen_time), 8);
      put_len(out, consumer.pel.size());
      for (const stream_id& id : consumer.pel) put_raw_id(out, id);
    }
  }
}

// ---- reading --------------------------------------------------------------------------

struct bad_payload {};  // thrown inside the decoder only; restore_value turns it into bad_format

[[noreturn]] void fail() { throw bad_payload{}; }
void check(bool ok) {
  if (!ok) fail();
}

std::uint64_t get_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::int64_t sign_extend(std::uint64_t v, int bits) {
  if (bits < 64 && (v >> (bits - 1)) & 1) v |= ~0ull << bits;
  return static_cast<std::int64_t>(v);
}

std::string_view format_int(long long v, char (&buf)[24]) {
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string_view(buf, static_cast<std::size_t>(r.ptr - buf));
}

// The object bytes (the footer already taken off), read front to back.
class reader {
 public:
  explicit reader(std::string_view b) : p_(reinterpret_cast<const unsigned char*>(b.data())), end_(p_ + b.size()) {}
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  unsigned char byte() {
    check(left() >= 1);
    return *p_++;
  }
  std::string_view take(std::size_t n) {
    check(n <= left());
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  // An unsigned integer of `bytes` bytes, little-endian.
  std::uint64_t le(int bytes) {
    return get_le(reinterpret_cast<const unsigned char*>(take(static_cast<std::size_t>(bytes)).data()), bytes);
  }
  // rdbLoadLen; `encoded` is set for the 0b11 forms (an integer or LZF string follows).
  std::uint64_t len(bool* encoded = nullptr) {
    const unsigned char b = byte();
    if (encoded) *encoded = false;
    switch (b >> 6) {
      case 0: return b & 0x3f;
      case 1: return (static_cast<std::uint64_t>(b & 0x3f) << 8) | byte();
      case 2: {
        int bytes;
        if (b == 0x80) bytes = 4;
        else if (b == 0x81) bytes = 8;
        else fail();
        std::uint64_t v = 0;
        for (int i = 0; i < bytes; ++i) v = (v << 8) | byte();
        return v;
      }
      default:
        check(encoded != nullptr);
        *encoded = true;
        return b & 0x3f;
    }
  }
  // A length that counts items of at least one byte each: never more than what is left.
  std::uint64_t count() {
    const std::uint64_t n = len();
    check(n <= left());
    return n;
  }
  // rdbGenericLoadStringObject: integer (INT8/16/32), LZF, or length and bytes.
  std::string string() {
    bool encoded;
    const std::uint64_t n = len(&encoded);
    if (!encoded) {
      const std::string_view s = take(n);
      return std::string(s);
    }
    char buf[24];
    switch (n) {
      case 0: return std::string(format_int(static_cast<std::int8_t>(byte()), buf));
      case 1: return std::string(format_int(sign_extend(le(2), 16), buf));
      case 2: return std::string(format_int(sign_extend(le(4), 32), buf));
      case 3: {
        const std::uint64_t clen = len();
        const std::uint64_t ulen = len();
        const std::string_view c = take(clen);
        check(ulen <= clen * lzf_max_ratio + 264 && ulen <= 0xffffffffull && clen > 0);
        // Not zeroed first: a length that still lies costs no pages it never fills.
        const auto plain = std::make_unique_for_overwrite<char[]>(ulen);
        const unsigned got = lzf_decompress(c.data(), static_cast<unsigned>(clen), plain.get(), static_cast<unsigned>(ulen));
        check(got == ulen && ulen > 0);
        return std::string(plain.get(), ulen);
      }
      default: fail();
    }
  }
  // rdbLoadDoubleValue (the old ZSET type): a length byte, 253 NaN, 254 +inf, 255 -inf.
  double text_double() {
    const unsigned char n = byte();
    if (n == 253) fail();  // NaN scores are refused
    if (n == 254) return INFINITY;
    if (n == 255) return -INFINITY;
    const std::string s(take(n));
    char* e = nullptr;
    const double d = std::strtod(s.c_str(), &e);
    check(e == s.c_str() + s.size() && !std::isnan(d));
    return d;
  }
  double binary_double() {
    const std::uint64_t u = le(8);
    double d;
    std::memcpy(&d, &u, 8);
    check(!std::isnan(d));
    return d;
  }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

// A listpack, validated whole (lpValidateIntegrity with deep checks): header size equal to
// the blob's, every entry's encoding and back length inside the blob and consistent, the
// terminator last, the header's count (unless 65535, "unknown") equal to the entries.
// Calls fn(element) for each, integers spelled as decimal text.
template <typename Fn>
void read_listpack(std::string_view blob, Fn&& fn) {
  const auto* p = reinterpret_cast<const unsigned char*>(blob.data());
  const std::size_t size = blob.size();
  check(size >= 7);
  check(get_le(p, 4) == size);
  check(p[size - 1] == 0xFF);
  const std::uint64_t declared = get_le(p + 4, 2);
  std::size_t pos = 6, count = 0;
  char buf[24];
  while (pos < size - 1) {
    const unsigned char b = p[pos];
    const std::size_t room = size - 1 - pos;  // bytes up to the terminator
    std::size_t head, data_len = 0;
    bool is_int = true;
    long long v = 0;
    auto need = [&](std::size_t n) { check(n <= room); };
    if ((b & 0x80) == 0) {
      head = 1, v = b & 0x7f;
    } else if ((b & 0xC0) == 0x80) {
      head = 1, data_len = b & 0x3f, is_int = false;
    } else if ((b & 0xE0) == 0xC0) {
      need(2);
      head = 2, v = sign_extend((static_cast<std::uint64_t>(b & 0x1f) << 8) | p[pos + 1], 13);
    } else if ((b & 0xF0) == 0xE0) {
      need(2);
      head = 2, data_len = (static_cast<std::size_t>(b & 0x0f) << 8) | p[pos + 1], is_int = false;
    } else if (b == 0xF0) {
      need(5);
      head = 5, data_len = get_le(p + pos + 1, 4), is_int = false;
    } else if (b >= 0xF1 && b <= 0xF4) {
      const int bytes = b == 0xF1 ? 2 : b == 0xF2 ? 3 : b == 0xF3 ? 4 : 8;
      need(1 + bytes);
      head = 1 + bytes, v = sign_extend(get_le(p + pos + 1, bytes), bytes * 8);
    } else {
      fail();  // 0xF5..0xFE are no encoding; 0xFF before the end is a torn listpack
    }
    const std::uint64_t entry = head + data_len;
    check(data_len <= room && entry <= room);
    const std::size_t backlen_bytes = entry <= 127 ? 1 : entry < 16383 ? 2 : entry < 2097151 ? 3 : entry < 268435455 ? 4 : 5;
    check(entry + backlen_bytes <= room);
    // The back length, read as lpDecodeBacklen reads it (from its last byte backwards).
    const std::size_t last = pos + entry + backlen_bytes - 1;
    std::uint64_t back = 0;
    for (std::size_t i = 0; i < backlen_bytes; ++i) {
      const unsigned char c = p[last - i];
      back |= static_cast<std::uint64_t>(c & 127) << (7 * i);
      check(((c & 128) != 0) == (i + 1 < backlen_bytes));
    }
    check(back == entry);
    if (is_int) fn(format_int(v, buf));
    else fn(std::string_view(reinterpret_cast<const char*>(p + pos + head), data_len));
    pos += entry + backlen_bytes;
    ++count;
  }
  check(pos == size - 1);
  check(declared == 65535 || declared == count);
}

// A ziplist (Redis up to 6.2), validated whole as ziplistValidateIntegrity with deep
// checks: header (total bytes, tail offset, count), each entry's previous-length equal to
// the previous entry's size, encodings known and inside the blob, the tail offset
// pointing at the last entry, the terminator last.
template <typename Fn>
void read_ziplist(std::string_view blob, Fn&& fn) {
  const auto* p = reinterpret_cast<const unsigned char*>(blob.data());
  const std::size_t size = blob.size();
  check(size >= 11);
  check(get_le(p, 4) == size);
  const std::uint64_t tail = get_le(p + 4, 4);
  const std::uint64_t declared = get_le(p + 8, 2);
  check(p[size - 1] == 0xFF);
  std::size_t pos = 10, count = 0, prev_size = 0, last_entry = 10;
  char buf[24];
  while (pos < size - 1) {
    const std::size_t room = size - 1 - pos;
    std::size_t h = 0;
    std::uint64_t prevlen;
    if (p[pos] < 254) {
      prevlen = p[pos], h = 1;
    } else {
      check(p[pos] == 254 && room >= 5);
      prevlen = get_le(p + pos + 1, 4), h = 5;
    }
    check(prevlen == prev_size);
    check(h < room);
    const unsigned char b = p[pos + h];
    std::size_t data_len = 0, enc_len;
    bool is_int = false;
    long long v = 0;
    switch (b >> 6) {
      case 0: enc_len = 1, data_len = b & 0x3f; break;
      case 1:
        check(h + 2 <= room);
        enc_len = 2, data_len = (static_cast<std::size_t>(b & 0x3f) << 8) | p[pos + h + 1];
        break;
      case 2:
        check(b == 0x80 && h + 5 <= room);
        enc_len = 5;
        data_len = (static_cast<std::size_t>(p[pos + h + 1]) << 24) | (static_cast<std::size_t>(p[pos + h + 2]) << 16) |
                   (static_cast<std::size_t>(p[pos + h + 3]) << 8) | p[pos + h + 4];
        break;
      default: {
        enc_len = 1, is_int = true;
        int bytes = 0;
        if (b == 0xC0) bytes = 2;
        else if (b == 0xD0) bytes = 4;
        else if (b == 0xE0) bytes = 8;
        else if (b == 0xF0) bytes = 3;
        else if (b == 0xFE) bytes = 1;
        else if (b >= 0xF1 && b <= 0xFD) v = (b & 0x0f) - 1;
        else fail();
        check(h + 1 + bytes <= room);
        if (bytes) v = sign_extend(get_le(p + pos + h + 1, bytes), bytes * 8);
        data_len = static_cast<std::size_t>(bytes);
      }
    }
    const std::uint64_t total = h + enc_len + data_len;
    check(data_len <= room && total <= room);
    if (is_int) fn(format_int(v, buf));
    else fn(std::string_view(reinterpret_cast<const char*>(p + pos + h + enc_len), data_len));
    last_entry = pos;
    prev_size = total;
    pos += total;
    ++count;
  }
  check(pos == size - 1);
  check(tail == last_entry);
  check(declared == 65535 || declared == count);
}

// An intset: encoding (2, 4, 8), count, that many members, strictly ascending.
template <typename Fn>
void read_intset(std::string_view blob, Fn&& fn) {
  const auto* p = reinterpret_cast<const unsigned char*>(blob.data());
  check(blob.size() >= 8);
  const std::uint64_t width = get_le(p, 4);
  const std::uint64_t n = get_le(p + 4, 4);
  check(width == 2 || width == 4 || width == 8);
  check(n > 0 && (blob.size() - 8) / width == n && (blob.size() - 8) % width == 0);
  char buf[24];
  long long prev = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const long long v = sign_extend(get_le(p + 8 + i * width, static_cast<int>(width)), static_cast<int>(width * 8));
    check(i == 0 || v > prev);
    prev = v;
    fn(format_int(v, buf));
  }
}

// A zipmap (HASH_ZIPMAP, Redis before 2.6): count byte, then <len><key><len><free><value>
// <free bytes> per pair, lengths one byte below 254 or 254 + 4 bytes; 255 ends it.
template <typename Fn>
void read_zipmap(std::string_view blob, Fn&& fn) {
  const auto* p = reinterpret_cast<const unsigned char*>(blob.data());
  const std::size_t size = blob.size();
  check(size >= 2 && p[size - 1] == 255);
  const unsigned declared = p[0];
  std::size_t pos = 1, count = 0;
  auto length = [&]() -> std::size_t {
    check(pos < size - 1);
    if (p[pos] < 254) return p[pos++];
    check(p[pos] == 254 && pos + 5 <= size - 1);
    const std::size_t l = get_le(p + pos + 1, 4);
    pos += 5;
    return l;
  };
  while (pos < size - 1) {
    const std::size_t kl = length();
    check(kl <= size - 1 - pos);
    const std::string_view k(reinterpret_cast<const char*>(p + pos), kl);
    pos += kl;
    const std::size_t vl = length();
    check(pos < size - 1);
    const std::size_t free = p[pos++];
    check(vl <= size - 1 - pos && free <= size - 1 - pos - vl);
    const std::string_view v(reinterpret_cast<const char*>(p + pos), vl);
    pos += vl + free;
    fn(k, v);
    ++count;
  }
  check(pos == size - 1);
  check(count > 0 && (declared >= 254 || declared == count));
}

// Builders: each refuses a duplicate member or field, as deep sanitization does.
void add_set_member(set_value& s, std::string_view m) { check(s.insert(m)); }
// A hash's fields are checked against a set of those seen, not looked up in the hash: a
// small hash is walked for each lookup, which hash-max-listpack-entries may make long.
// (A listpack's or ziplist's hash stays small whatever its lengths, as Redis loads it;
// a plain or zipmap one is converted by them.)
struct hash_builder {
  hash_value h;
  std::unordered_set<std::string> seen;
  void add(std::string_view f, std::string_view v, bool lengths_convert = true) {
    check(seen.emplace(f).second);
    h.add_new(f, hash_store(v), lengths_convert);
  }
};
// A sorted set is built in its index form and compacted after (zset_value::expect), as
// Redis loads a skiplist and converts it once.
void add_zset_member(zset_value& z, std::string_view m, double score) {
  check(!std::isnan(score));
  double old;
  check(!z.score(m, old));
  z.set(m, score);
}

// zzlStrtod: a score the ziplist or listpack holds as text.
double text_score(std::string_view s) {
  check(!s.empty() && s.size() < 128);
  const std::string t(s);
  char* e = nullptr;
  const double d = std::strtod(t.c_str(), &e);
  check(e == t.c_str() + t.size() && !std::isnan(d));
  return d;
}

// Pairs from a flat sequence (hash fields and values, sorted set members and scores).
struct pair_reader {
  std::string first;
  bool have_first = false;
  template <typename Fn>
  void feed(std::string_view e, Fn&& fn) {
    if (!have_first) {
      first.assign(e);
      have_first = true;
    } else {
      fn(std::string_view(first), e);
      have_first = false;
    }
  }
};

std::uint64_t be64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

stream_id raw_id(std::string_view b) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  return stream_id{be64(p), be64(p + 8)};
}

long long lp_integer(std::string_view e) {
  long long v;
  check(string2ll(e, v));
  return v;
}

// STREAM_LISTPACKS (Redis 5.0 to 6.2) and STREAM_LISTPACKS_2 (7.0), validated as
// streamValidateListpackIntegrity and rdbLoadObject do with deep sanitization: each node's
// listpack holds a master entry (count, deleted, fields, 0) and exactly count + deleted
// entries, each with a consistent lp-count; ids grow strictly across the whole stream and
// none is past the last id; the live entries number the stored length; group and
// consumer names are unique, every consumer's pending entry is in its group's PEL, and
// every PEL entry has a consumer.
void decode_stream(unsigned char type, reader& r, value& out, const stream_node_limits& limits) {
  stream_value st;
  const std::uint64_t nodes = r.count();
  stream_id prev;
  bool any = false;
  std::vector<std::string> elements;
  std::vector<std::string_view> fields;
  for (std::uint64_t n = 0; n < nodes; ++n) {
    const std::string key = r.string();
    check(key.size() == 16);
    const stream_id master = raw_id(key);
    const std::string blob = r.string();
    elements.clear();
    read_listpack(blob, [&](std::string_view e) { elements.emplace_back(e); });
    check(!elements.empty());  // "Empty listpack inside stream"
    std::size_t i = 0;
    auto next = [&]() -> const std::string& {
      check(i < elements.size());
      return elements[i++];
    };
    const long long count = lp_integer(next());
    const long long deleted = lp_integer(next());
    const long long master_fields = lp_integer(next());
    check(count >= 0 && deleted >= 0 && master_fields >= 0);
    check(static_cast<std::uint64_t>(master_fields) <= elements.size());
    const std::size_t master_at = i;
    i += static_cast<std::size_t>(master_fields);
    check(i <= elements.size());
    check(lp_integer(next()) == 0);
    check(static_cast<std::uint64_t>(count) + static_cast<std::uint64_t>(deleted) <= elements.size());
    long long live = 0;
    for (long long k = 0; k < count + deleted; ++k) {
      const long long flags = lp_integer(next());
      const std::uint64_t ms = master.ms + static_cast<std::uint64_t>(lp_integer(next()));
      const std::uint64_t seq = master.seq + static_cast<std::uint64_t>(lp_integer(next()));
      const stream_id id{ms, seq};
      check(!any || id > prev);
      prev = id;
      any = true;
      fields.clear();
      long long nf = master_fields, extra = 3;
      if (flags & 2) {
        for (long long j = 0; j < nf; ++j) {
          fields.push_back(elements[master_at + static_cast<std::size_t>(j)]);
          fields.push_back(next());
        }
      } else {
        nf = lp_integer(next());
        check(nf >= 0 && static_cast<std::uint64_t>(nf) <= elements.size());
        for (long long j = 0; j < nf; ++j) {
          fields.push_back(next());
          fields.push_back(next());
        }
        extra += nf + 1;
      }
      check(lp_integer(next()) == nf + extra);
      if (!(flags & 1)) {
        check(nf > 0);
        st.append(id, fields, limits);
        ++live;
      }
    }
    check(i == elements.size());
    check(live == count);
  }
  const std::uint64_t length = r.len();
  stream_id last;
  last.ms = r.len();
  last.seq = r.len();
  check(length == st.size());
  check(!any || !(prev > last));
  st.last_id = last;
  if (type == type_stream_listpacks_2) {
    r.len();  // first id: respq finds its first entry itself
    r.len();
    st.max_deleted_id.ms = r.len();
    st.max_deleted_id.seq = r.len();
    st.entries_added = r.len();
    check(st.entries_added >= length);
  } else {
    st.max_deleted_id = stream_id{};
    st.entries_added = length;
  }
  const std::uint64_t groups = r.count();
  for (std::uint64_t g = 0; g < groups; ++g) {
    const std::string name = r.string();
    check(st.groups.find(name) == st.groups.end());  // "Duplicated consumer group name"
    stream_group grp;
    grp.last_id.ms = r.len();
    grp.last_id.seq = r.len();
    if (type == type_stream_listpacks_2) grp.entries_read = static_cast<long long>(r.len());
    else grp.entries_read = st.estimate_distance(grp.last_id);
    const std::uint64_t pel = r.count();
    for (std::uint64_t k = 0; k < pel; ++k) {
      const stream_id id = raw_id(r.take(16));
      stream_nack nack;
      nack.delivery_time = static_cast<std::int64_t>(r.le(8));
      nack.delivery_count = r.len();
      check(grp.pel.emplace(id, std::move(nack)).second);  // "Duplicated global PEL entry"
    }
    const std::uint64_t consumers = r.count();
    for (std::uint64_t k = 0; k < consumers; ++k) {
      const std::string cname = r.string();
      check(grp.consumers.find(cname) == grp.consumers.end());  // "Duplicate stream consumer detected"
      stream_consumer& cons = grp.consumers[cname];
      cons.seen_time = static_cast<std::int64_t>(r.le(8));
      const std::uint64_t owned = r.count();
      for (std::uint64_t j = 0; j < owned; ++j) {
        const stream_id id = raw_id(r.take(16));
        auto it = grp.pel.find(id);
        check(it != grp.pel.end());             // "Consumer entry not found in group global PEL"
        check(it->second.consumer.empty());     // owned by one consumer only
        check(cons.pel.insert(id).second);      // "Duplicated consumer PEL entry"
        it->second.consumer = cname;
      }
    }
    for (const auto& [id, nack] : grp.pel) check(!nack.consumer.empty());  // "Stream CG PEL entry without consumer"
    st.groups.emplace(name, std::move(grp));
  }
  out.data = std::move(st);
}

void decode(unsigned char type, reader& r, value& out) {
  switch (type) {
    case type_string: {
      out.data = r.string();
      out.str_enc = string_encoding::by_content;
      return;
    }
    case type_list: {
      const std::uint64_t n = r.count();
      check(n > 0);
      packed_list l;
      for (std::uint64_t i = 0; i < n; ++i) l.push_back(r.string());
      out.data = std::move(l);
      return;
    }
    case type_list_ziplist:
    case type_list_quicklist:
    case type_list_quicklist_2: {
      packed_list l;
      auto push = [&](std::string_view e) { l.push_back(e); };
      if (type == type_list_ziplist) {
        read_ziplist(r.string(), push);
      } else {
        const std::uint64_t nodes = r.count();
        check(nodes > 0);
        for (std::uint64_t i = 0; i < nodes; ++i) {
          std::uint64_t container = 2;
          if (type == type_list_quicklist_2) container = r.len();
          const std::string blob = r.string();
          if (container == 1) {
            l.push_back(blob);  // a plain node: one large element
          } else {
            check(container == 2);
            // Empty nodes are skipped, as Redis skips them.
            if (type == type_list_quicklist) read_ziplist(blob, push);
            else read_listpack(blob, push);
          }
        }
      }
      check(!l.empty());
      out.data = std::move(l);
      return;
    }
    case type_set: {
      const std::uint64_t n = r.count();
      check(n > 0);
      set_value s;
      for (std::uint64_t i = 0; i < n; ++i) add_set_member(s, r.string());
      out.data = std::move(s);
      return;
    }
    case type_set_intset: {
      set_value s;
      read_intset(r.string(), [&](std::string_view m) { add_set_member(s, m); });
      out.data = std::move(s);
      return;
    }
    case type_zset:
    case type_zset_2: {
      const std::uint64_t n = r.count();
      check(n > 0);
      zset_value z;
      z.convert_to_index();
      for (std::uint64_t i = 0; i < n; ++i) {
        const std::string m = r.string();
        const double score = type == type_zset ? r.text_double() : r.binary_double();
        add_zset_member(z, m, score);
      }
      z.compact_if_small();
      out.data = std::move(z);
      return;
    }
    case type_zset_ziplist:
    case type_zset_listpack: {
      zset_value z;
      z.convert_to_index();
      pair_reader pr;
      auto add = [&](std::string_view m, std::string_view s) { add_zset_member(z, m, text_score(s)); };
      auto feed = [&](std::string_view e) { pr.feed(e, add); };
      const std::string blob = r.string();
      if (type == type_zset_ziplist) read_ziplist(blob, feed);
      else read_listpack(blob, feed);
      check(!pr.have_first && z.size() > 0);
      // A listpack stays one unless it has more members than zset-max-listpack-entries,
      // whatever their lengths, as Redis loads it.
      z.compact_if_small(false);
      out.data = std::move(z);
      return;
    }
    case type_hash: {
      const std::uint64_t n = r.count();
      check(n > 0);
      hash_builder b;
      for (std::uint64_t i = 0; i < n; ++i) {
        const std::string f = r.string();
        const std::string v = r.string();
        b.add(f, v);
      }
      out.data = std::move(b.h);
      return;
    }
    case type_hash_zipmap:
    case type_hash_ziplist:
    case type_hash_listpack: {
      hash_builder b;
      auto add = [&](std::string_view f, std::string_view v) { b.add(f, v, type == type_hash_zipmap); };
      const std::string blob = r.string();
      if (type == type_hash_zipmap) {
        read_zipmap(blob, add);
      } else {
        pair_reader pr;
        auto feed = [&](std::string_view e) { pr.feed(e, add); };
        if (type == type_hash_ziplist) read_ziplist(blob, feed);
        else read_listpack(blob, feed);
        check(!pr.have_first);
      }
      check(b.h.size() > 0);
      out.data = std::move(b.h);
      return;
    }
    default: fail();
  }
}

}  // namespace

std::uint64_t crc64(std::uint64_t crc, const unsigned char* p, std::size_t n) {
  // Reflected form of the Jones polynomial 0xad93d23594c935a9, one table per byte.
  static const auto table = [] {
    std::array<std::uint64_t, 256> t{};
    constexpr std::uint64_t poly = 0x95ac9329ac4bc9b5ull;
    for (std::uint64_t i = 0; i < 256; ++i) {
      std::uint64_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

namespace {

// The footer after a payload's body (from `start` in `out`): the RDB version, then the
// CRC64 of body and version.
void put_footer(std::string& out, std::size_t start) {
  put_le(out, rdb_version, 2);
  const std::uint64_t crc =
      crc64(0, reinterpret_cast<const unsigned char*>(out.data() + start), out.size() - start);
  put_le(out, crc, 8);
}

// verifyDumpPayload: at least the footer, a version this server writes or older, and the
// checksum of everything before the checksum. The body, or nothing.
std::optional<std::string_view> payload_body(std::string_view payload) {
  if (payload.size() < 10) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
  const std::size_t body = payload.size() - 10;
  if (get_le(p + body, 2) > rdb_version) return std::nullopt;
  if (crc64(0, p, payload.size() - 8) != get_le(p + body + 2, 8)) return std::nullopt;
  return payload.substr(0, body);
}

}  // namespace

bool dump_value(const value& v, std::string& out, const stream_node_limits& limits) {
  const std::size_t start = out.size();
  switch (v.type()) {
    case value_type::string:
      out.push_back(static_cast<char>(type_string));
      put_string(out, std::get<std::string>(v.data));
      break;
    case value_type::list: dump_list(std::get<packed_list>(v.data), out); break;
    case value_type::set: dump_set(std::get<set_value>(v.data), out); break;
    case value_type::zset: dump_zset(std::get<zset_value>(v.data), out); break;
    case value_type::hash: dump_hash(std::get<hash_value>(v.data), out); break;
    case value_type::stream: dump_stream(std::get<stream_value>(v.data), out, limits); break;
  }
  put_footer(out, start);
  return true;
}

restore_status restore_value(std::string_view payload, value& out, const stream_node_limits& limits) {
  const auto body = payload_body(payload);
  if (!body) return restore_status::bad_footer;
  reader r(*body);
  try {
    const unsigned char type = r.byte();
    if (type == type_module || type == type_module_2) return restore_status::module_type;
    value v;
    if (type == type_stream_listpacks || type == type_stream_listpacks_2) decode_stream(type, r, v, limits);
    else decode(type, r, v);
    out.data = std::move(v.data);
    out.str_enc = v.str_enc;
    return restore_status::ok;
  } catch (const bad_payload&) {
    return restore_status::bad_format;
  }
}

std::string dump_functions(const std::vector<std::string_view>& codes) {
  std::string out;
  for (std::string_view code : codes) {
    out.push_back(static_cast<char>(opcode_function_2));
    put_string(out, code);
  }
  put_footer(out, 0);
  return out;
}

std::string restore_functions(std::string_view payload, std::vector<std::string>& codes) {
  const auto body = payload_body(payload);
  if (!body) return "DUMP payload version or checksum are wrong";
  reader r(*body);
  std::vector<std::string> got;
  while (r.left() > 0) {
    const unsigned char type = r.byte();
    // (The release candidates' form, with its metadata apart from the code, is not read.)
    if (type != opcode_function_2) {
      return type == opcode_function_rc ? "Failed loading library payload: an early Redis 7.0 release candidate's form"
                                        : "given type is not a function";
    }
    try {
      got.push_back(r.string());
    } catch (const bad_payload&) {
      return "Failed loading library payload";
    }
  }
  codes = std::move(got);
  return {};
}

}  // namespace respq::core::rdb
