// command_docs: see command_docs.hpp.
#include "broker/core/command_docs.hpp"

#include <charconv>
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

}  // namespace

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
