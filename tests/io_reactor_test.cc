// The reactor's readiness waits on raw fds: wake-ups, level semantics,
// timeouts, cancellation (from tasks and from plain threads), concurrent
// waits on one fd, fds that epoll cannot watch, and a stress run with tasks
// moving between workers.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Pipe;
using testing::Watchdog;

Coro<void> write_after(int fd, Duration d) {
  co_await sleep(d);
  EXPECT_EQ(::write(fd, "x", 1), 1);
}

WEFT_CO_TEST(IoReactor, ReadableWakesWhenDataArrives) {
  Watchdog wd(2s);
  Pipe p;
  auto writer = create_task(write_after(p.w, 5ms));
  co_await wait_readable(p.r);
  char c;
  EXPECT_EQ(::read(p.r, &c, 1), 1);
  co_await writer;
}

WEFT_CO_TEST(IoReactor, AlreadyReadyCompletesAtOnce) {
  Watchdog wd(2s);
  Pipe p;
  WEFT_CO_ASSERT_EQ(::write(p.w, "x", 1), 1);
  // Level semantics: data that is already there counts, every time.
  co_await wait_readable(p.r);
  co_await wait_readable(p.r);
  co_await wait_writable(p.w);
}

WEFT_CO_TEST(IoReactor, HangupCountsAsReadable) {
  Watchdog wd(2s);
  Pipe p;
  p.close_write();
  co_await wait_readable(p.r);
  char c;
  EXPECT_EQ(::read(p.r, &c, 1), 0);  // EOF
}

WEFT_CO_TEST(IoReactor, TimeoutRaisesTimeoutError) {
  Watchdog wd(2s);
  Pipe p;
  auto t0 = std::chrono::steady_clock::now();
  auto e = co_await testing::raises<TimeoutError>(wait_readable(p.r, 20ms));
  EXPECT_TRUE(e.has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  // The registration is gone: the same fd can be waited on again.
  WEFT_CO_ASSERT_EQ(::write(p.w, "x", 1), 1);
  co_await wait_readable(p.r, 1s);
}

WEFT_CO_TEST(IoReactor, NegativeTimeoutIsRejected) {
  Pipe p;
  EXPECT_THROW((void)wait_readable(p.r, -1ms), std::invalid_argument);
  co_return;
}

Coro<void> wait_then_flag(int fd, std::atomic<int>* state) {
  state->store(1);
  try {
    co_await wait_readable(fd);
    state->store(2);
  } catch (const CancelledError&) {
    state->store(3);
    throw;
  }
}

WEFT_CO_TEST(IoReactor, CancelWakesWithCancelledError) {
  Watchdog wd(2s);
  Pipe p;
  std::atomic<int> state{0};
  auto t = create_task(wait_then_flag(p.r, &state));
  EXPECT_TRUE(co_await testing::yield_until([&] { return state.load() == 1; }));
  co_await sleep(2ms);  // let it suspend in the wait
  t.cancel("stop");
  auto e = co_await testing::raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "stop");
  EXPECT_EQ(state.load(), 3);
  // Deregistered: writing now wakes a new wait normally.
  WEFT_CO_ASSERT_EQ(::write(p.w, "x", 1), 1);
  co_await wait_readable(p.r, 1s);
}

WEFT_CO_TEST(IoReactor, CancelBeforeTheWaitStarts) {
  Watchdog wd(2s);
  Pipe p;
  std::atomic<int> state{0};
  auto t = create_task(wait_then_flag(p.r, &state));
  t.cancel();  // delivered when it first suspends (here: never starts)
  EXPECT_TRUE((co_await testing::raises<CancelledError>(t)).has_value());
}

WEFT_CO_TEST(IoReactor, CancelFromAPlainThread) {
  Watchdog wd(2s);
  const int n = testing::scaled(50, 5);
  for (int i = 0; i < n; ++i) {
    Pipe p;
    std::atomic<int> state{0};
    auto t = create_task(wait_then_flag(p.r, &state));
    EXPECT_TRUE(co_await testing::yield_until([&] { return state.load() == 1; }));
    // Vary the moment: sometimes before the wait registers, usually during it.
    if (i % 2 == 0) co_await sleep(1ms);
    std::thread th([t] { t.cancel(); });
    auto e = co_await testing::raises<CancelledError>(t);
    th.join();
    EXPECT_TRUE(e.has_value());
    // Whatever the interleaving, the fd is free for another wait now.
    WEFT_CO_ASSERT_EQ(::write(p.w, "x", 1), 1);
    co_await wait_readable(p.r, 1s);
  }
}

WEFT_CO_TEST(IoReactor, CancelRacingReadiness) {
  Watchdog wd(3s);
  const int n = testing::scaled(200, 10);
  int completed = 0, cancelled = 0;
  for (int i = 0; i < n; ++i) {
    Pipe p;
    std::atomic<int> state{0};
    auto t = create_task(wait_then_flag(p.r, &state));
    EXPECT_TRUE(co_await testing::yield_until([&] { return state.load() == 1; }));
    std::thread th([&p, t] {
      ASSERT_EQ(::write(p.w, "x", 1), 1);
      t.cancel();
    });
    try {
      co_await t;
      ++completed;
    } catch (const CancelledError&) {
      ++cancelled;
    }
    th.join();
  }
  EXPECT_EQ(completed + cancelled, n);
}

