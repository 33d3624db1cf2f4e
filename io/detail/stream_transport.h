// StreamTransport: what a StreamReader / StreamWriter pair reads from and
// writes to: a plain socket, or TLS over one (weft/io/tls.h).
//
// Contract for implementations:
//  - recv_into is cancel-safe like Socket::recv_into: it suspends only while
//    nothing was consumed, and returns what it consumed without suspending.
//  - try_send never waits; nullopt means "would block" and *wait_for names
//    the readiness to wait for (TLS may need to read before it can write).
//  - The reader calls recv_into from one task at a time and the writer
//    calls try_send under its own lock; they may run concurrently, so an
//    implementation with shared state (an SSL object) serialises them.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <utility>
#include <optional>
#include <span>
#include <string_view>

#include "weft/core/coro.h"
#include "weft/io/detail/fd_watch.h"
#include "weft/io/socket.h"
#include "weft/io/streams.h"

namespace weft::detail {

class StreamTransport {
 public:
  explicit StreamTransport(Socket s) : socket_(std::move(s)) {}
  virtual ~StreamTransport() = default;
  StreamTransport(const StreamTransport&) = delete;
  StreamTransport& operator=(const StreamTransport&) = delete;

  Socket& socket() noexcept { return socket_; }

  // Receives up to buf.size() bytes; 0 at the end of the stream.
  virtual Coro<std::size_t> recv_into(std::span<char> buf) { return socket_.recv_into(buf); }
  // Sends some of `data` without waiting; see the file comment.
  virtual std::optional<std::size_t> try_send(std::string_view data, FdWatch::Dir* wait_for) {
    *wait_for = FdWatch::kWrite;
    return socket_.try_send(data);
  }
  // Half-close (after the queue was sent).
  virtual void shutdown_write() noexcept { ::shutdown(socket_.fd(), SHUT_WR); }
  // Closing: both directions.
  virtual void shutdown_both() noexcept { ::shutdown(socket_.fd(), SHUT_RDWR); }

 protected:
  Socket socket_;
};

// A reader/writer pair over `t`.
std::pair<StreamReader, StreamWriter> make_stream(std::shared_ptr<StreamTransport> t,
                                                  const StreamOptions& options);

}  // namespace weft::detail
