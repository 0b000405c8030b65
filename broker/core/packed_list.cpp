// packed_list: see packed_list.hpp for the layout.
#include "broker/core/packed_list.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace respq::core {

namespace {

// A chunk's payload capacity once the list is past its first small chunk. With the
// 16-byte header a full chunk is one 8 KB allocation, Redis's list-max-listpack-size -2.
constexpr std::uint32_t default_cap = 8192 - 16;
constexpr std::uint32_t min_cap = 48;

inline std::size_t hdr_size(std::size_t len) { return len < 128 ? 1 : len < 16384 ? 2 : 5; }
inline std::size_t entry_size(std::size_t len) { return 2 * hdr_size(len) + len; }

// Writes <prefix><bytes><suffix> at p; returns the bytes written.
std::size_t write_entry(char* p, std::string_view v) {
  std::size_t len = v.size();
  unsigned char pre[5];
  std::size_t h;
  if (len < 128) {
    pre[0] = static_cast<unsigned char>(len);
    h = 1;
  } else if (len < 16384) {
    pre[0] = static_cast<unsigned char>(0x80 | (len >> 8));
    pre[1] = static_cast<unsigned char>(len & 0xFF);
    h = 2;
  } else {
    pre[0] = 0xC0;
    auto l32 = static_cast<std::uint32_t>(len);
    for (int i = 0; i < 4; ++i) pre[1 + i] = static_cast<unsigned char>((l32 >> (8 * i)) & 0xFF);
    h = 5;
  }
  std::memcpy(p, pre, h);
  if (len) std::memcpy(p + h, v.data(), len);
  for (std::size_t i = 0; i < h; ++i) p[h + len + i] = static_cast<char>(pre[h - 1 - i]);
  return 2 * h + len;
}

// Decodes the element whose prefix starts at p: sets its header size and length.
inline void decode_fwd(const char* p, std::size_t& h, std::size_t& len) {
  auto b0 = static_cast<unsigned char>(p[0]);
  if (b0 < 0x80) {
    h = 1;
    len = b0;
  } else if (b0 < 0xC0) {
    h = 2;
    len = (static_cast<std::size_t>(b0 & 0x3F) << 8) | static_cast<unsigned char>(p[1]);
  } else {
    h = 5;
    std::uint32_t l = 0;
    for (int i = 0; i < 4; ++i) l |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[1 + i])) << (8 * i);
    len = l;
  }
}

// Decodes the element that ends just before e (e points past its suffix).
inline void decode_back(const char* e, std::size_t& h, std::size_t& len) {
  auto t = static_cast<unsigned char>(e[-1]);
  if (t < 0x80) {
    h = 1;
    len = t;
  } else if (t < 0xC0) {
    h = 2;
    len = (static_cast<std::size_t>(t & 0x3F) << 8) | static_cast<unsigned char>(e[-2]);
  } else {
    h = 5;
    std::uint32_t l = 0;
    for (int i = 0; i < 4; ++i) l |= static_cast<std::uint32_t>(static_cast<unsigned char>(e[-2 - i])) << (8 * i);
    len = l;
  }
}

}  // namespace

struct packed_list::chunk {
  std::uint32_t cap;    // payload bytes
  std::uint32_t begin;  // offset of the first element
  std::uint32_t end;    // offset past the last element
  std::uint32_t count;  // elements
  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  std::uint32_t used() const { return end - begin; }
};
static_assert(sizeof(std::uint32_t) * 4 == 16);

packed_list::chunk* packed_list::new_chunk(std::size_t cap, bool fill_from_back) {
  void* mem = ::operator new(sizeof(chunk) + cap);
  auto* c = static_cast<chunk*>(mem);
  c->cap = static_cast<std::uint32_t>(cap);
  c->begin = c->end = fill_from_back ? c->cap : 0;
  c->count = 0;
  return c;
}

