// control: see control.hpp.
#include "tasks/control.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "tasks/host_health.hpp"
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
  if (auto r = j.find("response"); r != j.end() && r->is_string()) d.response = r->get<std::string>();
  else if (auto b = j.find("response_b64"); b != j.end() && b->is_string()) d.response = base64_decode(b->get<std::string>());
  if (auto p = j.find("payload"); p != j.end() && p->is_string()) d.payload = p->get<std::string>();
  else if (auto b = j.find("payload_b64"); b != j.end() && b->is_string()) d.payload = base64_decode(b->get<std::string>());
  if (want_host) {
    auto t = decode_task(d.payload, 0);
    if (auto* task = std::get_if<struct task>(&t)) {
      d.host = url_host(task->url);
      d.host_port = host_key_of(task->url);
    }
  }
  return d;
}

namespace {

// "host:port" or "[v6]:port", as host_key_of writes it (a bare IPv6 address has colons
// but no brackets, so it names a host).
bool names_port(std::string_view host) {
  const auto colon = host.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == host.size()) return false;
  for (const char c : host.substr(colon + 1))
    if (c < '0' || c > '9') return false;
  const std::string_view name = host.substr(0, colon);
  return name.find(':') == std::string_view::npos || (name.front() == '[' && name.back() == ']');
}

}  // namespace

bool matches(const dead_filter& f, const dead_letter_info& d) {
  if (!f.id.empty() && f.id != d.id) return false;
  if (f.code >= 0 && f.code != d.code) return false;
  if (!f.host.empty()) {
    if (f.host == no_host) return d.host.empty();
    if (lower(f.host) != (names_port(f.host) ? d.host_port : d.host)) return false;
  }
  return true;
}

void attempt_log::push(attempt_info&& a) const {
  if (entries_.size() >= max_logged_attempts) entries_.erase(entries_.begin());
  if (entries_.size() == entries_.capacity()) entries_.reserve(entries_.size() + 1);
  entries_.push_back(std::move(a));
}

const std::vector<attempt_info>& attempt_log::entries() const {
  if (running_) {
    attempt_info a;
    a.number = running_number_;
    a.started_at = running_at_;
    running_ = false;
    push(std::move(a));
  }
  return entries_;
}

void attempt_log::started(int number, double at) {
  entries();  // an attempt that never ended stays in the log, unfinished
  running_ = true;
  running_number_ = number;
  running_at_ = at;
}

using namespace packing;

namespace {

// An entry's flags byte: what follows it, and what is taken from the envelope instead.
enum : unsigned char {
  f_finished = 0x01,
  f_number = 0x02,      // a varint number follows; else the previous entry's + 1 (the first: 1)
  f_code = 0x04,        // a varint code follows; else the known one
  f_error = 0x08,       // a text follows; else the known error (or none: f_no_error)
  f_next_run = 0x10,    // next_run follows; else the known one (or none: f_no_next_run)
  f_raw = 0x20,         // started_at, duration_ms and next_run as 8-byte doubles
  f_no_next_run = 0x40,
  f_no_error = 0x80,
};

std::uint64_t thousandths_or_zero(double v) {
  std::uint64_t n = 0;
  return to_thousandths(v, n) ? n : 0;
}

}  // namespace

