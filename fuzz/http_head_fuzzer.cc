// libFuzzer target: the http_hello example's request-head parser and
// collector (examples/http_hello/http_head.h) on any bytes.
//
// Byte 0 picks the limits (small ones, so that 431 is reachable); the rest
// is cut into lines as StreamReader::readline would return them and fed to
// a HeadCollector, and whatever head it completes, and the raw text too, go
// to parse_head. Checked, independently of the parser's code:
//  - the collector's head is the input from its first non-empty line up to
//    and including the first empty line after it, within the limits;
//  - an accepted head respects the grammar it claims: a token method, a
//    target of visible ASCII, version 1.0/1.1, fields with token names and
//    values without control bytes or surrounding whitespace, no more of them
//    than the limit, a Content-Length within the limit;
//  - a refusal is one of the documented statuses;
//  - the same head with every CRLF turned into a bare LF parses the same.
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

  // Line by line, as the example collects a head.
  http_hello::HeadCollector collector(limits);
  std::string_view rest = input;
  std::size_t skipped = 0;  // leading empty lines
  std::size_t consumed = 0;
  http_hello::HeadCollector::Step step = http_hello::HeadCollector::Step::kMore;
  while (!rest.empty() && step == http_hello::HeadCollector::Step::kMore) {
    const std::size_t lf = rest.find('\n');
    if (lf == std::string_view::npos) break;  // EOF mid-line: the example stops there
    const std::string_view line = rest.substr(0, lf + 1);
    if (collector.empty() && (line == "\n" || line == "\r\n")) skipped += line.size();
    step = collector.add_line(line);
    consumed += line.size();
    rest.remove_prefix(lf + 1);
  }
  if (consumed > limits.max_head_bytes && step != http_hello::HeadCollector::Step::kTooLarge) {
    fail("the collector went past max_head_bytes", input);
  }
  if (step != http_hello::HeadCollector::Step::kComplete) return 0;
  const std::string& head = collector.head();
  if (head != input.substr(skipped, consumed - skipped)) fail("collected head is not the input", input);
  if (!(head.ends_with("\n\n") || head.ends_with("\n\r\n"))) fail("collected head has no end", head);

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
