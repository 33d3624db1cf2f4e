// libFuzzer target: StreamReader's framing (read, readline, readuntil,
// readexactly) under a small limit, fed one payload in the splits the input
// chooses, checked against asyncio's rules for each call.
//
// The input is a script, then the payload:
//   byte 0     bit 0: through a socket pair (else an in-memory transport);
//              bits 1-7: the reader's limit, 1 + (b >> 1) % 64
//   byte 1     the number of calls, 1 + b % 24; then 2 bytes per call:
//              kind (b % 6: read(n), readline, readuntil, readexactly,
//              read(0), read(-1)) and its argument (for readuntil: one of
//              four single separators or two sets of several)
//   next byte  the number of split sizes, 1 + b % 8; then one byte each:
//              1 + (b & 0x1f) bytes per delivery, used in turn; bit 7 asks
//              for a yield before that delivery
//   the rest   the payload (at most 4 KiB)
// Missing script bytes read as 0.
//
// Oracle (the spec, not the implementation). `pos` is how much of the
// payload the calls consumed; every returned byte string must be the
// payload at `pos`. readuntil(seps), whose first match (the one ending
// first; on a tie the shortest separator's) starts p bytes past pos:
// success iff p <= limit; LimitOverrunError (nothing consumed) iff p > limit
// or, with no match left, the r remaining bytes satisfy r >= the shortest
// separator and r + 1 - the longest > limit; otherwise IncompleteReadError
// with all r bytes.
// These outcomes do not depend on how the bytes were split. readline is
// readuntil("\n") with EOF returning the partial line, and on an overrun it
// discards through the "\n" if that had arrived, else everything buffered:
// the in-memory transport counts what it delivered, so the new `pos` is
// exact there; over a socket pair the fuzzer stops checking after such an
// overrun (how much had arrived is the kernel's choice).
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft/io/detail/stream_transport.h"
#include "weft/weft.h"

namespace {

[[noreturn]] void fail(const char* what, std::size_t call) {
  std::fprintf(stderr, "stream_reader_fuzzer: call %zu: %s\n", call, what);
  std::abort();
}

struct Script {
  bool socket_mode = false;
  std::size_t limit = 1;
  std::vector<std::pair<std::uint8_t, std::uint8_t>> calls;
  std::vector<std::uint8_t> splits;
  std::string payload;
};

Script parse_script(const std::uint8_t* data, std::size_t size) {
  std::size_t i = 0;
  auto next = [&]() -> std::uint8_t { return i < size ? data[i++] : 0; };
  Script s;
  const std::uint8_t head = next();
  s.socket_mode = (head & 1) != 0;
  s.limit = 1 + (head >> 1) % 64;
  const int ncalls = 1 + next() % 24;
  for (int c = 0; c < ncalls; ++c) {
    const std::uint8_t kind = next();
    s.calls.emplace_back(kind, next());
  }
  const int nsplits = 1 + next() % 8;
  for (int k = 0; k < nsplits; ++k) s.splits.push_back(next());
  if (i < size) {
    s.payload.assign(reinterpret_cast<const char*>(data + i), std::min<std::size_t>(size - i, 4096));
  }
  return s;
}

std::size_t split_size(std::uint8_t b) { return 1 + (b & 0x1f); }
bool split_yields(std::uint8_t b) { return (b & 0x80) != 0; }

// Delivers the payload in the script's splits, without a descriptor.
class MemoryTransport final : public weft::detail::StreamTransport {
 public:
  MemoryTransport(const Script& s) : StreamTransport(weft::Socket()), s_(s) {}
  std::size_t delivered() const { return delivered_; }

 protected:
  weft::Coro<std::size_t> raw_recv_into(std::span<char> buf) override {
    if (delivered_ == s_.payload.size()) co_return 0;
    const std::uint8_t split = s_.splits[turn_++ % s_.splits.size()];
    if (split_yields(split)) co_await weft::yield_now();
    const std::size_t n =
        std::min({split_size(split), buf.size(), s_.payload.size() - delivered_});
    std::memcpy(buf.data(), s_.payload.data() + delivered_, n);
    delivered_ += n;
    co_return n;
  }
  std::optional<std::size_t> raw_try_send(std::string_view, weft::detail::FdWatch::Dir*) override {
    return std::nullopt;
  }
  void raw_shutdown(int) noexcept override {}

