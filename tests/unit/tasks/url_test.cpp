// url: check_url accepts exactly what libcurl's URL parser accepts for http and https
// (the rule respq used when it validated with libcurl, and the parser that later sends
// the request), and redaction hides credentials wherever a URL is reported.
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <curl/curl.h>

#include "tasks/url.hpp"

using namespace respq::tasks;

namespace {

// The reference: libcurl's parser with the scheme left open, then http/https and a
// non-empty host, as respq's check was written against libcurl.
bool curl_accepts(const std::string& url) {
  if (url.find('\0') != std::string::npos) return false;
  std::unique_ptr<CURLU, void (*)(CURLU*)> h(curl_url(), curl_url_cleanup);
  REQUIRE(h);
  if (curl_url_set(h.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) return false;
  char* scheme = nullptr;
  if (curl_url_get(h.get(), CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) return false;
  std::string s(scheme);
  curl_free(scheme);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s != "http" && s != "https") return false;
  char* host = nullptr;
  if (curl_url_get(h.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK) return false;
  const bool has_host = host && *host;
  curl_free(host);
  return has_host;
}

const std::vector<std::string> urls = {
    // accepted
    "http://example.com/", "https://example.com", "http://example.com:8080/a/b?c=d#e", "HTTP://EXAMPLE.COM/",
    "HtTpS://h/", "http://127.0.0.1:9/x", "http://[::1]:8080/", "http://[::1]/", "http://[2001:db8::1]/p",
    "http://[fe80::1%25eth0]/", "http://user:pass@h/", "http://user@h/", "http://:pass@h/", "http://u:p:q@h/",
    "http://h:/", "http://h:0/", "http://h:65535/", "http://h?x", "http://h#frag", "http:/h/", "http:///h/",
    "http://h/a%20b", "http://h/é", "http://ex%41mple.com/", "http://a-b.c_d.example/", "http://0x7f.1/",
    "http://xn--nxasmq6b.example/", "http://h/?q=a|b&c[]=1", "http://h/~user/", "http://h/{x}",
    "http://h/a\\b", "http://localhost", "https://h:443", "http://1.2.3.4.5/", "http://h.", "http://-h-/",
    // refused
    "", "h", "/relative/path", "//h/path", "127.0.0.1:9/no-scheme", "http:h", "http:", "http://", "http:////h/",
    "http://h:65536/", "http://h:99999999999999999999/", "http://h:8o/", "http://h:-1/", "http://exa mple.com/",
    "http://h/a b", "http://h/\t", "http://h/\x7f", "http://h/\x01", " http://h/", "http://h/ ", "http://[::1/",
    "http://[::zz]/", "http://[]/", "http://[::1]x/", "http://h{/", "http://h$/", "http://a@b@c/", "http://@/",
    "http://user@/", "http://h%00/", "http://h%/", "http://h%2/", "http://h%20x/", "http://h!/", "http://h;x/",
    "http://h,x/", "http://h+x/", "http://h=x/", "http://h&x/", "http://h(x)/", "http://h'/", "http://h\"/",
    "http://h^/", "http://h`/", "http://h*/", "http://h</", "http://h>/", "ftp://h/", "file:///etc/passwd",
    "gopher://h/", "javascript:alert(1)", "mailto:a@b", "dict://h/", "1http://h/", "ht tp://h/", "http ://h/",
    "h_ttp://h/", "httpx://h/"};

}  // namespace

TEST_CASE("check_url accepts and refuses what libcurl's URL parser does", "[url]") {
  for (const auto& u : urls) {
    INFO("url: " << u);
    const std::string reason = check_url(u, "url");
    CHECK(reason.empty() == curl_accepts(u));
  }
}

TEST_CASE("check_url reasons name the field and a refused scheme", "[url]") {
  CHECK(check_url("ftp://h/x", "url") == "url scheme 'ftp' is not allowed (http and https only)");
  CHECK(check_url("FILE:///etc/passwd", "callback") == "callback scheme 'file' is not allowed (http and https only)");
  CHECK(check_url(std::string("http://h/\0x", 10), "url") == "url contains a NUL byte");
  CHECK(check_url("http://", "url") == "url is not a valid URL (No host part in the URL)");
  CHECK(check_url("/relative", "url") == "url is not a valid URL (Bad scheme)");
  CHECK(check_url("http://h/a b", "url") == "url is not a valid URL (Malformed input to a URL function)");
  CHECK(check_url("http://h:70000/", "url") ==
        "url is not a valid URL (Port number was not a decimal number between 0 and 65535)");
  CHECK(check_url("http:////h", "url") == "url is not a valid URL (Unsupported number of slashes following scheme)");
  CHECK(check_url("http://[::g]/", "url") == "url is not a valid URL (Bad IPv6 address)");
  CHECK(check_url("http://h!/", "url") == "url is not a valid URL (Bad hostname)");
}

TEST_CASE("redact_url hides the password, or a user without one", "[url][redact]") {
  struct row {
    const char* in;
    const char* out;
  };
  const row rows[] = {
      {"http://user:pass@host/", "http://user:***@host/"},
      {"https://user:p%40ss@host:8443/a?b=c@d", "https://user:***@host:8443/a?b=c@d"},
      {"http://token@host/", "http://***@host/"},
      {"http://:secret@host/", "http://:***@host/"},
      {"http://host/path@x", "http://host/path@x"},
      {"http://host/?u=a@b", "http://host/?u=a@b"},
      {"http://host/#a@b", "http://host/#a@b"},
      {"http://host/", "http://host/"},
      {"http:/user:pw@host/", "http:/user:***@host/"},
      {"HTTP://USER:PW@HOST", "HTTP://USER:***@HOST"},
      {"not a url @ all", "not a url @ all"},
      {"", ""},
  };
  for (const auto& r : rows) {
    INFO("url: " << r.in);
    CHECK(redact_url(r.in) == r.out);
    CHECK(redact_url(redact_url(r.in)) == r.out);  // idempotent
  }
  CHECK(has_credentials("http://u:p@h/"));
  CHECK(has_credentials("http://u@h/"));
  CHECK_FALSE(has_credentials("http://h/a@b"));
  CHECK_FALSE(has_credentials("mailto:a@b"));
}

TEST_CASE("redact_urls_in hides credentials of every URL in a text", "[url][redact]") {
  CHECK(redact_urls_in("Redirect to 'ftp://bob:hunter2@files.example/x' refused") ==
        "Redirect to 'ftp://bob:***@files.example/x' refused");
  CHECK(redact_urls_in("from http://a:b@h1/ to https://c:d@h2/x and http://h3/@") ==
        "from http://a:***@h1/ to https://c:***@h2/x and http://h3/@");
  CHECK(redact_urls_in("Could not resolve host: example.com") == "Could not resolve host: example.com");
  CHECK(redact_urls_in("mail bob@example.com") == "mail bob@example.com");
  CHECK(redact_urls_in("(http://k@h)") == "(http://***@h)");
  CHECK(redact_urls_in("://a@b") == "://a@b");
  CHECK(redact_urls_in("x://") == "x://");
}

TEST_CASE("encode_non_ascii percent-encodes bytes past ASCII in the path and query only", "[url]") {
  CHECK(encode_non_ascii("http://h/caf\xc3\xa9?name=Jos\xc3\xa9&x=%C3%A9#fr\xc3\xa9") ==
        "http://h/caf%C3%A9?name=Jos%C3%A9&x=%C3%A9#fr%C3%A9");
  CHECK(encode_non_ascii("https://h:8443?q=\xe6\x97\xa5") == "https://h:8443?q=%E6%97%A5");
  // The host is left as written (libcurl's to handle), so is a URL with nothing to encode.
  CHECK(encode_non_ascii("http://b\xc3\xbc" "cher.example/\xff") == "http://b\xc3\xbc" "cher.example/%FF");
  CHECK(encode_non_ascii("http://h/a%20b?c=d+e") == "http://h/a%20b?c=d+e");
  CHECK(encode_non_ascii("http://u:p\xc3\xa9@h/") == "http://u:p\xc3\xa9@h/");
  CHECK(encode_non_ascii("not a url \xc3\xa9") == "not a url \xc3\xa9");
  CHECK(encode_non_ascii("") == "");
}

TEST_CASE("check_url refuses a URL too long once its bytes past ASCII are percent-encoded", "[url]") {
  std::string url = "http://h/";
  while (url.size() < 2'600'000) url += "\xc3\xa9";
  CHECK(check_url(url, "url").empty());  // 7,800,009 bytes as sent
  url += std::string(100'000, '\xc3');
  CHECK(check_url(url, "url").find("too long once its bytes past ASCII are percent-encoded") != std::string::npos);
}
