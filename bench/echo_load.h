// W8's load generator: ONE thread, epoll, many TCP connections to an echo
// server on 127.0.0.1, each doing request/response ping-pong (the next
// message is sent when the previous echo is complete), as
// shared/perf/README.md defines it: 64 connections, 64-byte messages,
// 0.5 s warm-up, then 5 s measured.
//
// Design:
//  - Connecting: plain blocking connect() per connection (bounded by
//    SO_SNDTIMEO), then TCP_NODELAY and O_NONBLOCK; every connection's first
//    message goes out once all are connected, and the clock starts then.
//  - Each connection owns a message buffer. Message k of connection c
//    carries (c, k) in its first 12 bytes and a pattern of both after them,
//    so a reply that is another message, another connection's, stale or
//    shifted fails the byte-for-byte check. A send that does not take the
//    whole message waits for EPOLLOUT; replies are read as they arrive, never
//    past the message's end (level-triggered EPOLLIN).
//  - Latency: from the send() of a message's first byte to the recv() that
//    completes its echo, one steady_clock reading each (a completion's
//    reading is also the next message's send time). Every message completed
//    inside the measured window gives one exact sample (a vector, ~1M
//    entries at most); p50/p99 are nearest-rank percentiles of them.
//    Throughput counts the same messages over the window's nominal length.
//  - After the window no new message is sent; the generator waits (bounded)
//    for the replies in flight, checks them too, and then checks that no
//    connection received a byte it was not sent; so `verified == sent` at
//    the end is the proof that every message was echoed exactly once.
//  - Bounded: every wait has a deadline; a server that makes no progress for
//    `stall_timeout` is an error. Connections close on every path (RAII).
// Errors (a refused connection, EOF or a reset mid-run, a wrong echo, a
// stall) are std::runtime_error with the connection and message named.
//
// Thread safety: run_echo_load is self-contained; call it from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft::bench {

struct EchoLoadOptions {
  std::uint16_t port = 0;  // on 127.0.0.1
  std::uint32_t connections = 64;
  std::size_t message_size = 64;  // >= 12 (the id of the message)
  std::chrono::nanoseconds warmup = std::chrono::milliseconds(500);
  std::chrono::nanoseconds duration = std::chrono::seconds(5);
  // The longest time without any echo completing before the run fails.
  std::chrono::nanoseconds stall_timeout = std::chrono::seconds(5);
};

struct EchoLoadResult {
  std::uint32_t connections = 0;
  std::uint64_t sent = 0;      // messages sent, whole run
  std::uint64_t verified = 0;  // echoes received and checked byte for byte (== sent)
  std::uint64_t measured = 0;  // echoes completed inside the measured window
  double seconds = 0;          // the window's length
  double msgs_per_s = 0;       // measured / seconds
  double p50_us = 0;           // latency percentiles of the measured messages
  double p99_us = 0;
  double max_us = 0;
};

// Runs the load (see the file comment). std::invalid_argument for bad
// options (port 0, no connections, more than 10,000, message_size < 12,
// a duration that is not positive); std::runtime_error for a failure.
EchoLoadResult run_echo_load(const EchoLoadOptions& options);

// The nearest-rank percentile `p` (0 < p <= 100) of `samples` (reordered);
// 0 for no samples.
std::uint64_t percentile(std::vector<std::uint64_t>& samples, double p);

}  // namespace weft::bench
