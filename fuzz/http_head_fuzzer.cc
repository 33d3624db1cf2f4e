// libFuzzer target: the http_hello example's request-head parser
// (examples/http_hello/http_head.h) on any bytes.
//
// Byte 0 picks the limits (bit 0: small ones, so that 431 is reachable);
// the rest goes to parse_head whole, and so does its head: the prefix up to
// the first empty line that follows a line end, which is where
// readuntil(kHeadEnds) stops (found here by a scan of its own). Checked,
// independently of the parser's code:
//  - an accepted head respects the grammar it claims: a token method, a
//    target of visible ASCII, version 1.0/1.1, fields with token names and
//    values without control bytes or surrounding whitespace, no more of them
//    than the limit, a Content-Length within the limit, within the size;
//  - a refusal is one of the documented statuses;
//  - kHeadEnds finds the same end as the scan;
//  - the same head with every CRLF turned into a bare LF parses the same.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "examples/http_hello/http_head.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view head) {
  std::fprintf(stderr, "http_head_fuzzer: %s\nhead (%zu bytes): ", what, head.size());
  for (unsigned char c : head) std::fprintf(stderr, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
  std::fprintf(stderr, "\n");
  std::abort();
}

bool token_char(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

void check_request(const http_hello::Request& r, const http_hello::HeadLimits& limits,
                   std::string_view head) {
  if (r.method.empty()) fail("empty method", head);
  for (unsigned char c : r.method) {
    if (!token_char(c)) fail("method is not a token", head);
  }
  if (r.target.empty()) fail("empty target", head);
  for (unsigned char c : r.target) {
    if (c <= 0x20 || c >= 0x7f) fail("target byte outside visible ASCII", head);
  }
  if (r.minor_version != 0 && r.minor_version != 1) fail("minor version not 0 or 1", head);
  if (r.fields.size() > limits.max_fields) fail("more fields than the limit", head);
  for (const http_hello::Field& f : r.fields) {
    if (f.name.empty()) fail("empty field name", head);
    for (unsigned char c : f.name) {
      if (!token_char(c)) fail("field name is not a token", head);
    }
    for (unsigned char c : f.value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) fail("control byte in a field value", head);
    }
    if (!f.value.empty() && (f.value.front() == ' ' || f.value.front() == '\t' ||
                             f.value.back() == ' ' || f.value.back() == '\t')) {
      fail("field value not trimmed", head);
    }
  }
  if (r.content_length > limits.max_body_bytes) fail("Content-Length over the limit", head);
  if (head.size() > limits.max_head_bytes) fail("accepted a head over the limit", head);
}

// Parses `head` and checks the outcome; returns the status (200: accepted).
int parse_and_check(std::string_view head, const http_hello::HeadLimits& limits) {
  auto result = http_hello::parse_head(head, limits);
  if (const auto* e = std::get_if<http_hello::HeadError>(&result)) {
    switch (e->status) {
      case 400:
      case 413:
      case 431:
      case 501:
      case 505:
        return e->status;
      default:
        fail("an undocumented status", head);
    }
  }
  check_request(std::get<http_hello::Request>(result), limits, head);
  return 200;
}

std::string crlf_to_lf(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  http_hello::HeadLimits limits;
  if (data[0] & 1) {
    limits.max_head_bytes = 16 + data[0] % 128;
    limits.max_fields = data[0] % 5;
    limits.max_body_bytes = data[0] % 100;
  }
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  parse_and_check(input, limits);

  // The head: up to and including the first empty line after a line end
  // (empty lines at the very start are the parser's to skip).
  const std::size_t skip = http_hello::leading_empty_lines(input);
  std::size_t end = std::string_view::npos;
  for (std::size_t i = skip; i + 1 < input.size(); ++i) {
    if (input[i] != '\n') continue;
    if (input[i + 1] == '\n') end = i + 2;
    else if (input[i + 1] == '\r' && i + 2 < input.size() && input[i + 2] == '\n') end = i + 3;
    if (end != std::string_view::npos) break;
  }
  if (end == std::string_view::npos) return 0;
  // readuntil's rule over the same bytes: the separator match ending first.
  std::size_t by_separators = std::string_view::npos;
  for (std::string_view sep : http_hello::kHeadEnds) {
    const std::size_t pos = input.find(sep, skip);
    if (pos != std::string_view::npos) by_separators = std::min(by_separators, pos + sep.size());
  }
  const std::string_view head = input.substr(0, end);
  if (by_separators != end) fail("kHeadEnds ends the head elsewhere", head);

  const int status = parse_and_check(head, limits);
  // Line ends are CRLF or LF alike: only the length (the size limit) may
  // tell them apart, and a bare CR stays one either way.
  const std::string lf_only = crlf_to_lf(head);
  if (status != 431 && lf_only.find('\r') == std::string::npos) {
    const int lf_status = parse_and_check(lf_only, limits);
    if (lf_status != status) fail("CRLF and LF line ends parse differently", head);
  }
  return 0;
}
