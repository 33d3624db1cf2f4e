// The runtime's shared socket poller (sched/detail/io_driver.h): its token,
// the deferred release of handlers that an event batch may still name, and
// what it buys: sockets keep being served while a worker is stuck in a long
// step (after a quiet spell too), and sockets may be closed from threads
// outside the runtime.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/sched/detail/io_driver.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Watchdog;

// Counts its destruction.
class Handler final : public detail::RefCounted, public detail::IoHandler {
 public:
  explicit Handler(std::atomic<int>* destroyed) : destroyed_(destroyed) {}
  void on_io(std::uint32_t) noexcept override {}

 private:
  ~Handler() override { destroyed_->fetch_add(1); }
  std::atomic<int>* destroyed_;
};

struct SocketPair {
  int a = -1, b = -1;
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      throw std::runtime_error("socketpair");
    }
    a = fds[0];
    b = fds[1];
  }
  ~SocketPair() {
    ::close(a);
    ::close(b);
  }
};

TEST(IoDriver, ReleaseWhileHeldWaitsForTheHolder) {
  detail::IoDriver d;
  SocketPair sp;
  std::atomic<int> destroyed{0};
  auto* h = new Handler(&destroyed);  // its one reference is the registration's
  d.add(sp.a, EPOLLIN | EPOLLET, h);
  EXPECT_EQ(d.registrations(), 1);

  ASSERT_TRUE(d.try_acquire());
  EXPECT_FALSE(d.try_acquire()) << "the token has one holder";
  ASSERT_EQ(::write(sp.b, "x", 1), 1);
  epoll_event ev[4];
  ASSERT_EQ(d.poll(ev, 4, nullptr), 1);  // the holder's batch names h
  // epoll_event is packed (data.ptr sits at offset 4): read it by value, since EXPECT_EQ
  // binds a reference, and a misaligned one is undefined behaviour (UBSan stops on it).
  void* named = ev[0].data.ptr;
  EXPECT_EQ(named, static_cast<detail::IoHandler*>(h));

  d.remove(sp.a);
  d.release_handler(h);  // from "another thread" while the batch is held
  EXPECT_EQ(destroyed.load(), 0) << "freed under a batch that names it";
  EXPECT_EQ(d.registrations(), 1);
  d.release();
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(d.registrations(), 0);
}

TEST(IoDriver, ReleaseWithTheTokenFreeIsImmediate) {
  detail::IoDriver d;
  SocketPair sp;
  std::atomic<int> destroyed{0};
  auto* h = new Handler(&destroyed);
  d.add(sp.a, EPOLLIN | EPOLLET, h);
  d.remove(sp.a);
  d.release_handler(h);
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(d.registrations(), 0);
  EXPECT_TRUE(d.try_acquire()) << "release_handler gave the token back";
  d.release();
}

TEST(IoDriver, AddRejectsABadFd) {
  detail::IoDriver d;
  std::atomic<int> destroyed{0};
  auto* h = new Handler(&destroyed);
  EXPECT_THROW(d.add(-1, EPOLLIN, h), std::system_error);
  EXPECT_EQ(d.registrations(), 0);
  h->release();
  EXPECT_EQ(destroyed.load(), 1);
}

// Releases racing holders that poll, dispatch and release: every handler is
// freed exactly once, none while a batch names it (each registration is
// readable, so batches do name them; ASan sees a dispatch to a freed
// handler, TSan the hand-offs).
TEST(IoDriver, ConcurrentReleasesAndHolders) {
  detail::IoDriver d;
  const int kHandlers = testing::scaled(2000, 4);
  std::atomic<int> destroyed{0};
  std::atomic<bool> done{false};
  std::thread holder([&] {
    epoll_event ev[8];
    static constexpr timespec kZero{};
    while (!done.load()) {
      if (d.try_acquire()) {
        const int n = d.poll(ev, 8, &kZero);
        for (int i = 0; i < n; ++i) {
          static_cast<detail::IoHandler*>(ev[i].data.ptr)->on_io(ev[i].events);
        }
        d.release();
      }
    }
  });
  std::vector<std::thread> closers;
  for (int t = 0; t < 2; ++t) {
    closers.emplace_back([&] {
      for (int i = 0; i < kHandlers / 2; ++i) {
        SocketPair sp;
        EXPECT_EQ(::write(sp.b, "x", 1), 1);  // readable: the ADD reports it
        auto* h = new Handler(&destroyed);
        d.add(sp.a, EPOLLIN | EPOLLET, h);
        std::this_thread::yield();  // a chance for a batch to name it
        d.remove(sp.a);
        d.release_handler(h);
      }
    });
  }
  for (auto& t : closers) t.join();
  done.store(true);
  holder.join();
  // Whatever a holder had not dropped yet goes at the next release.
  if (d.try_acquire()) d.release();
  EXPECT_EQ(destroyed.load(), kHandlers);
  EXPECT_EQ(d.registrations(), 0);
}

// A task that occupies its worker (no await) until `release` is set, at most
// `limit`; returns whether it was released.
bool block_worker_until(const std::atomic<bool>& release, Duration limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!release.load()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::yield();
  }
  return true;
}

