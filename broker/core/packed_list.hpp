// packed_list: the list value. A deque of chunks, each chunk a contiguous buffer of
// packed elements, so a million 100-byte elements cost ~102 MB, not a heap string each.
//
// Layout of an element inside a chunk:  <len-prefix> <bytes> <len-suffix>
//   The prefix encodes the length (1, 2 or 5 bytes); the suffix is the same bytes in
//   reverse order, so the element can be found walking backwards from its end (as
//   Redis's listpack does with its backlen). Pushes at either end write into spare room
//   at that end of the end chunk: chunks made by a left push fill from their back, chunks
//   made by a right push from their front, so queues (LPUSH + RPOP) never move bytes.
//
// Owner: the keyspace (broker thread). Views returned by accessors are valid until the
// next modification of the list.
//
// Costs: push/pop at the ends O(1); index, set, insert, remove O(chunks + chunk size),
// like Redis's quicklist. Elements larger than a chunk get a chunk of their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace respq::core {

class packed_list {
 public:
  packed_list() = default;
  packed_list(const packed_list&) = delete;
  packed_list& operator=(const packed_list&) = delete;
  packed_list(packed_list&& o) noexcept;
  packed_list& operator=(packed_list&& o) noexcept;
  ~packed_list();

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes held by chunks (payload capacity plus headers), for INFO memory.
  std::size_t allocated_bytes() const { return allocated_; }

  void push_front(std::string_view v);
  void push_back(std::string_view v);
  std::string_view front() const;
  std::string_view back() const;
  void pop_front();
  void pop_back();

  // Index from the front (0-based); the caller checks bounds.
  std::string_view at(std::size_t i) const;
  void set(std::size_t i, std::string_view v);
  // Inserts before position i (i == size() appends).
  void insert(std::size_t i, std::string_view v);
  void erase(std::size_t i);
  // Keeps [start, start+count), drops the rest.
  void keep_range(std::size_t start, std::size_t count);
  void clear();

  // Forward iteration from an index, and backward from an index.
  class cursor {
   public:
    bool valid() const { return chunk_ != nullptr; }
    std::string_view value() const;
    void next();
    void prev();

   private:
    friend class packed_list;
    const packed_list* list_ = nullptr;
    std::size_t chunk_index_ = 0;
    const void* chunk_ = nullptr;
    std::uint32_t offset_ = 0;  // offset of the element's prefix within the chunk data
  };
  cursor seek(std::size_t i) const;

  // Removes up to `count` elements equal to v (count > 0 from the front, < 0 from the
  // back, 0 all). Returns how many were removed.
  std::size_t remove(std::string_view v, long long count);

 private:
  struct chunk;
  static chunk* new_chunk(std::size_t need, bool fill_from_back);
  void free_chunk(chunk* c);
  // Locates element i: chunk index and offset of its prefix.
  void locate(std::size_t i, std::size_t& ci, std::uint32_t& off) const;
  void drop_chunk_if_empty(std::size_t ci);
  void rebuild_chunk(std::size_t ci, std::uint32_t off, std::size_t remove_len, std::string_view insert);

  std::deque<chunk*> chunks_;
  std::size_t size_ = 0;
  std::size_t allocated_ = 0;
};

}  // namespace respq::core
