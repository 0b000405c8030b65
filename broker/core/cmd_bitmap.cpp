// Bitmap commands on strings, as Redis 7.0 answers them: SETBIT GETBIT BITCOUNT BITPOS
// BITOP BITFIELD BITFIELD_RO. Bit 0 is the most significant bit of the first byte; a
// string grows with zero bytes to the highest bit written, and reads past its end see
// zeros. Offsets are limited to proto-max-bulk-len bytes, as Redis limits them.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "broker/core/commands.hpp"

namespace respq::core {

namespace {

constexpr std::string_view bit_offset_error = "ERR bit offset is not an integer or out of range";
constexpr std::string_view bitfield_type_error =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

// Redis's getBitOffsetFromArgument: an offset in bits; with `hash` (BITFIELD) "#N" means
// N times the field's width.
bool bit_offset_arg(server& s, client& c, std::string_view arg, bool hash, int bits, std::uint64_t& out) {
  const bool by_width = hash && bits > 0 && !arg.empty() && arg[0] == '#';
  long long off;
  if (!string2ll(arg.substr(by_width ? 1 : 0), off) || (by_width && __builtin_mul_overflow(off, bits, &off)) ||
      off < 0 || (!s.loading() && (static_cast<unsigned long long>(off) >> 3) >= s.cfg().proto_max_bulk_len)) {
    s.add_error(c, bit_offset_error);
    return false;
  }
  out = static_cast<std::uint64_t>(off);
  return true;
}

int bit_at(std::string_view p, std::uint64_t offset) {
  const std::uint64_t byte = offset >> 3;
  if (byte >= p.size()) return 0;
  return (static_cast<unsigned char>(p[byte]) >> (7 - (offset & 7))) & 1;
}

void set_bit(std::string& p, std::uint64_t offset, int on) {
  auto& b = reinterpret_cast<unsigned char&>(p[offset >> 3]);
  const unsigned mask = 1u << (7 - (offset & 7));
  b = static_cast<unsigned char>(on ? (b | mask) : (b & ~mask));
}

// Redis's lookupStringForBitCommand: the string at a[1], created or grown with zero
// bytes to hold bit `max_bit`; nullptr after WRONGTYPE. `grew`: created or longer now.
std::string* string_for_bits(server& s, client& c, std::string_view key, std::uint64_t max_bit, bool& grew) {
  bool wrong;
  std::string* v = lookup_string(s, c, key, wrong);
  if (wrong) return nullptr;
  const std::size_t need = static_cast<std::size_t>(max_bit >> 3) + 1;
  grew = !v || v->size() < need;
  if (!v) v = &s.db().create(key, value_type::string).str();
  if (v->size() < need) v->resize(need, '\0');
  s.db().find(key)->str_enc = string_encoding::raw;  // as Redis: bit commands leave a raw string
  return v;
}

// BITCOUNT's and BITPOS's [start end [BYTE|BIT]] as a range of bits, Redis's arithmetic:
// negative indexes count from the end, both ends clamped to the string.
struct bit_range {
  long long first = 0, last = -1;  // bits, inclusive; empty when first > last
};

bit_range clamp_range(long long start, long long end, long long total, bool in_bits) {
  if (start < 0) start = total + start;
  if (end < 0) end = total + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= total) end = total - 1;
  if (start > end) return {};
  return in_bits ? bit_range{start, end} : bit_range{start * 8, end * 8 + 7};
}

// BYTE or BIT at a[i]; false after a syntax error.
bool unit_arg(server& s, client& c, std::string_view arg, bool& in_bits) {
  if (iequals(arg, "bit")) in_bits = true;
  else if (iequals(arg, "byte")) in_bits = false;
  else {
    s.add_error(c, syntax_error);
    return false;
  }
  return true;
}

long long count_bits(std::string_view p, long long first, long long last) {
  long long n = 0;
  // Whole bytes by popcount, the partial first and last bytes bit by bit.
  while (first <= last && (first & 7)) n += bit_at(p, static_cast<std::uint64_t>(first++));
  while (first + 63 <= last) {
    std::uint64_t w = 0;
    for (int i = 0; i < 8; ++i) w = (w << 8) | static_cast<unsigned char>(p[static_cast<std::size_t>(first >> 3) + static_cast<std::size_t>(i)]);
    n += __builtin_popcountll(w);
    first += 64;
  }
  while (first + 7 <= last) {
    n += __builtin_popcount(static_cast<unsigned char>(p[static_cast<std::size_t>(first >> 3)]));
    first += 8;
  }
  while (first <= last) n += bit_at(p, static_cast<std::uint64_t>(first++));
  return n;
}

// The first bit equal to `bit` in [first, last], or -1.
long long find_bit(std::string_view p, long long first, long long last, int bit) {
  const unsigned char skip = bit ? 0x00 : 0xff;  // a byte holding no such bit
  while (first <= last) {
    if (!(first & 7) && first + 7 <= last && static_cast<unsigned char>(p[static_cast<std::size_t>(first >> 3)]) == skip) {
      first += 8;
      continue;
    }
    if (bit_at(p, static_cast<std::uint64_t>(first)) == bit) return first;
    ++first;
  }
  return -1;
}

// ---- BITFIELD --------------------------------------------------------------------

enum class overflow { wrap, sat, fail };

struct field_op {
  enum { get, set, incrby } what = get;
  std::uint64_t offset = 0;
  long long arg = 0;  // SET's value, INCRBY's increment
  int bits = 0;
  bool is_signed = false;
  overflow ow = overflow::wrap;
};

// "i<1..64>" or "u<1..63>".
bool field_type_arg(server& s, client& c, std::string_view t, bool& is_signed, int& bits) {
  long long n;
  if (t.empty() || (t[0] != 'i' && t[0] != 'u') || !string2ll(t.substr(1), n) || n < 1 || n > (t[0] == 'i' ? 64 : 63)) {
    s.add_error(c, bitfield_type_error);
    return false;
  }
  is_signed = t[0] == 'i';
  bits = static_cast<int>(n);
  return true;
}

// Reads and writes fields big-endian, bit by bit, past the end as zeros (reads only:
// writers grew the string first).
std::uint64_t get_unsigned(std::string_view p, std::uint64_t offset, int bits) {
  std::uint64_t v = 0;
  for (int j = 0; j < bits; ++j) v = (v << 1) | static_cast<std::uint64_t>(bit_at(p, offset + static_cast<std::uint64_t>(j)));
  return v;
}

std::int64_t get_signed(std::string_view p, std::uint64_t offset, int bits) {
  std::uint64_t u = get_unsigned(p, offset, bits);
  if (bits < 64 && (u & (std::uint64_t{1} << (bits - 1)))) u |= ~std::uint64_t{0} << bits;  // sign-extend
  return static_cast<std::int64_t>(u);
}

void set_field(std::string& p, std::uint64_t offset, int bits, std::uint64_t v) {
  for (int j = 0; j < bits; ++j)
    set_bit(p, offset + static_cast<std::uint64_t>(j), static_cast<int>((v >> (bits - 1 - j)) & 1));
}

// Redis's checkUnsignedBitfieldOverflow: whether value + incr leaves [0, 2^bits-1]; the
// value to store then under WRAP or SAT in *limit.
bool unsigned_overflows(std::uint64_t value, long long incr, int bits, overflow ow, std::uint64_t& limit) {
  const std::uint64_t max = bits == 64 ? UINT64_MAX : (std::uint64_t{1} << bits) - 1;
  const auto maxincr = static_cast<std::int64_t>(max - value);
  const auto minincr = static_cast<std::int64_t>(0 - value);  // as Redis: unsigned negation
  const bool high = value > max || (incr > 0 && incr > maxincr);
  const bool low = !high && incr < 0 && incr < minincr;
  if (!high && !low) return false;
  if (ow == overflow::wrap) limit = (value + static_cast<std::uint64_t>(incr)) & max;
  else if (ow == overflow::sat) limit = high ? max : 0;
  return true;
}

// Redis's checkSignedBitfieldOverflow, the same for [-2^(bits-1), 2^(bits-1)-1].
bool signed_overflows(std::int64_t value, long long incr, int bits, overflow ow, std::int64_t& limit) {
  const std::int64_t max = bits == 64 ? INT64_MAX : (std::int64_t{1} << (bits - 1)) - 1;
  const std::int64_t min = -max - 1;
  const auto maxincr = static_cast<std::int64_t>(static_cast<std::uint64_t>(max) - static_cast<std::uint64_t>(value));
  const auto minincr = static_cast<std::int64_t>(static_cast<std::uint64_t>(min) - static_cast<std::uint64_t>(value));
  const bool high = value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr);
  const bool low = !high && (value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr));
  if (!high && !low) return false;
  if (ow == overflow::wrap) {
    std::uint64_t r = static_cast<std::uint64_t>(value) + static_cast<std::uint64_t>(incr);
    if (bits < 64) {
      const std::uint64_t mask = ~std::uint64_t{0} << bits;
      r = (r & (std::uint64_t{1} << (bits - 1))) ? (r | mask) : (r & ~mask);
    }
    limit = static_cast<std::int64_t>(r);
  } else if (ow == overflow::sat) {
    limit = high ? max : min;
  }
  return true;
}

