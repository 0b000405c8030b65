// host_health: see host_health.hpp for the states and the signals.
#include "tasks/host_health.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tasks/http_request.hpp"
#include "tasks/retry_policy.hpp"

namespace respq::tasks {

const char* circuit_name(circuit_state s) {
  switch (s) {
    case circuit_state::closed: return "closed";
    case circuit_state::open: return "open";
    case circuit_state::half_open: return "half_open";
  }
  return "closed";
}

const char* host_signal_name(host_signal s) {
  switch (s) {
    case host_signal::clean: return "clean";
    case host_signal::failure: return "failure";
    case host_signal::overload: return "overload";
    case host_signal::hold: return "hold";
    case host_signal::neutral: return "neutral";
  }
  return "neutral";
}

host_signal host_signal_of(const http_result& r, double now, double& hold_until) {
  if (r.egress_denied || r.redirect_refused) return host_signal::neutral;
  if (!r.error.empty()) return r.timed_out ? host_signal::overload : host_signal::failure;
  if (r.code == 429 || r.code == 503) {
    if (r.retry_after) {
      if (auto delay = parse_retry_after(*r.retry_after, now); delay && *delay > 0) {
        hold_until = now + std::min(*delay, retry_after_cap_s);
        return host_signal::hold;
      }
    }
    return host_signal::overload;
  }
  if (r.code == 408) return host_signal::overload;
  if (r.code >= 500) return host_signal::failure;
  return host_signal::clean;
}

std::string host_key_of(std::string_view url) {
  // One pass over the bytes (this runs once per dispatched task): the scheme up to "://",
  // then the authority up to the first of "/?#", its userinfo ending at its first '@'.
  const std::size_t n = url.size();
  std::size_t i = 0;
  while (i < n && url[i] != ':' && url[i] != '/') ++i;
  if (i == 0 || i + 3 > n || url[i] != ':' || url[i + 1] != '/' || url[i + 2] != '/') return {};
  const bool https = i == 5 && (url[4] == 's' || url[4] == 'S');
  std::size_t begin = i + 3, end = begin, at = std::string_view::npos;
  for (; end < n; ++end) {
    const char c = url[end];
    if (c == '/' || c == '?' || c == '#') break;
    if (c == '@' && at == std::string_view::npos) at = end;
  }
  if (at != std::string_view::npos) begin = at + 1;
  const std::string_view auth = url.substr(begin, end - begin);
  std::size_t host_end = auth.size(), port_begin = auth.size();
  if (!auth.empty() && auth[0] == '[') {
    const std::size_t close = auth.find(']');
    if (close == std::string_view::npos) return {};
    host_end = close + 1;
    if (host_end < auth.size() && auth[host_end] == ':') port_begin = host_end + 1;
  } else {
    for (std::size_t k = 0; k < auth.size(); ++k)
      if (auth[k] == ':') {
        host_end = k;
        port_begin = k + 1;
        break;
      }
  }
  if (host_end == 0) return {};
  const std::string_view port = port_begin < auth.size() ? auth.substr(port_begin) : std::string_view(https ? "443" : "80");
  std::string key(host_end + 1 + port.size(), ':');
  for (std::size_t k = 0; k < host_end; ++k) {
    const char c = auth[k];
    key[k] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::copy(port.begin(), port.end(), key.begin() + static_cast<std::ptrdiff_t>(host_end + 1));
  return key;
}

host_health::admission host_health::admit(double now) const {
  if (held_until_ > now) return {verdict::wait_until, held_until_};
  switch (state_) {
    case circuit_state::open:
      if (now < open_until_) return {verdict::wait_until, open_until_};
      if (rate_count_ && starts_size_ >= rate_count_ && oldest_start() + rate_window_ > now)
        return {verdict::wait_until, oldest_start() + rate_window_, true};  // the probe too
      return {verdict::go, 0};  // the probe
    case circuit_state::half_open:
      return {verdict::wait_for_slot, 0};  // its probe is out
    case circuit_state::closed:
      break;
  }
  if (in_flight_ >= cap()) return {verdict::wait_for_slot, 0};
  if (rate_count_ && starts_size_ >= rate_count_ && oldest_start() + rate_window_ > now)
    return {verdict::wait_until, oldest_start() + rate_window_, true};
  return {verdict::go, 0};
}

host_health::transition host_health::started(double now) {
  transition t;
  ++in_flight_;
  ++attempts_;
  if (rate_count_) {
    if (starts_size_ < rate_count_) {  // in order: starts_head_ is 0
      starts_.push_back(now);
      ++starts_size_;
    } else {  // full: the newest takes the oldest's place
      starts_[starts_head_] = now;
      starts_head_ = (starts_head_ + 1) % rate_count_;
    }
  }
  if (state_ == circuit_state::open && now >= open_until_) {
    state_ = circuit_state::half_open;
    probe_out_ = true;
    t.half_opened = true;
  }
  return t;
}

host_health::transition host_health::ended(host_signal s, double now, const host_limits& lim, double hold_until,
                                           std::string_view error) {
  transition t;
  if (in_flight_) --in_flight_;
  const unsigned cap_before = cap();
  auto close = [&] {
    consecutive_ = 0;
    if (state_ != circuit_state::closed) {
      state_ = circuit_state::closed;
      probe_out_ = false;
      open_until_ = 0;
      t.closed = true;
    }
  };
  auto decrease = [&] {
    if (now - last_decrease_ < aimd_decrease_gap_s) return;
    last_decrease_ = now;
    cap_ = std::max(1.0, std::floor(cap_ / 2));
  };
  switch (s) {
    case host_signal::neutral:
      return t;
    case host_signal::clean:
      close();
      cap_ = std::min<double>(max_cap_, cap_ + 1.0 / cap_);
      break;
    case host_signal::hold:
      // The endpoint answered and said when to come back: alive, but not before then.
      ++held_;
      held_until_ = std::max(held_until_, hold_until);
      t.held = true;
      last_error_ = std::string(error);
      last_error_at_ = now;
      decrease();
      close();
      break;
    case host_signal::failure:
    case host_signal::overload:
      ++failures_;
      ++consecutive_;
      last_error_ = std::string(error);
      last_error_at_ = now;
      if (s == host_signal::overload) decrease();
      if (state_ == circuit_state::half_open ||
          (state_ == circuit_state::closed && lim.failures_to_open && consecutive_ >= lim.failures_to_open)) {
        state_ = circuit_state::open;
        probe_out_ = false;
        open_until_ = now + lim.cooldown;
        ++opened_;
        t.opened = true;
      }
      break;
  }
  t.cap_changed = cap() != cap_before;
  return t;
}

void host_health::forget(double now) {
  if (in_flight_) --in_flight_;
  if (state_ == circuit_state::half_open && probe_out_) {
    // The probe's answer will not come: the next admit() sends another.
    state_ = circuit_state::open;
    probe_out_ = false;
    open_until_ = now;
  }
}

void host_health::reset() {
  state_ = circuit_state::closed;
  probe_out_ = false;
  consecutive_ = 0;
  open_until_ = held_until_ = 0;
  cap_ = max_cap_;
  last_decrease_ = -1e300;
}

void host_health::set_max_cap(unsigned max_cap) {
  max_cap_ = max_cap ? max_cap : 1;
  cap_ = std::clamp(cap_, 1.0, static_cast<double>(max_cap_));
}

void host_health::set_rate(double rate) {
  // The newest starts made so far, oldest first, count towards the new rate.
  std::vector<double> kept;
  for (std::uint32_t i = 0; i < starts_size_; ++i) kept.push_back(starts_[(starts_head_ + i) % rate_count_]);
  std::vector<double>().swap(starts_);
  starts_head_ = starts_size_ = 0;
  if (!(rate > 0) || rate > max_host_rate) {  // 0: no limit (nothing is remembered)
    rate_count_ = 0;
    rate_window_ = 0;
    return;
  }
  rate = std::max(rate, min_host_rate);
  rate_count_ = static_cast<std::uint32_t>(std::max(1.0, std::floor(rate)));
  rate_window_ = rate_count_ / rate;
  if (kept.size() > rate_count_) kept.erase(kept.begin(), kept.end() - rate_count_);
  starts_ = std::move(kept);
  starts_size_ = static_cast<std::uint32_t>(starts_.size());
}

std::optional<double> host_health::turn_at(double now, std::size_t ahead) const {
  const admission a = admit(now);
  if (a.v != verdict::wait_until) return std::nullopt;
  return a.rate ? a.until + static_cast<double>(ahead) * rate_step() : a.until;
}

bool host_health::idle(double now) const {
  return state_ == circuit_state::closed && consecutive_ == 0 && in_flight_ == 0 && held_until_ <= now &&
         cap() == max_cap_ && (starts_size_ == 0 || newest_start() + rate_window_ <= now);
}

host_figures host_health::figures() const {
  host_figures f;
  f.in_flight = in_flight_;
  f.cap = cap();
  f.max_cap = max_cap_;
  f.state = state_;
  f.failures = failures_;
  f.consecutive = consecutive_;
  f.opened = opened_;
  f.held = held_;
  f.attempts = attempts_;
  f.open_until = state_ == circuit_state::open ? open_until_ : 0;
  f.held_until = held_until_;
  f.last_error = last_error_;
  f.last_error_at = last_error_at_;
  return f;
}

void sort_busiest_first(std::vector<host_figures>& hosts) {
  std::stable_sort(hosts.begin(), hosts.end(), [](const host_figures& a, const host_figures& b) {
    const auto la = a.in_flight + a.waiting, lb = b.in_flight + b.waiting;
    if (la != lb) return la > lb;
    const bool ta = a.state != circuit_state::closed, tb = b.state != circuit_state::closed;
    if (ta != tb) return ta;
    if (a.failures != b.failures) return a.failures > b.failures;
    if (a.host != b.host) return a.host < b.host;
    return a.queue < b.queue;
  });
}

namespace {

std::string info_safe(std::string_view text) {
  std::string out;
  out.reserve(std::min<std::size_t>(text.size(), 160));
  for (char c : text) {
    if (out.size() >= 160) break;
    if (c == ',') out += ';';
    else if (c == '=' || c == '\r' || c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

std::string seconds(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

std::string hosts_info(std::vector<host_figures> hosts, std::size_t max_lines, double now) {
  sort_busiest_first(hosts);
  std::size_t open = 0, half_open = 0, held = 0;
  for (const auto& h : hosts) {
    if (h.state == circuit_state::open) ++open;
    else if (h.state == circuit_state::half_open) ++half_open;
    if (h.held_until > now) ++held;
  }
  const std::size_t shown = std::min(max_lines, hosts.size());
  std::string out = "hosts:count=" + std::to_string(hosts.size()) + ",open=" + std::to_string(open) +
                    ",half_open=" + std::to_string(half_open) + ",held=" + std::to_string(held) +
                    ",shown=" + std::to_string(shown) + "\r\n";
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& h = hosts[i];
    out += "host_" + std::to_string(i) + ":addr=" + info_safe(h.host) + ",queue=" + info_safe(h.queue) +
           ",in_flight=" + std::to_string(h.in_flight) + ",waiting=" + std::to_string(h.waiting) +
           ",cap=" + std::to_string(h.cap) + ",max_cap=" + std::to_string(h.max_cap) + ",state=" +
           circuit_name(h.state) + ",failures=" + std::to_string(h.failures) +
           ",consecutive=" + std::to_string(h.consecutive) + ",opened=" + std::to_string(h.opened) +
           ",attempts=" + std::to_string(h.attempts) +
           ",held_until=" + (h.held_until > now ? seconds(h.held_until) : std::string("0")) +
           ",last_error=" + info_safe(h.last_error) + "\r\n";
  }
  return out;
}

}  // namespace respq::tasks
