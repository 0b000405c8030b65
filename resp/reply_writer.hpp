// reply_writer: appends RESP2 or RESP3 replies to a byte buffer. No I/O.
//
// Owner: whoever owns the buffer (a client's output buffer, a test). The writer is a
// cheap view over a std::string plus the protocol version; construct one per use.
// Shapes that differ by protocol (null, maps, sets, pushes, doubles, booleans) are
// chosen here so command code never branches on the protocol.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace respq::resp {

class reply_writer {
 public:
  reply_writer(std::string& out, int protocol) : out_(out), proto_(protocol) {}

  int protocol() const { return proto_; }
  std::string& buffer() { return out_; }

  void simple(std::string_view s);           // +s
  void ok() { out_.append("+OK\r\n", 5); }
  void error(std::string_view s);             // -s (s must not contain CR/LF)
  void integer(long long v);                  // :v
  void bulk(std::string_view s);              // $len s
  void null();                                // RESP2 $-1, RESP3 _
  void null_array();                          // RESP2 *-1, RESP3 _
  void array(std::size_t n);                  // *n
  void map(std::size_t n);                    // RESP3 %n, RESP2 *2n (n pairs)
  void set(std::size_t n);                    // RESP3 ~n, RESP2 *n
  void push(std::size_t n);                   // RESP3 >n, RESP2 *n
  void boolean(bool b);                       // RESP3 #t/#f, RESP2 :1/:0
  void double_value(double d);                // RESP3 ,d, RESP2 bulk "d"
  void verbatim(std::string_view s);          // RESP3 =len txt:s, RESP2 bulk
  void raw(std::string_view s) { out_.append(s); }

  // Appends a command as a RESP array of bulks (the AOF and mirror format).
  template <typename Range>
  static void command(std::string& out, const Range& args) {
    reply_writer w(out, 2);
    w.array(std::size(args));
    for (const auto& a : args) w.bulk(std::string_view(a));
  }

 private:
  void header(char type, long long n);
  std::string& out_;
  int proto_;
};

// Formats a double the way Redis does in replies (%.17g, inf/-inf/nan spelled out).
std::string format_double(double d);

}  // namespace respq::resp
