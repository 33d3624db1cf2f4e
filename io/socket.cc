#include "weft/io/socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "absl/strings/str_format.h"
#include "weft/io/detail/io_wait.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace {

using detail::FdWatch;

// Python ignores SIGPIPE at start-up; we do it when the first socket is
// made, and only if nobody chose a disposition.
void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old {};
    if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL &&
        !(old.sa_flags & SA_SIGINFO)) {
      signal(SIGPIPE, SIG_IGN);
    }
  });
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

std::optional<TimePoint> deadline_from(std::optional<Duration> timeout) {
  if (!timeout) return std::nullopt;
  if (timeout->count() < 0) {
    throw std::invalid_argument(absl::StrFormat("negative timeout (%d ns)", timeout->count()));
  }
  return get_running_loop().time() + *timeout;
}

}  // namespace

Socket::Socket(int fd) : fd_(fd), watch_(new FdWatch(fd), detail::kAdoptRef) {
  ignore_sigpipe_once();
}

Socket::Socket(int family, int type, int protocol) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw_errno("socket");
  *this = Socket(fd);
  watch_->set_stream(type == SOCK_STREAM);
}

Socket Socket::adopt(int fd) {
  if (fd < 0) throw std::invalid_argument("Socket::adopt: negative fd");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) throw_errno("fcntl(F_GETFL)");
  if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) throw_errno("fcntl(F_SETFL)");
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl >= 0 && !(fdfl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC);
  return Socket(fd);
}

std::pair<Socket, Socket> Socket::pair(int family, int type) {
  int fds[2];
  if (::socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    throw_errno("socketpair");
  }
  std::pair<Socket, Socket> p{Socket(fds[0]), Socket(fds[1])};
  p.first.watch_->set_stream(type == SOCK_STREAM);
  p.second.watch_->set_stream(type == SOCK_STREAM);
  return p;
}

Socket::Socket(Socket&& o) noexcept
    : fd_(o.fd_.exchange(-1, std::memory_order_relaxed)), watch_(std::move(o.watch_)) {}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_.store(o.fd_.exchange(-1, std::memory_order_relaxed), std::memory_order_relaxed);
    watch_ = std::move(o.watch_);
  }
  return *this;
}

void Socket::close() noexcept {
  // Relaxed: a Socket's own operations are ordered by the task that owns it;
  // close() from another task is ordered by whatever told it to close.
  int fd = fd_.exchange(-1, std::memory_order_relaxed);
  if (fd < 0) return;
  // Deregister (and wake waiters) before the number can be reused.
  if (watch_) watch_->close();
  ::close(fd);
}

int Socket::release() noexcept {
  int fd = fd_.exchange(-1, std::memory_order_relaxed);
  if (fd >= 0 && watch_) watch_->close();
  return fd;
}

int Socket::checked_fd(const char* call) const {
  int fd = this->fd();
  if (fd < 0) throw OSError(EBADF, call, "the socket is closed");
  return fd;
}

int Socket::family() const { return get_option(SOL_SOCKET, SO_DOMAIN); }
int Socket::type() const { return get_option(SOL_SOCKET, SO_TYPE); }

void Socket::set_option(int level, int name, int value) {
  if (setsockopt(checked_fd("setsockopt"), level, name, &value, sizeof value) != 0) {
    throw_errno("setsockopt");
  }
}

int Socket::get_option(int level, int name) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(checked_fd("getsockopt"), level, name, &value, &len) != 0) {
    throw_errno("getsockopt");
  }
  return value;
}

void Socket::set_nodelay(bool on) { set_option(IPPROTO_TCP, TCP_NODELAY, on); }

