// json_view: a read-only JSON document for decoding task payloads quickly.
//
// The task decoder ran nlohmann's DOM parser on every payload: its lexer copies each
// string byte by byte and every key and value becomes a heap node, about a third of the
// broker thread's work per delivered task. This parser keeps strings as views into the
// payload (only strings with escapes are copied, into one buffer) and stores the tree as
// a flat array of nodes. The decoder reads only this tree: a tree nlohmann parsed is
// brought in with assign(), so both parsers feed the same decoding code.
//
// It takes the common payloads and declines the rest: parse() returns false for invalid
// JSON and also for valid JSON it leaves to nlohmann (duplicate keys, integers of more
// than 18 digits, numbers that overflow, nesting deeper than max_depth). The caller then
// parses with nlohmann, whose results and error messages stay the reference; a unit test
// compares the two decoders on random payloads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace respq::tasks::json_view {

using value_t = nlohmann::json::value_t;

class document;

// Appends s as a JSON string literal, escaped as nlohmann's dump() does with ensure_ascii
// off: the two-character escapes, other control bytes as \u00xx, everything else (UTF-8
// included) as is. s must be valid UTF-8. The broker's envelopes and outcomes use it too.
void append_string(std::string& out, std::string_view s);

// One value of a document; cheap to copy (a document pointer and an index).
class value {
 public:
  class iterator {
   public:
    iterator(const document* d, std::uint32_t i) : d_(d), i_(i) {}
    value operator*() const;
    iterator& operator++();
    bool operator==(const iterator& o) const { return i_ == o.i_; }
    bool operator!=(const iterator& o) const { return i_ != o.i_; }
    std::string_view key() const;  // an object member's name

   private:
    const document* d_;
    std::uint32_t i_;  // 0: the end (the root is never anybody's member)
  };

  value(const document* d, std::uint32_t i) : d_(d), i_(i) {}

  value_t type() const;
  bool is_null() const { return type() == value_t::null; }
  bool is_boolean() const { return type() == value_t::boolean; }
  bool is_string() const { return type() == value_t::string; }
  bool is_object() const { return type() == value_t::object; }
  bool is_array() const { return type() == value_t::array; }
  bool is_structured() const { return is_object() || is_array(); }
  bool is_number_float() const { return type() == value_t::number_float; }
  bool is_number_integer() const {
    return type() == value_t::number_integer || type() == value_t::number_unsigned;
  }
  bool is_number() const { return is_number_integer() || is_number_float(); }
  static constexpr bool is_discarded() { return false; }
  static constexpr bool is_binary() { return false; }
  bool empty() const;  // containers: no members; scalars: false, as in nlohmann

  // Members of an object or elements of an array; begin() == end() for scalars.
  iterator begin() const;
  iterator end() const { return iterator(d_, 0); }
  iterator find(std::string_view key) const;  // objects only; end() when absent

  std::string_view text() const;  // a string's text (unescaped)
  bool boolean() const;
  std::int64_t int64() const;
  std::uint64_t uint64() const;
  double number() const;  // any number, converted as nlohmann's get<double>() does

  // Compact JSON, as nlohmann's dump() without indentation or ASCII escaping writes it
  // (keys in document order, floats in nlohmann's own format).
  std::string dump() const;

 private:
  void dump_to(std::string& out) const;
  const document* d_;
  std::uint32_t i_;
};

class document {
 public:
  static constexpr int max_depth = 64;

  // Parses `text` (the whole of it must be one JSON value). False: invalid, or declined
  // (see the top of this file); the document is then unusable until the next parse.
  // Strings may point into `text`, which must outlive the document's use.
  bool parse(std::string_view text);

  // Takes the tree nlohmann parsed (json or ordered_json; members in its iteration
  // order). Containers nested deeper than `max_nesting` levels are taken as empty.
  // Strings point into `dom`, which must outlive the document's use.
  template <typename Json>
  void assign(const Json& dom, int max_nesting) {
    nodes_.clear();
    unescaped_.clear();
    add(dom, {}, 1, max_nesting);
  }

  value root() const { return value(this, 0); }

 private:
  friend class value;
  friend class value::iterator;
  struct node {
    value_t type = value_t::null;
    bool boolean = false;
    std::uint32_t first = 0;  // first member; 0: none
    std::uint32_t next = 0;   // next member of the same container; 0: none
    std::uint32_t size = 0;   // members
    std::string_view key;     // name, when a member of an object
    std::string_view text;    // string value
    std::int64_t i = 0;
    std::uint64_t u = 0;
    double d = 0;
  };

  template <typename Json>
  std::uint32_t add(const Json& v, std::string_view key, int depth, int max_nesting) {
    const auto self = static_cast<std::uint32_t>(nodes_.size());
    {
      node& n = nodes_.emplace_back();
      n.key = key;
      n.type = v.type();
      switch (v.type()) {
        case value_t::boolean: n.boolean = v.template get<bool>(); break;
        case value_t::number_integer: n.i = v.template get<std::int64_t>(); break;
        case value_t::number_unsigned: n.u = v.template get<std::uint64_t>(); break;
        case value_t::number_float: n.d = v.template get<double>(); break;
        case value_t::string: n.text = v.template get_ref<const std::string&>(); break;
        case value_t::object:
        case value_t::array: break;
        default: n.type = value_t::null; break;  // discarded, binary: not from parsing
      }
    }
    if (!v.is_structured() || depth > max_nesting) return self;
    std::uint32_t last = 0;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::uint32_t child =
          add(*it, v.is_object() ? std::string_view(it.key()) : std::string_view(), depth + 1, max_nesting);
      append_member(self, last, child);
    }
    return self;
  }

  // Links `child` after `last` (0: none yet) among the members of `container`.
  void append_member(std::uint32_t container, std::uint32_t& last, std::uint32_t child) {
    if (last != 0)
      nodes_[last].next = child;
    else
      nodes_[container].first = child;
    last = child;
    ++nodes_[container].size;
  }

  bool parse_value(int depth);
  bool parse_container(bool object, int depth);
  bool parse_string(std::string_view& out);
  bool parse_number();
  bool literal(std::string_view word);
  bool distinct_keys(std::uint32_t object) const;
  void skip_ws();

  std::vector<node> nodes_;
  std::string unescaped_;  // reserved to the text's size at the first escape: views stay valid
  std::size_t text_size_ = 0;
  const char* p_ = nullptr;
  const char* end_ = nullptr;
};

}  // namespace respq::tasks::json_view
