// set_value: see set_value.hpp.
#include "broker/core/set_value.hpp"

#include "broker/core/encoding_limits.hpp"
#include "broker/core/slot_table.hpp"
#include "resp/ascii.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <new>

namespace respq::core {

// ---- construction ------------------------------------------------------------------

set_value::set_value(const set_value& o) : cap_(o.cap_), size_(o.size_), blob_bytes_(o.blob_bytes_), width_(o.width_) {
  if (!o.data_) return;
  if (o.is_intset()) {
    data_ = std::malloc(cap_ * width_);
    if (!data_) throw std::bad_alloc();
    std::memcpy(data_, o.data_, size_ * width_);
    return;
  }
  data_ = slot_table::allocate(cap_);
  for (std::size_t i = 0; i < cap_; ++i) {
    std::uint64_t s = o.slots()[i];
    if (!s) continue;
    std::string_view m = blob_view(s);
    const unsigned char* src = slot_table::block_of(s);
    const std::size_t n = static_cast<std::size_t>(reinterpret_cast<const unsigned char*>(m.data()) - src) + m.size();
    auto* b = static_cast<unsigned char*>(std::malloc(n));
    if (!b) throw std::bad_alloc();
    std::memcpy(b, src, n);
    slots()[i] = slot_table::with_block(s, b);
  }
}

set_value& set_value::operator=(const set_value& o) {
  if (this != &o) {
    set_value copy(o);
    *this = std::move(copy);
  }
  return *this;
}

set_value::set_value(set_value&& o) noexcept
    : data_(o.data_), cap_(o.cap_), size_(o.size_), blob_bytes_(o.blob_bytes_), width_(o.width_) {
  o.data_ = nullptr;
  o.cap_ = o.size_ = o.blob_bytes_ = 0;
  o.width_ = 0;
}

set_value& set_value::operator=(set_value&& o) noexcept {
  if (this != &o) {
    clear();
    data_ = o.data_;
    cap_ = o.cap_;
    size_ = o.size_;
    blob_bytes_ = o.blob_bytes_;
    width_ = o.width_;
    o.data_ = nullptr;
    o.cap_ = o.size_ = o.blob_bytes_ = 0;
    o.width_ = 0;
  }
  return *this;
}

set_value::~set_value() { clear(); }

void set_value::clear() {
  if (data_ && !is_intset())
    for (std::size_t i = 0; i < cap_; ++i)
      if (slots()[i]) std::free(slot_table::block_of(slots()[i]));
  std::free(data_);
  data_ = nullptr;
  cap_ = size_ = blob_bytes_ = 0;
  width_ = 0;
}

std::size_t set_value::memory_usage() const {
  if (!data_) return 0;
  if (is_intset()) return cap_ * width_;
  return cap_ * sizeof(std::uint64_t) + blob_bytes_;
}

bool set_value::as_integer(std::string_view m, long long& out) { return string2ll(m, out); }

// ---- public operations -------------------------------------------------------------

bool set_value::contains(std::string_view m) const {
  if (is_intset()) {
    long long v;
    std::size_t pos;
    return size_ && as_integer(m, v) && find_int(v, pos);
  }
  return find_slot(m, hash_bytes(m)) != cap_;
}

bool set_value::insert(std::string_view m) {
  if (is_intset()) {
    long long v;
    if (as_integer(m, v)) {
      std::size_t pos;
      if (size_ && find_int(v, pos)) return false;
      if (size_ < encoding_limits::set_max_intset_entries()) return insert_int(v);
      to_table(size_ + 1);
    } else {
      to_table(size_ + 1);
    }
  }
  const std::uint64_t h = hash_bytes(m);
  if (find_slot(m, h) != cap_) return false;
  if ((size_ + 1) * 4 > cap_ * 3) rehash(cap_ * 2);
  // The blob: LEB128 length, then the bytes.
  unsigned char prefix[10];
  std::size_t plen = 0;
  for (std::size_t len = m.size();; len >>= 7) {
    prefix[plen++] = static_cast<unsigned char>((len & 0x7f) | (len >= 0x80 ? 0x80 : 0));
    if (len < 0x80) break;
  }
  auto* b = static_cast<unsigned char*>(std::malloc(plen + m.size()));
  if (!b) throw std::bad_alloc();
  std::memcpy(b, prefix, plen);
  if (!m.empty()) std::memcpy(b + plen, m.data(), m.size());
  place(slot_table::make_slot(b, h), h);
  ++size_;
  blob_bytes_ += blob_size(m.size());
  return true;
}

bool set_value::erase(std::string_view m) {
  if (is_intset()) {
    long long v;
    std::size_t pos;
    if (!size_ || !as_integer(m, v) || !find_int(v, pos)) return false;
    erase_at(pos);
    return true;
  }
  std::size_t i = find_slot(m, hash_bytes(m));
  if (i == cap_) return false;
  erase_at(i);
  return true;
}

bool set_value::intset_eligible() const {
  if (size_ > encoding_limits::set_max_intset_entries()) return false;
  if (is_intset()) return true;
  bool all = true;
  for_each([&](std::string_view m) {
    long long v;
    if (all && !as_integer(m, v)) all = false;
  });
  return all;
}

void set_value::reserve(std::size_t n) {
  if (is_intset()) {
    if (n > encoding_limits::set_max_intset_entries()) to_table(n);
    return;
  }
  if (n * 4 > cap_ * 3) rehash(slot_table::capacity_for(n));
}

std::uint64_t set_value::random_u64() { return slot_table::random_u64(); }

std::size_t set_value::random_position() const {
  if (is_intset()) return static_cast<std::size_t>(slot_table::random_u64() % size_);
  return slot_table::random_slot(slots(), cap_);
}

std::string_view set_value::member_at(std::size_t pos, member_buf& buf) const {
  if (is_intset()) return format_int(int_at(pos), buf);
  return blob_view(slots()[pos]);
}

void set_value::erase_at(std::size_t pos) {
  if (is_intset()) {
    std::memmove(ints() + pos * width_, ints() + (pos + 1) * width_, (size_ - pos - 1) * width_);
    --size_;
    return;
  }
  erase_slot(pos);
  maybe_shrink();
}

std::string set_value::pop_random() {
  member_buf buf;
  const std::size_t pos = random_position();
  std::string out(member_at(pos, buf));
  erase_at(pos);
  return out;
}

// ---- intset ------------------------------------------------------------------------

long long set_value::int_at(std::size_t i) const {
  const unsigned char* p = ints() + i * width_;
  switch (width_) {
    case 2: {
      std::int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case 4: {
      std::int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    default: {
      std::int64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
  }
}

void set_value::set_int_at(std::size_t i, long long x) {
  unsigned char* p = ints() + i * width_;
  switch (width_) {
    case 2: {
      auto v = static_cast<std::int16_t>(x);
      std::memcpy(p, &v, 2);
      break;
    }
    case 4: {
      auto v = static_cast<std::int32_t>(x);
      std::memcpy(p, &v, 4);
      break;
    }
    default: {
      std::int64_t v = x;
      std::memcpy(p, &v, 8);
    }
  }
}

// Binary search: true and the index when found, else false and where v would go.
bool set_value::find_int(long long v, std::size_t& pos) const {
  std::size_t lo = 0, hi = size_;
  while (lo < hi) {
    std::size_t mid = lo + (hi - lo) / 2;
    long long x = int_at(mid);
    if (x == v) {
      pos = mid;
      return true;
    }
    if (x < v) lo = mid + 1;
    else hi = mid;
  }
  pos = lo;
  return false;
}

bool set_value::insert_int(long long v) {
  const std::uint8_t need = v >= INT16_MIN && v <= INT16_MAX ? 2 : v >= INT32_MIN && v <= INT32_MAX ? 4 : 8;
  if (need > width_ || size_ == cap_) {
    // Widen (every member re-encoded) and/or grow the array.
    const std::uint8_t w = need > width_ ? need : width_;
    const std::size_t cap = size_ == cap_ ? (cap_ ? cap_ * 2 : 4) : cap_;
    auto* p = static_cast<unsigned char*>(std::malloc(cap * w));
    if (!p) throw std::bad_alloc();
    set_value old(std::move(*this));
    data_ = p;
    cap_ = cap;
    width_ = w;
    size_ = old.size_;
    if (w == old.width_) std::memcpy(p, old.data_, old.size_ * w);
    else
      for (std::size_t i = 0; i < size_; ++i) set_int_at(i, old.int_at(i));
  }
  std::size_t pos;
  find_int(v, pos);
  std::memmove(ints() + (pos + 1) * width_, ints() + pos * width_, (size_ - pos) * width_);
  set_int_at(pos, v);
  ++size_;
  return true;
}

void set_value::to_table(std::size_t capacity_for) {
  set_value old(std::move(*this));
  const std::size_t cap = slot_table::capacity_for(capacity_for);
  data_ = slot_table::allocate(cap);
  cap_ = cap;
  width_ = 0;
  old.for_each([&](std::string_view m) { insert(m); });
}

std::string_view set_value::format_int(long long v, member_buf& buf) {
  auto r = std::to_chars(buf.data, buf.data + sizeof(buf.data), v);
  return std::string_view(buf.data, static_cast<std::size_t>(r.ptr - buf.data));
}

// ---- table -------------------------------------------------------------------------

std::string_view set_value::blob_view(std::uint64_t slot) {
  const unsigned char* p = slot_table::block_of(slot);
  std::size_t len = 0;
  int shift = 0;
  for (;;) {
    unsigned char b = *p++;
    len |= static_cast<std::size_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
    shift += 7;
  }
  return std::string_view(reinterpret_cast<const char*>(p), len);
}

std::size_t set_value::blob_size(std::size_t len) {
  std::size_t plen = 1;
  for (std::size_t l = len; l >= 0x80; l >>= 7) ++plen;
  return (plen + len + 15) & ~std::size_t{15};
}

std::uint64_t set_value::hash_bytes(std::string_view s) { return slot_table::hash(s); }

std::size_t set_value::find_slot(std::string_view m, std::uint64_t h) const {
  return slot_table::find(slots(), cap_, m, h, blob_view);
}

void set_value::place(std::uint64_t slot, std::uint64_t h) { slot_table::place(slots(), cap_, slot, h); }

void set_value::rehash(std::size_t new_cap) {
  data_ = slot_table::rehash(slots(), cap_, new_cap, blob_view);
  cap_ = new_cap;
}

void set_value::erase_slot(std::size_t i) {
  const std::uint64_t s = slots()[i];
  blob_bytes_ -= blob_size(blob_view(s).size());
  slot_table::erase(slots(), cap_, i, blob_view);
  std::free(slot_table::block_of(s));
  --size_;
}

void set_value::maybe_shrink() {
  if (const std::size_t cap = slot_table::shrunk_capacity(cap_, size_); cap < cap_) rehash(cap);
}

}  // namespace respq::core