Coro<void> read_one(int fd, std::atomic<int>* done) {
  co_await wait_readable(fd);
  char c;
  EXPECT_EQ(::read(fd, &c, 1), 1);
  done->fetch_add(1);
}
Coro<void> write_one(int fd, std::atomic<int>* done) {
  co_await wait_writable(fd);
  EXPECT_EQ(::write(fd, "y", 1), 1);
  done->fetch_add(1);
}

WEFT_CO_TEST(IoReactor, ReaderAndWriterOnOneFd) {
  Watchdog wd(2s);
  int sv[2];
  WEFT_CO_ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  // Fill sv[0]'s send buffer so that it is not writable.
  std::string chunk(65536, 'z');
  while (::send(sv[0], chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
  }
  std::atomic<int> done{0};
  // Two waits on sv[0] at once (maybe on one loop: the dup path).
  auto r = create_pinned_task(read_one(sv[0], &done));
  auto w = create_pinned_task(write_one(sv[0], &done));
  co_await sleep(5ms);
  EXPECT_EQ(done.load(), 0);
  WEFT_CO_ASSERT_EQ(::write(sv[1], "a", 1), 1);  // makes sv[0] readable
  co_await r;
  // Drain sv[1] so that sv[0] becomes writable.
  char buf[65536];
  while (::recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
  co_await w;
  EXPECT_EQ(done.load(), 2);
  ::close(sv[0]);
  ::close(sv[1]);
}

WEFT_CO_TEST(IoReactor, RegularFileIsAlwaysReady) {
  Watchdog wd(2s);
  char path[] = "/tmp/weft_io_reactor_XXXXXX";
  int fd = mkstemp(path);
  WEFT_CO_ASSERT_TRUE(fd >= 0);
  unlink(path);
  co_await wait_readable(fd);
  co_await wait_writable(fd);
  ::close(fd);
}

WEFT_CO_TEST(IoReactor, BadFdRaisesOSError) {
  auto e = co_await testing::raises<OSError>(wait_readable(-1));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), EBADF);
  EXPECT_NE(std::string(e->what()).find("epoll_ctl"), std::string::npos) << e->what();
}

WEFT_CO_TEST(IoReactor, FdNumberReuseAfterWait) {
  Watchdog wd(2s);
  // A finished wait leaves nothing behind: close the fd, get the same
  // number for a new pipe, and wait on it.
  int reused = -1;
  for (int i = 0; i < 3; ++i) {
    Pipe p;
    if (reused >= 0) {
      EXPECT_EQ(p.r, reused);
    }
    reused = p.r;
    WEFT_CO_ASSERT_EQ(::write(p.w, "x", 1), 1);
    co_await wait_readable(p.r, 1s);
  }
}

// Many pipes, each with a reader task hopping between workers (yields move
// it), writers on other tasks, and a third of the readers cancelled.
Coro<void> hop_and_read(int fd, int rounds, std::atomic<int>* reads) {
  for (int i = 0; i < rounds; ++i) {
    co_await yield_now();
    co_await wait_readable(fd);
    char c;
    if (::read(fd, &c, 1) == 1) reads->fetch_add(1);
  }
}
Coro<void> feed(int fd, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    co_await sleep(std::chrono::microseconds(100 * (i % 3)));
    EXPECT_EQ(::write(fd, "x", 1), 1);
  }
}

TEST(IoReactorStress, ManyWaitersAcrossWorkers) {
  const int kPipes = testing::scaled(64, 4);
  const int kRounds = testing::scaled(50, 5);
  std::atomic<int> reads{0};
  auto body = [&]() -> Coro<void> {
    Watchdog wd(5s);
    std::vector<std::unique_ptr<Pipe>> pipes;
    std::vector<Task<void>> readers, writers;
    for (int i = 0; i < kPipes; ++i) {
      pipes.push_back(std::make_unique<Pipe>());
      readers.push_back(create_task(hop_and_read(pipes.back()->r, kRounds, &reads)));
      writers.push_back(create_task(feed(pipes.back()->w, kRounds)));
    }
    co_await sleep(1ms);
    for (int i = 0; i < kPipes; i += 3) readers[i].cancel();
    for (auto& t : writers) co_await t;
    for (int i = 0; i < kPipes; ++i) {
      try {
        co_await readers[i];
      } catch (const CancelledError&) {
        EXPECT_EQ(i % 3, 0);
      }
    }
  };
  run(body(), testing::test_options(4));
  EXPECT_GT(reads.load(), 0);
  EXPECT_LE(reads.load(), kPipes * kRounds);
}

}  // namespace
}  // namespace weft
