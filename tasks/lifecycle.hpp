// lifecycle: the one decision about a task after an attempt, for local and shared queues
// alike. They differ only in where they keep a task between attempts (local queues: the
// hash <queue>:inflight in respq's keyspace; shared queues: this sidecar's processing list
// on the upstream Redis, plus memory); what an answer means is decided here, once.
//
//   attempt result --decide()--> delivered                  (outcome "delivered")
//                              | retrying at next_run        (outcome "retrying")
//                              | dead with a reason          (outcome "dead", dead letter)
//
//   2xx                                   delivered
//   transport error, timeout, 408, 425,   retrying, after max(backoff with full jitter,
//   429, 5xx, with attempts left          Retry-After) capped at max(backoff-max, 1 h)
//   the same with no attempt left         dead: "attempts exhausted (N)"
//   429 or 503 with a Retry-After in the  retrying at the Retry-After's time, the attempt
//   future                                refunded (attempts left or not): the endpoint
//                                         asked to wait, as Cloud Tasks treats it; at
//                                         most max_free_holds times per task, then it
//                                         counts as the attempt it is
//   1xx, 3xx, other 4xx (410 Gone too,    dead: "HTTP <code> is final" (a 3xx is only
//   as Standard Webhooks asks)            followed when the task sets follow_redirects)
//   redirect to a refused scheme          dead at once: the engine's reason
//   egress policy refused the address     dead at once: "egress denied: <address> (<rule>)"
//   TLS verification or handshake refused dead at once: "TLS ...: <what OpenSSL said>"
//   a task that does not decode           dead before any attempt (refuse())
//
// Pure: the decision is a function of (task record, attempt result, queue options, now,
// a uniform draw for the jitter). Callers own the state and carry the decision out
// (write the envelope or remove it, publish the outcome, push the dead letter, post the
// callback). Reasons and error texts come with URL credentials hidden. Any thread.
#pragma once

#include <string>
#include <string_view>

#include "tasks/http_request.hpp"
#include "tasks/queue_options.hpp"
#include "tasks/records.hpp"
#include "tasks/retry_policy.hpp"
#include "tasks/task.hpp"

namespace respq::tasks {

// What custody knows of a task when an attempt ends. Views: the caller keeps them alive
// as long as the decision's outcome is used.
struct task_record {
  std::string_view id, queue, url;
  std::string_view node;  // the sidecar reporting (outcome "node"); may be empty
  int attempts = 0;       // attempts started, the one that just ended included
  int max_attempts = 1;   // 1 + retries
  int holds = 0;          // attempts already taken back for a Retry-After hold (its log's)
};

// A task's attempts answered with a Retry-After hold that cost it nothing, at most: past
// them such an answer is an attempt like any other, so an endpoint that always says
// "later" can't keep a task for ever.
inline constexpr int max_free_holds = 10;

enum class next_state { delivered, retrying, dead };

struct decision {
  next_state state = next_state::delivered;
  bool attempt_failed = false;  // the attempt did not deliver (the queue's "failed" figure)
  bool attempt_refunded = false;  // 429/503 with Retry-After: the attempt is not counted
                                  // (the caller takes it back off the task's attempts)
  double next_run = 0;          // retrying: unix seconds of the next attempt
  std::string reason;           // dead: why, for the dead letter and the log
  std::string dead_error;       // dead: the transport error, for the dead letter ("" after an HTTP answer)
  outcome_fields outcome;       // the outcome record to publish (views into the task record)
};

// The attempts a task gets on a queue: the first plus its retries (the task's or the queue's).
inline int max_attempts_of(const task& t, const queue_options& q) { return 1 + (t.retries ? *t.retries : q.retries); }

// What went wrong in an ended request, as outcomes, logs and host figures say it: its
// transfer error with the credentials of any URL in it hidden, or else "HTTP <code>".
std::string failure_text(const http_result& r);

// After an attempt. `jitter_u` is uniform in [0, 1) (only a retry uses it).
decision decide(const task_record& t, const http_result& r, const queue_options& q, double now, double jitter_u);

// The same, drawing the jitter from `rng` only when the attempt may be retried.
template <typename Urbg>
decision decide(const task_record& t, const http_result& r, const queue_options& q, double now, Urbg& rng) {
  const bool may_retry = !r.redirect_refused && !r.egress_denied && !r.tls_failed && classify_attempt(r.code, !r.error.empty()) == attempt_outcome::retry;
  return decide(t, r, q, now, may_retry ? uniform01(rng) : 0.0);
}

// A task refused before any attempt (it does not decode): dead, with the decoder's reason.
decision refuse(const task_record& t, std::string reason);

// A task whose id is already in custody: it is not sent twice; this is its outcome.
outcome_fields duplicate_outcome(const task_record& t);

// A task cancelled by QUEUE/TASK control while in custody (pending, in flight, waiting):
// not attempted again; this is its outcome ("cancelled").
outcome_fields cancelled_outcome(const task_record& t);

// The dead letter of a dead decision, carrying `payload` (the producer's bytes) untouched.
dead_fields dead_letter(const task_record& t, const decision& d, std::string_view payload, double failed_at);

}  // namespace respq::tasks