// Per entry: the flags byte, [number], started_at (thousandths: the first from the known
// next_run, the others from the entry before, zigzag), duration_ms (thousandths),
// [code], [error], [next_run (thousandths from started_at, zigzag)]; with f_raw the three
// times are doubles. A retrying task's only attempt takes about 7 bytes.
std::string attempt_log::pack(const log_known& known) const {
  std::string out;
  std::uint64_t base = thousandths_or_zero(known.next_run);
  long long prev_number = 0;
  for (const attempt_info& a : entries()) {
    std::uint64_t started = 0, duration = 0, next = 0;
    const bool exact = to_thousandths(a.started_at, started) && to_thousandths(a.duration_ms, duration) &&
                       (a.next_run == 0 || to_thousandths(a.next_run, next));
    unsigned char flags = a.finished ? f_finished : 0;
    if (!exact) flags |= f_raw;
    if (a.number != prev_number + 1) flags |= f_number;
    if (a.code != known.code) flags |= f_code;
    if (a.error.empty()) flags |= f_no_error;
    else if (a.error != known.error) flags |= f_error;
    if (a.next_run == 0) flags |= f_no_next_run;
    else if (a.next_run != known.next_run) flags |= f_next_run;
    out += static_cast<char>(flags);
    if (flags & f_number) put_varint(out, zigzag(a.number));
    prev_number = a.number;
    if (exact) {
      put_varint(out, zigzag(static_cast<long long>(base - started)));
      put_varint(out, duration);
      base = started;
    } else {
      put_double(out, a.started_at);
      put_double(out, a.duration_ms);
    }
    if (flags & f_code) put_varint(out, zigzag(a.code));
    if (flags & f_error) put_text(out, a.error);
    if (flags & f_next_run) {
      if (exact) put_varint(out, zigzag(static_cast<long long>(next - started)));
      else put_double(out, a.next_run);
    }
  }
  return out;
}

attempt_log attempt_log::unpack(std::string_view in, const log_known& known) {
  attempt_log log;
  std::uint64_t base = thousandths_or_zero(known.next_run);
  long long prev_number = 0;
  while (!in.empty()) {
    const auto flags = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    attempt_info a;
    a.finished = flags & f_finished;
    std::uint64_t v;
    long long number = prev_number + 1;
    if (flags & f_number) {
      if (!get_varint(in, v)) return {};
      number = unzigzag(v);
    }
    if (number < std::numeric_limits<int>::min() || number > std::numeric_limits<int>::max()) return {};
    a.number = static_cast<int>(number);
    prev_number = a.number;
    std::uint64_t started = 0;
    if (flags & f_raw) {
      if (!get_double(in, a.started_at) || !get_double(in, a.duration_ms)) return {};
    } else {
      std::uint64_t duration;
      if (!get_varint(in, v) || !get_varint(in, duration)) return {};
      started = base - static_cast<std::uint64_t>(unzigzag(v));
      base = started;
      a.started_at = static_cast<double>(started) / 1000.0;
      a.duration_ms = static_cast<double>(duration) / 1000.0;
    }
    a.code = known.code;
    if (flags & f_code) {
      if (!get_varint(in, v)) return {};
      a.code = static_cast<long>(unzigzag(v));
    }
    if (flags & f_error) {
      if (!get_text(in, a.error)) return {};
    } else if (!(flags & f_no_error)) {
      a.error.assign(known.error);
    }
    if (flags & f_next_run) {
      if (flags & f_raw) {
        if (!get_double(in, a.next_run)) return {};
      } else {
        if (!get_varint(in, v)) return {};
        a.next_run = static_cast<double>(started + static_cast<std::uint64_t>(unzigzag(v))) / 1000.0;
      }
    } else if (!(flags & f_no_next_run)) {
      a.next_run = known.next_run;
    }
    log.entries_.push_back(std::move(a));
  }
  log.entries_.shrink_to_fit();
  return log;
}

void attempt_log::finished(long code, std::string error, double duration_ms, double next_run) {
  entries();  // the running attempt into the vector: it ends there
  if (entries_.empty() || entries_.back().finished) return;
  attempt_info& a = entries_.back();
  a.finished = true;
  a.code = code;
  a.error = std::move(error);
  a.duration_ms = duration_ms;
  a.next_run = next_run;
}

int attempt_log::holds() const {
  const auto& e = entries();
  int n = 0;
  for (std::size_t i = 1; i < e.size(); ++i)
    if (e[i].number == e[i - 1].number) ++n;
  return n;
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
    case finished_task::source::envelope:
    case finished_task::source::text: {
      auto e = t.kind == finished_task::source::text ? read_envelope_json(t.record) : read_envelope(t.record);
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

finished_task* task_history::find(std::string_view id) {
  return const_cast<finished_task*>(std::as_const(*this).find(id));
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
