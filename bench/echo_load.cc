#include "weft/bench/echo_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace weft::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kIdBytes = 12;  // message number (8) + connection (4)

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// One file descriptor, closed on every path.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

struct Connection {
  Fd fd;
  std::uint32_t id = 0;
  std::uint64_t seq = 0;  // number of the message in flight (or the last one)
  std::vector<char> out;  // the message in flight
  std::vector<char> in;   // its echo, received so far
  std::size_t out_off = 0;
  std::size_t in_off = 0;
  bool in_flight = false;
  bool wants_out = false;  // registered for EPOLLOUT (a send did not finish)
  Clock::time_point sent_at;
};

class LoadGenerator {
 public:
  explicit LoadGenerator(const EchoLoadOptions& o) : o_(o), conns_(o.connections) {}

  EchoLoadResult run() {
    epoll_ = Fd(epoll_create1(EPOLL_CLOEXEC));
    if (epoll_.get() < 0) throw std::runtime_error(sys_error("echo load: epoll_create1"));
    for (std::uint32_t i = 0; i < o_.connections; ++i) connect_one(i);

    const auto start = Clock::now();
    warm_end_ = start + o_.warmup;
    end_ = warm_end_ + o_.duration;
    samples_.reserve(1 << 20);
    last_progress_ = start;
    for (Connection& c : conns_) start_message(c, start);

    // The run: until the window ends.
    while (poll_once(end_)) {
    }
    // No new messages now: collect the echoes still in flight.
    const auto drain_end = Clock::now() + o_.stall_timeout;
    while (in_flight_ > 0) {
      if (!poll_once(drain_end)) {
        throw std::runtime_error("echo load: " + std::to_string(in_flight_) +
                                 " echoes still missing after the run");
      }
    }
    check_nothing_extra();

    EchoLoadResult r;
    r.connections = o_.connections;
    r.sent = sent_;
    r.verified = verified_;
    r.measured = samples_.size();
    r.seconds = std::chrono::duration<double>(o_.duration).count();
    r.msgs_per_s = static_cast<double>(r.measured) / r.seconds;
    r.p50_us = static_cast<double>(percentile(samples_, 50)) / 1e3;
    r.p99_us = static_cast<double>(percentile(samples_, 99)) / 1e3;
    r.max_us = static_cast<double>(percentile(samples_, 100)) / 1e3;
    return r;
  }

