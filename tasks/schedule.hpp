// schedule: the tasks of one local queue that wait for a time (scheduled, or retrying
// after a failed attempt), earliest first. Owner: the task manager, on the broker thread.
//
// A queue may hold hundreds of thousands of waiting tasks, so an entry is kept small: a
// binary heap of 40-byte entries (due time, the id inline when it has at most 24 bytes,
// as respq's generated ids do, and the state) in a deque, whose blocks of a few hundred
// bytes are never regrown to twice the size with the old copy left behind, instead of a
// tree node per task with the id on the heap beside it. Ties on the due time go by id,
// so the order is the same as an ordered set's. Finding or removing a task by id walks
// the entries: TASK GET, TASK CANCEL and a client's writes to <queue>:inflight are rare.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>

#include "tasks/records.hpp"

namespace respq::tasks {

// An id: inline up to 24 bytes, else one heap block. One spare byte (aux) is the
// owner's, where the padding would be.
class short_id {
 public:
  static constexpr std::size_t inline_max = 24;
  short_id() : len_(0) {}
  explicit short_id(std::string_view s) {
    if (s.size() <= inline_max) {
      std::memcpy(in_, s.data(), s.size());
      len_ = static_cast<std::uint8_t>(s.size());
    } else {
      out_ = new std::string(s);
      len_ = heap;
    }
  }
  short_id(short_id&& o) noexcept : len_(o.len_), aux_(o.aux_) {
    std::memcpy(in_, o.in_, inline_max);  // the bytes, or the pointer
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

  std::string_view view() const { return len_ == heap ? std::string_view(*out_) : std::string_view(in_, len_); }
  std::string str() const { return std::string(view()); }
  std::uint8_t aux() const { return aux_; }
  void set_aux(std::uint8_t a) { aux_ = a; }

 private:
  static constexpr std::uint8_t heap = 0xff;
  void release() {
    if (len_ == heap) delete out_;
    len_ = 0;
  }
  union {
    char in_[inline_max];
    std::string* out_;
  };
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
      if (e.id.view() == id) return &e;
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
  void clear() {
    heap_.clear();
    heap_.shrink_to_fit();
  }

 private:
  // The heap's order: the root is the earliest (ties: the smallest id).
  static bool later(const entry& a, const entry& b) {
    return a.next_run != b.next_run ? a.next_run > b.next_run : a.id.view() > b.id.view();
  }
  std::deque<entry> heap_;
};

}  // namespace respq::tasks
