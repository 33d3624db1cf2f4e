// Streams (asyncio's high-level networking API): open_connection (and
// start_server, weft/io/server.h) give a StreamReader / StreamWriter pair per
// connection.
//
//   auto [reader, writer] = co_await weft::open_connection("127.0.0.1", port);
//   writer.write("GET / HTTP/1.1\r\n\r\n");
//   co_await writer.drain();
//   std::string line = co_await reader.readline();
//   writer.close();
//   co_await writer.wait_closed();
//
// Design. A reader and its writer share a detail::StreamTransport (the
// Socket). The reader pulls: when its buffer cannot answer a call it
// receives from the socket in the calling task (no background task, no
// extra copy, no wake-up hand-off). The writer pushes: write() sends at once
// when nothing is queued; what the socket does not take is queued and a
// flusher task (started on demand, one at most per writer) sends it as the
// socket drains, so data goes out whether or not anybody calls drain().
// The descriptor is closed when the last handle (reader, writer, or a
// pending flush) is gone; close() shuts the connection down before that.
//
// Bounded memory. The reader buffers at most `limit` bytes (default 64 KiB)
// beyond what a call asked for: readuntil/readline raise LimitOverrunError
// instead of growing past it (read(-1) and readexactly(n) buffer what they
// were asked for). The writer's queue is bounded by its users: drain()
// waits while more than the high-water mark (default 64 KiB) is queued,
// until the flusher brings it down to the low-water mark (default 16 KiB),
// so a producer that drains after writing never outruns a slow reader by
// more than the high-water mark plus one write.
//
// Read timeouts. A reader can bound its waits two ways, both built on
// weft::timeout (a timed-out wait is a cancelled one, so it consumes
// nothing): StreamOptions::read_timeout limits each wait for the peer (its
// silence), StreamReader::set_read_deadline limits every wait until a point
// in time (a message spread over several reads). Either raises TimeoutError
// from the read; the stream stays usable (a later read may succeed).
//
// Cancel-safety contract:
//   read / readline / readuntil / readexactly: a cancelled call consumes
//     nothing: every byte received so far stays buffered for the next call
//     (the reader is cancellable only while it waits for the socket, after
//     it moved what it received into its buffer).
//   write: synchronous, never cancelled; what it accepted will be sent
//     (unless the connection fails or is aborted).
//   drain: a cancelled drain only stops waiting; the queued data is still
//     sent.
//   wait_closed: a cancelled wait_closed does not stop the closing.
//   open_connection: a cancelled or timed-out connect closes its socket.
//   Server handlers (weft/io/server.h): cancelled by Server::close_clients
//     and at runtime shutdown like any task.
//
// Thread safety: handles are cheap to copy and copies share one stream. A
// reader serves one read at a time (a second concurrent read raises
// RuntimeError, as in asyncio); the writer's calls may come from any task
// or thread. The reader's and the writer's sides may be used concurrently.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/core/coro.h"
#include "weft/io/address.h"
#include "weft/io/errors.h"
#include "weft/io/socket.h"
#include "weft/sched/clock.h"

namespace weft {
namespace detail {
class StreamTransport;
class ReaderState;
class WriterState;
struct StreamAccess;
}  // namespace detail

inline constexpr std::size_t kDefaultStreamLimit = 64 * 1024;

class StreamReader {
 public:
  // A handle on no stream (valid() is false).
  StreamReader() = default;

  bool valid() const noexcept { return static_cast<bool>(s_); }

  // asyncio's read(n): n > 0 returns up to n bytes, waiting for some if none
  // is buffered ("" at EOF); n == 0 returns ""; n < 0 reads until EOF.
  [[nodiscard]] Coro<std::string> read(std::ptrdiff_t n = -1);
  // Reads a line ending in "\n" (included). At EOF returns the partial last
  // line ("" when nothing is left). LimitOverrunError if no "\n" within the
  // limit; the line's bytes (up to and including a "\n" found past the
  // limit, or everything buffered) are then discarded.
  [[nodiscard]] Coro<std::string> readline();
  // Reads up to and including `separator`. At EOF without it:
  // IncompleteReadError (partial() holds what was left, consumed).
  // LimitOverrunError if it is not found within the limit; the data stays
  // buffered.
  [[nodiscard]] Coro<std::string> readuntil(std::string separator = "\n");
  // asyncio 3.13's readuntil with a tuple of separators: reads up to and
  // including the separator match that ends first (of several ending at the
  // same byte, the shortest separator's), e.g. the end of an HTTP head with
  // bare-LF or CRLF lines: {"\n\n", "\n\r\n"}. The limit and EOF as above;
  // the limit applies to where that match starts. The separators must stay
  // valid until the call completes (a static array is the usual caller);
  // std::invalid_argument if there are none or one is empty.
  [[nodiscard]] Coro<std::string> readuntil(std::span<const std::string_view> separators);
  // Reads exactly n bytes; IncompleteReadError at EOF (partial consumed).
  [[nodiscard]] Coro<std::string> readexactly(std::size_t n);

