// weft::Socket: a non-blocking socket whose operations are awaitables
// (Python's loop.sock_* API as methods), plus helpers to connect and listen
// over TCP and Unix-domain sockets.
//
//   weft::Socket s = co_await weft::create_connection("127.0.0.1", port);
//   co_await s.sendall("ping");
//   std::string reply = co_await s.recv(4096);
//
// Every socket is created non-blocking and close-on-exec. Operations try
// the system call first and suspend only on EAGAIN, waiting on the socket's
// edge-triggered registration (see weft/io/reactor.h). SIGPIPE never kills
// the process: sends use MSG_NOSIGNAL, and the first Socket made sets
// SIGPIPE to SIG_IGN if it still has its default action.
//
// Cancel-safety contract (what an operation that raised CancelledError did):
// every operation is cancellable only while it waits for readiness (or, at
// its start, when the task's step budget forces a yield); the system call
// that transfers data runs only after the last suspension point and its
// result is returned without suspending again. Hence:
//   recv / recv_into / recvfrom     consumed nothing
//   send / sendto                   sent nothing
//   accept                          accepted nothing (the connection stays in
//                                   the backlog for the next accept)
//   sendall                         may have sent a prefix: pass `sent` to
//                                   learn how long (updated after each
//                                   partial send, valid after any exception)
//   connect                         the attempt may still be in progress;
//                                   close the socket (create_connection does)
// A TimeoutError from connect leaves the socket in the same state.
//
// Thread safety: a Socket may be used from any worker, and one task may
// receive while another sends. Concurrent operations in the same direction
// are allowed (each retries after a readiness edge), but their order is
// unspecified. close() wakes the tasks waiting on the socket with OSError
// (EBADF); do not close a socket while another thread is inside one of its
// calls. A Socket is bound to the runtime that first waited on it; close it
// before that Runtime is destroyed.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "weft/core/coro.h"
#include "weft/core/detail/ref_ptr.h"
#include "weft/io/address.h"
#include "weft/io/detail/fd_watch.h"
#include "weft/io/errors.h"
#include "weft/sched/clock.h"

namespace weft {

class Socket {
 public:
  // No socket: valid() is false.
  Socket() noexcept = default;
  // socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC. OSError on failure.
  Socket(int family, int type, int protocol = 0);
  // Takes ownership of `fd` and makes it non-blocking and close-on-exec.
  static Socket adopt(int fd);
  // socketpair(2): two connected sockets (Unix domain by default).
  static std::pair<Socket, Socket> pair(int family = AF_UNIX, int type = SOCK_STREAM);

  Socket(Socket&& o) noexcept;
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { close(); }

  bool valid() const noexcept { return fd() >= 0; }
  // The descriptor; -1 once closed.
  int fd() const noexcept { return fd_.load(std::memory_order_relaxed); }
  // SO_DOMAIN / SO_TYPE.
  int family() const;
  int type() const;

  // Closes the socket; tasks waiting on it wake with OSError(EBADF).
  // Idempotent; never throws.
  void close() noexcept;
  // Gives up the descriptor (deregistered from the reactor) to the caller.
  int release() noexcept;

  // --- Options and addresses (synchronous; OSError on failure). ---
  void set_option(int level, int name, int value);
  int get_option(int level, int name) const;
  void set_reuse_address(bool on) { set_option(SOL_SOCKET, SO_REUSEADDR, on); }
  void set_reuse_port(bool on) { set_option(SOL_SOCKET, SO_REUSEPORT, on); }
  void set_keepalive(bool on) { set_option(SOL_SOCKET, SO_KEEPALIVE, on); }
  // TCP_NODELAY.
  void set_nodelay(bool on);
  // SO_LINGER; linger(0) makes close() reset the connection (RST).
  void set_linger(std::optional<int> seconds);
  void bind(const SocketAddress& addr);
  void listen(int backlog = SOMAXCONN);
  SocketAddress local_address() const;
  SocketAddress peer_address() const;
  // shutdown(2): SHUT_RD, SHUT_WR (half-close: the peer reads EOF) or
  // SHUT_RDWR.
  void shutdown(int how);
  // The pending error (SO_ERROR), cleared by reading it.
  int pending_error() const { return get_option(SOL_SOCKET, SO_ERROR); }

