// http_request: building one attempt's request from a decoded task, and a callback's. Pure.
#include "tasks/http_request.hpp"

#include <algorithm>

#include "resp/ascii.hpp"
#include "tasks/signing.hpp"
#include "tasks/url.hpp"

namespace respq::tasks {

http_request make_http_request(task&& t, std::uint64_t ticket, std::string pool, double default_timeout_s) {
  http_request r;
  r.ticket = ticket;
  r.pool = std::move(pool);
  r.method = std::move(t.method);
  r.url = encode_non_ascii(std::move(t.url));
  r.headers = std::move(t.headers);
  // Room for X-Task-Id and the X-Task-Attempt the queue adds, made once: the request
  // lives as long as its attempt.
  r.headers.reserve(r.headers.size() + 2);
  const bool has_id_header = std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) {
    return iequals(h.first, "X-Task-Id");
  });
  if (!t.id.empty() && !has_id_header) r.headers.emplace_back("X-Task-Id", t.id);
  r.body = std::move(t.body);
  r.timeout_s = t.timeout.value_or(default_timeout_s);
  r.follow_redirects = t.follow_redirects;
  r.keep_body = response_read_bytes;
  r.keep_body_of_2xx = false;
  return r;
}

http_request make_http_request(const task& t, std::uint64_t ticket, std::string pool,
                               double default_timeout_s) {
  return make_http_request(task(t), ticket, std::move(pool), default_timeout_s);
}

void set_attempt_header(http_request& r, int attempt) {
  std::erase_if(r.headers, [](const auto& h) { return iequals(h.first, "X-Task-Attempt"); });
  r.headers.emplace_back("X-Task-Attempt", std::to_string(attempt));
}

std::string callback_pool(std::string_view queue) { return std::string(queue) + ":callbacks"; }

http_request make_callback_request(std::string_view callback_url, std::string_view task_id, std::string outcome_json,
                                   std::uint64_t ticket, std::string_view queue, const queue_options& opts,
                                   long long now_s) {
  http_request cb;
  cb.ticket = ticket;
  cb.pool = callback_pool(queue);
  cb.method = "POST";
  cb.url = encode_non_ascii(std::string(callback_url));
  cb.headers = {{"Content-Type", "application/json"}, {"X-Task-Id", std::string(task_id)}};
  cb.body = std::move(outcome_json);
  cb.timeout_s = std::min(opts.timeout, 30.0);
  if (!opts.signing_secrets.empty()) sign_request(cb, callback_message_id(task_id, cb.body.value_or(std::string())), now_s, opts.signing_secrets);
  return cb;
}

}  // namespace respq::tasks