void Socket::set_linger(std::optional<int> seconds) {
  linger l{};
  l.l_onoff = seconds.has_value();
  l.l_linger = seconds.value_or(0);
  if (setsockopt(checked_fd("setsockopt"), SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) {
    throw_errno("setsockopt(SO_LINGER)");
  }
}

void Socket::bind(const SocketAddress& addr) {
  if (::bind(checked_fd("bind"), addr.data(), addr.size()) != 0) {
    throw OSError(errno, "bind", addr.to_string());
  }
}

void Socket::listen(int backlog) {
  if (::listen(checked_fd("listen"), backlog) != 0) throw_errno("listen");
}

SocketAddress Socket::local_address() const {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity();
  if (getsockname(checked_fd("getsockname"), a.data(), &len) != 0) throw_errno("getsockname");
  a.set_size(len);
  return a;
}

SocketAddress Socket::peer_address() const {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity();
  if (getpeername(checked_fd("getpeername"), a.data(), &len) != 0) throw_errno("getpeername");
  a.set_size(len);
  return a;
}

void Socket::shutdown(int how) {
  if (::shutdown(checked_fd("shutdown"), how) != 0) throw_errno("shutdown");
}

Coro<void> Socket::connect(SocketAddress addr, std::optional<Duration> timeout) {
  const std::optional<TimePoint> deadline = deadline_from(timeout);
  co_await detail::BudgetAwaiter();
  const int fd = checked_fd("connect");
  std::uint64_t seq = watch_->seq(FdWatch::kWrite);
  if (::connect(fd, addr.data(), addr.size()) == 0) co_return;
  const int err = errno;
  // EINTR: the connection continues asynchronously, as with EINPROGRESS.
  if (err != EINPROGRESS && err != EINTR) {
    std::rethrow_exception(make_os_error(err, "connect to " + addr.to_string()));
  }
  for (;;) {
    try {
      co_await watch_->wait(FdWatch::kWrite, seq, deadline);
    } catch (const TimeoutError&) {
      throw TimeoutError(absl::StrFormat("connect to %s timed out", addr.to_string()));
    }
    seq = watch_->seq(FdWatch::kWrite);
    const int soerr = get_option(SOL_SOCKET, SO_ERROR);
    if (soerr != 0) std::rethrow_exception(make_os_error(soerr, "connect to " + addr.to_string()));
    sockaddr_storage peer;
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) co_return;
    if (errno != ENOTCONN) throw_errno("getpeername");
    // Still connecting (a spurious edge): wait for the next one.
  }
}

Coro<std::pair<Socket, SocketAddress>> Socket::accept() {
  co_await detail::BudgetAwaiter();
  for (;;) {
    const int fd = checked_fd("accept");
    const std::uint64_t seq = watch_->seq(FdWatch::kRead);
    SocketAddress peer;
    socklen_t len = SocketAddress::capacity();
    int c = ::accept4(fd, peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      peer.set_size(len);
      Socket conn(c);
      // A connection has its listener's type.
      if (std::optional<bool> stream = watch_->known_stream()) conn.watch_->set_stream(*stream);
      co_return std::pair<Socket, SocketAddress>(std::move(conn), peer);
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_os_error(err, "accept");
    co_await watch_->wait(FdWatch::kRead, seq);
  }
}

Coro<std::size_t> Socket::recv_into(std::span<char> buf, int flags) {
  co_await detail::BudgetAwaiter();
  for (;;) {
    const int fd = checked_fd("recv");
    const std::uint64_t seq = watch_->seq(FdWatch::kRead);
    if (flags == 0 && watch_->read_drained(seq)) {
      // The last receive emptied the queue and no edge came since: recv
      // would fail with EAGAIN (fd_watch.h, the drained hint).
      co_await watch_->wait(FdWatch::kRead, seq);
      continue;
    }
    ssize_t n = ::recv(fd, buf.data(), buf.size(), flags);
    if (n >= 0) {
      if (n > 0 && static_cast<std::size_t>(n) < buf.size() && flags == 0 && watch_->is_stream()) {
        watch_->note_read_drained(seq);
      }
      co_return static_cast<std::size_t>(n);
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_os_error(err, "recv");
    co_await watch_->wait(FdWatch::kRead, seq);
  }
}

Coro<std::string> Socket::recv(std::size_t max_bytes, int flags) {
  std::string out(max_bytes, '\0');
  std::size_t n = co_await recv_into(std::span<char>(out.data(), out.size()), flags);
  out.resize(n);
  co_return out;
}

Coro<std::size_t> Socket::send(std::string_view data, int flags) {
  co_await detail::BudgetAwaiter();
  for (;;) {
    const int fd = checked_fd("send");
    const std::uint64_t seq = watch_->seq(FdWatch::kWrite);
    ssize_t n = ::send(fd, data.data(), data.size(), flags | MSG_NOSIGNAL);
    if (n >= 0) co_return static_cast<std::size_t>(n);
    const int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_os_error(err, "send");
    co_await watch_->wait(FdWatch::kWrite, seq);
  }
}

Coro<void> Socket::sendall(std::string_view data, std::size_t* sent) {
  std::size_t done = 0;
  if (sent != nullptr) *sent = 0;
  co_await detail::BudgetAwaiter();
  while (done < data.size()) {
    const int fd = checked_fd("send");
    const std::uint64_t seq = watch_->seq(FdWatch::kWrite);
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      if (sent != nullptr) *sent = done;
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_os_error(err, "send");
    co_await watch_->wait(FdWatch::kWrite, seq);
  }
}

Coro<std::size_t> Socket::sendto(std::string_view data, SocketAddress to) {
  co_await detail::BudgetAwaiter();
  for (;;) {
    const int fd = checked_fd("sendto");
    const std::uint64_t seq = watch_->seq(FdWatch::kWrite);
    ssize_t n = ::sendto(fd, data.data(), data.size(), MSG_NOSIGNAL, to.data(), to.size());
    if (n >= 0) co_return static_cast<std::size_t>(n);
    const int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_os_error(err, "sendto " + to.to_string());
    co_await watch_->wait(FdWatch::kWrite, seq);
  }
}

Coro<std::pair<std::size_t, SocketAddress>> Socket::recvfrom_into(std::span<char> buf) {
  co_await detail::BudgetAwaiter();
  for (;;) {
    const int fd = checked_fd("recvfrom");
    const std::uint64_t seq = watch_->seq(FdWatch::kRead);
    SocketAddress from;
    socklen_t len = SocketAddress::capacity();
    ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), 0, from.data(), &len);
    if (n >= 0) {
      from.set_size(len);
      co_return std::pair<std::size_t, SocketAddress>(static_cast<std::size_t>(n), from);
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_os_error(err, "recvfrom");
    co_await watch_->wait(FdWatch::kRead, seq);
  }
}

Coro<std::pair<std::string, SocketAddress>> Socket::recvfrom(std::size_t max_bytes) {
  std::string out(max_bytes, '\0');
  auto [n, from] = co_await recvfrom_into(std::span<char>(out.data(), out.size()));
  out.resize(n);
  co_return std::pair<std::string, SocketAddress>(std::move(out), from);
}

Coro<void> Socket::wait_readable(std::optional<Duration> timeout) {
  const std::optional<TimePoint> deadline = deadline_from(timeout);
  checked_fd("wait_readable");
  // Level semantics for the caller: ask the kernel first.
  const std::uint64_t seq = watch_->seq(FdWatch::kRead);
  pollfd p{fd(), POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) > 0) co_return;
  co_await watch_->wait(FdWatch::kRead, seq, deadline);
}

