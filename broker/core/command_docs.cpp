// command_docs: see command_docs.hpp.
#include "broker/core/command_docs.hpp"

#include "resp/ascii.hpp"

#include <charconv>
#include <initializer_list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace respq::core {

namespace {

struct entry {
  const char* name;
  const char* info;
  const char* docs;
};

const entry entries[] = {
#include "broker/core/command_docs_data.inc"
};

// A RESP3 value. Maps keep keys and values alternating in `children`.
struct node {
  char type = '_';
  std::string text;
  long long integer = 0;
  std::vector<node> children;
};

// Parses one value from the generated (trusted) data.
node parse(std::string_view& in) {
  node n;
  n.type = in[0];
  std::size_t eol = in.find("\r\n");
  std::string_view head = in.substr(1, eol - 1);
  in.remove_prefix(eol + 2);
  switch (n.type) {
    case '+': case '-': case ',': case '#':
      n.text = std::string(head);
      break;
    case ':':
      std::from_chars(head.data(), head.data() + head.size(), n.integer);
      break;
    case '$': case '=': {
      long long len = 0;
      std::from_chars(head.data(), head.data() + head.size(), len);
      if (len >= 0) {
        n.text = std::string(in.substr(0, static_cast<std::size_t>(len)));
        in.remove_prefix(static_cast<std::size_t>(len) + 2);
      } else {
        n.type = '_';
      }
      break;
    }
    case '*': case '~': case '%': case '>': {
      long long count = 0;
      std::from_chars(head.data(), head.data() + head.size(), count);
      if (n.type == '%') count *= 2;
      for (long long i = 0; i < count; ++i) n.children.push_back(parse(in));
      break;
    }
    default:
      break;
  }
  return n;
}

void write(resp::reply_writer& w, const node& n) {
  switch (n.type) {
    case '+': w.simple(n.text); break;
    case '-': w.error(n.text); break;
    case ':': w.integer(n.integer); break;
    case '$': w.bulk(n.text); break;
    case '=': w.verbatim(n.text.size() > 4 ? std::string_view(n.text).substr(4) : std::string_view(n.text)); break;
    case ',':
      if (w.protocol() >= 3) {
        w.raw(",");
        w.raw(n.text);
        w.raw("\r\n");
      } else {
        w.bulk(n.text);
      }
      break;
    case '#': w.boolean(n.text == "t"); break;
    case '*': w.array(n.children.size()); break;
    case '~': w.set(n.children.size()); break;
    case '>': w.push(n.children.size()); break;
    case '%': w.map(n.children.size() / 2); break;
    default: w.null(); break;
  }
  for (const auto& c : n.children) write(w, c);
}

struct parsed {
  node info, docs;
};

const std::unordered_map<std::string_view, parsed>& table() {
  static const std::unordered_map<std::string_view, parsed> t = [] {
    std::unordered_map<std::string_view, parsed> m;
    for (const auto& e : entries) {
      std::string_view i = e.info, d = e.docs;
      m.emplace(e.name, parsed{parse(i), parse(d)});
    }
    return m;
  }();
  return t;
}

std::string_view sub_of(std::string_view full) {
  auto bar = full.find('|');
  return bar == std::string_view::npos ? std::string_view() : full.substr(bar + 1);
}

// A subcommand's entry ("container|sub") inside its container's: element 0 of an info
// entry, or a key of the docs' "subcommands" map, names it.
const node* info_of_subcommand(std::string_view full) {
  auto it = table().find(full.substr(0, full.find('|')));
  if (it == table().end() || it->second.info.children.size() != 10) return nullptr;
  for (const auto& s : it->second.info.children[9].children)
    if (!s.children.empty() && s.children[0].text == full) return &s;
  return nullptr;
}

const node* docs_of_subcommand(std::string_view full) {
  auto it = table().find(full.substr(0, full.find('|')));
  if (it == table().end()) return nullptr;
  const auto& top = it->second.docs.children;
  for (std::size_t i = 0; i + 1 < top.size(); i += 2) {
    if (top[i].text != "subcommands") continue;
    const auto& kv = top[i + 1].children;
    for (std::size_t k = 0; k + 1 < kv.size(); k += 2)
      if (kv[k].text == full) return &kv[k + 1];
  }
  return nullptr;
}

// The value of `key` in a map node, or nullptr.
const node* field(const node& map, std::string_view key) {
  for (std::size_t i = 0; i + 1 < map.children.size(); i += 2)
    if (map.children[i].text == key) return &map.children[i + 1];
  return nullptr;
}

long long integer_field(const node* map, std::string_view key) {
  const node* v = map ? field(*map, key) : nullptr;
  return v ? v->integer : 0;
}

bool has_member(const node* set, std::string_view name) {
  if (set)
    for (const auto& m : set->children)
      if (m.text == name) return true;
  return false;
}

// The info entry of a command or "container|sub".
const node* info_of(std::string_view name) {
  if (name.find('|') != std::string_view::npos) return info_of_subcommand(name);
  auto it = table().find(name);
  return it == table().end() ? nullptr : &it->second.info;
}

// The key specifications of an info entry (element 8): each a map of flags, begin_search
// and find_keys.
const std::vector<node>& key_specs(const node& info) {
  static const std::vector<node> none;
  return info.children.size() == 10 ? info.children[8].children : none;
}

struct found_key {
  std::size_t pos;
  const node* flags;
};

// Redis 7.0's getKeysUsingKeySpecs: the keys every specification finds in `args`, in
// the order of the specifications; false when one of them does not fit the arguments (a
// count that is no integer, a range past the end), as for a command that would answer
// with a syntax error.
bool keys_by_specs(const node& info, command_args args, std::vector<found_key>& out) {
  const long long argc = static_cast<long long>(args.size());
  for (const node& spec : key_specs(info)) {
    const node* flags = field(spec, "flags");
    if (has_member(flags, "not_key")) continue;
    const node* bs = field(spec, "begin_search");
    const node* fk = field(spec, "find_keys");
    const node* bs_type = bs ? field(*bs, "type") : nullptr;
    const node* fk_type = fk ? field(*fk, "type") : nullptr;
    const node* bs_spec = bs ? field(*bs, "spec") : nullptr;
    const node* fk_spec = fk ? field(*fk, "spec") : nullptr;
    if (!bs_type || !fk_type) return false;
    long long first = 0;
    if (bs_type->text == "index") {
      first = integer_field(bs_spec, "index");
    } else if (bs_type->text == "keyword") {
      const node* keyword = bs_spec ? field(*bs_spec, "keyword") : nullptr;
      const long long from = integer_field(bs_spec, "startfrom");
      const long long start = from > 0 ? from : argc + from;
      const long long end = from > 0 ? argc - 1 : 1;
      for (long long i = start; i != end; i = start <= end ? i + 1 : i - 1) {
        if (i >= argc || i < 1) break;
        if (keyword && iequals(args[static_cast<std::size_t>(i)], keyword->text)) {
          first = i + 1;
          break;
        }
      }
      if (!first) continue;  // no keyword: no keys from this specification
    } else {
      return false;
    }
    long long last = 0, step = 1;
    if (fk_type->text == "range") {
      step = integer_field(fk_spec, "keystep");
      const long long lastkey = integer_field(fk_spec, "lastkey"), limit = integer_field(fk_spec, "limit");
      if (lastkey >= 0) last = first + lastkey;
      else if (!limit) last = argc + lastkey;
      else last = first + ((argc - first) / limit + lastkey);
    } else if (fk_type->text == "keynum") {
      step = integer_field(fk_spec, "keystep");
      const long long at = first + integer_field(fk_spec, "keynumidx");
      long long numkeys = 0;
      if (at < 0 || at >= argc || !string2ll(args[static_cast<std::size_t>(at)], numkeys) || numkeys < 0) return false;
      first += integer_field(fk_spec, "firstkey");
      last = first + numkeys - 1;
    } else {
      return false;
    }
    if (last >= argc || last < first || first >= argc || step < 1) return false;
    for (long long i = first; i <= last; i += step) out.push_back({static_cast<std::size_t>(i), flags});
    if (has_member(flags, "incomplete")) return false;
  }
  return true;
}

}  // namespace