  // --- Awaitable operations (see the cancel-safety contract above). ---
  // Connects; TimeoutError after `timeout`. ConnectionRefusedError etc.
  [[nodiscard]] Coro<void> connect(SocketAddress addr, std::optional<Duration> timeout = {});
  // Accepts a connection: the new socket and the peer's address.
  [[nodiscard]] Coro<std::pair<Socket, SocketAddress>> accept();
  // Receives up to buf.size() bytes; 0 means the peer closed (EOF).
  [[nodiscard]] Coro<std::size_t> recv_into(std::span<char> buf, int flags = 0);
  // Receives up to `max_bytes`; "" means EOF.
  [[nodiscard]] Coro<std::string> recv(std::size_t max_bytes, int flags = 0);
  // Sends some of `data` (at least one byte unless it is empty); returns
  // how many. `data` must stay valid until the send completes.
  [[nodiscard]] Coro<std::size_t> send(std::string_view data, int flags = 0);
  // Sends all of `data`. If `sent` is given, *sent counts the bytes sent so
  // far (even when it throws).
  [[nodiscard]] Coro<void> sendall(std::string_view data, std::size_t* sent = nullptr);
  // Datagrams.
  [[nodiscard]] Coro<std::size_t> sendto(std::string_view data, SocketAddress to);
  [[nodiscard]] Coro<std::pair<std::size_t, SocketAddress>> recvfrom_into(std::span<char> buf);
  [[nodiscard]] Coro<std::pair<std::string, SocketAddress>> recvfrom(std::size_t max_bytes);
  // Readiness of the socket itself (no data is transferred).
  [[nodiscard]] Coro<void> wait_readable(std::optional<Duration> timeout = {});
  [[nodiscard]] Coro<void> wait_writable(std::optional<Duration> timeout = {});

  // --- Non-blocking twins: nullopt when the call would block. ---
  std::optional<std::size_t> try_recv_into(std::span<char> buf, int flags = 0);
  std::optional<std::size_t> try_send(std::string_view data, int flags = 0);

  // For the stream layer: the socket's reactor registration.
  detail::FdWatch& watch() const noexcept { return *watch_; }

 private:
  explicit Socket(int fd);  // an owned, already non-blocking fd
  int checked_fd(const char* call) const;

  std::atomic<int> fd_{-1};
  detail::RefPtr<detail::FdWatch> watch_;
};

// --- Helpers ----------------------------------------------------------------

struct ConnectOptions {
  // Per attempt (one per resolved address).
  std::optional<Duration> timeout;
  // AF_UNSPEC, AF_INET or AF_INET6.
  int family = AF_UNSPEC;
  // TCP_NODELAY (on by default, as in asyncio).
  bool nodelay = true;
  // Bind to this local address first.
  std::optional<SocketAddress> local_address;
};

// Resolves `host` and connects to the first address that accepts, trying
// them in order (Python's socket.create_connection); raises the last error.
[[nodiscard]] Coro<Socket> create_connection(std::string host, std::uint16_t port,
                                             ConnectOptions options = {});
// Connects to a Unix-domain stream socket.
[[nodiscard]] Coro<Socket> create_unix_connection(std::string path,
                                                  std::optional<Duration> timeout = {});

struct ListenOptions {
  int backlog = SOMAXCONN;
  bool reuse_address = true;
  bool reuse_port = false;
  // For a host name that resolves to several addresses: AF_UNSPEC takes
  // the first.
  int family = AF_UNSPEC;
};

// A listening TCP socket bound to `addr` (port 0: any free port, see
// local_address()).
Socket create_server(const SocketAddress& addr, ListenOptions options = {});
// Same after resolving `host` ("" means every address, IPv4).
[[nodiscard]] Coro<Socket> create_server(std::string host, std::uint16_t port,
                                         ListenOptions options = {});
// A listening Unix-domain stream socket at `path`; a stale socket file
// left at that path is removed first.
Socket create_unix_server(const std::string& path, ListenOptions options = {});

}  // namespace weft
