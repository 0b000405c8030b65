// schedule: the tasks of one local queue that wait for a time (scheduled, or retrying
// after a failed attempt), earliest first. Owner: the task manager, on the broker thread.
//
// A queue may hold hundreds of thousands of waiting tasks, so an entry is kept small: a
// binary heap of 24-byte entries (due time; the id in 16 bytes: respq's generated ids,
// 24 lowercase hex digits, as their 12 bytes, other ids of up to 14 bytes as they are,
// longer ones on the heap; and the state) in a deque, whose blocks of a few hundred
// bytes are never regrown to twice the size with the old copy left behind, instead of a
// tree node per task with the id on the heap beside it. Ties on the due time go by id,
// so the order is the same as an ordered set's. Finding or removing a task by id walks
// the entries: TASK GET, TASK CANCEL and a client's writes to <queue>:inflight are rare.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>

#include "tasks/records.hpp"

namespace respq::tasks {

// An id in 16 bytes: 24 lowercase hex digits (the ids respq generates) as the 12 bytes
// they spell, up to 14 other bytes inline, else one heap block. One spare byte (aux) is
// the owner's. view() gives the text, rendered into the caller's buffer when packed.
class short_id {
 public:
  static constexpr std::size_t inline_max = 14;
  static constexpr std::size_t hex_len = 24;
  using buffer = std::array<char, hex_len>;
  short_id() : len_(0) {}
  explicit short_id(std::string_view s) {
    if (s.size() == hex_len && is_lower_hex(s)) {
      for (std::size_t i = 0; i < hex_len / 2; ++i)
        in_[i] = static_cast<char>(nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]));
      len_ = packed_hex;
    } else if (s.size() <= inline_max) {
      std::memcpy(in_, s.data(), s.size());
      len_ = static_cast<std::uint8_t>(s.size());
    } else {
      set_out(new std::string(s));
      len_ = heap;
    }
  }
  short_id(short_id&& o) noexcept : len_(o.len_), aux_(o.aux_) {
    std::memcpy(in_, o.in_, inline_max);
    o.len_ = 0;
  }
  short_id& operator=(short_id&& o) noexcept {
    if (this != &o) {
      release();
      std::memcpy(in_, o.in_, inline_max);
      len_ = o.len_;
      aux_ = o.aux_;
      o.len_ = 0;
    }
    return *this;
  }
  short_id(const short_id&) = delete;
  short_id& operator=(const short_id&) = delete;
  ~short_id() { release(); }

  // The id's text; valid while this id and `buf` are.
  std::string_view view(buffer& buf) const {
    if (len_ == heap) return *out();
    if (len_ != packed_hex) return {in_, len_};
    static constexpr char digits[] = "0123456789abcdef";
    for (std::size_t i = 0; i < hex_len / 2; ++i) {
      const auto b = static_cast<unsigned char>(in_[i]);
      buf[2 * i] = digits[b >> 4];
      buf[2 * i + 1] = digits[b & 15];
    }
    return {buf.data(), hex_len};
  }
  std::string str() const {
    buffer buf;
    return std::string(view(buf));
  }
  bool is(std::string_view id) const {
    buffer buf;
    return view(buf) == id;
  }
  std::uint8_t aux() const { return aux_; }
  void set_aux(std::uint8_t a) { aux_ = a; }

 private:
  static constexpr std::uint8_t heap = 0xff, packed_hex = 0xfe;
  static bool is_lower_hex(std::string_view s) {
    for (const char c : s)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
  }
  static int nibble(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }
  // A long id's block: its pointer in the first bytes (copied, so the id needs no alignment).
  std::string* out() const {
    std::string* p;
    std::memcpy(&p, in_, sizeof p);
    return p;
  }
  void set_out(std::string* p) { std::memcpy(in_, &p, sizeof p); }
  void release() {
    if (len_ == heap) delete out();
    len_ = 0;
  }
  char in_[inline_max];  // the bytes, or a long id's pointer
  std::uint8_t len_;
  std::uint8_t aux_ = 0;
};

class schedule {
 public:
  struct entry {
    double next_run = 0;  // unix seconds
    short_id id;          // its aux byte: the state
    custody_state state() const { return static_cast<custody_state>(id.aux()); }  // retrying or scheduled
  };

  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  // The earliest entry; the schedule must not be empty.
  const entry& front() const { return heap_.front(); }

  void insert(double next_run, std::string_view id, custody_state state) {
    heap_.push_back(entry{next_run, short_id(id)});
    heap_.back().id.set_aux(static_cast<std::uint8_t>(state));
    std::push_heap(heap_.begin(), heap_.end(), later);
  }
  // Takes the earliest entry out; the schedule must not be empty.
  entry pop() {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    entry e = std::move(heap_.back());
    heap_.pop_back();
    return e;
  }
  // The entry of this id, or nullptr (a walk).
  const entry* find(std::string_view id) const {
    for (const entry& e : heap_)
      if (e.id.is(id)) return &e;
    return nullptr;
  }
  // Removes an entry find() returned.
  void erase(const entry* e) {
    std::size_t i = 0;
    while (&heap_[i] != e) ++i;
    if (i + 1 != heap_.size()) heap_[i] = std::move(heap_.back());
    heap_.pop_back();
    std::make_heap(heap_.begin(), heap_.end(), later);
  }
  // Removes the entries for which drop(entry) is true.
  template <typename Drop>
  void erase_if(Drop drop) {
    auto end = std::remove_if(heap_.begin(), heap_.end(), drop);
    if (end == heap_.end()) return;
    heap_.erase(end, heap_.end());
    std::make_heap(heap_.begin(), heap_.end(), later);
  }
  // Calls f(entry) for each entry, in no order; f must not change the schedule.
  template <typename F>
  void for_each(F f) const {
    for (const entry& e : heap_) f(e);
  }
  void clear() {
    heap_.clear();
    heap_.shrink_to_fit();
  }

 private:
  // The heap's order: the root is the earliest (ties: the smallest id).
  static bool later(const entry& a, const entry& b) {
    if (a.next_run != b.next_run) return a.next_run > b.next_run;
    short_id::buffer ab, bb;
    return a.id.view(ab) > b.id.view(bb);
  }
  std::deque<entry> heap_;
};

}  // namespace respq::tasks