void bitfield_generic(server& s, client& c, args_t a, bool read_only_command) {
  std::vector<field_op> ops;
  overflow ow = overflow::wrap;
  bool read_only = true;
  std::uint64_t highest = 0;  // the highest bit a SET or INCRBY reaches
  for (std::size_t j = 2; j < a.size(); ++j) {
    const std::size_t rest = a.size() - j - 1;
    field_op op;
    if (iequals(a[j], "get") && rest >= 2) op.what = field_op::get;
    else if (iequals(a[j], "set") && rest >= 3) op.what = field_op::set;
    else if (iequals(a[j], "incrby") && rest >= 3) op.what = field_op::incrby;
    else if (iequals(a[j], "overflow") && rest >= 1) {
      const std::string_view t = a[++j];
      if (iequals(t, "wrap")) ow = overflow::wrap;
      else if (iequals(t, "sat")) ow = overflow::sat;
      else if (iequals(t, "fail")) ow = overflow::fail;
      else {
        s.add_error(c, "ERR Invalid OVERFLOW type specified");
        return;
      }
      continue;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
    if (!field_type_arg(s, c, a[j + 1], op.is_signed, op.bits)) return;
    if (!bit_offset_arg(s, c, a[j + 2], true, op.bits, op.offset)) return;
    if (op.what != field_op::get) {
      read_only = false;
      highest = std::max(highest, op.offset + static_cast<std::uint64_t>(op.bits) - 1);
      if (!integer_arg(s, c, a[j + 3], op.arg)) return;
    }
    op.ow = ow;
    ops.push_back(op);
    j += op.what == field_op::get ? 2 : 3;
  }
  std::string* v = nullptr;
  bool grew = false;
  if (read_only) {
    bool wrong;
    server::read_lookups reading(s, !read_only_command);  // a read command's lookups report already
    v = lookup_string(s, c, a[1], wrong);
    if (wrong) return;
  } else {
    if (read_only_command) {
      s.add_error(c, "ERR BITFIELD_RO only supports the GET subcommand");
      return;
    }
    v = string_for_bits(s, c, a[1], highest, grew);
    if (!v) return;
  }
  auto w = s.reply(c);
  w.array(ops.size());
  std::uint64_t changes = 0;
  for (const field_op& op : ops) {
    if (op.what == field_op::get) {
      const std::string_view p = v ? std::string_view(*v) : std::string_view();
      if (op.is_signed) w.integer(get_signed(p, op.offset, op.bits));
      else w.integer(static_cast<long long>(get_unsigned(p, op.offset, op.bits)));
      continue;
    }
    if (op.is_signed) {
      const std::int64_t old = get_signed(*v, op.offset, op.bits);
      std::int64_t wrapped = 0, next, shown;
      bool over;
      if (op.what == field_op::incrby) {
        over = signed_overflows(old, op.arg, op.bits, op.ow, wrapped);
        next = over ? wrapped : static_cast<std::int64_t>(static_cast<std::uint64_t>(old) + static_cast<std::uint64_t>(op.arg));
        shown = next;
      } else {
        next = op.arg;
        over = signed_overflows(next, 0, op.bits, op.ow, wrapped);
        if (over) next = wrapped;
        shown = old;
      }
      if (over && op.ow == overflow::fail) {
        w.null();
        continue;
      }
      w.integer(shown);
      set_field(*v, op.offset, op.bits, static_cast<std::uint64_t>(next));
      if (grew || old != next) ++changes;
    } else {
      const std::uint64_t old = get_unsigned(*v, op.offset, op.bits);
      std::uint64_t wrapped = 0, next, shown;
      bool over;
      if (op.what == field_op::incrby) {
        over = unsigned_overflows(old, op.arg, op.bits, op.ow, wrapped);
        next = over ? wrapped : old + static_cast<std::uint64_t>(op.arg);
        shown = next;
      } else {
        next = static_cast<std::uint64_t>(op.arg);
        over = unsigned_overflows(next, 0, op.bits, op.ow, wrapped);
        if (over) next = wrapped;
        shown = old;
      }
      if (over && op.ow == overflow::fail) {
        w.null();
        continue;
      }
      w.integer(static_cast<long long>(shown));
      set_field(*v, op.offset, op.bits, next);
      if (grew || old != next) ++changes;
    }
  }
  if (changes) {
    s.add_dirty(changes);
    s.notify(notify_string, "setbit", a[1]);
  }
}

}  // namespace

