// task: decoding of task payloads. See task.hpp.
//
// nlohmann::json reports errors by throwing; decode_task catches them all and turns them
// into decode_error reasons, so no exception leaves this file.
#include "tasks/task.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "tasks/json_view.hpp"
#include "tasks/query.hpp"
#include "tasks/records.hpp"
#include "tasks/url.hpp"
#include "resp/ascii.hpp"

namespace respq::tasks {
namespace {

using json_view::value;

// ---- small string helpers --------------------------------------------------------------

char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s, std::string_view chars = " \t\r\n") {
  const auto b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(chars);
  return s.substr(b, e - b + 1);
}

bool is_http_url_text(std::string_view s) {
  return istarts_with(s, "http://") || istarts_with(s, "https://");
}

// Quotes a producer-supplied value for an error reason: bounded, control bytes hidden.
std::string quote_for_reason(std::string_view s) {
  constexpr std::size_t limit = 64;
  std::string out = "'";
  for (char c : s.substr(0, limit)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > limit) out += "...";
  out += '\'';
  return out;
}

// ---- JSON and URL checks ---------------------------------------------------------------

// True when brackets nest deeper than `limit` (strings skipped). Checked before parsing
// so a hostile payload costs a linear scan, not a deep tree.
bool nests_deeper_than(std::string_view s, int limit) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// Appends an encoded query to a URL: after '?' or '&' as the URL needs, dropping any
// fragment (never sent on the wire, and it would otherwise swallow the query).
void append_query(std::string& url, std::string_view query) {
  if (query.empty()) return;
  if (const auto hash = url.find('#'); hash != std::string::npos) url.resize(hash);
  const auto qm = url.find('?');
  if (qm == std::string::npos)
    url += '?';
  else if (qm + 1 != url.size() && url.back() != '&')
    url += '&';
  url += query;
}

bool is_token_char(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool has_header(const task& t, std::string_view name) {
  return std::any_of(t.headers.begin(), t.headers.end(),
                     [&](const auto& h) { return iequals(h.first, name); });
}

std::string number_text(const value& v) {
  if (v.is_number_float()) {
    const double d = v.number();
    if (std::trunc(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  }
  return v.dump();
}

using ojson = nlohmann::ordered_json;

// Decodes a JSON object payload. Returns the task or the first problem found.
decode_result decode_object(const value& j, double now) {
  task t;
  auto field = [&](std::string_view name) -> std::optional<value> {
    const auto it = j.find(name);
    // JSON null means absent: PHP arrays often carry 'key' => null.
    if (it == j.end() || (*it).is_null()) return std::nullopt;
    return *it;
  };
  auto fail = [](std::string reason) -> decode_result { return decode_error{std::move(reason)}; };

  // url
  const auto url = field("url");
  if (!url) return fail("url is missing");
  if (!url->is_string()) return fail("url must be a string");
  t.url = std::string(url->text());
  if (auto err = check_url(t.url, "url"); !err.empty()) return fail(std::move(err));

  // body / json
  const auto body = field("body");
  const auto json_body = field("json");
  if (body && json_body) return fail("body and json cannot both be given");
  if (body) {
    if (!body->is_string()) return fail("body must be a string (use json for a JSON body)");
    t.body = std::string(body->text());
  } else if (json_body) {
    t.body = json_body->dump();
  }

  // method
  if (const auto m = field("method")) {
    if (!m->is_string()) return fail("method must be a string");
    std::string name(m->text());
    std::transform(name.begin(), name.end(), name.begin(), ascii_upper);
    static constexpr std::array<std::string_view, 6> methods{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    if (std::find(methods.begin(), methods.end(), name) == methods.end())
      return fail("method " + quote_for_reason(m->text()) +
                  " is not supported (GET POST PUT PATCH DELETE HEAD)");
    t.method = std::move(name);
  } else if (t.body) {
    t.method = "POST";  // a body with no method: what anyone sending a body means
  }
  if (t.method == "HEAD" && t.body) return fail("a HEAD request cannot have a body");

  // headers
  if (const auto hs = field("headers")) {
    if (!hs->is_object()) return fail("headers must be an object of name: value");
    for (auto it = hs->begin(); it != hs->end(); ++it) {
      const std::string_view name = it.key();
      if (name.empty() || !std::all_of(name.begin(), name.end(),
                                       [](char c) { return is_token_char(static_cast<unsigned char>(c)); }))
        return fail("header name " + quote_for_reason(name) + " is not a valid HTTP token");
      if (iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding"))
        return fail("header " + quote_for_reason(name) + " is set by respq from the body");
      std::string value;
      if ((*it).is_string())
        value = std::string((*it).text());
      else if ((*it).is_number())
        value = number_text(*it);
      else
        return fail("header " + quote_for_reason(name) + " value must be a string or number");
      if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
        return fail("header " + quote_for_reason(name) + " value contains CR, LF or NUL");
      t.headers.emplace_back(name, std::move(value));
    }
  }
  if (json_body && !has_header(t, "Content-Type")) t.headers.emplace_back("Content-Type", "application/json");

  // param: a form body for POST/PUT/PATCH without another body, else the query string.
  if (const auto p = field("param")) {
    if (!p->is_structured()) return fail("param must be an object or an array");
    std::string query = http_build_query(*p);
    const bool form = !t.body && (t.method == "POST" || t.method == "PUT" || t.method == "PATCH");
    if (form) {
      t.body = std::move(query);
      if (!has_header(t, "Content-Type"))
        t.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    } else {
      append_query(t.url, query);
    }
  }

  // timeout, retries
  if (const auto v = field("timeout")) {
    if (!v->is_number() || !(v->number() > 0) || v->number() > max_timeout_s)
      return fail("timeout must be a number of seconds > 0 and <= 86400");
    t.timeout = v->number();
  }
  if (const auto v = field("retries")) {
    const bool integral =
        v->is_number_integer() || (v->is_number_float() && std::trunc(v->number()) == v->number());
    if (!integral || v->number() < 0 || v->number() > max_retries)
      return fail("retries must be an integer from 0 to 1000");
    t.retries = static_cast<int>(v->number());
  }

  // delay / at
  const auto delay = field("delay");
  const auto at = field("at");
  if (delay && at) return fail("delay and at cannot both be given");
  if (delay) {
    if (!delay->is_number() || !(delay->number() >= 0) || !std::isfinite(delay->number()))
      return fail("delay must be a number of seconds >= 0");
    t.run_at = now + delay->number();
  } else if (at) {
    if (!at->is_number() || !(at->number() >= 0) || !std::isfinite(at->number()))
      return fail("at must be a unix time in seconds (a number >= 0)");
    t.run_at = at->number();
  }

  // id
  if (const auto v = field("id")) {
    if (v->is_string())
      t.id = std::string(v->text());
    else if (v->is_number_integer())
      t.id = v->dump();
    else
      return fail("id must be a string or an integer");
    if (t.id.size() > max_id_bytes) return fail("id is longer than 256 bytes");
    if (std::any_of(t.id.begin(), t.id.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
      return fail("id contains control characters");
  }

  // callback
  if (const auto v = field("callback")) {
    if (!v->is_string()) return fail("callback must be a string");
    t.callback = std::string(v->text());
    if (!t.callback.empty())
      if (auto err = check_url(t.callback, "callback"); !err.empty()) return fail(std::move(err));
  }

  // follow_redirects
  if (const auto v = field("follow_redirects")) {
    if (!v->is_boolean()) return fail("follow_redirects must be true or false");
    t.follow_redirects = v->boolean();
  }
  return t;
}

decode_result decode_bare_url(std::string_view text) {
  task t;
  t.url = std::string(text);
  if (auto err = check_url(t.url, "url"); !err.empty()) return decode_error{std::move(err)};
  return t;
}

}  // namespace

decode_result decode_task(std::string_view payload, double now) {
  try {
    const std::string_view text = trim(payload);
    if (text.empty()) return decode_error{"payload is empty"};
    const char first = text.front();
    if (first != '{' && first != '[' && first != '"' && is_http_url_text(text)) return decode_bare_url(text);
    if (nests_deeper_than(text, max_json_depth)) return decode_error{"payload nests deeper than 512 levels"};
    json_view::document doc;
    // The quick parser's nodes are larger than nlohmann's values: beyond a typical task's
    // size its speed no longer matters, and nlohmann keeps big payloads' memory as before.
    constexpr std::size_t quick_parse_max_bytes = 64 * 1024;
    if (first == '{' && text.size() <= quick_parse_max_bytes && doc.parse(text))
      return decode_object(doc.root(), now);
    // What the quick parser declines (invalid JSON included) goes through nlohmann, whose
    // results and messages are the reference.
    const ojson j = ojson::parse(text.begin(), text.end());
    if (j.is_string() && is_http_url_text(j.get_ref<const std::string&>()))
      return decode_bare_url(j.get_ref<const std::string&>());
    if (!j.is_object()) return decode_error{"payload must be a JSON object or an http(s) URL"};
    doc.assign(j, max_json_depth);
    return decode_object(doc.root(), now);
  } catch (const nlohmann::json::parse_error& e) {
    return decode_error{"payload is not valid JSON (at byte " + std::to_string(e.byte) + ")"};
  } catch (const nlohmann::json::out_of_range&) {
    return decode_error{"payload has a number out of range"};
  } catch (const std::exception& e) {
    return decode_error{std::string("payload could not be decoded: ") + e.what()};
  } catch (...) {
    return decode_error{"payload could not be decoded"};
  }
}

std::string payload_url(std::string_view payload) {
  const nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
  if (!j.is_object()) return {};
  const auto u = j.find("url");
  return u != j.end() && u->is_string() ? u->get<std::string>() : std::string();
}

decoded_element decode_element(std::string_view element, double now) {
  bool was_dead_letter = false;
  std::string unwrapped, id;
  // A dead letter moved back (LMOVE Q:dead Q RIGHT LEFT): its "failed_at" is the mark,
  // and a task of its own would have a "url".
  if (!element.empty() && element.front() == '{' && element.find("\"failed_at\"") != std::string_view::npos) {
    const auto j = nlohmann::json::parse(element, nullptr, false);
    if (j.is_object() && !j.contains("url") && j.contains("failed_at") &&
        (j.contains("payload") || j.contains("payload_b64"))) {
      if (auto p = j.find("payload"); p != j.end() && p->is_string()) {
        unwrapped = p->get<std::string>();
        was_dead_letter = true;
      } else if (auto b = j.find("payload_b64"); b != j.end() && b->is_string()) {
        unwrapped = base64_decode(b->get<std::string>());
        was_dead_letter = true;
      }
      if (auto i = j.find("id"); i != j.end() && i->is_string()) id = i->get<std::string>();
    }
  }
  // The result is built in place (it is decoded before `unwrapped`, which it reads, moves).
  decoded_element out{decode_task(was_dead_letter ? std::string_view(unwrapped) : element, now), was_dead_letter,
                      std::move(unwrapped), std::move(id)};
  const std::string_view payload = out.payload(element);
  if (auto* t = std::get_if<task>(&out.result); t && !t->id.empty()) {
    out.id = t->id;
  } else if (!t && out.id.empty() && !payload.empty() && payload.front() == '{') {
    // A refused task still carries the producer's id when it has one, so the app can
    // match the dead letter and the outcome to what it pushed.
    const auto j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_object()) {
      if (auto i = j.find("id"); i != j.end()) {
        if (i->is_string()) out.id = i->get<std::string>();
        else if (i->is_number_integer()) out.id = i->dump();
      }
      if (out.id.size() > max_id_bytes) out.id.clear();
    }
  }
  return out;
}

}  // namespace respq::tasks
