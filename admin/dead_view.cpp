// dead_view: see dead_view.hpp.
#include "admin/dead_view.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "tasks/control.hpp"

namespace respq::admin {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The fields of one record: a dead letter's (the host from the payload's "url" alone:
// grouping needs no full task check), or a stand-in for anything else.
tasks::dead_letter_info read_record(const std::string& rec) {
  auto d = tasks::read_dead_letter(rec, false);
  if (d) {
    nlohmann::json p = nlohmann::json::parse(d->payload, nullptr, false);
    if (p.is_object())
      if (auto u = p.find("url"); u != p.end() && u->is_string()) d->host = tasks::url_host(u->get_ref<const std::string&>());
    return std::move(*d);
  }
  tasks::dead_letter_info x;
  x.reason = "not a dead-letter record";
  x.payload = rec;
  return x;
}

std::string render(const std::string& queue, const std::vector<const tasks::dead_letter_info*>& infos,
                   const dead_query& q) {
  struct group {
    std::size_t count = 0;
    std::map<std::string, std::size_t> reasons;
  };
  std::map<std::pair<std::string, long>, group> groups;
  const std::string want_host = lower(q.host);
  const std::size_t limit = std::min(q.limit, dead_query::max_limit);
  nlohmann::json items = nlohmann::json::array();
  std::size_t matched = 0;
  for (const tasks::dead_letter_info* d : infos) {
    group& g = groups[{d->host, d->code}];
    ++g.count;
    ++g.reasons[d->reason];
    if (!want_host.empty() && (want_host == tasks::no_host ? !d->host.empty() : d->host != want_host)) continue;
    if (q.code >= 0 && d->code != q.code) continue;
    if (!q.reason.empty() && d->reason != q.reason) continue;
    if (matched++ < q.offset || items.size() >= limit) continue;
    // A page lists payloads up to max_listed_payload bytes each (cut at a character's
    // start); GET /api/tasks/<id> gives a letter's whole payload.
    std::string_view payload = d->payload;
    const bool cut = payload.size() > dead_query::max_listed_payload;
    if (cut) {
      std::size_t n = dead_query::max_listed_payload;
      for (int back = 0; back < 3 && n > 0 && (static_cast<unsigned char>(payload[n]) & 0xC0) == 0x80; ++back) --n;
      payload = payload.substr(0, n);
    }
    items.push_back({{"id", d->id},
                     {"host", d->host},
                     {"code", d->code},
                     {"attempts", d->attempts},
                     {"failed_at", d->failed_at},
                     {"reason", d->reason},
                     {"error", d->error},
                     {"response", d->response},
                     {"payload", payload},
                     {"payload_bytes", d->payload.size()},
                     {"payload_truncated", cut}});
  }
  std::vector<std::tuple<std::string, long, const group*>> sorted;
  for (const auto& [key, g] : groups) sorted.emplace_back(key.first, key.second, &g);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return std::get<2>(a)->count > std::get<2>(b)->count; });
  nlohmann::json gs = nlohmann::json::array();
  for (const auto& [host, code, g] : sorted) {
    std::vector<std::pair<std::string, std::size_t>> rs(g->reasons.begin(), g->reasons.end());
    std::stable_sort(rs.begin(), rs.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    nlohmann::json reasons = nlohmann::json::array();
    for (const auto& [r, n] : rs) reasons.push_back({{"reason", r}, {"count", n}});
    gs.push_back({{"host", host}, {"code", code}, {"count", g->count}, {"reasons", std::move(reasons)}});
  }
  nlohmann::json doc{{"queue", queue},   {"total", infos.size()}, {"groups", std::move(gs)}, {"matched", matched},
                     {"offset", q.offset}, {"limit", limit},          {"items", std::move(items)}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string dead_letters_json(const std::string& queue, const std::vector<std::string>& records, const dead_query& q) {
  std::vector<tasks::dead_letter_info> read;
  read.reserve(records.size());
  for (const auto& r : records) read.push_back(read_record(r));
  std::vector<const tasks::dead_letter_info*> infos;
  infos.reserve(read.size());
  for (const auto& d : read) infos.push_back(&d);
  return render(queue, infos, q);
}

std::string dead_letter_cache::json(const std::string& queue, const std::vector<std::string>& records, const dead_query& q) {
  std::lock_guard lock(m_);
  std::unordered_map<std::string, tasks::dead_letter_info> next;
  next.reserve(records.size());
  std::vector<const tasks::dead_letter_info*> infos;
  infos.reserve(records.size());
  for (const auto& r : records) {
    auto it = next.find(r);
    if (it == next.end()) {
      auto old = read_.find(r);
      it = next.emplace(r, old != read_.end() ? std::move(old->second) : read_record(r)).first;
    }
    infos.push_back(&it->second);  // unordered_map nodes are stable across rehashing
  }
  read_ = std::move(next);
  return render(queue, infos, q);
}

}  // namespace respq::admin