Coro<void> Socket::wait_writable(std::optional<Duration> timeout) {
  const std::optional<TimePoint> deadline = deadline_from(timeout);
  checked_fd("wait_writable");
  const std::uint64_t seq = watch_->seq(FdWatch::kWrite);
  pollfd p{fd(), POLLOUT, 0};
  if (::poll(&p, 1, 0) > 0) co_return;
  co_await watch_->wait(FdWatch::kWrite, seq, deadline);
}

std::optional<std::size_t> Socket::try_recv_into(std::span<char> buf, int flags) {
  for (;;) {
    ssize_t n = ::recv(checked_fd("recv"), buf.data(), buf.size(), flags | MSG_DONTWAIT);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (would_block(errno)) return std::nullopt;
    throw_errno("recv");
  }
}

std::optional<std::size_t> Socket::try_send(std::string_view data, int flags) {
  for (;;) {
    ssize_t n = ::send(checked_fd("send"), data.data(), data.size(),
                       flags | MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (would_block(errno)) return std::nullopt;
    throw_errno("send");
  }
}

// --- Helpers ------------------------------------------------------------------

Coro<Socket> create_connection(std::string host, std::uint16_t port, ConnectOptions options) {
  std::vector<SocketAddress> addrs =
      co_await resolve(std::move(host), port, options.family, SOCK_STREAM);
  std::exception_ptr last;
  for (const SocketAddress& a : addrs) {
    try {
      Socket s(a.family(), SOCK_STREAM);
      if (options.local_address) s.bind(*options.local_address);
      co_await s.connect(a, options.timeout);
      if (options.nodelay) s.set_nodelay(true);
      co_return s;
    } catch (const OSError&) {
      last = std::current_exception();
    } catch (const TimeoutError&) {
      last = std::current_exception();
    }
  }
  if (last) std::rethrow_exception(last);
  throw OSError(EADDRNOTAVAIL, "create_connection", "no address to connect to");
}

Coro<Socket> create_unix_connection(std::string path, std::optional<Duration> timeout) {
  Socket s(AF_UNIX, SOCK_STREAM);
  co_await s.connect(SocketAddress::unix_path(path), timeout);
  co_return s;
}

Socket create_server(const SocketAddress& addr, ListenOptions options) {
  Socket s(addr.family(), SOCK_STREAM);
  if (options.reuse_address) s.set_reuse_address(true);
  if (options.reuse_port) s.set_reuse_port(true);
  s.bind(addr);
  s.listen(options.backlog);
  return s;
}

Coro<Socket> create_server(std::string host, std::uint16_t port, ListenOptions options) {
  if (host.empty()) host = "0.0.0.0";
  std::vector<SocketAddress> addrs =
      co_await resolve(std::move(host), port, options.family, SOCK_STREAM, AI_PASSIVE);
  if (addrs.empty()) throw OSError(EADDRNOTAVAIL, "create_server", "no address");
  co_return create_server(addrs.front(), options);
}

Socket create_unix_server(const std::string& path, ListenOptions options) {
  if (!path.empty() && path.front() != '@') {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  }
  Socket s(AF_UNIX, SOCK_STREAM);
  s.bind(SocketAddress::unix_path(path));
  s.listen(options.backlog);
  return s;
}

}  // namespace weft
