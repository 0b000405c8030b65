// url: the checks respq makes on a task's URLs, and hiding the credentials they may carry.
//
// check_url accepts what libcurl's URL parser (curl_url_set with the scheme left open)
// accepts for http and https, by the same rules: no control bytes or spaces anywhere; a
// scheme of ALPHA *(ALPHA / DIGIT / "+" / "-" / ".") then ':' and one to three slashes;
// an authority of [userinfo '@'] host [':' port] up to the first of "/?#", the userinfo
// ending at its first '@'; a host that is a bracketed IPv6 address or, once
// percent-decoded (no control bytes), a name without any of " /:#?!@{}[]\$'"^`*<>=;,+&()";
// a port of decimal digits up to 65535 (empty means the default). Path, query and
// fragment are not checked further. A unit test runs the same table of URLs through libcurl and through
// this, so the two agree on what a task may name; this library does not link libcurl.
//
// Redaction: a URL reported anywhere (outcomes, callback bodies, dead-letter reasons,
// logs) shows its user but not its password: http://user:***@host/. A user without a
// password may be a token itself, so it becomes ***@. The request itself, and the dead
// letter's original payload, keep the URL as the producer wrote it.
//
// Sending: a path or query with bytes past ASCII (UTF-8 written as is, "?name=José") goes
// out percent-encoded, each such byte as %XX (upper-case hex, RFC 3986), as browsers and
// Guzzle send it: the request line of HTTP/1.1 is ASCII, and libcurl encodes only the
// path. The host is left as written.
//
// Pure functions of their arguments; any thread.
#pragma once

#include <string>
#include <string_view>

namespace respq::tasks {

// An error reason naming `field` ("url", "callback"), or empty when `url` is an http or
// https URL with a host.
std::string check_url(std::string_view url, std::string_view field);

// `url` with every byte past ASCII after its authority (path, query, fragment)
// percent-encoded; `url` itself when it has none. What respq sends; reports keep the URL
// as the producer wrote it.
std::string encode_non_ascii(std::string url);

// True when `url`'s authority has a userinfo part ("user:pass@", "token@").
bool has_credentials(std::string_view url);

// `url` with its credentials hidden, or `url` itself when it carries none.
std::string redact_url(std::string_view url);

// Free text (an error message, a reason) with the credentials of every URL in it hidden
// the same way: any "<scheme>://<userinfo>@" it contains.
std::string redact_urls_in(std::string_view text);

}  // namespace respq::tasks
