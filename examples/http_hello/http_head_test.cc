// The http_hello example's request-head parser and where a head ends: what is
// accepted, and which status each malformed head gets (http_head.h).
#include "examples/http_hello/http_head.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <variant>

#include "gtest/gtest.h"

namespace http_hello {
namespace {

// The status parse_head gives `head` (200 when it is accepted).
int status_of(std::string_view head, const HeadLimits& limits = {}) {
  auto r = parse_head(head, limits);
  if (const auto* e = std::get_if<HeadError>(&r)) return e->status;
  return 200;
}

Request parsed(std::string_view head) {
  auto r = parse_head(head, HeadLimits{});
  if (const auto* e = std::get_if<HeadError>(&r)) {
    ADD_FAILURE() << "refused with " << e->status << " (" << e->reason << "): " << head;
    return {};
  }
  return std::get<Request>(r);
}

TEST(HttpHead, ParsesAGoodRequest) {
  const std::string head =
      "POST /path?q=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 12\r\n"
      "X-Empty:\r\nX-Spaces: \t padded \t\r\n\r\n";
  Request r = parsed(head);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/path?q=1");
  EXPECT_EQ(r.minor_version, 1);
  EXPECT_EQ(r.content_length, 12u);
  EXPECT_TRUE(r.keep_alive);
  ASSERT_EQ(r.fields.size(), 4u);
  EXPECT_EQ(r.fields[0].name, "Host");
  EXPECT_EQ(r.fields[0].value, "example.com");
  EXPECT_EQ(r.fields[2].value, "");
  EXPECT_EQ(r.fields[3].value, "padded");
}

TEST(HttpHead, KeepAliveFollowsVersionAndConnection) {
  EXPECT_FALSE(parsed("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive);
  EXPECT_FALSE(parsed("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n").keep_alive);
  EXPECT_FALSE(parsed("GET / HTTP/1.0\r\n\r\n").keep_alive);
  EXPECT_TRUE(parsed("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  EXPECT_EQ(parsed("GET / HTTP/1.0\r\n\r\n").minor_version, 0);
}

TEST(HttpHead, AcceptsBareLfLineEnds) {
  Request r = parsed("GET / HTTP/1.1\nHost: h\nAccept: */*\r\n\n");
  EXPECT_EQ(r.target, "/");
  ASSERT_EQ(r.fields.size(), 2u);
  EXPECT_EQ(r.fields[1].value, "*/*");
}

TEST(HttpHead, TargetForms) {
  EXPECT_EQ(status_of("GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n"), 200);
  EXPECT_EQ(status_of("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 200);
  EXPECT_EQ(status_of("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"), 200);
  EXPECT_EQ(status_of("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(status_of("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(status_of("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET example.com HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET 1http://x/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(status_of(std::string("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n")), 400);
  EXPECT_EQ(status_of("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(HttpHead, MalformedRequestLinesAre400) {
  for (std::string_view head : {
           "GARBAGE\r\n\r\n",
           "GET /\r\n\r\n",                                  // no version
           "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",             // two spaces
           "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",             // trailing space
           "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",              // not a token
           " GET / HTTP/1.1\r\nHost: h\r\n\r\n",             // leading space
           "GET / http/1.1\r\nHost: h\r\n\r\n",              // the name is case-sensitive
           "GET / HTTP/1.10\r\nHost: h\r\n\r\n",
           "GET / HTTP/a.1\r\nHost: h\r\n\r\n",
           "GET / HTTP/1\r\nHost: h\r\n\r\n",
       }) {
    EXPECT_EQ(status_of(head), 400) << head;
  }
}

TEST(HttpHead, UnsupportedVersionsAre505) {
  EXPECT_EQ(status_of("GET / HTTP/9.9\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(status_of("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
  // A later 1.x minor version is compatible: served as 1.1.
  EXPECT_EQ(parsed("GET / HTTP/1.7\r\nHost: h\r\n\r\n").minor_version, 1);
}

TEST(HttpHead, MalformedFieldsAre400) {
  using namespace std::string_literals;
  for (const std::string& head : {
           "GET / HTTP/1.1\r\nHost: h\r\nNoColonHere\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\nName : space before colon\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\n: no name\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n folded\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\nA: nul \0 inside\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\nA: del \x7f\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\nA: bare \r cr\r\n\r\n"s,
           "GET / HTTP/1.1\rHost: h\r\n\r\n"s,
           "\0GET / HTTP/1.1\r\nHost: h\r\n\r\n"s,
           "GET / HTTP/1.1\r\n\r\n"s,                           // no Host in 1.1
           "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"s,     // two Hosts
           "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"s,
           "GET / HTTP/1.1\r\nHost: h\r\n\r\nextra"s,           // not one head
           "GET / HTTP/1.1\r\nHost: h\r\n"s,                    // no empty line
       }) {
    EXPECT_EQ(status_of(head), 400) << head;
  }
  // A tab inside a value is fine.
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: b\tc\r\n\r\n"), 200);
}

TEST(HttpHead, BodiesAndCodings) {
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            200);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n"), 413);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            413);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
}

TEST(HttpHead, LimitsAre431) {
  HeadLimits small;
  small.max_fields = 3;
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", small), 200);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", small), 431);
  const std::string big = "GET / HTTP/1.1\r\nHost: h\r\nA: " + std::string(9000, 'a') + "\r\n\r\n";
  EXPECT_EQ(status_of(big), 431);
}

TEST(HttpHead, SkipsEmptyLinesBeforeTheRequestLine) {
  EXPECT_EQ(leading_empty_lines("\r\n\nGET"), 3u);
  EXPECT_EQ(leading_empty_lines("GET"), 0u);
  EXPECT_EQ(leading_empty_lines("\r\r\n"), 0u);  // a bare CR is no empty line
  EXPECT_EQ(leading_empty_lines("\n\r\n"), 3u);
  EXPECT_EQ(parsed("\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").target, "/");
  EXPECT_EQ(status_of("\r\n\r\n"), 400);  // nothing but empty lines
}

// Where readuntil(kHeadEnds) would stop: the end of the match that ends
// first (the reader's rule, written out here independently).
std::size_t head_end(std::string_view text) {
  std::size_t best = std::string_view::npos;
  for (std::string_view sep : kHeadEnds) {
    const std::size_t pos = text.find(sep);
    if (pos != std::string_view::npos) best = std::min(best, pos + sep.size());
  }
  return best;
}

TEST(HttpHead, HeadEndsAtItsFirstEmptyLineWhateverTheLineEnds) {
  const std::string_view next = "GET /next HTTP/1.1\r\n\r\n";
  for (std::string_view head : {
           "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET / HTTP/1.1\nHost: h\n\n",
           "GET / HTTP/1.1\r\nHost: h\n\r\n",
           "GET / HTTP/1.1\nHost: h\r\n\n",
           "GET / HTTP/1.0\r\n\r\n",
       }) {
    const std::string pipelined = std::string(head) + std::string(next);
    EXPECT_EQ(head_end(pipelined), head.size()) << head;
    EXPECT_EQ(status_of(pipelined.substr(0, head_end(pipelined))), 200) << head;
  }
}

TEST(HttpHead, ErrorResponsesCloseTheConnection) {
  for (int status : {400, 408, 413, 431, 501, 505}) {
    const std::string_view r = error_response(status);
    EXPECT_TRUE(r.starts_with("HTTP/1.1 " + std::to_string(status) + " ")) << r;
    EXPECT_NE(r.find("\r\nConnection: close\r\n"), std::string_view::npos) << r;
    EXPECT_TRUE(r.ends_with("\r\n\r\n")) << r;
  }
}

}  // namespace
}  // namespace http_hello
