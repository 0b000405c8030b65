// control: see control.hpp.
#include "tasks/control.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "tasks/records.hpp"
#include "tasks/task.hpp"
#include "tasks/packing.hpp"

namespace respq::tasks {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string url_host(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, std::min(rest.find_first_of("/?#"), rest.size()));
  if (auto at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    return close == std::string_view::npos ? std::string() : lower(rest.substr(1, close - 1));
  }
  if (auto colon = rest.find(':'); colon != std::string_view::npos) rest = rest.substr(0, colon);
  return lower(rest);
}

std::optional<dead_letter_info> read_dead_letter(std::string_view record, bool want_host) {
  nlohmann::json j = nlohmann::json::parse(record.begin(), record.end(), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto id = j.find("id");
  if (id == j.end() || !id->is_string() || !j.contains("failed_at")) return std::nullopt;
  dead_letter_info d;
  d.id = id->get<std::string>();
  if (auto c = j.find("code"); c != j.end() && c->is_number_integer()) d.code = c->get<long>();
  if (auto a = j.find("attempts"); a != j.end() && a->is_number_integer()) d.attempts = a->get<int>();
  if (auto f = j.find("failed_at"); f->is_number()) d.failed_at = f->get<double>();
  if (auto r = j.find("reason"); r != j.end() && r->is_string()) d.reason = r->get<std::string>();
  if (auto e = j.find("error"); e != j.end() && e->is_string()) d.error = e->get<std::string>();
  if (auto p = j.find("payload"); p != j.end() && p->is_string()) d.payload = p->get<std::string>();
  else if (auto b = j.find("payload_b64"); b != j.end() && b->is_string()) d.payload = base64_decode(b->get<std::string>());
  if (want_host) {
    auto t = decode_task(d.payload, 0);
    if (auto* task = std::get_if<struct task>(&t)) d.host = url_host(task->url);
  }
  return d;
}

bool matches(const dead_filter& f, const dead_letter_info& d) {
  if (!f.id.empty() && f.id != d.id) return false;
  if (f.code >= 0 && f.code != d.code) return false;
  if (!f.host.empty() && lower(f.host) != d.host) return false;
  return true;
}

void attempt_log::started(int number, double at) {
  attempt_info a;
  a.number = number;
  a.started_at = at;
  if (entries_.size() >= max_logged_attempts) entries_.erase(entries_.begin());
  if (entries_.size() == entries_.capacity()) entries_.reserve(entries_.size() + 1);
  entries_.push_back(std::move(a));
}

using namespace packing;

// Per entry: varint number, started_at, finished (0/1), varint code, duration_ms,
// next_run, varint (error length + 1) then the error, or 0 for `known`.
std::string attempt_log::pack(std::string_view known) const {
  std::string out;
  for (const attempt_info& a : entries_) {
    put_varint(out, static_cast<std::uint64_t>(a.number));
    put_double(out, a.started_at);
    out += a.finished ? '\1' : '\0';
    put_varint(out, static_cast<std::uint64_t>(a.code));
    put_double(out, a.duration_ms);
    put_double(out, a.next_run);
    if (!a.error.empty() && a.error == known) {
      put_varint(out, 0);
      continue;
    }
    put_varint(out, a.error.size() + 1);
    out += a.error;
  }
  return out;
}

attempt_log attempt_log::unpack(std::string_view in, std::string_view known) {
  attempt_log log;
  while (!in.empty()) {
    attempt_info a;
    std::uint64_t number, code, len;
    if (!get_varint(in, number) || !get_double(in, a.started_at) || in.empty()) return {};
    a.finished = in.front() != '\0';
    in.remove_prefix(1);
    if (!get_varint(in, code) || !get_double(in, a.duration_ms) || !get_double(in, a.next_run) ||
        !get_varint(in, len) || (len > 0 && len - 1 > in.size()))
      return {};
    a.number = static_cast<int>(number);
    a.code = static_cast<long>(code);
    if (len == 0) {
      a.error.assign(known);
    } else {
      a.error.assign(in.substr(0, len - 1));
      in.remove_prefix(len - 1);
    }
    log.entries_.push_back(std::move(a));
  }
  log.entries_.shrink_to_fit();
  return log;
}

void attempt_log::finished(long code, std::string error, double duration_ms, double next_run) {
  if (entries_.empty() || entries_.back().finished) return;
  attempt_info& a = entries_.back();
  a.finished = true;
  a.code = code;
  a.error = std::move(error);
  a.duration_ms = duration_ms;
  a.next_run = next_run;
}

const char* finished_name(finished_state s) {
  switch (s) {
    case finished_state::delivered: return "delivered";
    case finished_state::dead: return "dead";
    case finished_state::cancelled: return "cancelled";
  }
  return "delivered";
}

std::string finished_payload(const finished_task& t) {
  switch (t.kind) {
    case finished_task::source::envelope: {
      auto e = read_envelope(t.record);
      if (auto* r = std::get_if<envelope_record>(&e)) return std::move(r->payload);
      return salvage_payload(t.record);
    }
    case finished_task::source::dead_record: {
      if (auto d = read_dead_letter(t.record, false)) return std::move(d->payload);
      return t.record;
    }
    case finished_task::source::element: {
      auto e = decode_element(t.record, 0);
      return std::string(e.payload(t.record));
    }
  }
  return t.record;
}

void task_history::add(finished_task t, std::size_t max_len) {
  if (max_len == 0) {
    trim(0);
    return;
  }
  const std::uint64_t seq = next_seq_++;
  index_[t.id] = seq;
  entries_.push_back(slot{seq, std::move(t)});
  trim(max_len);
}

void task_history::trim(std::size_t max_len) {
  // Entries replaced by a newer one of the same id are dropped on the way; the live ones
  // (those the index points at) are what counts against max_len.
  while (!entries_.empty()) {
    auto& front = entries_.front();
    auto it = index_.find(front.task.id);
    const bool live = it != index_.end() && it->second == front.seq;
    // Holes count too, up to as many again, so tasks reusing one id can't grow it unbounded.
    if (live && index_.size() <= max_len && entries_.size() <= 2 * max_len) break;
    if (live) index_.erase(it);
    entries_.pop_front();
  }
}

const finished_task* task_history::find(std::string_view id) const {
  auto it = index_.find(std::string(id));
  if (it == index_.end() || entries_.empty()) return nullptr;
  const std::uint64_t first = entries_.front().seq;
  const auto& s = entries_[static_cast<std::size_t>(it->second - first)];
  return &s.task;
}

void token_bucket::refill(clock::time_point now, double rate) {
  const double burst = std::max(1.0, rate / 10);
  if (!started_) {
    started_ = true;
    last_ = now;
    tokens_ = burst;
    return;
  }
  if (now > last_) {
    tokens_ = std::min(burst, tokens_ + std::chrono::duration<double>(now - last_).count() * rate);
    last_ = now;
  }
}

std::size_t token_bucket::take(clock::time_point now, double rate, std::size_t want) {
  refill(now, rate);
  const auto n = std::min(want, static_cast<std::size_t>(std::floor(tokens_)));
  tokens_ -= static_cast<double>(n);
  return n;
}

token_bucket::clock::time_point token_bucket::next(clock::time_point now, double rate) {
  refill(now, rate);
  if (tokens_ >= 1 || rate <= 0) return now;
  return now + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>((1 - tokens_) / rate));
}

}  // namespace respq::tasks