void packed_list::free_chunk(chunk* c) {
  allocated_ -= sizeof(chunk) + c->cap;
  ::operator delete(c);
}

packed_list::packed_list(packed_list&& o) noexcept
    : chunks_(std::move(o.chunks_)), size_(std::exchange(o.size_, 0)), allocated_(std::exchange(o.allocated_, 0)) {
  o.chunks_.clear();
}

packed_list& packed_list::operator=(packed_list&& o) noexcept {
  if (this != &o) {
    clear();
    chunks_ = std::move(o.chunks_);
    o.chunks_.clear();
    size_ = std::exchange(o.size_, 0);
    allocated_ = std::exchange(o.allocated_, 0);
  }
  return *this;
}

packed_list::~packed_list() { clear(); }

void packed_list::clear() {
  for (chunk* c : chunks_) ::operator delete(c);
  chunks_.clear();
  size_ = 0;
  allocated_ = 0;
}

// Capacity for a new end chunk that must hold `need` bytes: small while the list is
// small (many short lists stay cheap), the default once the list spans chunks, and
// exactly `need` for an element larger than a chunk.
static std::size_t cap_for(std::size_t need, bool list_is_large) {
  if (need > default_cap) return need;
  if (list_is_large) return default_cap;
  std::size_t cap = min_cap;
  while (cap < need) cap *= 2;
  return std::min<std::size_t>(cap, default_cap);
}

void packed_list::push_back(std::string_view v) {
  const std::size_t need = entry_size(v.size());
  chunk* c = chunks_.empty() ? nullptr : chunks_.back();
  if (c && c->cap - c->end < need) {
    const std::size_t used = c->used();
    if (used + need <= c->cap && c->begin >= need) {
      // Room at the front from earlier pops: slide the elements down.
      std::memmove(c->data(), c->data() + c->begin, used);
      c->begin = 0;
      c->end = static_cast<std::uint32_t>(used);
    } else if (used + need <= default_cap && c->cap < default_cap) {
      // A small chunk grows (doubling) until it reaches the default size.
      std::size_t cap = std::max<std::size_t>(c->cap * 2, used + need);
      cap = std::min<std::size_t>(cap, default_cap);
      chunk* n = new_chunk(cap, false);
      std::memcpy(n->data(), c->data() + c->begin, used);
      n->end = static_cast<std::uint32_t>(used);
      n->count = c->count;
      allocated_ += sizeof(chunk) + n->cap;
      free_chunk(c);
      chunks_.back() = c = n;
    } else {
      c = nullptr;
    }
  }
  if (!c) {
    c = new_chunk(cap_for(need, !chunks_.empty()), false);
    allocated_ += sizeof(chunk) + c->cap;
    chunks_.push_back(c);
  }
  write_entry(c->data() + c->end, v);
  c->end += static_cast<std::uint32_t>(need);
  ++c->count;
  ++size_;
}

void packed_list::push_front(std::string_view v) {
  const std::size_t need = entry_size(v.size());
  chunk* c = chunks_.empty() ? nullptr : chunks_.front();
  if (c && c->begin < need) {
    const std::size_t used = c->used();
    if (used + need <= c->cap && c->cap - c->end >= need) {
      std::memmove(c->data() + c->cap - used, c->data() + c->begin, used);
      c->begin = static_cast<std::uint32_t>(c->cap - used);
      c->end = c->cap;
    } else if (used + need <= default_cap && c->cap < default_cap) {
      std::size_t cap = std::max<std::size_t>(c->cap * 2, used + need);
      cap = std::min<std::size_t>(cap, default_cap);
      chunk* n = new_chunk(cap, true);
      n->begin = static_cast<std::uint32_t>(n->cap - used);
      std::memcpy(n->data() + n->begin, c->data() + c->begin, used);
      n->count = c->count;
      allocated_ += sizeof(chunk) + n->cap;
      free_chunk(c);
      chunks_.front() = c = n;
    } else {
      c = nullptr;
    }
  }
  if (!c) {
    c = new_chunk(cap_for(need, !chunks_.empty()), true);
    allocated_ += sizeof(chunk) + c->cap;
    chunks_.push_front(c);
  }
  c->begin -= static_cast<std::uint32_t>(need);
  write_entry(c->data() + c->begin, v);
  ++c->count;
  ++size_;
}