std::optional<bool> command_has_keys(std::string_view name) {
  const node* info = info_of(name);
  if (!info) return std::nullopt;
  for (const node& spec : key_specs(*info))
    if (!has_member(field(spec, "flags"), "not_key")) return true;
  return false;
}

std::optional<std::size_t> sort_store_position(command_args args) {
  std::optional<std::size_t> store;
  for (std::size_t i = 2; i < args.size(); ++i) {
    if (iequals(args[i], "limit")) i += 2;
    else if (iequals(args[i], "get") || iequals(args[i], "by")) i += 1;
    else if (iequals(args[i], "store") && i + 1 < args.size()) store = i + 1;
  }
  return store;
}

std::pair<std::size_t, std::size_t> migrate_key_range(command_args args) {
  for (std::size_t i = 6; i < args.size(); ++i) {
    if (iequals(args[i], "keys"))
      return args[3].empty() ? std::pair{i + 1, args.size() - i - 1} : std::pair<std::size_t, std::size_t>{0, 0};
    if (iequals(args[i], "auth")) i += 1;
    else if (iequals(args[i], "auth2")) i += 2;
  }
  return {3, 1};
}

keys_reply write_command_keys(resp::reply_writer& w, std::string_view name, command_args args, bool with_flags) {
  const node* info = info_of(name);
  if (!info) return keys_reply::no_entry;
  std::vector<found_key> keys;
  if (name == "set") {
    // SET's flags vary with its GET option (Redis's setGetKeys): the key is at 1.
    bool get = false;
    for (std::size_t i = 3; i < args.size(); ++i) get = get || iequals(args[i], "get");
    w.array(1);
    if (with_flags) {
      w.array(2);
      w.bulk(args[1]);
      w.set(get ? 3 : 2);
      w.simple(get ? "RW" : "OW");
      if (get) w.simple("access");
      w.simple("update");
    } else {
      w.bulk(args[1]);
    }
    return keys_reply::written;
  }
  if (name == "sort" || name == "sort_ro") {
    // The keys of BY and GET and SORT's STORE destination have no key specification Redis
    // can follow (sortGetKeys, sortROGetKeys): the key, then the last STORE's destination.
    const std::optional<std::size_t> store = name == "sort" ? sort_store_position(args) : std::nullopt;
    w.array(store ? 2 : 1);
    auto key = [&](std::size_t pos, std::initializer_list<std::string_view> flags) {
      if (!with_flags) return w.bulk(args[pos]);
      w.array(2);
      w.bulk(args[pos]);
      w.set(flags.size());
      for (auto f : flags) w.simple(f);
    };
    key(1, {"RO", "access"});
    if (store) key(*store, {"OW", "update"});
    return keys_reply::written;
  }
  const bool by_specs = keys_by_specs(*info, args, keys);
  if (!by_specs && name == "migrate") {
    // Its KEYS specification is incomplete: when it finds KEYS (not as the last argument,
    // where the search never looks), Redis's migrateGetKeys decides.
    const auto [first, n] = migrate_key_range(args);
    if (!n) return keys_reply::invalid_arguments;
    w.array(n);
    for (std::size_t i = first; i < first + n; ++i) {
      if (!with_flags) {
        w.bulk(args[i]);
        continue;
      }
      w.array(2);
      w.bulk(args[i]);
      w.set(3);
      w.simple("RW");
      w.simple("access");
      w.simple("delete");
    }
    return keys_reply::written;
  }
  if (!by_specs) keys.clear();
  if (keys.empty()) {
    // Redis then asks the command's own key finder, which finds none either for the
    // commands respq has (a key count that is 0 or past the arguments).
    if (info->children.size() != 10 || !has_member(&info->children[2], "no_mandatory_keys"))
      return keys_reply::invalid_arguments;
    w.array(0);
    return keys_reply::written;
  }
  w.array(keys.size());
  for (const auto& k : keys) {
    if (!with_flags) {
      w.bulk(args[k.pos]);
      continue;
    }
    w.array(2);
    w.bulk(args[k.pos]);
    if (k.flags) write(w, *k.flags);
    else w.set(0);
  }
  return keys_reply::written;
}