 private:
  void connect_one(std::uint32_t i) {
    Connection& c = conns_[i];
    c.id = i;
    c.out.resize(o_.message_size);
    c.in.resize(o_.message_size);
    c.fd = Fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int fd = c.fd.get();
    if (fd < 0) throw std::runtime_error(sys_error("echo load: socket"));
    // Bounds the blocking connect (Linux applies SO_SNDTIMEO to it).
    timeval tv{};
    tv.tv_sec = 5;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(o_.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error(sys_error("echo load: connection " + std::to_string(i) +
                                         " to 127.0.0.1:" + std::to_string(o_.port)));
    }
    const int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
      throw std::runtime_error(sys_error("echo load: TCP_NODELAY"));
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
      throw std::runtime_error(sys_error("echo load: O_NONBLOCK"));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw std::runtime_error(sys_error("echo load: epoll_ctl"));
    }
  }

  void fill_message(Connection& c) {
    std::memcpy(c.out.data(), &c.seq, 8);
    std::memcpy(c.out.data() + 8, &c.id, 4);
    for (std::size_t i = kIdBytes; i < c.out.size(); ++i) {
      c.out[i] = static_cast<char>((c.id * 131u + c.seq * 7u + i * 13u) & 0xffu);
    }
  }

  void start_message(Connection& c, Clock::time_point now) {
    ++c.seq;
    fill_message(c);
    c.out_off = 0;
    c.in_off = 0;
    c.in_flight = true;
    c.sent_at = now;
    ++in_flight_;
    ++sent_;
    send_some(c);
  }

  void set_wants_out(Connection& c, bool on) {
    if (c.wants_out == on) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u32 = c.id;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) != 0) {
      throw std::runtime_error(sys_error("echo load: epoll_ctl"));
    }
    c.wants_out = on;
  }

  void send_some(Connection& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t n =
          send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        set_wants_out(c, true);
        return;
      }
      throw std::runtime_error(sys_error("echo load: send on connection " + std::to_string(c.id)));
    }
    set_wants_out(c, false);
  }

  // Reads what has arrived of the echo in flight; true once it is complete.
  bool receive_some(Connection& c) {
    while (c.in_off < c.in.size()) {
      const ssize_t n = recv(c.fd.get(), c.in.data() + c.in_off, c.in.size() - c.in_off, 0);
      if (n > 0) {
        c.in_off += static_cast<std::size_t>(n);
        continue;
      }
      if (n == 0) {
        throw std::runtime_error("echo load: the server closed connection " +
                                 std::to_string(c.id) + " during message " +
                                 std::to_string(c.seq));
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      throw std::runtime_error(sys_error("echo load: recv on connection " + std::to_string(c.id)));
    }
    return true;
  }

  void complete(Connection& c, Clock::time_point now) {
    if (c.in_off > c.out_off || std::memcmp(c.in.data(), c.out.data(), c.out.size()) != 0) {
      std::size_t bad = 0;
      while (bad < c.out.size() && c.in[bad] == c.out[bad]) ++bad;
      throw std::runtime_error("echo load: wrong echo on connection " + std::to_string(c.id) +
                               ", message " + std::to_string(c.seq) + ", first bad byte " +
                               std::to_string(bad));
    }
    ++verified_;
    --in_flight_;
    c.in_flight = false;
    last_progress_ = now;
    if (now >= warm_end_ && now < end_) {
      samples_.push_back(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent_at).count()));
    }
    if (now < end_) start_message(c, now);
  }

  // Waits for events until `deadline` and handles them. False once the
  // deadline has passed; throws if nothing completed for stall_timeout.
  bool poll_once(Clock::time_point deadline) {
    const auto now = Clock::now();
    if (now >= deadline) return false;
    if (now - last_progress_ > o_.stall_timeout) {
      throw std::runtime_error("echo load: no echo completed for " +
                               std::to_string(std::chrono::duration<double>(o_.stall_timeout).count()) +
                               " s (" + std::to_string(in_flight_) + " in flight)");
    }
    const auto wait = std::min<Clock::duration>(deadline - now, o_.stall_timeout);
    const int timeout_ms =
        std::max(1, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
    epoll_event events[64];
    const int n = epoll_wait(epoll_.get(), events, 64, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return true;
      throw std::runtime_error(sys_error("echo load: epoll_wait"));
    }
    for (int i = 0; i < n; ++i) {
      Connection& c = conns_[events[i].data.u32];
      if ((events[i].events & EPOLLOUT) != 0 && c.in_flight) send_some(c);
      if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
        if (!c.in_flight) {
          check_idle(c);
        } else if (receive_some(c)) {
          complete(c, Clock::now());
        }
      }
    }
    return true;
  }

  // A connection with no message in flight must receive nothing.
  void check_idle(Connection& c) {
    char byte;
    const ssize_t n = recv(c.fd.get(), &byte, 1, MSG_DONTWAIT);
    if (n > 0) {
      throw std::runtime_error("echo load: connection " + std::to_string(c.id) +
                               " received bytes it did not send (after message " +
                               std::to_string(c.seq) + ")");
    }
    if (n == 0) {
      throw std::runtime_error("echo load: the server closed connection " + std::to_string(c.id));
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      throw std::runtime_error(sys_error("echo load: recv on connection " + std::to_string(c.id)));
    }
  }

  // After the last echo: a short wait, then no connection may have more.
  void check_nothing_extra() {
    epoll_event events[64];
    const int n = epoll_wait(epoll_.get(), events, 64, 20);
    for (int i = 0; i < n; ++i) check_idle(conns_[events[i].data.u32]);
  }

  const EchoLoadOptions o_;
  std::vector<Connection> conns_;
  Fd epoll_;
  Clock::time_point warm_end_;
  Clock::time_point end_;
  Clock::time_point last_progress_;
  std::vector<std::uint64_t> samples_;
  std::uint64_t sent_ = 0;
  std::uint64_t verified_ = 0;
  std::uint64_t in_flight_ = 0;
};

}  // namespace

std::uint64_t percentile(std::vector<std::uint64_t>& samples, double p) {
  if (!(p > 0 && p <= 100)) throw std::invalid_argument("percentile: p must be in (0, 100]");
  if (samples.empty()) return 0;
  const auto n = static_cast<double>(samples.size());
  const std::size_t rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p / 100 * n)));
  auto it = samples.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(samples.begin(), it, samples.end());
  return *it;
}

EchoLoadResult run_echo_load(const EchoLoadOptions& options) {
  if (options.port == 0) throw std::invalid_argument("echo load: no port");
  if (options.connections == 0 || options.connections > 10'000) {
    throw std::invalid_argument("echo load: connections must be in [1, 10000]");
  }
  if (options.message_size < kIdBytes || options.message_size > (1u << 20)) {
    throw std::invalid_argument("echo load: message_size must be in [12, 1 MiB]");
  }
  if (options.duration <= std::chrono::nanoseconds(0) ||
      options.warmup < std::chrono::nanoseconds(0) ||
      options.stall_timeout <= std::chrono::nanoseconds(0)) {
    throw std::invalid_argument("echo load: durations must be positive (warm-up: not negative)");
  }
  LoadGenerator g(options);
  return g.run();
}

}  // namespace weft::bench