  // Bounds the waiting of every read from now on (Go's SetReadDeadline; a
  // server handler bounds the time to read a request head with it): a read
  // still waiting for the peer at `deadline` (on the runtime's clock,
  // get_running_loop().time()) raises TimeoutError, and one that would have
  // to wait after it raises at once. Nothing is consumed: what arrived stays
  // buffered, and what is buffered is still returned without waiting.
  // TimePoint::max() (the default) removes it. Call it between reads, from
  // the task that reads.
  void set_read_deadline(TimePoint deadline);
  TimePoint read_deadline() const;

  // True if the peer closed and everything was read.
  bool at_eof() const;
  // Bytes buffered and not yet returned.
  std::size_t buffered() const;
  std::size_t limit() const;

 private:
  friend struct detail::StreamAccess;
  explicit StreamReader(std::shared_ptr<detail::ReaderState> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::ReaderState> s_;
};

class StreamWriter {
 public:
  StreamWriter() = default;

  bool valid() const noexcept { return static_cast<bool>(s_); }

  // Queues `data` (sending at once what the socket takes). Never waits.
  // RuntimeError after close()/write_eof(); the connection's error (e.g.
  // BrokenPipeError) if it already failed.
  void write(std::string_view data);
  void writelines(const std::vector<std::string>& lines);
  // Waits until the queue is at or below the low-water mark if it went
  // above the high-water mark; raises the connection's error if it failed.
  // A cancellation point (it yields when the step's budget is spent).
  [[nodiscard]] Coro<void> drain();
  // Half-close: shuts the sending direction down once the queue is sent.
  void write_eof();
  bool can_write_eof() const noexcept { return true; }
  // Sends what is queued, then shuts the connection down (both ways).
  // Idempotent.
  void close();
  // Discards the queue and resets the connection at once.
  void abort();
  bool is_closing() const;
  // Waits until close() finished (the queue was sent or failed).
  [[nodiscard]] Coro<void> wait_closed();

  // Bytes queued and not yet sent (asyncio's get_write_buffer_size).
  std::size_t buffered() const;
  // asyncio's set_write_buffer_limits; low defaults to high / 4.
  // std::invalid_argument if low > high.
  void set_write_buffer_limits(std::size_t high, std::optional<std::size_t> low = {});

  // The connection's addresses and socket (get_extra_info).
  SocketAddress peer_address() const;
  SocketAddress local_address() const;
  const Socket& socket() const;

 private:
  friend struct detail::StreamAccess;
  explicit StreamWriter(std::shared_ptr<detail::WriterState> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::WriterState> s_;
};

struct StreamOptions {
  // The reader's limit (see the file comment).
  std::size_t limit = kDefaultStreamLimit;
  // The writer's high-water mark; the low-water mark defaults to high / 4.
  std::size_t write_high_water = 64 * 1024;
  std::optional<std::size_t> write_low_water;
  // For open_connection: per-attempt connect timeout (TimeoutError).
  std::optional<Duration> connect_timeout;
  // The reader's idle limit: a read that has waited this long with nothing
  // arriving raises TimeoutError (nothing consumed). Every receive restarts
  // it, so it bounds the peer's silence, not the length of a read (nginx's
  // client_body_timeout); on a server it is the idle timeout of a
  // connection (ServerOptions::stream). Combined with a read deadline
  // (StreamReader::set_read_deadline), whichever comes first ends the wait.
  // nullopt: no limit; otherwise it must be positive (std::invalid_argument).
  std::optional<Duration> read_timeout;
};

// Wraps a connected stream socket.
std::pair<StreamReader, StreamWriter> open_stream(Socket socket, StreamOptions options = {});
// Connects over TCP (TCP_NODELAY on) and wraps the socket.
[[nodiscard]] Coro<std::pair<StreamReader, StreamWriter>> open_connection(
    std::string host, std::uint16_t port, StreamOptions options = {});
[[nodiscard]] Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection(
    std::string path, StreamOptions options = {});

}  // namespace weft
