// http_request / http_result: one attempt as it crosses between custody (the broker
// thread, or the Redis link's shared queues) and the delivery engine's thread, in batches.
//
// Plain values with no behaviour and no asio or curl types. Custody owns tickets: it picks
// one per attempt, keeps the task's state under it, and matches each http_result back by
// ticket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tasks/queue_options.hpp"
#include "tasks/task.hpp"

namespace respq::tasks {

struct http_request {
  std::uint64_t ticket = 0;
  std::string pool;  // delivery pool (one per queue); unknown names get default options
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;  // none: no body (POST/PUT/PATCH then send an empty one)
  double timeout_s = 0;             // whole request; <= 0 means the engine's default (30 s)
  bool follow_redirects = false;    // up to 5 hops, http and https only
  std::size_t keep_body = 0;        // response body bytes the result carries back (at most
                                    // 64 KB); a task's attempt keeps response_read_bytes
  bool keep_body_of_2xx = true;     // false: a 2xx answer's body is not carried back (a
                                    // task's attempt: only a failing answer's is shown)
};

// What a task's attempt keeps of the answer's body: an answer that fails the attempt
// shows its start in the outcome and the dead letter (`response`), response_kept_bytes
// at most; the engine reads 3 bytes more (response_read_bytes), which tell whether a
// character crosses that length.
inline constexpr std::size_t response_kept_bytes = 1024;
inline constexpr std::size_t response_read_bytes = response_kept_bytes + 3;

// Whether a result carries the body of an answer with `code`: none of a 2xx answer unless
// the request asked (http_request::keep_body_of_2xx).
inline bool keeps_body_of(bool keep_body_of_2xx, long code) { return keep_body_of_2xx || code < 200 || code > 299; }

struct http_result {
  std::uint64_t ticket = 0;
  long code = 0;                           // last HTTP status seen; 0 when no response
  std::string error;                       // empty on an HTTP response; else why the
                                           // transfer failed (then `code` is no outcome)
  bool timed_out = false;                  // the request's timeout expired
  bool redirect_refused = false;           // stopped at a redirect to a scheme respq does
                                           // not follow (only http and https): final
  bool egress_denied = false;              // the egress policy (tasks/egress.hpp) refused
                                           // the address to dial; `error` says which and
                                           // why: final, nothing was sent there
  bool tls_failed = false;                 // the TLS handshake failed in a way no retry
                                           // changes (verification, a refused client
                                           // certificate): final; `error` starts "TLS"
  double duration_ms = 0;                  // from hand-over to curl until done
  std::optional<std::string> retry_after;  // raw Retry-After header of the last response
  std::string body;                        // the response body's first request.keep_body bytes
  bool truncated = false;                  // the body went past the read limit (4 MB):
                                           // the rest was not read
};

// The request for one attempt of `t`: its method, URL, headers (plus X-Task-Id when the
// task has an id and no such header), body, redirect choice, and its own timeout or else
// `default_timeout_s` (the queue's).
http_request make_http_request(const task& t, std::uint64_t ticket, std::string pool,
                               double default_timeout_s);
// The same, taking the task's strings instead of copying them.
http_request make_http_request(task&& t, std::uint64_t ticket, std::string pool, double default_timeout_s);

// Sets X-Task-Attempt to the attempt's number: respq's header, in place of one the task
// carries (an endpoint would otherwise get two).
void set_attempt_header(http_request& r, int attempt);

// The pool a queue's callbacks are sent from: "<queue>:callbacks", with the queue's own
// pool options (per-host cap, egress rules, TLS trust).
std::string callback_pool(std::string_view queue);

// The POST of an outcome to a task's callback URL, in the queue's callback pool, with the
// queue's timeout up to 30 s, signed as the queue's requests are (webhook-id from
// callback_message_id, webhook-timestamp `now_s`) when the queue has signing secrets. One rule for both
// kinds of queue: a callback is sent once per outcome and never retried.
http_request make_callback_request(std::string_view callback_url, std::string_view task_id, std::string outcome_json,
                                   std::uint64_t ticket, std::string_view queue, const queue_options& opts,
                                   long long now_s);

}  // namespace respq::tasks