std::string_view packed_list::front() const {
  const chunk* c = chunks_.front();
  std::size_t h, len;
  decode_fwd(c->data() + c->begin, h, len);
  return {c->data() + c->begin + h, len};
}

std::string_view packed_list::back() const {
  const chunk* c = chunks_.back();
  std::size_t h, len;
  decode_back(c->data() + c->end, h, len);
  return {c->data() + c->end - h - len, len};
}

void packed_list::pop_front() {
  chunk* c = chunks_.front();
  std::size_t h, len;
  decode_fwd(c->data() + c->begin, h, len);
  c->begin += static_cast<std::uint32_t>(2 * h + len);
  --size_;
  if (--c->count == 0) {
    free_chunk(c);
    chunks_.pop_front();
  }
}

void packed_list::pop_back() {
  chunk* c = chunks_.back();
  std::size_t h, len;
  decode_back(c->data() + c->end, h, len);
  c->end -= static_cast<std::uint32_t>(2 * h + len);
  --size_;
  if (--c->count == 0) {
    free_chunk(c);
    chunks_.pop_back();
  }
}

void packed_list::locate(std::size_t i, std::size_t& ci, std::uint32_t& off) const {
  if (i < size_ / 2) {
    ci = 0;
    while (i >= chunks_[ci]->count) i -= chunks_[ci++]->count;
  } else {
    std::size_t from_back = size_ - 1 - i;  // 0 = last element
    ci = chunks_.size() - 1;
    while (from_back >= chunks_[ci]->count) from_back -= chunks_[ci--]->count;
    i = chunks_[ci]->count - 1 - from_back;
  }
  const chunk* c = chunks_[ci];
  std::size_t h, len;
  if (i <= c->count / 2) {
    std::uint32_t o = c->begin;
    for (; i > 0; --i) {
      decode_fwd(c->data() + o, h, len);
      o += static_cast<std::uint32_t>(2 * h + len);
    }
    off = o;
  } else {
    std::uint32_t e = c->end;
    for (std::size_t k = c->count - i; k > 0; --k) {
      decode_back(c->data() + e, h, len);
      e -= static_cast<std::uint32_t>(2 * h + len);
    }
    off = e;
  }
}

std::string_view packed_list::at(std::size_t i) const {
  std::size_t ci;
  std::uint32_t off;
  locate(i, ci, off);
  const chunk* c = chunks_[ci];
  std::size_t h, len;
  decode_fwd(c->data() + off, h, len);
  return {c->data() + off + h, len};
}

void packed_list::drop_chunk_if_empty(std::size_t ci) {
  if (chunks_[ci]->count == 0) {
    free_chunk(chunks_[ci]);
    chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(ci));
  }
}