void cmd_setbit(server& s, client& c, args_t a) {
  std::uint64_t offset;
  if (!bit_offset_arg(s, c, a[2], false, 0, offset)) return;
  long long on;
  if (!string2ll(a[3], on) || (on & ~1LL)) {
    s.add_error(c, "ERR bit is not an integer or out of range");
    return;
  }
  bool grew;
  std::string* v = string_for_bits(s, c, a[1], offset, grew);
  if (!v) return;
  const int old = bit_at(*v, offset);
  // As Redis: only a new or longer string, or a bit that changes, is a write.
  if (grew || old != on) {
    set_bit(*v, offset, static_cast<int>(on));
    s.add_dirty();
    s.notify(notify_string, "setbit", a[1]);
  }
  s.reply(c).integer(old);
}

void cmd_getbit(server& s, client& c, args_t a) {
  std::uint64_t offset;
  if (!bit_offset_arg(s, c, a[2], false, 0, offset)) return;
  bool wrong;
  const std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(v ? bit_at(*v, offset) : 0);
}

void cmd_bitcount(server& s, client& c, args_t a) {
  bool wrong;
  const std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  if (!v) {  // as Redis: a missing key answers 0 before its arguments are read
    s.reply(c).integer(0);
    return;
  }
  const auto len = static_cast<long long>(v->size());
  bit_range r{0, len * 8 - 1};
  if (a.size() == 4 || a.size() == 5) {
    long long start, end;
    if (!integer_arg(s, c, a[2], start) || !integer_arg(s, c, a[3], end)) return;
    if (start < 0 && end < 0 && start > end) {  // as Redis: before BYTE|BIT is read
      s.reply(c).integer(0);
      return;
    }
    bool in_bits = false;
    if (a.size() == 5 && !unit_arg(s, c, a[4], in_bits)) return;
    r = clamp_range(start, end, in_bits ? len * 8 : len, in_bits);
  } else if (a.size() != 2) {
    s.add_error(c, syntax_error);
    return;
  }
  s.reply(c).integer(r.first > r.last ? 0 : count_bits(*v, r.first, r.last));
}