 private:
  const Script& s_;
  std::size_t delivered_ = 0;
  std::size_t turn_ = 0;
};

weft::Coro<void> send_in_splits(weft::Socket& s, const Script& script) {
  std::size_t sent = 0;
  for (std::size_t turn = 0; sent < script.payload.size(); ++turn) {
    const std::uint8_t split = script.splits[turn % script.splits.size()];
    const std::size_t n = std::min(split_size(split), script.payload.size() - sent);
    co_await s.sendall(std::string_view(script.payload).substr(sent, n));
    sent += n;
    if (split_yields(split)) co_await weft::yield_now();
  }
  s.shutdown(SHUT_WR);
}

// readuntil's separator choices: one separator, or several (asyncio 3.13).
constexpr std::string_view kLf[] = {"\n"};
constexpr std::string_view kCrlf[] = {"\r\n"};
constexpr std::string_view kAb[] = {"ab"};
constexpr std::string_view kCrlfCrlf[] = {"\r\n\r\n"};
constexpr std::string_view kHeadEnds[] = {"\n\n", "\n\r\n"};
constexpr std::string_view kOverlapping[] = {"abc", "b", "bc"};
constexpr std::span<const std::string_view> kSeparatorSets[] = {kLf,        kCrlf,     kAb,
                                                                kCrlfCrlf, kHeadEnds, kOverlapping};

// Where readuntil(seps) must stop in `payload` from `pos`: the match that
// ends first, of those ending there the shortest separator's start.
struct Match {
  std::size_t start = std::string_view::npos;
  std::size_t end = std::string_view::npos;
};
Match first_match(std::string_view payload, std::size_t pos, std::span<const std::string_view> seps) {
  Match m;
  for (std::size_t i = pos; i < payload.size() && m.end == std::string_view::npos; ++i) {
    // The first byte at which some separator ends, and the shortest such one.
    for (std::string_view sep : seps) {
      if (i + 1 >= pos + sep.size() && payload.substr(i + 1 - sep.size(), sep.size()) == sep &&
          (m.end == std::string_view::npos || i + 1 - sep.size() > m.start)) {
        m.end = i + 1;
        m.start = i + 1 - sep.size();
      }
    }
  }
  return m;
}

// Runs the calls against the oracle; `delivered` is null over a socket.
weft::Coro<void> check_calls(const Script& s, weft::StreamReader r,
                             const MemoryTransport* memory) {
  const std::string_view payload = s.payload;
  std::size_t pos = 0;
  auto expect_at_pos = [&](const std::string& got, std::size_t call) {
    if (payload.substr(pos, got.size()) != got) fail("returned bytes are not the payload at pos", call);
    pos += got.size();
  };
  for (std::size_t c = 0; c < s.calls.size(); ++c) {
    const auto [kind, arg] = s.calls[c];
    const std::size_t remaining = payload.size() - pos;
    switch (kind % 6) {
      case 0: {  // read(n), n > 0: some bytes, "" only at EOF
        const std::size_t n = 1 + arg % 40;
        std::string got = co_await r.read(static_cast<std::ptrdiff_t>(n));
        if (got.size() > n) fail("read(n) returned more than n", c);
        if (got.empty() != (remaining == 0)) fail("read(n) returned \"\" before EOF, or data after", c);
        expect_at_pos(got, c);
        break;
      }
      case 1:
      case 2: {  // readline / readuntil(one separator or several)
        const bool line = kind % 6 == 1;
        const std::span<const std::string_view> seps = line ? kLf : kSeparatorSets[arg % 6];
        std::size_t shortest = seps.front().size();
        std::size_t longest = shortest;
        for (std::string_view sep : seps) {
          shortest = std::min(shortest, sep.size());
          longest = std::max(longest, sep.size());
        }
        const Match match = first_match(payload, pos, seps);
        const std::size_t found = match.start;
        bool overrun_expected;
        if (found != std::string_view::npos) {
          overrun_expected = found - pos > s.limit;
        } else {
          overrun_expected = remaining >= shortest && remaining + 1 > longest &&
                             remaining + 1 - longest > s.limit;
        }
        bool overrun = false;
        bool incomplete = false;
        std::string got;
        try {
          if (line) {
            got = co_await r.readline();
          } else if (seps.size() == 1) {
            got = co_await r.readuntil(std::string(seps.front()));
          } else {
            got = co_await r.readuntil(seps);
          }
        } catch (const weft::LimitOverrunError&) {
          overrun = true;
        } catch (const weft::IncompleteReadError& e) {
          incomplete = true;
          got = e.partial();
        }
        if (overrun != overrun_expected) fail("LimitOverrunError when not expected, or missing", c);
        if (overrun) {
          if (!line) break;  // readuntil keeps the data buffered
          if (memory == nullptr) co_return;  // how much arrived is unknown
          // readline discarded through the "\n" if it had arrived, else all.
          if (found != std::string_view::npos && found < memory->delivered()) {
            pos = found + 1;
          } else {
            pos = memory->delivered();
          }
          if (r.buffered() != memory->delivered() - pos) fail("readline kept the wrong bytes", c);
          break;
        }
        if (found != std::string_view::npos) {
          if (incomplete || got.size() != match.end - pos) fail("readuntil missed the separator", c);
        } else {
          // At EOF: readuntil raises with the rest; readline returns it.
          if (incomplete == line) fail("EOF without separator: wrong outcome", c);
          if (got.size() != remaining) fail("EOF without separator: not all of the rest", c);
        }
        expect_at_pos(got, c);
        break;
      }
      case 3: {  // readexactly(n)
        const std::size_t n = arg % 48;
        try {
          std::string got = co_await r.readexactly(n);
          if (got.size() != n || remaining < n) fail("readexactly returned a wrong size", c);
          expect_at_pos(got, c);
        } catch (const weft::IncompleteReadError& e) {
          if (remaining >= n) fail("IncompleteReadError with enough data", c);
          if (e.expected() != n || e.partial().size() != remaining) fail("IncompleteReadError's fields", c);
          expect_at_pos(e.partial(), c);
        }
        break;
      }
      case 4: {  // read(0): "" at once; at_eof only once everything was read
        if (!(co_await r.read(0)).empty()) fail("read(0) returned data", c);
        if (r.at_eof() && remaining != 0) fail("at_eof with data left", c);
        break;
      }
      case 5: {  // read(-1): everything up to EOF
        std::string got = co_await r.read(-1);
        if (got.size() != remaining) fail("read(-1) did not return the rest", c);
        expect_at_pos(got, c);
        if (!r.at_eof()) fail("not at_eof after read(-1)", c);
        break;
      }
    }
  }
}

weft::Coro<void> run_one(const Script& s) {
  weft::StreamOptions o;
  o.limit = s.limit;
  if (!s.socket_mode) {
    auto t = std::make_shared<MemoryTransport>(s);
    auto [r, w] = weft::detail::make_stream(t, o);
    co_await check_calls(s, r, t.get());
    co_return;
  }
  auto [a, b] = weft::Socket::pair();
  auto [r, w] = weft::open_stream(std::move(b), o);
  weft::Task<void> sender = weft::create_task(send_in_splits(a, s));
  co_await check_calls(s, r, nullptr);
  sender.cancel();
  try {
    co_await sender;
  } catch (const weft::CancelledError&) {
  }
}

weft::Runtime& runtime() {
  static weft::Runtime* rt = [] {
    weft::RuntimeOptions o;
    o.workers = 1;
    return new weft::Runtime(std::move(o));  // lives for the whole process
  }();
  return *rt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Script s = parse_script(data, size);
  runtime().run(run_one(s));
  return 0;
}