// Replaces remove_len bytes at offset off of chunk ci with one encoded element `insert`
// (or nothing when insert is null-data). In place when it fits; otherwise the chunk's
// elements are repacked into as many default-size chunks as they need.
void packed_list::rebuild_chunk(std::size_t ci, std::uint32_t off, std::size_t remove_len, std::string_view insert) {
  chunk* c = chunks_[ci];
  const bool has_insert = insert.data() != nullptr;
  const std::size_t ins_len = has_insert ? entry_size(insert.size()) : 0;
  const std::size_t removed_elems = remove_len ? 1 : 0;
  const std::size_t new_used = c->used() - remove_len + ins_len;
  if (new_used <= c->cap) {
    if (c->end - remove_len + ins_len > c->cap) {
      // Not enough room after the data: move everything to the front first.
      std::uint32_t shift = c->begin;
      std::memmove(c->data(), c->data() + c->begin, c->used());
      c->begin = 0;
      c->end -= shift;
      off -= shift;
    }
    char* p = c->data() + off;
    std::memmove(p + ins_len, p + remove_len, c->end - off - remove_len);
    if (has_insert) write_entry(p, insert);
    c->end = static_cast<std::uint32_t>(c->end - remove_len + ins_len);
    c->count = static_cast<std::uint32_t>(c->count - removed_elems + (has_insert ? 1 : 0));
    size_ = size_ - removed_elems + (has_insert ? 1 : 0);
    drop_chunk_if_empty(ci);
    return;
  }
  // Repack: gather the chunk's elements with the change applied.
  std::vector<std::string> elems;
  elems.reserve(c->count + 1);
  std::size_t h, len;
  for (std::uint32_t o = c->begin; o < c->end;) {
    if (o == off) {
      if (has_insert) elems.emplace_back(insert);
      if (remove_len) {
        o += static_cast<std::uint32_t>(remove_len);
        continue;
      }
    }
    decode_fwd(c->data() + o, h, len);
    elems.emplace_back(c->data() + o + h, len);
    o += static_cast<std::uint32_t>(2 * h + len);
  }
  if (off == c->end && has_insert) elems.emplace_back(insert);
  std::vector<chunk*> fresh;
  chunk* cur = nullptr;
  for (const auto& e : elems) {
    std::size_t need = entry_size(e.size());
    if (!cur || cur->cap - cur->end < need) {
      cur = new_chunk(std::max<std::size_t>(default_cap, need), false);
      allocated_ += sizeof(chunk) + cur->cap;
      fresh.push_back(cur);
    }
    write_entry(cur->data() + cur->end, e);
    cur->end += static_cast<std::uint32_t>(need);
    ++cur->count;
  }
  size_ = size_ - removed_elems + (has_insert ? 1 : 0);
  free_chunk(c);
  chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(ci));
  chunks_.insert(chunks_.begin() + static_cast<std::ptrdiff_t>(ci), fresh.begin(), fresh.end());
}

void packed_list::set(std::size_t i, std::string_view v) {
  std::size_t ci;
  std::uint32_t off;
  locate(i, ci, off);
  chunk* c = chunks_[ci];
  std::size_t h, len;
  decode_fwd(c->data() + off, h, len);
  if (hdr_size(v.size()) == h && v.size() == len) {
    if (len) std::memcpy(c->data() + off + h, v.data(), len);
    return;
  }
  // Remove and insert in one step; rebuild_chunk keeps size_ consistent.
  if (v.data() == nullptr) v = std::string_view("", 0);
  rebuild_chunk(ci, off, 2 * h + len, v);
}

void packed_list::insert(std::size_t i, std::string_view v) {
  if (i == 0) return push_front(v);
  if (i >= size_) return push_back(v);
  if (v.data() == nullptr) v = std::string_view("", 0);
  std::size_t ci;
  std::uint32_t off;
  locate(i, ci, off);
  rebuild_chunk(ci, off, 0, v);
}

void packed_list::erase(std::size_t i) {
  std::size_t ci;
  std::uint32_t off;
  locate(i, ci, off);
  std::size_t h, len;
  decode_fwd(chunks_[ci]->data() + off, h, len);
  rebuild_chunk(ci, off, 2 * h + len, std::string_view());
}

void packed_list::keep_range(std::size_t start, std::size_t count) {
  if (start >= size_ || count == 0) {
    clear();
    return;
  }
  count = std::min(count, size_ - start);
  std::size_t drop_back = size_ - start - count;
  // Whole chunks first, then element by element inside the end chunks.
  while (start > 0 && chunks_.front()->count <= start) {
    start -= chunks_.front()->count;
    size_ -= chunks_.front()->count;
    free_chunk(chunks_.front());
    chunks_.pop_front();
  }
  for (; start > 0; --start) pop_front();
  while (drop_back > 0 && chunks_.back()->count <= drop_back) {
    drop_back -= chunks_.back()->count;
    size_ -= chunks_.back()->count;
    free_chunk(chunks_.back());
    chunks_.pop_back();
  }
  for (; drop_back > 0; --drop_back) pop_back();
}

