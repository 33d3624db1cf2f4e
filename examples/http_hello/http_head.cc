#include "examples/http_hello/http_head.h"

#include <array>
#include <charconv>
#include <optional>

namespace http_hello {
namespace {

// RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
// "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. A table: every
// byte of every method and field name goes through it.
constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool is_tchar(unsigned char c) { return kTchar[c]; }

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9112 3.2: the four forms of request-target, over visible ASCII only
// (no space, control byte or non-ASCII byte: percent-encoding carries those).
bool valid_target(std::string_view method, std::string_view target) {
  if (target.empty()) return false;
  for (unsigned char c : target) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  if (target.front() == '/') return method != "CONNECT";   // origin-form
  if (target == "*") return method == "OPTIONS";           // asterisk-form
  if (method == "CONNECT") {                                // authority-form: host:port
    const std::size_t colon = target.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == target.size()) return false;
    for (unsigned char c : target.substr(colon + 1)) {
      if (!is_digit(c)) return false;
    }
    return target.find('/') == std::string_view::npos;
  }
  // absolute-form: scheme "://" ... (RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
  const std::size_t sep = target.find("://");
  if (sep == std::string_view::npos || sep == 0 || !is_alpha(target.front())) return false;
  for (unsigned char c : target.substr(0, sep)) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// A field value may hold VCHAR, obs-text, SP and HTAB (RFC 9110 5.5).
bool valid_value(std::string_view v) {
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

// Connection's options (a comma-separated token list) contain `option`.
bool has_option(std::string_view list, std::string_view option) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    if (iequals(trim_ows(list.substr(0, comma)), option)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// The next line of `rest` without its line end, or nullopt if `rest` has no
// "\n". A CR is allowed only right before the LF.
struct Line {
  std::string_view text;
  bool bare_cr = false;
};
std::optional<Line> next_line(std::string_view& rest) {
  const std::size_t lf = rest.find('\n');
  if (lf == std::string_view::npos) return std::nullopt;
  Line line{rest.substr(0, lf)};
  rest.remove_prefix(lf + 1);
  if (!line.text.empty() && line.text.back() == '\r') line.text.remove_suffix(1);
  line.bare_cr = line.text.find('\r') != std::string_view::npos;
  return line;
}

HeadError error(int status, std::string_view reason) { return HeadError{status, reason}; }

}  // namespace

std::variant<Request, HeadError> parse_head(std::string_view head, const HeadLimits& limits) {
  if (head.size() > limits.max_head_bytes) return error(431, "head too large");
  Request req;
  std::string_view rest = head.substr(leading_empty_lines(head));

  // --- Request line ---
  std::optional<Line> line = next_line(rest);
  if (!line) return error(400, "no line end");
  if (line->bare_cr) return error(400, "bare CR");
  std::string_view rl = line->text;
  const std::size_t sp1 = rl.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos) {
    return error(400, "request line is not method SP target SP version");
  }
  req.method = rl.substr(0, sp1);
  req.target = rl.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = rl.substr(sp2 + 1);
  if (!is_token(req.method)) return error(400, "bad method");
  if (!valid_target(req.method, req.target)) return error(400, "bad request target");
  if (version.size() != 8 || !version.starts_with("HTTP/") || !is_digit(version[5]) ||
      version[6] != '.' || !is_digit(version[7])) {
    return error(400, "bad HTTP version");
  }
  if (version[5] != '1') return error(505, "unsupported HTTP version");
  req.minor_version = version[7] == '0' ? 0 : 1;

  // --- Field lines, up to the empty line ---
  req.fields.reserve(8);  // most requests have fewer: one allocation
  int hosts = 0;
  bool close = false;
  bool keep_alive = false;
  std::optional<std::uint64_t> length;
  for (;;) {
    line = next_line(rest);
    if (!line) return error(400, "head does not end with an empty line");
    if (line->bare_cr) return error(400, "bare CR");
    if (line->text.empty()) break;
    if (req.fields.size() == limits.max_fields) return error(431, "too many header fields");
    const std::string_view text = line->text;
    if (text.front() == ' ' || text.front() == '\t') return error(400, "obsolete line folding");
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) return error(400, "header line without a colon");
    Field f{text.substr(0, colon), trim_ows(text.substr(colon + 1))};
    if (!is_token(f.name)) return error(400, "bad header name");
    if (!valid_value(f.value)) return error(400, "control byte in a header value");
    if (iequals(f.name, "Host")) {
      ++hosts;
    } else if (iequals(f.name, "Content-Length")) {
      std::uint64_t n = 0;
      const char* end = f.value.data() + f.value.size();
      if (f.value.empty() || !is_digit(f.value.front())) return error(400, "bad Content-Length");
      auto [ptr, ec] = std::from_chars(f.value.data(), end, n);
      if (ec == std::errc::result_out_of_range) return error(413, "body too large");
      if (ec != std::errc() || ptr != end) return error(400, "bad Content-Length");
      if (length && *length != n) return error(400, "conflicting Content-Length");
      length = n;
    } else if (iequals(f.name, "Transfer-Encoding")) {
      return error(501, "transfer codings are not supported");
    } else if (iequals(f.name, "Connection")) {
      close = close || has_option(f.value, "close");
      keep_alive = keep_alive || has_option(f.value, "keep-alive");
    }
    req.fields.push_back(f);
  }
  if (!rest.empty()) return error(400, "data after the empty line");
  if (req.minor_version == 1 && hosts != 1) return error(400, "HTTP/1.1 needs exactly one Host");
  if (hosts > 1) return error(400, "more than one Host");
  if (length && *length > limits.max_body_bytes) return error(413, "body too large");
  req.content_length = length.value_or(0);
  req.keep_alive = !close && (req.minor_version == 1 || keep_alive);
  return req;
}

std::size_t leading_empty_lines(std::string_view text) {
  std::size_t n = 0;
  for (;;) {
    if (text.substr(n, 1) == "\n") {
      n += 1;
    } else if (text.substr(n, 2) == "\r\n") {
      n += 2;
    } else {
      return n;
    }
  }
}

std::string_view error_response(int status) {
  switch (status) {
    case 408:
      return "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    case 413:
      return "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    case 431:
      return "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n";
    case 501:
      return "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    case 505:
      return "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n";
    default:
      return "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  }
}

}  // namespace http_hello
