// Set commands (SADD ... SSCAN), Redis 7.0 semantics, reply shapes and error texts.
//
// Replies: SMEMBERS, SUNION, SINTER, SDIFF and SPOP with a count answer a RESP3 set (~);
// SRANDMEMBER with a count and SMISMEMBER an array, as Redis does.
//
// Effects, as Redis 7.0 propagates them: SPOP is logged as one SREM per popped member
// (several wrapped in MULTI/EXEC), or as DEL when a count takes the whole set; the other
// write commands go to the stream as they are (a *STORE whose result is empty deletes
// its destination when replayed, exactly as it did here). SRANDMEMBER is read-only.
//
// WATCH: SINTERSTORE and friends only read their source keys, so they tell WATCH about
// the destination alone (keys_signalled), as Redis's signalModifiedKey calls do; SMOVE
// about the source, and the destination only when the member was added there.
#include <algorithm>
#include <climits>
#include <unordered_set>
#include <vector>

#include "broker/core/commands.hpp"
#include "broker/core/glob.hpp"

namespace respq::core {

namespace {

// The set at `key`, or nullptr when absent. When the key holds another type, replies
// WRONGTYPE and sets `wrong`.
set_value* lookup_set(server& s, client& c, std::string_view key, bool& wrong) {
  wrong = false;
  value* v = s.db().find(key);
  if (!v) return nullptr;
  if (v->type() != value_type::set) {
    wrong = true;
    s.add_error(c, wrongtype_error);
    return nullptr;
  }
  return &v->set();
}

void reply_members(resp::reply_writer& w, const set_value& st) {
  w.set(st.size());
  st.for_each([&](std::string_view m) { w.bulk(m); });
}

// Removes a key whose set became empty ("del" to keyspace events).
void drop_if_empty(server& s, std::string_view key, const set_value& st) {
  if (!st.empty()) return;
  s.db().erase(key);
  s.notify(notify_generic, "del", key);
}

enum class set_op { union_, inter, diff };

// Looks every key up (WRONGTYPE for any that is not a set, whether or not an earlier one is
// missing, as Redis 7.0 checks them all). Missing keys are nullptr. False after replying.
bool lookup_sets(server& s, client& c, args_t keys, std::vector<const set_value*>& out) {
  out.clear();
  out.reserve(keys.size());
  for (auto k : keys) {
    bool wrong;
    const set_value* st = lookup_set(s, c, k, wrong);
    if (wrong) return false;
    out.push_back(st);
  }
  return true;
}

// The result of SUNION / SINTER / SDIFF over sets (nullptr: an empty set). A result
// built like Redis's (an intset first, converted as members require) has the same
// encoding Redis would give it.
set_value compute(set_op op, const std::vector<const set_value*>& sets) {
  set_value out;
  switch (op) {
    case set_op::union_:
      for (const set_value* st : sets)
        if (st) st->for_each([&](std::string_view m) { out.insert(m); });
      break;
    case set_op::inter: {
      for (const set_value* st : sets)
        if (!st) return out;
      std::vector<const set_value*> by_size(sets.begin(), sets.end());
      std::stable_sort(by_size.begin(), by_size.end(), [](const set_value* a, const set_value* b) { return a->size() < b->size(); });  // glibc qsort, a merge sort
      by_size.front()->for_each([&](std::string_view m) {
        for (std::size_t i = 1; i < by_size.size(); ++i)
          if (by_size[i] != by_size.front() && !by_size[i]->contains(m)) return;
        out.insert(m);
      });
      break;
    }
    case set_op::diff: {
      if (!sets.front()) return out;
      const set_value* first = sets.front();
      for (std::size_t i = 1; i < sets.size(); ++i)
        if (sets[i] == first) return out;  // A - A - ... is empty
      first->for_each([&](std::string_view m) {
        for (std::size_t i = 1; i < sets.size(); ++i)
          if (sets[i] && sets[i]->contains(m)) return;
        out.insert(m);
      });
      // When the other sets are small beside the first, Redis takes its second way: the
      // whole first set, then the others removed from it. Its result is then a table when
      // the first set could not be an intset, whatever is left.
      std::size_t one = 0, two = 0;
      for (const set_value* st : sets) {
        if (!st) continue;
        one += first->size();
        two += st->size();
      }
      if (one / 2 > two && !first->intset_eligible()) out.make_table();
      break;
    }
  }
  return out;
}

void set_op_generic(server& s, client& c, args_t keys, set_op op) {
  std::vector<const set_value*> sets;
  if (!lookup_sets(s, c, keys, sets)) return;
  auto w = s.reply(c);
  // SMEMBERS-like: no copy. (Not a SUNION of a table Redis would rebuild as an intset:
  // its reply is then in the intset's order.)
  if (sets.size() == 1 && op != set_op::diff &&
      !(op == set_op::union_ && sets[0] && !sets[0]->is_intset() && sets[0]->intset_eligible())) {
    if (sets[0]) reply_members(w, *sets[0]);
    else w.set(0);
    return;
  }
  reply_members(w, compute(op, sets));
}

// SUNIONSTORE / SINTERSTORE / SDIFFSTORE: the result replaces `dst` (its deadline too);
// an empty result deletes it.
void set_store_generic(server& s, client& c, args_t a, set_op op) {
  std::vector<const set_value*> sets;
  {
    server::read_lookups reading(s);
    if (!lookup_sets(s, c, a.subspan(2), sets)) return;
  }
  set_value result = compute(op, sets);
  const std::string_view dst = a[1];
  if (result.empty()) {
    s.reply(c).integer(0);
    if (s.db().erase(dst)) {
      s.add_dirty();
      s.key_deleted(dst);
      s.notify(notify_generic, "del", dst);
    }
  } else {
    const auto n = static_cast<long long>(result.size());
    s.db().create(dst, value_type::set).set() = std::move(result);
    s.add_dirty();
    s.signal_modified_key(dst);
    s.reply(c).integer(n);
    s.notify(notify_set, op == set_op::inter ? "sinterstore" : op == set_op::union_ ? "sunionstore" : "sdiffstore", dst);
  }
  s.keys_signalled();
}

constexpr std::string_view must_be_positive = "ERR value is out of range, must be positive";

void spop_with_count(server& s, client& c, args_t a) {
  long long count;
  if (!string2ll(a[2], count) || count < 0) {
    s.add_error(c, must_be_positive);
    return;
  }
  bool wrong;
  set_value* st = lookup_set(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  if (!st || count == 0) {
    w.set(0);
    return;
  }
  // Redis counts the members popped: the count, at most the set's size.
  s.add_dirty(std::min(static_cast<std::uint64_t>(count), static_cast<std::uint64_t>(st->size())));
  s.effects_logged();
  s.notify(notify_set, "spop", a[1]);
  if (static_cast<unsigned long long>(count) >= st->size()) {
    // The whole set: logged as DEL (Redis 7.0 with lazyfree-lazy-server-del no).
    reply_members(w, *st);
    s.db().erase(a[1]);
    s.notify(notify_generic, "del", a[1]);
    s.stream().append({"DEL", a[1]});
    return;
  }
  w.set(static_cast<std::size_t>(count));
  s.stream().begin_atomic();
  set_value::member_buf buf;
  const std::size_t remaining = st->size() - static_cast<std::size_t>(count);
  if (remaining * 5 <= static_cast<std::size_t>(count)) {
    // Most of the set: as Redis, the members that stay are drawn into a new set (an intset
    // again when they can be one), the rest returned and logged as SREMs, and the new set
    // takes the key's place.
    set_value keep;
    for (std::size_t i = 0; i < remaining; ++i) {
      const std::size_t pos = st->random_position();
      keep.insert(st->member_at(pos, buf));
      st->erase_at(pos);
    }
    st->for_each([&](std::string_view m) {
      w.bulk(m);
      s.stream().append({"SREM", a[1], m});
    });
    *st = std::move(keep);
    s.stream().end_atomic();
    return;
  }
  for (long long i = 0; i < count; ++i) {
    const std::size_t pos = st->random_position();
    const std::string_view m = st->member_at(pos, buf);
    w.bulk(m);
    s.stream().append({"SREM", a[1], m});
    st->erase_at(pos);
  }
  s.stream().end_atomic();
}

}  // namespace

void cmd_sadd(server& s, client& c, args_t a) {
  value* v = s.db().find(a[1]);
  if (v && v->type() != value_type::set) {
    s.add_error(c, wrongtype_error);
    return;
  }
  if (!v) v = &s.db().create(a[1], value_type::set);
  set_value& st = v->set();
  long long added = 0;
  for (std::size_t i = 2; i < a.size(); ++i)
    if (st.insert(a[i])) ++added;
  if (added) {
    s.add_dirty(static_cast<std::uint64_t>(added));
    s.notify(notify_set, "sadd", a[1]);
  }
  s.reply(c).integer(added);
}

void cmd_srem(server& s, client& c, args_t a) {
  bool wrong;
  set_value* st = lookup_set(s, c, a[1], wrong);
  if (wrong) return;
  long long removed = 0;
  if (st) {
    for (std::size_t i = 2; i < a.size() && !st->empty(); ++i)
      if (st->erase(a[i])) ++removed;
    if (removed) {
      s.add_dirty(static_cast<std::uint64_t>(removed));
      s.notify(notify_set, "srem", a[1]);
    }
    drop_if_empty(s, a[1], *st);
  }
  s.reply(c).integer(removed);
}

void cmd_smembers(server& s, client& c, args_t a) { set_op_generic(s, c, a.subspan(1, 1), set_op::inter); }

void cmd_sismember(server& s, client& c, args_t a) {
  bool wrong;
  set_value* st = lookup_set(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(st && st->contains(a[2]) ? 1 : 0);
}

void cmd_smismember(server& s, client& c, args_t a) {
  bool wrong;
  set_value* st = lookup_set(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.array(a.size() - 2);
  for (std::size_t i = 2; i < a.size(); ++i) w.integer(st && st->contains(a[i]) ? 1 : 0);
}

void cmd_scard(server& s, client& c, args_t a) {
  bool wrong;
  set_value* st = lookup_set(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(st ? static_cast<long long>(st->size()) : 0);
}

void cmd_spop(server& s, client& c, args_t a) {
  if (a.size() == 3) {
    spop_with_count(s, c, a);
    return;
  }
  if (a.size() > 3) {
    s.add_error(c, syntax_error);
    return;
  }
  bool wrong;
  set_value* st = lookup_set(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  if (!st) {
    w.null();
    return;
  }
  const std::string m = st->pop_random();
  w.bulk(m);
  s.stream().append({"SREM", a[1], m});
  s.effects_logged();
  s.notify(notify_set, "spop", a[1]);
  drop_if_empty(s, a[1], *st);
  s.add_dirty();
}

void cmd_srandmember(server& s, client& c, args_t a) {
  if (a.size() > 3) {
    s.add_error(c, syntax_error);
    return;
  }
  set_value::member_buf buf;
  if (a.size() == 2) {
    bool wrong;
    set_value* st = lookup_set(s, c, a[1], wrong);
    if (wrong) return;
    if (!st) s.reply(c).null();
    else s.reply(c).bulk(st->member_at(st->random_position(), buf));
    return;
  }
  long long l;
  if (!integer_arg(s, c, a[2], l)) return;
  if (l == LLONG_MIN) {
    s.add_error(c, "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
    return;
  }
  bool wrong;
  set_value* st = lookup_set(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  if (!st || l == 0) {
    w.array(0);
    return;
  }
  const bool unique = l > 0;
  const auto count = static_cast<unsigned long long>(unique ? l : -l);
  // A negative count may repeat members: independent draws.
  if (!unique || count == 1) {
    w.array(static_cast<std::size_t>(count));
    for (unsigned long long i = 0; i < count; ++i) w.bulk(st->member_at(st->random_position(), buf));
    return;
  }
  const std::size_t size = st->size();
  if (count >= size) {
    w.array(size);
    st->for_each([&](std::string_view m) { w.bulk(m); });
    return;
  }
  // Distinct members. A large share of the set: a partial shuffle of every position;
  // a small one: random positions, skipping repeats.
  std::vector<std::size_t> chosen;
  chosen.reserve(static_cast<std::size_t>(count));
  if (count * 3 > size) {
    std::vector<std::size_t> all;
    all.reserve(size);
    for (std::size_t p = 0; p < st->position_limit(); ++p)
      if (st->occupied(p)) all.push_back(p);
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t j = i + static_cast<std::size_t>(set_value::random_u64() % (all.size() - i));
      std::swap(all[i], all[j]);
      chosen.push_back(all[i]);
    }
  } else {
    std::unordered_set<std::size_t> seen;
    while (chosen.size() < count) {
      const std::size_t p = st->random_position();
      if (seen.insert(p).second) chosen.push_back(p);
    }
  }
  w.array(chosen.size());
  for (std::size_t p : chosen) w.bulk(st->member_at(p, buf));
}

void cmd_smove(server& s, client& c, args_t a) {
  value* src = s.db().find(a[1]);
  value* dst = s.db().find(a[2]);
  if (!src) {
    s.reply(c).integer(0);
    return;
  }
  if (src->type() != value_type::set || (dst && dst->type() != value_type::set)) {
    s.add_error(c, wrongtype_error);
    return;
  }
  s.keys_signalled();
  if (src == dst) {
    s.reply(c).integer(src->set().contains(a[3]) ? 1 : 0);
    return;
  }
  if (!src->set().erase(a[3])) {
    s.reply(c).integer(0);
    return;
  }
  s.notify(notify_set, "srem", a[1]);
  if (src->set().empty()) {
    s.db().erase(a[1]);
    s.key_deleted(a[1]);
    s.notify(notify_generic, "del", a[1]);
  } else {
    s.signal_modified_key(a[1]);
  }
  s.add_dirty();
  if (!dst) dst = &s.db().create(a[2], value_type::set);
  if (dst->set().insert(a[3])) {
    s.add_dirty();
    s.signal_modified_key(a[2]);
    s.notify(notify_set, "sadd", a[2]);
  }
  s.reply(c).integer(1);
}

void cmd_sunion(server& s, client& c, args_t a) { set_op_generic(s, c, a.subspan(1), set_op::union_); }
void cmd_sinter(server& s, client& c, args_t a) { set_op_generic(s, c, a.subspan(1), set_op::inter); }
void cmd_sdiff(server& s, client& c, args_t a) { set_op_generic(s, c, a.subspan(1), set_op::diff); }
void cmd_sunionstore(server& s, client& c, args_t a) { set_store_generic(s, c, a, set_op::union_); }
void cmd_sinterstore(server& s, client& c, args_t a) { set_store_generic(s, c, a, set_op::inter); }
void cmd_sdiffstore(server& s, client& c, args_t a) { set_store_generic(s, c, a, set_op::diff); }

void cmd_sintercard(server& s, client& c, args_t a) {
  long long numkeys;
  if (!string2ll(a[1], numkeys) || numkeys < 1) {
    s.add_error(c, "ERR numkeys should be greater than 0");
    return;
  }
  if (static_cast<unsigned long long>(numkeys) > a.size() - 2) {
    s.add_error(c, "ERR Number of keys can't be greater than number of args");
    return;
  }
  long long limit = 0;  // 0: no limit
  for (std::size_t j = 2 + static_cast<std::size_t>(numkeys); j < a.size(); ++j) {
    if (to_lower(a[j]) == "limit" && j + 1 < a.size()) {
      ++j;
      if (!string2ll(a[j], limit) || limit < 0) {
        s.add_error(c, "ERR LIMIT can't be negative");
        return;
      }
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  std::vector<const set_value*> sets;
  if (!lookup_sets(s, c, a.subspan(2, static_cast<std::size_t>(numkeys)), sets)) return;
  long long n = 0;
  if (std::find(sets.begin(), sets.end(), nullptr) == sets.end()) {
    std::sort(sets.begin(), sets.end(), [](const set_value* x, const set_value* y) { return x->size() < y->size(); });
    // for_each cannot stop early; the limit only caps the count (the work is bounded by
    // the smallest set either way).
    sets.front()->for_each([&](std::string_view m) {
      if (limit && n >= limit) return;
      for (std::size_t i = 1; i < sets.size(); ++i)
        if (sets[i] != sets.front() && !sets[i]->contains(m)) return;
      ++n;
    });
  }
  s.reply(c).integer(n);
}

void cmd_sscan(server& s, client& c, args_t a) {
  scan_args sa;
  // As Redis: the cursor is checked first, then the key, then the options.
  if (!parse_scan_cursor(s, c, a[2], sa.cursor)) return;
  bool wrong;
  set_value* st = lookup_set(s, c, a[1], wrong);
  if (wrong) return;
  if (!st) return empty_scan_reply(s, c);
  if (!parse_scan_args(s, c, a, 2, false, sa)) return;
  std::vector<std::string> found;
  auto collect = [&](std::string_view m) {
    if (!sa.has_pattern || glob_match(sa.pattern, m)) found.emplace_back(m);
  };
  std::uint64_t cursor = sa.cursor;
  const auto count = static_cast<std::size_t>(sa.count);
  if (st->is_intset()) {
    cursor = st->scan_step(cursor, collect);
  } else {
    // Redis's loop: home buckets until `count` members were gathered (before MATCH
    // filtering) or ten times `count` buckets were visited.
    std::size_t gathered = 0;
    auto counting = [&](std::string_view m) {
      ++gathered;
      collect(m);
    };
    long long budget = sa.count * 10;
    do {
      cursor = st->scan_step(cursor, counting);
    } while (cursor && budget-- && gathered < count);
  }
  auto w = s.reply(c);
  w.array(2);
  w.bulk(std::to_string(cursor));
  w.array(found.size());
  for (const auto& m : found) w.bulk(m);
}

}  // namespace respq::core