std::size_t packed_list::remove(std::string_view v, long long count) {
  // -count would overflow for the smallest long long: compute the magnitude unsigned.
  std::size_t limit = count == 0 ? size_
                                 : (count < 0 ? static_cast<std::size_t>(-(count + 1)) + 1 : static_cast<std::size_t>(count));
  std::size_t removed = 0;
  std::size_t h, len;
  if (count >= 0) {
    for (std::size_t ci = 0; ci < chunks_.size() && removed < limit;) {
      chunk* c = chunks_[ci];
      for (std::uint32_t o = c->begin; o < c->end && removed < limit;) {
        decode_fwd(c->data() + o, h, len);
        std::uint32_t total = static_cast<std::uint32_t>(2 * h + len);
        if (len == v.size() && std::memcmp(c->data() + o + h, v.data(), len) == 0) {
          std::memmove(c->data() + o, c->data() + o + total, c->end - o - total);
          c->end -= total;
          --c->count;
          --size_;
          ++removed;
        } else {
          o += total;
        }
      }
      if (c->count == 0) {
        free_chunk(c);
        chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(ci));
      } else {
        ++ci;
      }
    }
  } else {
    for (std::size_t ci = chunks_.size(); ci-- > 0 && removed < limit;) {
      chunk* c = chunks_[ci];
      for (std::uint32_t e = c->end; e > c->begin && removed < limit;) {
        decode_back(c->data() + e, h, len);
        std::uint32_t total = static_cast<std::uint32_t>(2 * h + len);
        std::uint32_t o = e - total;
        if (len == v.size() && std::memcmp(c->data() + o + h, v.data(), len) == 0) {
          std::memmove(c->data() + o, c->data() + e, c->end - e);
          c->end -= total;
          --c->count;
          --size_;
          ++removed;
        }
        e = o;
      }
      if (c->count == 0) {
        free_chunk(c);
        chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(ci));
      }
    }
  }
  return removed;
}

packed_list::cursor packed_list::seek(std::size_t i) const {
  cursor cur;
  cur.list_ = this;
  if (i >= size_) return cur;
  std::uint32_t off;
  locate(i, cur.chunk_index_, off);
  cur.chunk_ = chunks_[cur.chunk_index_];
  cur.offset_ = off;
  return cur;
}

std::string_view packed_list::cursor::value() const {
  const auto* c = static_cast<const chunk*>(chunk_);
  std::size_t h, len;
  decode_fwd(c->data() + offset_, h, len);
  return {c->data() + offset_ + h, len};
}

void packed_list::cursor::next() {
  const auto* c = static_cast<const chunk*>(chunk_);
  std::size_t h, len;
  decode_fwd(c->data() + offset_, h, len);
  offset_ += static_cast<std::uint32_t>(2 * h + len);
  if (offset_ >= c->end) {
    if (++chunk_index_ >= list_->chunks_.size()) {
      chunk_ = nullptr;
      return;
    }
    c = list_->chunks_[chunk_index_];
    chunk_ = c;
    offset_ = c->begin;
  }
}

void packed_list::cursor::prev() {
  const auto* c = static_cast<const chunk*>(chunk_);
  if (offset_ == c->begin) {
    if (chunk_index_ == 0) {
      chunk_ = nullptr;
      return;
    }
    c = list_->chunks_[--chunk_index_];
    chunk_ = c;
    offset_ = c->end;
  }
  std::size_t h, len;
  decode_back(c->data() + offset_, h, len);
  offset_ -= static_cast<std::uint32_t>(2 * h + len);
}

}  // namespace respq::core
