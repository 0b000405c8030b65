// hash_value: see hash_value.hpp.
#include "broker/core/hash_value.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "broker/core/encoding_limits.hpp"

namespace respq::core {

namespace {

// LEB128 lengths at the head of a block.
std::size_t len_size(std::size_t n) {
  std::size_t b = 1;
  for (; n >= 0x80; n >>= 7) ++b;
  return b;
}

unsigned char* put_len(unsigned char* p, std::size_t n) {
  for (;; n >>= 7) {
    *p++ = static_cast<unsigned char>((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    if (n < 0x80) return p;
  }
}

std::size_t get_len(const unsigned char*& p) {
  std::size_t n = 0;
  for (int shift = 0;; shift += 7) {
    const unsigned char b = *p++;
    n |= static_cast<std::size_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return n;
  }
}

// Whether a field or stored value is too long for a small hash (hash_value.hpp).
bool too_long(std::string_view stored) {
  const std::size_t most = encoding_limits::hash_max_value();
  if (stored.empty() || stored[0] != '\xff') return stored.size() > most;
  if (stored.size() >= 2 && stored[1] == '\0') return stored.size() - 2 > most;
  return true;  // a packed task envelope
}

// A block's size as counted for memory_usage: the allocator's 16-byte granularity.
std::size_t rounded(std::size_t n) { return (n + 15) & ~std::size_t{15}; }

// The bytes a slot's block spans.
std::size_t span_of(std::uint64_t slot, const hash_value::entry& e) {
  return static_cast<std::size_t>(reinterpret_cast<const unsigned char*>(e.value.data() + e.value.size()) -
                                  slot_table::block_of(slot));
}

}  // namespace

hash_value::entry hash_value::entry_of(std::uint64_t slot) {
  const unsigned char* p = slot_table::block_of(slot);
  const std::size_t flen = get_len(p);
  const std::size_t vlen = get_len(p);
  const char* f = reinterpret_cast<const char*>(p);
  return entry{std::string_view(f, flen), std::string_view(f + flen, vlen)};
}

std::size_t hash_value::block_size(std::size_t field_len, std::size_t value_len) {
  return len_size(field_len) + len_size(value_len) + field_len + value_len;
}

unsigned char* hash_value::make_block(std::string_view field, std::string_view value) {
  auto* b = static_cast<unsigned char*>(std::malloc(block_size(field.size(), value.size())));
  if (!b) throw std::bad_alloc();
  unsigned char* p = put_len(put_len(b, field.size()), value.size());
  if (!field.empty()) std::memcpy(p, field.data(), field.size());
  if (!value.empty()) std::memcpy(p + field.size(), value.data(), value.size());
  return b;
}

// ---- construction ------------------------------------------------------------------

hash_value::hash_value(const hash_value& o)
    : cap_(o.cap_), size_(o.size_), block_bytes_(o.block_bytes_), ordered_(o.ordered_) {
  if (!o.slots_) return;
  slots_ = slot_table::allocate(cap_);
  for (std::size_t i = 0; i < cap_; ++i) {
    const std::uint64_t s = o.slots_[i];
    if (!s) continue;
    const std::size_t n = span_of(s, entry_of(s));
    auto* b = static_cast<unsigned char*>(std::malloc(n));
    if (!b) {
      clear();  // the blocks copied so far (the slots not reached yet are still empty)
      throw std::bad_alloc();
    }
    std::memcpy(b, slot_table::block_of(s), n);
    slots_[i] = slot_table::with_block(s, b);
  }
}

hash_value& hash_value::operator=(const hash_value& o) {
  if (this != &o) {
    hash_value copy(o);
    *this = std::move(copy);
  }
  return *this;
}

hash_value::hash_value(hash_value&& o) noexcept
    : slots_(o.slots_), cap_(o.cap_), size_(o.size_), block_bytes_(o.block_bytes_), ordered_(o.ordered_) {
  o.slots_ = nullptr;
  o.cap_ = o.size_ = o.block_bytes_ = 0;
  o.ordered_ = true;
}

hash_value& hash_value::operator=(hash_value&& o) noexcept {
  if (this != &o) {
    clear();
    slots_ = o.slots_;
    cap_ = o.cap_;
    size_ = o.size_;
    block_bytes_ = o.block_bytes_;
    ordered_ = o.ordered_;
    o.slots_ = nullptr;
    o.cap_ = o.size_ = o.block_bytes_ = 0;
    o.ordered_ = true;
  }
  return *this;
}

hash_value::~hash_value() { clear(); }

void hash_value::clear() {
  if (slots_)
    for (std::size_t i = 0; i < cap_; ++i)
      if (slots_[i]) std::free(slot_table::block_of(slots_[i]));
  std::free(slots_);
  slots_ = nullptr;
  cap_ = size_ = block_bytes_ = 0;
  ordered_ = true;
}

std::size_t hash_value::memory_usage() const { return cap_ * sizeof(std::uint64_t) + block_bytes_; }

// ---- changes -----------------------------------------------------------------------

void hash_value::grow_for(std::size_t n) {
  if (ordered_) {
    // An array in insertion order: doubled when full.
    if (!slots_) {
      cap_ = slot_table::min_capacity;
      slots_ = slot_table::allocate(cap_);
    } else if (n > cap_) {
      std::uint64_t* bigger = slot_table::allocate(cap_ * 2);
      std::memcpy(bigger, slots_, size_ * sizeof(std::uint64_t));
      std::free(slots_);
      slots_ = bigger;
      cap_ *= 2;
    }
  } else if (!slots_) {
    cap_ = slot_table::capacity_for(n);
    slots_ = slot_table::allocate(cap_);
  } else if (n * 4 > cap_ * 3) {
    slots_ = slot_table::rehash(slots_, cap_, cap_ * 2, field_of);
    cap_ *= 2;
  }
}

std::size_t hash_value::find_index(std::string_view field, std::uint64_t h) const {
  if (!ordered_) return slot_table::find(slots_, cap_, field, h, field_of);
  const std::uint64_t tag = h & ~slot_table::pointer_mask;
  for (std::size_t i = 0; i < size_; ++i)
    if ((slots_[i] & ~slot_table::pointer_mask) == tag && field_of(slots_[i]) == field) return i;
  return cap_;
}

void hash_value::to_table() {
  const std::size_t c = slot_table::capacity_for(size_);
  std::uint64_t* t = slot_table::allocate(c);
  for (std::size_t i = 0; i < size_; ++i) slot_table::place(t, c, slots_[i], slot_table::hash(field_of(slots_[i])));
  std::free(slots_);
  slots_ = t;
  cap_ = c;
  ordered_ = false;
}

bool hash_value::set(std::string_view field, std::string_view value, bool lengths_convert) {
  const std::uint64_t h = slot_table::hash(field);
  // As Redis's hashTypeSet: converted by the lengths given (the field's too, when it is
  // already there: a RESTOREd listpack may hold a long one), then by the count after the
  // write (a value set again converts too, when the limit was lowered meanwhile).
  const bool long_entry =
      lengths_convert && (too_long(value) || field.size() > encoding_limits::hash_max_value());
  const std::size_t most = encoding_limits::hash_max_entries();
  if (const std::size_t i = find_index(field, h); i != cap_) {
    assign(iterator(slots_, cap_, i), value);
    if (ordered_ && (long_entry || size_ > most)) to_table();
    return false;
  }
  insert_new(field, value, h, long_entry);
  return true;
}

void hash_value::add_new(std::string_view field, std::string_view value, bool lengths_convert) {
  const bool long_entry =
      lengths_convert && (too_long(value) || field.size() > encoding_limits::hash_max_value());
  insert_new(field, value, slot_table::hash(field), long_entry);
}

void hash_value::insert_new(std::string_view field, std::string_view value, std::uint64_t h, bool long_entry) {
  const std::size_t most = encoding_limits::hash_max_entries();
  if (ordered_ && slots_ && (size_ + 1 > most || long_entry)) to_table();
  grow_for(size_ + 1);
  unsigned char* b = make_block(field, value);
  const std::uint64_t slot = slot_table::make_slot(b, h);
  if (ordered_) slots_[size_] = slot;
  else slot_table::place(slots_, cap_, slot, h);
  ++size_;
  block_bytes_ += rounded(block_size(field.size(), value.size()));
  // A first field too long for a small hash (or a limit of 0): a table from the start.
  if (ordered_ && (long_entry || size_ > most)) to_table();
}

void hash_value::assign(iterator it, std::string_view value) {
  std::uint64_t& slot = slots_[it.i_];
  unsigned char* old = slot_table::block_of(slot);
  const entry e = entry_of(slot);
  const std::size_t old_n = span_of(slot, e);
  const std::size_t new_n = block_size(e.field.size(), value.size());
  const auto* v = reinterpret_cast<const unsigned char*>(value.data());
  if (v >= old && v < old + old_n) {  // the new value is a part of this block: copy it first
    const std::string copy(value);
    assign(it, copy);
    return;
  }
  unsigned char* b;
  if (len_size(value.size()) == len_size(e.value.size())) {
    // Same layout up to the value: the block is resized (in place when the allocator can)
    // and only the value's length and bytes are written.
    b = static_cast<unsigned char*>(std::realloc(old, new_n));
    if (!b) throw std::bad_alloc();
    unsigned char* p = put_len(b + len_size(e.field.size()), value.size()) + e.field.size();
    if (!value.empty()) std::memcpy(p, value.data(), value.size());
  } else {
    b = make_block(e.field, value);
    std::free(old);
  }
  slot = slot_table::with_block(slot, b);
  block_bytes_ = block_bytes_ - rounded(old_n) + rounded(new_n);
}

void hash_value::remove_slot(std::size_t i) {
  const std::uint64_t s = slots_[i];
  block_bytes_ -= rounded(span_of(s, entry_of(s)));
  if (ordered_) {
    // The fields after it move up one place: the order stays.
    std::memmove(slots_ + i, slots_ + i + 1, (size_ - i - 1) * sizeof(std::uint64_t));
    slots_[size_ - 1] = 0;
  } else {
    slot_table::erase(slots_, cap_, i, field_of);
  }
  std::free(slot_table::block_of(s));
  if (--size_ == 0) {
    clear();
    return;
  }
  if (ordered_) {
    if (cap_ > slot_table::min_capacity && size_ * 4 <= cap_) {
      std::uint64_t* smaller = slot_table::allocate(cap_ / 2);
      std::memcpy(smaller, slots_, size_ * sizeof(std::uint64_t));
      std::free(slots_);
      slots_ = smaller;
      cap_ /= 2;
    }
  } else if (const std::size_t c = slot_table::shrunk_capacity(cap_, size_); c < cap_) {
    slots_ = slot_table::rehash(slots_, cap_, c, field_of);
    cap_ = c;
  }
}

bool hash_value::erase(std::string_view field) {
  const std::size_t i = find_index(field, slot_table::hash(field));
  if (i == cap_) return false;
  remove_slot(i);
  return true;
}

void hash_value::erase(iterator it) { remove_slot(it.i_); }

}  // namespace respq::core
