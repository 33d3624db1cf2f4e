// HTTP/1.1 request heads for the http_hello example (RFC 9112 sections 2-6,
// RFC 9110 for the field rules): where a head ends, and parsing it, within
// limits, into a request or the status that refuses it.
// Plain C++ without weft, so that it can be unit-tested and fuzzed
// (fuzz/http_head_fuzzer.cc); weft is not an HTTP library, so this stays
// in the example.
//
// What is accepted, and what each refusal answers:
//  - Line ends: CRLF, or a bare LF (RFC 9112 2.2 lets a recipient accept
//    one; nginx and Node do). A CR anywhere else is 400 (2.2: a bare CR
//    MUST be treated as invalid). Empty lines before the request line are
//    skipped (2.2: SHOULD ignore at least one), counted in the size limit.
//  - Request line: method SP request-target SP HTTP-version, single spaces
//    (3). The method is a token, else 400. The target is visible ASCII in
//    one of the four forms of 3.2 (origin "/...", absolute "scheme://...",
//    authority "host:port" for CONNECT only, "*" for OPTIONS only), else
//    400. The version is "HTTP/" DIGIT "." DIGIT, else 400; HTTP/1.0 and
//    1.1 are served, 1.2-1.9 as 1.1 (RFC 9110 2.5: a minor version is
//    compatible), any other major version (HTTP/0.9, 2.0, 9.9) gets 505.
//  - Field lines: name ":" OWS value OWS (5). A line without a colon, a
//    name that is not a token (whitespace before the colon included, 5.1:
//    MUST 400), a folded line (5.2: obs-fold, refused) and a control byte
//    in a value (NUL, DEL; HTAB is allowed) are 400.
//  - Host: HTTP/1.1 needs exactly one (3.2: MUST 400 otherwise).
//  - Content-Length: digits; several that disagree are 400 (6.3); over
//    HeadLimits::max_body_bytes 413. Transfer-Encoding: 501 (this server
//    decodes no transfer coding; 6.1: SHOULD 501).
//  - Size: a head over HeadLimits::max_head_bytes (the reader's limit too,
//    so that no more is ever buffered), or with more than
//    HeadLimits::max_fields field lines, is 431.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace http_hello {

struct HeadLimits {
  // The request line, the field lines and the empty line, line ends
  // included.
  std::size_t max_head_bytes = 8 * 1024;
  // Field lines (nginx's large_client_header_buffers and Node's
  // maxHeadersCount bound this too: each field costs the parser work).
  std::size_t max_fields = 100;
  // The largest Content-Length accepted.
  std::uint64_t max_body_bytes = 1 << 20;
};

struct Field {
  std::string_view name;   // as sent (compare case-insensitively)
  std::string_view value;  // without the surrounding whitespace
};

// A parsed head. The views point into the parsed text.
struct Request {
  std::string_view method;
  std::string_view target;
  int minor_version = 1;  // 0 or 1 (1.2-1.9 read as 1)
  std::vector<Field> fields;
  std::uint64_t content_length = 0;
  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 with "Connection:
  // keep-alive" only.
  bool keep_alive = true;
};

// Why a head is refused: the status to answer (400, 413, 431, 501, 505)
// and a short reason (for logs and tests; not sent to the client).
struct HeadError {
  int status = 400;
  std::string_view reason;
};

// Parses a complete head: the request line, the field lines and the empty
// line that ends them, each line ending in CRLF or LF, as
// readuntil(kHeadEnds) returns it; empty lines before the request line are
// skipped. Checks the limits too, so that it can be given any text.
std::variant<Request, HeadError> parse_head(std::string_view head, const HeadLimits& limits);

// What ends a head, for StreamReader::readuntil: the empty line after a
// line that ends in LF or in CRLF. The first match to end is the head's end.
inline constexpr std::string_view kHeadEnds[] = {"\n\n", "\n\r\n"};

// The length of the empty lines ("\r\n" or "\n" each) that `text` starts
// with: RFC 9112 2.2 lets a server skip them before a request line.
std::size_t leading_empty_lines(std::string_view text);

// The status line and reason phrase for the statuses above and 408, as a
// complete response that closes the connection.
std::string_view error_response(int status);

}  // namespace http_hello
