// zset_value: listpack and order-statistics index (see the header for the layout).
#include "broker/core/zset_value.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <vector>

#include "broker/core/encoding_limits.hpp"

namespace respq::core {

namespace {

// ---- entries shared by both representations: <score f64><len><bytes> ----
// len is one byte below 255, else 255 and a u32 (a listpack holds members longer than
// 254 bytes when zset-max-listpack-value allows them, or a RESTOREd listpack has them).
double load_score(const char* p) {
  double d;
  std::memcpy(&d, p, 8);
  return d;
}

std::string_view node_member(const char* n) {
  auto l = static_cast<unsigned char>(n[8]);
  if (l < 255) return {n + 9, l};
  std::uint32_t L;
  std::memcpy(&L, n + 9, 4);
  return {n + 13, L};
}

std::size_t entry_head(std::string_view m) { return m.size() < 255 ? 9 : 13; }

// Writes an entry's score and length at n (entry_head(m) bytes), then the member.
void put_entry(char* n, std::string_view m, double s) {
  const bool small = m.size() < 255;
  const std::size_t head = small ? 9 : 13;
  std::memcpy(n, &s, 8);
  if (small) {
    n[8] = static_cast<char>(m.size());
  } else {
    n[8] = static_cast<char>(255);
    auto L = static_cast<std::uint32_t>(m.size());
    std::memcpy(n + 9, &L, 4);
  }
  if (!m.empty()) std::memcpy(n + head, m.data(), m.size());
}

char* make_node(std::string_view m, double s) {
  char* n = new char[entry_head(m) + m.size()];
  put_entry(n, m, s);
  return n;
}

// Appends an entry to a listpack.
void append_entry(std::string& buf, std::string_view m, double s) {
  const std::size_t at = buf.size();
  buf.resize(at + entry_head(m) + m.size());
  put_entry(buf.data() + at, m, s);
}

std::size_t node_bytes(const char* n) {
  auto m = node_member(n);
  return static_cast<std::size_t>(m.data() - n) + m.size();
}

// (score, member) against a node: <0, 0, >0.
int compare(double s, std::string_view m, const char* n) {
  double ns = load_score(n);
  if (s < ns) return -1;
  if (s > ns) return 1;
  return m.compare(node_member(n));
}

std::uint64_t hash_of(std::string_view m) { return std::hash<std::string_view>{}(m); }
// A member's home slot is the top bits of its hash, so that slots are in hash order
// whatever the table size: ZSCAN's cursor is a hash value (see scan()).
std::size_t home_of(std::uint64_t h, std::size_t cap) {
  return cap <= 1 ? 0 : static_cast<std::size_t>(h >> (64 - std::countr_zero(cap)));
}

// Listpack entry accessors.
struct packed_entry {
  double score;
  std::string_view member;
  std::size_t next;  // offset of the following entry
};
packed_entry packed_at(const std::string& buf, std::size_t off) {
  const char* p = buf.data() + off;
  const std::string_view m = node_member(p);
  return {load_score(p), m, off + node_bytes(p)};
}

char tomb_marker;
char* const tomb = &tomb_marker;

}  // namespace

// ---------------------------------------------------------------------------- index
struct zset_value::index {
  static constexpr std::uint32_t chunk_cap = 128;
  struct chunk {
    std::uint32_t n = 0;
    char* items[chunk_cap];
  };

  std::vector<chunk*> chunks;
  std::vector<std::uint32_t> fen;  // Fenwick tree over chunk sizes, 1-based
  std::size_t count = 0;
  std::size_t node_mem = 0;        // bytes of nodes, for MEMORY USAGE
  // Hash table: node pointers, nullptr empty, tomb deleted.
  char** slots = nullptr;
  std::size_t cap = 0, used = 0, tombs = 0;

  index() = default;
  index(const index&) = delete;
  ~index() {
    for (chunk* c : chunks) {
      for (std::uint32_t i = 0; i < c->n; ++i) delete[] c->items[i];
      delete c;
    }
    delete[] slots;
  }