// One worker is stuck in a step that ends only when the echo completes (or
// after 10 s, failing): the other worker must poll the shared socket set.
WEFT_CO_TEST(IoDriver, SocketsAreServedWhileAWorkerIsStuck) {
  Watchdog wd(20s);
  Socket l = create_server(SocketAddress::ipv4("127.0.0.1", 0));
  Socket c = co_await create_connection("127.0.0.1", l.local_address().port());
  auto [s, peer] = co_await l.accept();
  Task<void> echo = create_task(testing::echo_until_eof(std::move(s)));
  co_await c.sendall("warm-up");  // every registration made, both directions used
  char buf[16];
  EXPECT_EQ(co_await c.recv_into(buf), 7u);

  std::atomic<bool> started{false};
  std::atomic<bool> echoed{false};
  Task<bool> stuck = create_task(
      [](std::atomic<bool>& s, const std::atomic<bool>& e) -> Coro<bool> {
        s.store(true);
        co_return block_worker_until(e, 10s);
      }(started, echoed));
  // Not a sleep: a timer fires on the loop that armed it, which may be the
  // one about to be stuck. A yielding task left there is stolen.
  while (!started.load()) co_await yield_now();
  co_await c.sendall("ping");
  std::string got;
  while (got.size() < 4) {
    const std::size_t n = co_await c.recv_into(buf);
    if (n == 0) {
      ADD_FAILURE() << "EOF before the echo";
      break;
    }
    got.append(buf, n);
  }
  echoed.store(true);
  EXPECT_EQ(got, "ping");
  EXPECT_TRUE(co_await stuck) << "the echo waited for the stuck worker";
  c.close();
  co_await echo;
}

// Blocking client helpers for a plain thread (outside the runtime).
int blocking_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const SocketAddress a = SocketAddress::ipv4("127.0.0.1", port);
  EXPECT_EQ(::connect(fd, a.data(), a.size()), 0);
  return fd;
}
bool blocking_echo(int fd, char c) {
  if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) return false;
  char back = 0;
  return ::recv(fd, &back, 1, 0) == 1 && back == c;
}

// After a quiet spell (every worker parked long enough for the watcher to
// pause its looks at the peers), IO wakes the driver's holder, whose handler
// then gets stuck: the holder's unpark must resume the paused watcher, which
// serves the next socket. Without that, the second echo waits for the
// stuck step (10 s, failing).
WEFT_CO_TEST(IoDriver, AWorkerStuckAfterAQuietSpellIsStillCovered) {
  Watchdog wd(30s);
  Socket l = create_server(SocketAddress::ipv4("127.0.0.1", 0));
  const std::uint16_t port = l.local_address().port();
  std::atomic<bool> echoed{false};
  std::atomic<bool> stuck_released{true};
  // Connection 0 blocks its worker on 'B' until the other echo is done.
  auto serve = [](Socket s, std::atomic<bool>& echoed, std::atomic<bool>& released) -> Coro<void> {
    char c;
    while (co_await s.recv_into(std::span<char>(&c, 1)) == 1) {
      if (c == 'B') released.store(block_worker_until(echoed, 10s));
      co_await s.sendall(std::string_view(&c, 1));
    }
  };
  Future<void> client_done;
  std::thread client([port, &echoed, client_done]() mutable {
    const int blocker = blocking_connect(port);
    const int other = blocking_connect(port);
    EXPECT_TRUE(blocking_echo(blocker, 'w'));  // warm-up: every registration made
    EXPECT_TRUE(blocking_echo(other, 'w'));
    std::this_thread::sleep_for(500ms);  // the quiet spell: 50 looks' worth
    const char b = 'B';
    EXPECT_EQ(::send(blocker, &b, 1, MSG_NOSIGNAL), 1);
    std::this_thread::sleep_for(50ms);  // its worker is stuck by now
    EXPECT_TRUE(blocking_echo(other, 'p'));
    echoed.store(true);
    char back;
    EXPECT_EQ(::recv(blocker, &back, 1, 0), 1);
    ::close(blocker);
    ::close(other);
    client_done.set_result();
  });
  std::vector<Task<void>> conns;
  for (int i = 0; i < 2; ++i) {
    auto [s, peer] = co_await l.accept();
    conns.push_back(create_task(serve(std::move(s), echoed, stuck_released)));
  }
  co_await client_done;
  client.join();
  for (auto& t : conns) co_await t;
  EXPECT_TRUE(stuck_released.load()) << "the echo waited for the stuck worker";
}

// A socket closed on a thread that is not a worker while the workers poll.
WEFT_CO_TEST(IoDriver, SocketClosedOutsideTheRuntime) {
  Watchdog wd(10s);
  const int kRounds = testing::scaled(50, 5);
  Socket l = create_server(SocketAddress::ipv4("127.0.0.1", 0));
  for (int i = 0; i < kRounds; ++i) {
    Socket c = co_await create_connection("127.0.0.1", l.local_address().port());
    auto [s, peer] = co_await l.accept();
    co_await c.sendall("x");  // registers c
    char b;
    EXPECT_EQ(co_await s.recv_into(std::span<char>(&b, 1)), 1u);  // registers s
    std::thread closer([&c] { c.close(); });
    closer.join();
    EXPECT_EQ(co_await s.recv_into(std::span<char>(&b, 1)), 0u) << "EOF after the close";
  }
}

}  // namespace
}  // namespace weft
