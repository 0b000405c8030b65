// api: see api.hpp.
#include "admin/api.hpp"

#include <charconv>
#include <cmath>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "tasks/egress.hpp"
#include "tasks/signing.hpp"
#include "tasks/task.hpp"

namespace respq::admin {

namespace {

bool is_url_string(const nlohmann::json& j) {
  if (!j.is_string()) return false;
  const auto& s = j.get_ref<const std::string&>();
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

}  // namespace

std::variant<task_batch, api_error> read_tasks(std::string_view body, double now,
                                               const std::function<std::string()>& new_id, std::size_t max_tasks) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) return api_error{"the body is not valid JSON"};
  std::vector<nlohmann::json> items;
  if (doc.is_array()) {
    if (doc.empty()) return api_error{"no tasks: the array is empty"};
    if (doc.size() > max_tasks) return api_error{"too many tasks in one request (at most " + std::to_string(max_tasks) + ")"};
    for (auto& e : doc) items.push_back(std::move(e));
  } else {
    items.push_back(std::move(doc));
  }
  task_batch batch;
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i < items.size(); ++i) {
    nlohmann::json& t = items[i];
    const std::string where = items.size() > 1 ? "task " + std::to_string(i) + ": " : std::string();
    if (is_url_string(t)) t = nlohmann::json{{"url", t}};
    if (!t.is_object()) return api_error{where + "a task is a JSON object (or an http(s) URL string)"};
    if (!t.contains("id")) t["id"] = new_id();
    std::string payload = t.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    tasks::decoded_element d = tasks::decode_element(payload, now);
    if (auto* err = std::get_if<tasks::decode_error>(&d.result)) return api_error{where + err->reason};
    if (d.was_dead_letter) return api_error{where + "a dead-letter record is not a task (replay its payload)"};
    if (d.id.empty()) {
      // An empty id, which the decoder does not use: the task runs under a new one,
      // written in, so that the answer names the id it will carry.
      t["id"] = new_id();
      payload = t.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      d = tasks::decode_element(payload, now);
    }
    if (!seen.insert(d.id).second)
      return api_error{where + "id '" + d.id + "' is given twice in the batch (the second would not run)"};
    batch.ids.push_back(d.id);
    batch.payloads.push_back(std::move(payload));
  }
  return batch;
}

std::string queues_json(const std::vector<queue_view>& queues) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& [s, o] : queues) {
    nlohmann::json responses = nlohmann::json::object();
    for (std::size_t i = 0; i < tasks::attempt_figures::class_count; ++i)
      responses[tasks::attempt_figures::class_names[i]] = s.attempts.responses[i];
    // Figures as numbers, the link's words (taker "up", a node's name) as text.
    nlohmann::json extra = nlohmann::json::object();
    for (const auto& [k, v] : s.extra) {
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (!v.empty() && ec == std::errc() && end == v.data() + v.size()) extra[k] = n;
      else extra[k] = v;
    }
    nlohmann::json secrets = nlohmann::json::array();
    for (const auto& k : o.signing_secrets) secrets.push_back(k.redacted());
    arr.push_back({
        {"name", s.name},
        {"shared", s.shared},
        {"paused", s.paused},
        {"pending", s.pending},
        {"in_flight", s.in_flight},
        {"retrying", s.retrying},
        {"scheduled", s.scheduled},
        {"dead_list", s.dead_list},
        {"enqueued", s.enqueued},
        {"dispatched", s.dispatched},
        {"delivered", s.delivered},
        {"failed", s.failed},
        {"retried", s.attempts.retried},
        {"dead", s.dead},
        {"egress_denied", s.egress_denied},
        {"cancelled", s.cancelled},
        {"replaying", s.replaying},
        {"callbacks_retrying", s.callbacks_retrying},
        {"callbacks_failed", s.callbacks_failed},
        {"reclaimed", s.reclaimed},
        {"responses", responses},
        {"dispatch_delay_p50_ms", s.latency.quantile(0.50)},
        {"dispatch_delay_p99_ms", s.latency.quantile(0.99)},
        {"request_duration_p50_ms", s.attempts.duration.quantile(0.50)},
        {"request_duration_p99_ms", s.attempts.duration.quantile(0.99)},
        {"link", extra},
        {"options",
         {{"concurrency", o.concurrency},
          {"rate", o.rate},
          {"per_host", o.per_host},
          {"host_rate", o.host_rate},
          {"timeout", o.timeout},
          {"retries", o.retries},
          {"backoff_min", o.backoff_min},
          {"backoff_max", o.backoff_max},
          {"shared", o.shared},
          // What makes its requests safe, as CONFIG GET shows it: secrets redacted.
          {"egress", o.egress ? nlohmann::json(std::string(tasks::egress_level_name(*o.egress))) : nlohmann::json("default")},
          {"signing_secrets", secrets},
          {"ca_file", o.ca_file},
          {"client_cert", o.client_cert}}},
    });
  }
  return nlohmann::json{{"queues", arr}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string task_json(const core::task_manager::task_view& t) {
  // Times and durations to the millisecond, as TASK GET gives them (tasks::json_number).
  auto ms = [](double v) { return std::round(v * 1000) / 1000; };
  auto time_or_null = [&](double at) { return at > 0 ? nlohmann::json(ms(at)) : nlohmann::json(nullptr); };
  nlohmann::json attempts = nlohmann::json::array();
  for (const tasks::attempt_info& a : t.log.entries()) {
    attempts.push_back({
        {"attempt", a.number},
        {"started_at", ms(a.started_at)},
        {"code", a.finished ? nlohmann::json(a.code) : nlohmann::json(nullptr)},
        {"error", a.finished ? nlohmann::json(a.error) : nlohmann::json(nullptr)},
        {"duration_ms", a.finished ? nlohmann::json(ms(a.duration_ms)) : nlohmann::json(nullptr)},
        {"next_run", time_or_null(a.next_run)},
    });
  }
  nlohmann::json j = {
      {"id", t.id},
      {"queue", t.queue},
      {"state", t.state},
      {"payload", t.payload},
      {"attempts_made", t.attempts},
      {"max_attempts", t.max_attempts},
      {"next_run", time_or_null(t.next_run)},
      {"last_code", t.last_code},
      {"last_error", t.last_error},
      {"finished_at", time_or_null(t.finished_at)},
      {"attempts", std::move(attempts)},
  };
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string sse_event(std::string_view event, std::string_view json) {
  std::string out;
  out.reserve(json.size() + event.size() + 16);
  if (!event.empty()) {
    out += "event: ";
    out += event;
    out += '\n';
  }
  std::size_t start = 0;
  while (true) {
    std::size_t nl = json.find('\n', start);
    std::string_view l = json.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    out += "data: ";
    out += l;
    out += '\n';
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  out += '\n';
  return out;
}

std::string make_task_id(std::uint64_t random, std::uint64_t counter) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(24, '0');
  for (int i = 15; i >= 0; --i, random >>= 4) id[static_cast<std::size_t>(i)] = hex[random & 15];
  counter &= 0xffffffffull;
  for (int i = 23; i >= 16; --i, counter >>= 4) id[static_cast<std::size_t>(i)] = hex[counter & 15];
  return id;
}

}  // namespace respq::admin