  // ---- Fenwick ----
  void rebuild() {
    fen.assign(chunks.size() + 1, 0);
    for (std::size_t i = 1; i < fen.size(); ++i) {
      fen[i] += chunks[i - 1]->n;
      std::size_t j = i + (i & (~i + 1));
      if (j < fen.size()) fen[j] += fen[i];
    }
  }
  void fen_add(std::size_t ci, int delta) {
    for (std::size_t i = ci + 1; i < fen.size(); i += i & (~i + 1)) fen[i] = static_cast<std::uint32_t>(static_cast<int>(fen[i]) + delta);
  }
  std::size_t prefix(std::size_t ci) const {  // members in chunks [0, ci)
    std::size_t s = 0;
    for (std::size_t i = ci; i > 0; i -= i & (~i + 1)) s += fen[i];
    return s;
  }
  // The chunk holding rank r, and r's offset in it.
  std::size_t locate(std::size_t r, std::size_t& off) const {
    std::size_t pos = 0, step = 1;
    while (step * 2 < fen.size()) step *= 2;
    for (; step; step >>= 1) {
      if (pos + step < fen.size() && fen[pos + step] <= r) {
        pos += step;
        r -= fen[pos];
      }
    }
    off = r;
    return pos;
  }

  // ---- order ----
  // First chunk whose last member is >= (s, m); the last chunk when none is.
  std::size_t find_chunk(double s, std::string_view m) const {
    std::size_t lo = 0, hi = chunks.size() - 1;
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      const chunk* c = chunks[mid];
      if (compare(s, m, c->items[c->n - 1]) <= 0) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  static std::size_t lower_in(const chunk* c, double s, std::string_view m) {
    std::size_t lo = 0, hi = c->n;
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      if (compare(s, m, c->items[mid]) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  // Rank of the first member for which `before(node)` is false (before is monotonic).
  template <typename Pred>
  std::size_t partition_rank(Pred before) const {
    if (chunks.empty()) return 0;
    std::size_t lo = 0, hi = chunks.size();
    while (lo < hi) {  // first chunk whose last member is not before
      std::size_t mid = (lo + hi) / 2;
      const chunk* c = chunks[mid];
      if (before(c->items[c->n - 1])) lo = mid + 1;
      else hi = mid;
    }
    if (lo == chunks.size()) return count;
    const chunk* c = chunks[lo];
    std::size_t a = 0, b = c->n;
    while (a < b) {
      std::size_t mid = (a + b) / 2;
      if (before(c->items[mid])) a = mid + 1;
      else b = mid;
    }
    return prefix(lo) + a;
  }

  void order_insert(char* node) {
    double s = load_score(node);
    std::string_view m = node_member(node);
    if (chunks.empty()) {
      auto* c = new chunk;
      c->items[0] = node;
      c->n = 1;
      chunks.push_back(c);
      rebuild();
      return;
    }
    std::size_t ci = find_chunk(s, m);
    chunk* c = chunks[ci];
    std::size_t pos = lower_in(c, s, m);
    if (c->n < chunk_cap) {
      std::memmove(c->items + pos + 1, c->items + pos, (c->n - pos) * sizeof(char*));
      c->items[pos] = node;
      ++c->n;
      fen_add(ci, 1);
      return;
    }
    // Full. Appending past the last member (or before the first) starts a new chunk, so
    // ascending loads leave full chunks; anything else splits in halves.
    if (pos == c->n && ci + 1 == chunks.size()) {
      auto* d = new chunk;
      d->items[0] = node;
      d->n = 1;
      chunks.push_back(d);
      rebuild();
      return;
    }
    if (pos == 0 && ci == 0) {
      auto* d = new chunk;
      d->items[0] = node;
      d->n = 1;
      chunks.insert(chunks.begin(), d);
      rebuild();
      return;
    }
    auto* d = new chunk;
    const std::uint32_t half = chunk_cap / 2;
    std::memcpy(d->items, c->items + half, (chunk_cap - half) * sizeof(char*));
    d->n = chunk_cap - half;
    c->n = half;
    chunks.insert(chunks.begin() + static_cast<std::ptrdiff_t>(ci) + 1, d);
    chunk* t = c;
    if (pos > half) {
      t = d;
      pos -= half;
    }
    std::memmove(t->items + pos + 1, t->items + pos, (t->n - pos) * sizeof(char*));
    t->items[pos] = node;
    ++t->n;
    rebuild();
  }

  // Removes the node at (ci, pos) from the order (not from the hash, not freed).
  void order_remove(std::size_t ci, std::size_t pos) {
    chunk* c = chunks[ci];
    std::memmove(c->items + pos, c->items + pos + 1, (c->n - pos - 1) * sizeof(char*));
    --c->n;
    if (c->n == 0) {
      delete c;
      chunks.erase(chunks.begin() + static_cast<std::ptrdiff_t>(ci));
      rebuild();
      return;
    }
    // Keep chunks reasonably full under deletions: merge a small chunk into a neighbour.
    if (c->n < chunk_cap / 4) {
      std::size_t other = ci + 1 < chunks.size() ? ci + 1 : (ci > 0 ? ci - 1 : ci);
      if (other != ci && chunks[other]->n + c->n <= chunk_cap / 2) {
        std::size_t a = std::min(ci, other), b = std::max(ci, other);
        chunk* x = chunks[a];
        chunk* y = chunks[b];
        std::memcpy(x->items + x->n, y->items, y->n * sizeof(char*));
        x->n += y->n;
        delete y;
        chunks.erase(chunks.begin() + static_cast<std::ptrdiff_t>(b));
        rebuild();
        return;
      }
    }
    fen_add(ci, -1);
  }

  bool locate_node(const char* node, std::size_t& ci, std::size_t& pos) const {
    double s = load_score(node);
    std::string_view m = node_member(node);
    ci = find_chunk(s, m);
    pos = lower_in(chunks[ci], s, m);
    return pos < chunks[ci]->n && chunks[ci]->items[pos] == node;
  }

  // ---- hash ----
  std::size_t hash_find(std::string_view m) const {
    if (!cap) return SIZE_MAX;
    std::size_t mask = cap - 1, i = home_of(hash_of(m), cap);
    while (char* n = slots[i]) {
      if (n != tomb && node_member(n) == m) return i;
      i = (i + 1) & mask;
    }
    return SIZE_MAX;
  }
  void hash_place(char** tab, std::size_t tcap, char* node) {
    std::size_t mask = tcap - 1, i = home_of(hash_of(node_member(node)), tcap);
    while (tab[i] && tab[i] != tomb) i = (i + 1) & mask;
    tab[i] = node;
  }
  void rehash(std::size_t ncap) {
    char** tab = new char*[ncap]();
    for (std::size_t i = 0; i < cap; ++i)
      if (slots[i] && slots[i] != tomb) hash_place(tab, ncap, slots[i]);
    delete[] slots;
    slots = tab;
    cap = ncap;
    tombs = 0;
  }
  void hash_insert(char* node) {
    if ((used + tombs + 1) * 4 > cap * 3) {
      std::size_t ncap = cap ? cap : 16;
      while ((used + 1) * 4 > ncap * 3) ncap *= 2;
      // Mostly tombstones: a rehash at the same size is enough.
      rehash(ncap);
    }
    std::size_t mask = cap - 1, i = home_of(hash_of(node_member(node)), cap);
    while (slots[i] && slots[i] != tomb) i = (i + 1) & mask;
    if (slots[i] == tomb) --tombs;
    slots[i] = node;
    ++used;
  }
  void hash_remove_slot(std::size_t i) {
    // A tombstone unless the next slot is empty (then no probe chain runs through here).
    if (!slots[(i + 1) & (cap - 1)]) {
      slots[i] = nullptr;
    } else {
      slots[i] = tomb;
      ++tombs;
    }
    --used;
    if (cap > 16 && used * 8 < cap) {
      std::size_t ncap = cap;
      while (ncap > 16 && used * 8 < ncap) ncap /= 2;
      rehash(ncap);
    }
  }
  void hash_remove(const char* node) {
    std::size_t mask = cap - 1, i = home_of(hash_of(node_member(node)), cap);
    while (slots[i] != node) i = (i + 1) & mask;
    hash_remove_slot(i);
  }

  // ---- whole ----
  void add(char* node) {
    hash_insert(node);
    order_insert(node);
    ++count;
    node_mem += node_bytes(node);
  }
};

// ---------------------------------------------------------------------------- value
zset_value::zset_value() = default;
zset_value::~zset_value() = default;
zset_value::zset_value(zset_value&& o) noexcept = default;
zset_value& zset_value::operator=(zset_value&& o) noexcept = default;

zset_value::zset_value(const zset_value& o) : packed_(o.packed_), packed_n_(o.packed_n_) {
  if (!o.big_) return;
  big_ = std::make_unique<index>();
  index& b = *big_;
  // Same order, fresh nodes: chunks are rebuilt full and the hash table sized once.
  std::size_t ncap = 16;
  while (o.big_->count * 4 > ncap * 3) ncap *= 2;
  b.slots = new char*[ncap]();
  b.cap = ncap;
  for (const auto* oc : o.big_->chunks) {
    for (std::uint32_t i = 0; i < oc->n; ++i) {
      const char* on = oc->items[i];
      char* n = make_node(node_member(on), load_score(on));
      if (b.chunks.empty() || b.chunks.back()->n == index::chunk_cap) b.chunks.push_back(new index::chunk);
      index::chunk* c = b.chunks.back();
      c->items[c->n++] = n;
      b.hash_place(b.slots, b.cap, n);
      ++b.used;
      b.node_mem += node_bytes(n);
    }
  }
  b.count = o.big_->count;
  b.rebuild();
}

zset_value& zset_value::operator=(const zset_value& o) {
  if (this != &o) *this = zset_value(o);
  return *this;
}

std::size_t zset_value::size() const { return big_ ? big_->count : packed_n_; }

std::size_t zset_value::memory_usage() const {
  if (!big_) return sizeof(zset_value) + packed_.capacity();
  const index& b = *big_;
  return sizeof(zset_value) + sizeof(index) + b.node_mem + b.count * 2 /* allocator rounding */ +
         b.chunks.size() * sizeof(index::chunk) + b.chunks.capacity() * sizeof(void*) +
         b.fen.capacity() * sizeof(std::uint32_t) + b.cap * sizeof(char*);
}

// ---- listpack helpers ----
std::size_t zset_value::packed_find(std::string_view member) const {
  for (std::size_t off = 0; off < packed_.size();) {
    auto e = packed_at(packed_, off);
    if (e.member == member) return off;
    off = e.next;
  }
  return std::string::npos;
}

void zset_value::packed_remove_at(std::size_t off) {
  auto e = packed_at(packed_, off);
  packed_.erase(off, e.next - off);
  --packed_n_;
}

void zset_value::packed_insert(std::string_view member, double score) {
  std::size_t off = 0;
  while (off < packed_.size()) {
    auto e = packed_at(packed_, off);
    if (score < e.score || (score == e.score && member.compare(e.member) < 0)) break;
    off = e.next;
  }
  std::string bytes;
  append_entry(bytes, member, score);
  packed_.insert(off, bytes);
  ++packed_n_;
}

// ---- operations ----
bool zset_value::score(std::string_view member, double& out) const {
  if (!big_) {
    std::size_t off = packed_find(member);
    if (off == std::string::npos) return false;
    out = load_score(packed_.data() + off);
    return true;
  }
  std::size_t i = big_->hash_find(member);
  if (i == SIZE_MAX) return false;
  out = load_score(big_->slots[i]);
  return true;
}

bool zset_value::set(std::string_view member, double score) {
  if (!big_) {
    // A listpack keeps no negative zero (Redis's stores a whole score as an integer);
    // the index does, as Redis's skiplist, also for the member whose add converts.
    const double packed_score = score == 0 ? 0.0 : score;
    std::size_t off = packed_find(member);
    if (off != std::string::npos) {
      if (load_score(packed_.data() + off) == score) return false;
      packed_remove_at(off);
      packed_insert(member, packed_score);
      return false;
    }
    if (packed_n_ + 1 <= encoding_limits::zset_max_entries() && member.size() <= encoding_limits::zset_max_value()) {
      packed_insert(member, packed_score);
      return true;
    }
    convert_to_index();
  }
  index& b = *big_;
  std::size_t i = b.hash_find(member);
  if (i != SIZE_MAX) {
    char* node = b.slots[i];
    if (load_score(node) == score) return false;
    std::size_t ci, pos;
    b.locate_node(node, ci, pos);
    b.order_remove(ci, pos);
    std::memcpy(node, &score, 8);
    b.order_insert(node);
    return false;
  }
  b.add(make_node(member, score));
  return true;
}

bool zset_value::erase(std::string_view member) {
  if (!big_) {
    std::size_t off = packed_find(member);
    if (off == std::string::npos) return false;
    packed_remove_at(off);
    return true;
  }
  index& b = *big_;
  std::size_t i = b.hash_find(member);
  if (i == SIZE_MAX) return false;
  char* node = b.slots[i];
  std::size_t ci, pos;
  b.locate_node(node, ci, pos);
  b.order_remove(ci, pos);
  b.hash_remove_slot(i);
  b.node_mem -= node_bytes(node);
  --b.count;
  delete[] node;
  return true;
}

long long zset_value::rank(std::string_view member) const {
  if (!big_) {
    long long r = 0;
    for (std::size_t off = 0; off < packed_.size(); ++r) {
      auto e = packed_at(packed_, off);
      if (e.member == member) return r;
      off = e.next;
    }
    return -1;
  }
  const index& b = *big_;
  std::size_t i = b.hash_find(member);
  if (i == SIZE_MAX) return -1;
  std::size_t ci, pos;
  b.locate_node(b.slots[i], ci, pos);
  return static_cast<long long>(b.prefix(ci) + pos);
}

zset_value::entry zset_value::at(std::size_t rank) const {
  if (!big_) {
    std::size_t off = 0;
    for (std::size_t r = 0; r < rank; ++r) off = packed_at(packed_, off).next;
    auto e = packed_at(packed_, off);
    return {e.member, e.score};
  }
  std::size_t off;
  std::size_t ci = big_->locate(rank, off);
  const char* n = big_->chunks[ci]->items[off];
  return {node_member(n), load_score(n)};
}

std::size_t zset_value::score_rank(double s, bool after_equal) const {
  if (!big_) {
    std::size_t r = 0;
    for (std::size_t off = 0; off < packed_.size(); ++r) {
      auto e = packed_at(packed_, off);
      if (after_equal ? e.score > s : e.score >= s) return r;
      off = e.next;
    }
    return r;
  }
  return big_->partition_rank([&](const char* n) {
    double ns = load_score(n);
    return after_equal ? ns <= s : ns < s;
  });
}

std::size_t zset_value::lex_rank(std::string_view m, bool after_equal) const {
  if (!big_) {
    std::size_t r = 0;
    for (std::size_t off = 0; off < packed_.size(); ++r) {
      auto e = packed_at(packed_, off);
      int c = e.member.compare(m);
      if (after_equal ? c > 0 : c >= 0) return r;
      off = e.next;
    }
    return r;
  }
  return big_->partition_rank([&](const char* n) {
    int c = node_member(n).compare(m);
    return after_equal ? c <= 0 : c < 0;
  });
}

void zset_value::walk(std::size_t from, std::size_t n, bool reverse, const visit_fn& fn) const {
  if (n == 0) return;
  if (!big_) {
    if (!reverse) {
      std::size_t off = 0;
      for (std::size_t r = 0; r < from; ++r) off = packed_at(packed_, off).next;
      for (std::size_t k = 0; k < n; ++k) {
        auto e = packed_at(packed_, off);
        fn(entry{e.member, e.score});
        off = e.next;
      }
      return;
    }
    // Descending: offsets of the entries up to `from`, then backwards (on the stack at
    // the default sizes).
    std::size_t local[129];
    std::vector<std::size_t> heap;
    if (from >= std::size(local)) heap.resize(from + 1);
    std::size_t* offs = heap.empty() ? local : heap.data();
    std::size_t off = 0;
    for (std::size_t r = 0; r <= from; ++r) {
      offs[r] = off;
      off = packed_at(packed_, off).next;
    }
    for (std::size_t i = 0; i < n; ++i) {
      auto e = packed_at(packed_, offs[from - i]);
      fn(entry{e.member, e.score});
    }
    return;
  }
  const index& b = *big_;
  std::size_t off;
  std::size_t ci = b.locate(from, off);
  for (std::size_t k = 0; k < n; ++k) {
    const char* node = b.chunks[ci]->items[off];
    fn(entry{node_member(node), load_score(node)});
    if (!reverse) {
      if (++off == b.chunks[ci]->n) {
        ++ci;
        off = 0;
      }
    } else if (off == 0) {
      if (ci == 0) break;
      --ci;
      off = b.chunks[ci]->n - 1;
    } else {
      --off;
    }
  }
}

void zset_value::erase_ranks(std::size_t from, std::size_t n) {
  if (n == 0) return;
  if (!big_) {
    std::size_t start = 0;
    for (std::size_t r = 0; r < from; ++r) start = packed_at(packed_, start).next;
    std::size_t end = start;
    for (std::size_t r = 0; r < n; ++r) end = packed_at(packed_, end).next;
    packed_.erase(start, end - start);
    packed_n_ -= static_cast<std::uint32_t>(n);
    return;
  }
  index& b = *big_;
  std::size_t off;
  std::size_t ci = b.locate(from, off);
  std::size_t left = n;
  const std::size_t first = ci;
  while (left) {
    index::chunk* c = b.chunks[ci];
    std::size_t take = std::min<std::size_t>(left, c->n - off);
    for (std::size_t i = off; i < off + take; ++i) {
      char* node = c->items[i];
      b.hash_remove(node);
      b.node_mem -= node_bytes(node);
      delete[] node;
    }
    std::memmove(c->items + off, c->items + off + take, (c->n - off - take) * sizeof(char*));
    c->n -= static_cast<std::uint32_t>(take);
    left -= take;
    if (c->n == 0) {
      delete c;
      b.chunks[ci] = nullptr;
    }
    ++ci;
    off = 0;
  }
  b.chunks.erase(std::remove(b.chunks.begin() + static_cast<std::ptrdiff_t>(first), b.chunks.end(), nullptr),
                 b.chunks.end());
  b.count -= n;
  b.rebuild();
}

std::uint64_t zset_value::scan(std::uint64_t cursor, std::size_t count, const visit_fn& fn) const {
  if (!big_) {
    walk(0, packed_n_, false, fn);
    return 0;
  }
  // The cursor is a hash value T: every member whose hash is below T was returned. A
  // call covers the home slots [a, end) (a = T's slot in the current table) and returns
  // exactly the members whose home is there, wherever linear probing put them: from a
  // through the end of the probe run that crosses `end`. Homes are hash prefixes, so a
  // resize between calls maps T to the same place in hash order: no member present for
  // the whole scan is missed, and a shrink can only repeat some.
  // The cursor holds the top 32 bits of a hash (cap <= 2^32 slots), so that it stays a
  // small number: clients such as phpredis keep cursors in a signed 64-bit integer and
  // loop forever on one above 2^63. A cursor past that range is a finished scan.
  const index& b = *big_;
  if (b.cap == 0 || (cursor >> 32) != 0) return 0;
  const int shift = 32 - std::countr_zero(b.cap);
  const std::size_t mask = b.cap - 1;
  const std::size_t a = static_cast<std::size_t>(cursor >> shift);
  std::size_t end = a, seen = 0;
  std::size_t budget = std::max<std::size_t>(count, 1) * 10;  // bounded work, as dictScan
  while (end < b.cap && seen < count && budget) {
    const char* n = b.slots[end++];
    --budget;
    if (n && n != tomb) ++seen;
  }
  auto in_range = [&](std::size_t home) { return home >= a && home < end; };
  std::size_t i = a;
  for (std::size_t steps = 0; steps < b.cap; ++steps, i = (i + 1) & mask) {
    const char* n = b.slots[i];
    const bool past = steps >= end - a;
    if (past && !n) break;  // the run crossing `end` is over
    if (!n || n == tomb) continue;
    auto m = node_member(n);
    if (in_range(home_of(hash_of(m), b.cap))) fn(entry{m, load_score(n)});
  }
  if (end >= b.cap) return 0;
  return static_cast<std::uint64_t>(end) << shift;
}

void zset_value::convert_to_index() {
  if (big_) return;
  auto b = std::make_unique<index>();
  for (std::size_t off = 0; off < packed_.size();) {
    auto e = packed_at(packed_, off);
    b->add(make_node(e.member, e.score));
    off = e.next;
  }
  big_ = std::move(b);
  std::string().swap(packed_);
  packed_n_ = 0;
}

void zset_value::compact_if_small(bool lengths) {
  if (!big_ || big_->count > encoding_limits::zset_max_entries()) return;
  std::string buf;
  bool fits = true;
  walk(0, big_->count, false, [&](const entry& e) {
    if (lengths && e.member.size() > encoding_limits::zset_max_value()) fits = false;
    if (!fits) return;
    append_entry(buf, e.member, e.score == 0 ? 0.0 : e.score);  // no negative zero in a listpack
  });
  if (!fits) return;
  packed_n_ = static_cast<std::uint32_t>(big_->count);
  packed_ = std::move(buf);
  big_.reset();
}

}  // namespace respq::core
