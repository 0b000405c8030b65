// lifecycle: see lifecycle.hpp for the table this implements.
#include "tasks/lifecycle.hpp"

#include <algorithm>

#include "tasks/url.hpp"

namespace respq::tasks {
namespace {

outcome_fields outcome_of(const task_record& t, const char* status) {
  outcome_fields o;
  o.id = t.id;
  o.queue = t.queue;
  o.url = t.url;
  o.node = t.node;
  o.status = status;
  o.attempts = t.attempts;
  return o;
}

std::string hidden(std::string_view text) { return redact_urls_in(text); }

}  // namespace

std::string failure_text(const http_result& r) {
  return r.error.empty() ? "HTTP " + std::to_string(r.code) : hidden(r.error);
}

decision decide(const task_record& t, const http_result& r, const queue_options& q, double now, double jitter_u) {
  decision d;
  const bool transport_error = !r.error.empty();
  d.outcome = outcome_of(t, "delivered");
  d.outcome.code = r.code;
  d.outcome.duration_ms = r.duration_ms;
  d.outcome.truncated = r.truncated;

  if (r.egress_denied) {
    // The policy judged the address itself: another attempt would be judged the same, and
    // retrying a probe of internal addresses is the last thing to do. Nothing was sent.
    d.state = next_state::dead;
    d.attempt_failed = true;
    d.reason = hidden(r.error.rfind("egress denied", 0) == 0 ? r.error : "egress denied: " + r.error);
    d.dead_error = d.reason;
  } else if (r.tls_failed) {
    // The peer's certificate does not verify, or the peer refused ours: the same
    // certificates meet again on the next attempt.
    d.state = next_state::dead;
    d.attempt_failed = true;
    d.reason = hidden(r.error.rfind("TLS", 0) == 0 ? r.error : "TLS: " + r.error);
    d.dead_error = d.reason;
  } else if (r.redirect_refused) {
    // Following it again would reach the same refusal: no retry can change the answer.
    d.state = next_state::dead;
    d.attempt_failed = true;
    d.reason = hidden(r.error.empty() ? std::string("redirect to a refused scheme") : r.error);
    d.dead_error = d.reason;
  } else {
    switch (classify_attempt(r.code, transport_error)) {
      case attempt_outcome::delivered:
        return d;
      case attempt_outcome::retry: {
        d.attempt_failed = true;
        std::optional<double> retry_after;
        if (r.retry_after) retry_after = parse_retry_after(*r.retry_after, now);
        // The endpoint asked to come back later (429/503 with Retry-After): that answer
        // costs no attempt; the host is held until then (tasks/host_health.hpp).
        d.attempt_refunded = (r.code == 429 || r.code == 503) && !transport_error && retry_after && *retry_after > 0 &&
                             t.holds < max_free_holds;
        const int spent = d.attempt_refunded ? t.attempts - 1 : t.attempts;
        if (spent < t.max_attempts) {
          const double backoff = backoff_delay_at(std::max(spent, 1), q.backoff_min, q.backoff_max, jitter_u);
          const double delay = retry_delay(backoff, retry_after, std::max(q.backoff_max, retry_after_cap_s));
          d.state = next_state::retrying;
          d.next_run = now + delay;
          d.outcome.status = "retrying";
          d.outcome.attempts = spent;
          d.outcome.next_run = d.next_run;
          d.outcome.error = failure_text(r);
          if (!transport_error) d.outcome.response = r.body.substr(0, response_read_bytes);
          return d;
        }
        d.reason = "attempts exhausted (" + std::to_string(t.attempts) + ")";
        break;
      }
      case attempt_outcome::failed:
        d.attempt_failed = true;
        d.reason = "HTTP " + std::to_string(r.code) + " is final";
        break;
    }
    d.state = next_state::dead;
    if (transport_error) d.dead_error = hidden(r.error);
    else d.outcome.response = r.body.substr(0, response_read_bytes);
  }
  d.outcome.status = "dead";
  d.outcome.error = d.dead_error.empty() ? d.reason : d.dead_error;
  return d;
}

decision refuse(const task_record& t, std::string reason) {
  decision d;
  d.state = next_state::dead;
  d.reason = hidden(reason);
  d.outcome = outcome_of(t, "dead");
  d.outcome.error = d.reason;
  return d;
}

outcome_fields duplicate_outcome(const task_record& t) {
  outcome_fields o = outcome_of(t, "duplicate");
  o.error = "a task with this id is already in flight or waiting to retry";
  return o;
}

outcome_fields cancelled_outcome(const task_record& t) {
  outcome_fields o = outcome_of(t, "cancelled");
  o.error = "cancelled";
  return o;
}

dead_fields dead_letter(const task_record& t, const decision& d, std::string_view payload, double failed_at) {
  dead_fields f;
  f.id = t.id;
  f.queue = t.queue;
  f.reason = d.reason;
  f.error = d.dead_error;
  f.payload = payload;
  f.attempts = t.attempts;
  f.code = d.outcome.code;
  f.response = d.outcome.response;
  f.failed_at = failed_at;
  return f;
}

}  // namespace respq::tasks
