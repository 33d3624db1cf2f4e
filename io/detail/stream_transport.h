// StreamTransport: what a StreamReader / StreamWriter pair reads from and
// writes to: a socket (or, for subprocesses, a pipe end), with an optional
// StreamLayer on top that rewrites the bytes (TLS, weft/io/tls.h).
//
// Contract for implementations (raw_* and layers alike):
//  - recv_into is cancel-safe like Socket::recv_into: it suspends only while
//    nothing was consumed, and returns what it consumed without suspending.
//  - try_send never waits; nullopt means "would block" and *wait_for names
//    the readiness to wait for (TLS may need to read before it can write).
//  - The reader calls recv_into from one task at a time and the writer
//    calls try_send under its own lock; they may run concurrently, so an
//    implementation with shared state (an SSL object) serialises them.
//
// The layer is set once: before the streams exist (tls_client_stream), or
// by upgrade_stream (start_tls) while neither side touches the transport:
// the upgrade holds the reader's one-read-at-a-time claim and keeps the
// writer from sending (its `upgrading_` state), and sets the layer under the
// writer's lock. The reader's next read takes the claim (acquire, pairing
// with the upgrade's release of it) and the writer reads the layer under
// its lock, so both see it.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "weft/core/coro.h"
#include "weft/io/detail/fd_watch.h"
// A transport owns its Socket by value and reads through its cancel-safe
// recv_into; the stream types below are only named, so streams.h (which
// sits above this header) is not included.
#include "weft/io/socket.h"

namespace weft {
class StreamReader;
class StreamWriter;
struct StreamOptions;
}  // namespace weft

namespace weft::detail {

// Rewrites a stream's bytes on their way to and from the socket.
class StreamLayer {
 public:
  virtual ~StreamLayer() = default;
  // Sets the layer up over `s` (the TLS handshake). Runs before the layer
  // carries any data; if it fails or is cancelled, the layer is discarded.
  virtual Coro<void> start(Socket& s) = 0;
  virtual Coro<std::size_t> recv_into(Socket& s, std::span<char> buf) = 0;
  virtual std::optional<std::size_t> try_send(Socket& s, std::string_view data,
                                              FdWatch::Dir* wait_for) = 0;
  // Before the sending direction shuts down: best effort, never waits
  // (TLS's close_notify).
  virtual void before_shutdown(Socket& s) noexcept {}
};

class StreamTransport {
 public:
  explicit StreamTransport(Socket s) : socket_(std::move(s)) {}
  virtual ~StreamTransport() = default;
  StreamTransport(const StreamTransport&) = delete;
  StreamTransport& operator=(const StreamTransport&) = delete;

  Socket& socket() noexcept { return socket_; }
  StreamLayer* layer() const noexcept { return layer_.get(); }
  // See the file comment for when this may be called.
  void set_layer(std::unique_ptr<StreamLayer> layer) noexcept { layer_ = std::move(layer); }

  // Receives up to buf.size() bytes; 0 at the end of the stream.
  Coro<std::size_t> recv_into(std::span<char> buf) {
    return layer_ ? layer_->recv_into(socket_, buf) : raw_recv_into(buf);
  }
  // Sends some of `data` without waiting; see the file comment.
  std::optional<std::size_t> try_send(std::string_view data, FdWatch::Dir* wait_for) {
    return layer_ ? layer_->try_send(socket_, data, wait_for) : raw_try_send(data, wait_for);
  }
  // Half-close (after the queue was sent).
  void shutdown_write() noexcept {
    if (layer_) layer_->before_shutdown(socket_);
    raw_shutdown(SHUT_WR);
  }
  // Closing: both directions.
  void shutdown_both() noexcept {
    if (layer_) layer_->before_shutdown(socket_);
    raw_shutdown(SHUT_RDWR);
  }

 protected:
  // The descriptor's own IO (recv/send; read/write for a pipe).
  virtual Coro<std::size_t> raw_recv_into(std::span<char> buf) { return socket_.recv_into(buf); }
  virtual std::optional<std::size_t> raw_try_send(std::string_view data,
                                                  FdWatch::Dir* wait_for) {
    *wait_for = FdWatch::kWrite;
    return socket_.try_send(data);
  }
  // shutdown(2); errors (ENOTCONN...) change nothing for the caller.
  virtual void raw_shutdown(int how) noexcept { ::shutdown(socket_.fd(), how); }

  Socket socket_;

 private:
  std::unique_ptr<StreamLayer> layer_;
};

// A reader/writer pair over `t`.
std::pair<StreamReader, StreamWriter> make_stream(std::shared_ptr<StreamTransport> t,
                                                  const StreamOptions& options);

// start_tls's mechanism: puts `layer` under an open stream. From the call
// on the writer holds new writes back; the call waits until everything
// queued before it is sent, starts the layer, installs it and lets the
// writer send the held writes through it. RuntimeError if a read is in
// progress, if the reader holds bytes nobody has read, or if the writer was
// closed or half-closed; std::invalid_argument if `reader` and `writer` are
// not one stream. If the layer fails to start (or the call is cancelled
// while it starts), the connection is shut down and the reader and writer
// fail from then on with that error (a cancellation: ConnectionAbortedError).
Coro<void> upgrade_stream(StreamReader& reader, StreamWriter& writer,
                          std::unique_ptr<StreamLayer> layer);

// The layer under `writer`'s stream, or null (any thread).
StreamLayer* stream_layer(const StreamWriter& writer);

}  // namespace weft::detail