bool write_command_info(resp::reply_writer& w, std::string_view name,
                        const std::function<bool(std::string_view)>& has_subcommand) {
  if (name.find('|') != std::string_view::npos) {
    const node* sub = info_of_subcommand(name);
    if (sub) write(w, *sub);
    return sub != nullptr;
  }
  auto it = table().find(name);
  if (it == table().end()) return false;
  node n = it->second.info;
  // Element 9: the subcommands, each an info entry named "container|sub".
  if (n.children.size() == 10) {
    auto& subs = n.children[9].children;
    std::vector<node> kept;
    for (auto& s : subs)
      if (!s.children.empty() && has_subcommand(sub_of(s.children[0].text))) kept.push_back(std::move(s));
    subs = std::move(kept);
  }
  write(w, n);
  return true;
}

bool write_command_docs(resp::reply_writer& w, std::string_view name,
                        const std::function<bool(std::string_view)>& has_subcommand) {
  if (name.find('|') != std::string_view::npos) {
    const node* sub = docs_of_subcommand(name);
    if (sub) write(w, *sub);
    return sub != nullptr;
  }
  auto it = table().find(name);
  if (it == table().end()) return false;
  node n = it->second.docs;
  for (std::size_t i = 0; i + 1 < n.children.size(); i += 2) {
    if (n.children[i].text != "subcommands") continue;
    auto& kv = n.children[i + 1].children;
    std::vector<node> kept;
    for (std::size_t k = 0; k + 1 < kv.size(); k += 2) {
      if (has_subcommand(sub_of(kv[k].text))) {
        kept.push_back(std::move(kv[k]));
        kept.push_back(std::move(kv[k + 1]));
      }
    }
    kv = std::move(kept);
  }
  write(w, n);
  return true;
}

}  // namespace respq::core