void cmd_bitpos(server& s, client& c, args_t a) {
  long long bit;
  if (!integer_arg(s, c, a[2], bit)) return;
  if (bit != 0 && bit != 1) {
    s.add_error(c, "ERR The bit argument must be 1 or 0.");
    return;
  }
  bool wrong;
  const std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  if (!v) {  // an endless run of zero bits
    s.reply(c).integer(bit ? -1 : 0);
    return;
  }
  const auto len = static_cast<long long>(v->size());
  bit_range r{0, len * 8 - 1};
  bool end_given = false;
  if (a.size() >= 4 && a.size() <= 6) {
    long long start, end = 0;
    if (!integer_arg(s, c, a[3], start)) return;
    bool in_bits = false;
    if (a.size() == 6 && !unit_arg(s, c, a[5], in_bits)) return;
    if (a.size() >= 5) {
      if (!integer_arg(s, c, a[4], end)) return;
      end_given = true;
    } else {
      end = len - 1;
    }
    r = clamp_range(start, end, in_bits ? len * 8 : len, in_bits);
  } else if (a.size() != 3) {
    s.add_error(c, syntax_error);
    return;
  }
  if (r.first > r.last) {  // an empty range holds neither a 0 nor a 1
    s.reply(c).integer(-1);
    return;
  }
  const long long pos = find_bit(*v, r.first, r.last, static_cast<int>(bit));
  // Clear bits past the string's end count as found unless the caller gave the end.
  if (pos < 0 && bit == 0 && !end_given) s.reply(c).integer(r.last + 1);
  else s.reply(c).integer(pos);
}

