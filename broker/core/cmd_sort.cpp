// SORT and SORT_RO, as Redis 7.0 answers them: the elements of a list, set or sorted set,
// by their own value or by weights read through a BY pattern (`weight_*`, or a hash field
// `h_*->field`), numerically or with ALPHA, ASC or DESC, cut by LIMIT, each output as
// itself or through GET patterns (`#` is the element), or stored as a list (STORE). A BY
// pattern without `*` means "do not sort": lists and sorted sets keep their order, a set
// is then sorted ALPHA when stored or sorted from a script, so that the result replays
// the same (Redis's rule); otherwise it comes out in the set's own order, which is
// respq's and not Redis's. Equal weights are ordered by the elements' bytes, as Redis does.
#include <cerrno>
#include <cmath>
#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "broker/core/commands.hpp"
#include "broker/core/hash_value.hpp"

namespace respq::core {

namespace {

// Redis's lookupKeyByPattern: the string, or the hash field (`->field`), that `pattern`
// names for `element` (its first `*` replaced by the element); "#" is the element itself.
std::optional<std::string> by_pattern(server& s, std::string_view pattern, std::string_view element) {
  if (pattern == "#") return std::string(element);
  const std::size_t star = pattern.find('*');
  if (star == std::string_view::npos) return std::nullopt;
  std::string_view field;
  std::size_t key_end = pattern.size();
  if (const std::size_t arrow = pattern.find("->", star + 1); arrow != std::string_view::npos && arrow + 2 < pattern.size()) {
    field = pattern.substr(arrow + 2);
    key_end = arrow;
  }
  std::string key;
  key.reserve(key_end + element.size());
  key.append(pattern.substr(0, star)).append(element).append(pattern.substr(star + 1, key_end - star - 1));
  value* v = s.db().find(key);
  if (!v) return std::nullopt;
  if (!field.empty()) {
    if (v->type() != value_type::hash) return std::nullopt;
    const hash_value& h = std::get<hash_value>(v->data);
    auto it = h.find(field);
    if (it == h.end()) return std::nullopt;
    return std::string(hash_text((*it).field, (*it).value).view());
  }
  if (v->type() != value_type::string) return std::nullopt;
  return v->str();
}

struct sort_item {
  explicit sort_item(std::string_view e) : element(e) {}
  std::string element;
  double score = 0;
  std::optional<std::string> by;  // ALPHA BY: the weight's text, when there is one
};

void sort_generic(server& s, client& c, args_t a, bool read_only) {
  bool desc = false, alpha = false, dont_sort = false;
  long long limit_start = 0, limit_count = -1;
  std::optional<std::string_view> store, by;
  std::vector<std::string_view> gets;
  for (std::size_t j = 2; j < a.size(); ++j) {
    const std::size_t left = a.size() - j - 1;
    if (iequals(a[j], "asc")) {
      desc = false;
    } else if (iequals(a[j], "desc")) {
      desc = true;
    } else if (iequals(a[j], "alpha")) {
      alpha = true;
    } else if (iequals(a[j], "limit") && left >= 2) {
      if (!integer_arg(s, c, a[j + 1], limit_start) || !integer_arg(s, c, a[j + 2], limit_count)) return;
      j += 2;
    } else if (!read_only && iequals(a[j], "store") && left >= 1) {
      store = a[++j];
    } else if (iequals(a[j], "by") && left >= 1) {
      by = a[++j];
      dont_sort = by->find('*') == std::string_view::npos;  // a constant weight for all
    } else if (iequals(a[j], "get") && left >= 1) {
      gets.push_back(a[++j]);
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  value* src;
  {
    server::read_lookups reading(s, !read_only);  // SORT_RO's lookups report already
    src = s.db().find(a[1]);
  }
  if (src && src->type() != value_type::list && src->type() != value_type::set && src->type() != value_type::zset) {
    s.add_error(c, wrongtype_error);
    return;
  }
  const value_type type = src ? src->type() : value_type::list;
  if (dont_sort && type == value_type::set && (store || s.script_caller())) {
    dont_sort = false;  // a set's own order would not replay the same
    alpha = true;
    by.reset();
  }
  // As Redis: a sorted set sorted leaves its compact encoding (OBJECT ENCODING skiplist).
  if (src && type == value_type::zset) std::get<zset_value>(src->data).convert_to_index();
  long long len = 0;
  if (src) {
    if (type == value_type::list) len = static_cast<long long>(src->list().size());
    else if (type == value_type::set) len = static_cast<long long>(src->set().size());
    else len = static_cast<long long>(std::get<zset_value>(src->data).size());
  }
  long long start = limit_start < 0 ? 0 : limit_start, end;
  if (start >= len) {
    start = len - 1;
    end = len - 2;
  } else {
    // Redis's start + count - 1, with the count cut to the length first (no overflow).
    end = limit_count < 0 ? len - 1 : start + std::min(limit_count, len) - 1;
    if (end >= len) end = len - 1;
  }

  std::vector<sort_item> items;
  if (src && dont_sort && type != value_type::set) {
    // Lists and sorted sets in their own order (DESC: from the end), only the range wanted.
    if (end >= start) {
      const auto n = static_cast<std::size_t>(end - start + 1);
      items.reserve(n);
      if (type == value_type::list) {
        const packed_list& l = src->list();
        const std::size_t first = desc ? static_cast<std::size_t>(len - start - 1) : static_cast<std::size_t>(start);
        for (auto cur = l.seek(first); cur.valid() && items.size() < n; desc ? cur.prev() : cur.next())
          items.emplace_back(cur.value());
      } else {
        const zset_value& z = std::get<zset_value>(src->data);
        const std::size_t first = desc ? static_cast<std::size_t>(len - start - 1) : static_cast<std::size_t>(start);
        z.walk(first, n, desc, [&](const zset_value::entry& e) { items.emplace_back(e.member); });
      }
      end -= start;
      start = 0;
    }
  } else if (src) {
    items.reserve(static_cast<std::size_t>(len));
    if (type == value_type::list) {
      for (auto cur = src->list().seek(0); cur.valid(); cur.next()) items.emplace_back(cur.value());
    } else if (type == value_type::set) {
      src->set().for_each([&](std::string_view m) { items.emplace_back(m); });
    } else {
      const zset_value& z = std::get<zset_value>(src->data);
      z.walk(0, z.size(), false, [&](const zset_value::entry& e) { items.emplace_back(e.member); });
    }
  }

  bool not_a_number = false;
  const long long count = end >= start ? end - start + 1 : 0;
  const long long out_len = gets.empty() ? count : static_cast<long long>(gets.size()) * count;
  if (!dont_sort && !items.empty()) {
    server::read_lookups reading(s, !read_only);
    for (sort_item& it : items) {
      std::optional<std::string> weight;
      if (by) {
        weight = by_pattern(s, *by, it.element);
        if (!weight) continue;  // no weight: 0, or first under ALPHA
      }
      if (alpha) {
        if (by) it.by = std::move(weight);
        continue;
      }
      const std::string& text = by ? *weight : it.element;
      char* endp = nullptr;
      errno = 0;
      it.score = std::strtod(text.c_str(), &endp);
      if (*endp != '\0' || errno == ERANGE || std::isnan(it.score)) not_a_number = true;
    }
    if (not_a_number) {
      s.add_error(c, "ERR One or more scores can't be converted into double");
      return;
    }
    auto bytes_cmp = [](const std::string& x, const std::string& y) { return x.compare(y); };
    std::sort(items.begin(), items.end(), [&](const sort_item& x, const sort_item& y) {
      int cmp;
      if (!alpha) {
        cmp = x.score > y.score ? 1 : x.score < y.score ? -1 : bytes_cmp(x.element, y.element);
      } else if (by) {
        if (!x.by || !y.by) cmp = x.by.has_value() == y.by.has_value() ? 0 : !x.by ? -1 : 1;
        else cmp = bytes_cmp(*x.by, *y.by);
      } else {
        cmp = bytes_cmp(x.element, y.element);
      }
      return desc ? cmp > 0 : cmp < 0;
    });
  }

  if (!store) {
    server::read_lookups reading(s, !read_only);
    auto w = s.reply(c);
    w.array(static_cast<std::size_t>(out_len));
    for (long long j = start; j <= end; ++j) {
      const std::string& e = items[static_cast<std::size_t>(j)].element;
      if (gets.empty()) w.bulk(e);
      for (std::string_view g : gets) {
        if (auto v = by_pattern(s, g, e)) w.bulk(*v);
        else w.null();
      }
    }
    return;
  }
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(out_len));
  {
    server::read_lookups reading(s);
    for (long long j = start; j <= end; ++j) {
      const std::string& e = items[static_cast<std::size_t>(j)].element;
      if (gets.empty()) out.push_back(e);
      for (std::string_view g : gets) out.push_back(by_pattern(s, g, e).value_or(std::string()));
    }
  }
  const std::string_view dst = *store;
  if (!out.empty()) {
    const bool existed = s.db().find(dst) != nullptr;
    packed_list& l = s.db().create(dst, value_type::list).list();  // replaces it, deadline too
    for (const std::string& v : out) l.push_back(v);
    s.add_dirty(out.size());
    s.signal_modified_key(dst);
    if (!existed) s.signal_key_as_ready(dst);  // BLPOP waiters, and an HTTP queue's dispatch
    s.notify(notify_list, "sortstore", dst);
  } else if (s.db().erase(dst)) {
    s.add_dirty();
    s.key_deleted(dst);
    s.signal_modified_key(dst);
    s.notify(notify_generic, "del", dst);
  }
  s.keys_signalled();
  s.reply(c).integer(out_len);
}

}  // namespace

void cmd_sort(server& s, client& c, args_t a) { sort_generic(s, c, a, false); }
void cmd_sort_ro(server& s, client& c, args_t a) { sort_generic(s, c, a, true); }

}  // namespace respq::core
