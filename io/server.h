// weft::start_server and weft::Server (asyncio's start_server and Server):
// a task per accepted connection, each handed a StreamReader / StreamWriter
// pair (weft/io/streams.h), and a handle that stops accepting, cancels the
// handlers and waits for them.
//
//   weft::Server server = co_await weft::start_server(handle, "127.0.0.1", 0);
//   std::printf("LISTEN %u\n", server.port());
//   co_await server.serve_forever();
//
// Design. One accept task per listening socket, started by serve() on the
// calling loop; each accepted connection becomes a task of its own (any
// worker) that opens its streams (ServerOptions::open_streams, e.g. TLS) and
// runs the handler. A detail::ServerState, shared by the handle, the accept
// tasks and the connection tasks, keeps the bookkeeping under a lock: the
// running handlers (for close_clients and wait_closed), the listeners, the
// counts. On EMFILE and its kin accept pauses (accept_retry_delay) instead
// of spinning.
//
// Thread safety: see Server below.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "weft/core/coro.h"
#include "weft/io/address.h"
#include "weft/io/socket.h"
#include "weft/io/streams.h"
#include "weft/sched/clock.h"

namespace weft {
namespace detail {
class ServerState;
struct ServerAccess;
}  // namespace detail

// Called as a new task for each connection. It runs on any worker. An
// exception other than CancelledError that escapes it is reported through
// the runtime's error handler, once, with its type and the peer
// ("unhandled exception in the connection handler for 127.0.0.1:4242:
// weft::ConnectionResetError: recv: Connection reset by peer [errno 104]",
// asyncio's "Unhandled exception in client_connected_cb"). A handler
// therefore catches the ways a client normally ends a connection, which are
// not bugs: ConnectionError (reset, broken pipe, aborted), IncompleteReadError
// (EOF in the middle of a message) and the TimeoutError of its own read
// limits (StreamOptions::read_timeout, StreamReader::set_read_deadline); see
// docs/io.md, "Ending a connection". Must be callable concurrently from
// several threads.
using ConnectionHandler = std::function<Coro<void>(StreamReader, StreamWriter)>;

// Makes the streams of an accepted connection (see ServerOptions).
using StreamOpener =
    std::function<Coro<std::pair<StreamReader, StreamWriter>>(Socket, const StreamOptions&)>;

struct ServerOptions {
  ListenOptions listen;
  // Every connection's stream options; `stream.read_timeout` is the
  // connection's idle timeout (hyper's keep-alive timeout, nginx's
  // keepalive_timeout): a handler waiting that long for the client to send
  // anything gets TimeoutError from its read. The time to read one message
  // (a request head: hyper's header_read_timeout, nginx's
  // client_header_timeout) is the handler's to bound, with
  // StreamReader::set_read_deadline, since only it knows where a message
  // starts and ends.
  StreamOptions stream;
  // Makes each connection's streams; default open_stream. A TLS server sets
  // weft::tls_server_opener(context) (weft/io/tls.h). It runs in the
  // connection's task, before the handler; if it fails with an OSError,
  // TlsError or TimeoutError (the client's problem, e.g. a failed or slow
  // handshake) the connection is dropped quietly, anything else is reported
  // like a handler's error.
  StreamOpener open_streams;
  // After EMFILE / ENFILE / ENOBUFS / ENOMEM from accept, the server
  // reports the error, pauses accepting for this long, and tries again
  // (the pending connections wait in the backlog).
  Duration accept_retry_delay = std::chrono::milliseconds(100);
  // TCP_NODELAY on accepted TCP connections.
  bool nodelay = true;
};

// A listening server (asyncio.Server). Move-only; destroying it closes it
// (like `async with server:`), without waiting.
//
// Thread safety: every method may be called from any task; the ones that
// are not awaitables from any thread too.
class Server {
 public:
  Server() = default;
  Server(Server&&) noexcept = default;
  Server& operator=(Server&& o) noexcept;
  ~Server();

  // Stops accepting: the listening sockets close (the accept tasks close
  // them as they stop, before wait_closed returns). Connections in progress
  // go on. Idempotent.
  void close();
  // Cancels every running connection handler (asyncio 3.13 close_clients /
  // abort_clients, by cancellation).
  void close_clients();
  bool is_serving() const;
  // Waits until close() was called, the listeners are closed and every
  // connection handler has finished.
  [[nodiscard]] Coro<void> wait_closed();
  // Waits until the server is closed. Cancelling it closes the server.
  [[nodiscard]] Coro<void> serve_forever();

  // The listening addresses (asyncio's Server.sockets), and the first
  // one's port.
  std::vector<SocketAddress> addresses() const;
  std::uint16_t port() const;
  // Connection handlers running now.
  std::size_t active_connections() const;
  // Connections accepted so far.
  std::uint64_t accepted_connections() const;

 private:
  friend struct detail::ServerAccess;
  explicit Server(std::shared_ptr<detail::ServerState> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::ServerState> s_;
};

// Serves connections accepted on already listening sockets.
Server serve(ConnectionHandler handler, std::vector<Socket> listeners, ServerOptions options = {});
// Listens on (host, port) (port 0: a free port, see Server::port) and serves.
[[nodiscard]] Coro<Server> start_server(ConnectionHandler handler, std::string host,
                                        std::uint16_t port, ServerOptions options = {});
// Listens on a Unix-domain path and serves.
[[nodiscard]] Coro<Server> start_unix_server(ConnectionHandler handler, std::string path,
                                             ServerOptions options = {});

}  // namespace weft