void cmd_bitop(server& s, client& c, args_t a) {
  enum class op_kind { and_, or_, xor_, not_ } op;
  if (iequals(a[1], "and")) op = op_kind::and_;
  else if (iequals(a[1], "or")) op = op_kind::or_;
  else if (iequals(a[1], "xor")) op = op_kind::xor_;
  else if (iequals(a[1], "not")) op = op_kind::not_;
  else {
    s.add_error(c, syntax_error);
    return;
  }
  if (op == op_kind::not_ && a.size() != 4) {
    s.add_error(c, "ERR BITOP NOT must be called with a single source key.");
    return;
  }
  std::vector<std::string_view> src;
  std::size_t longest = 0;
  {
    server::read_lookups reading(s);
    for (std::size_t i = 3; i < a.size(); ++i) {
      bool wrong;
      const std::string* v = lookup_string(s, c, a[i], wrong);
      if (wrong) return;
      src.push_back(v ? std::string_view(*v) : std::string_view());
      longest = std::max(longest, src.back().size());
    }
  }
  const std::string_view dst = a[2];
  if (longest == 0) {  // every source empty or missing: the destination is deleted
    if (s.db().erase(dst)) {
      s.add_dirty();
      s.key_deleted(dst);
      s.signal_modified_key(dst);
      s.notify(notify_generic, "del", dst);
    }
    s.keys_signalled();
    s.reply(c).integer(0);
    return;
  }
  std::string out(longest, '\0');
  for (std::size_t j = 0; j < longest; ++j) {
    auto byte = [&](std::size_t i) { return j < src[i].size() ? static_cast<unsigned char>(src[i][j]) : 0u; };
    unsigned r = byte(0);
    if (op == op_kind::not_) r = ~r;
    for (std::size_t i = 1; i < src.size(); ++i) {
      if (op == op_kind::and_) r &= byte(i);
      else if (op == op_kind::or_) r |= byte(i);
      else r ^= byte(i);
    }
    out[j] = static_cast<char>(r);
  }
  // The result replaces the destination, its deadline too (Redis's setKey).
  value& v = s.db().create(dst, value_type::string);
  v.str() = std::move(out);
  v.str_enc = string_encoding::raw;
  s.add_dirty();
  s.signal_modified_key(dst);
  s.keys_signalled();
  s.notify(notify_string, "set", dst);
  s.reply(c).integer(static_cast<long long>(longest));
}

void cmd_bitfield(server& s, client& c, args_t a) { bitfield_generic(s, c, a, false); }
void cmd_bitfield_ro(server& s, client& c, args_t a) { bitfield_generic(s, c, a, true); }

}  // namespace respq::core
