// Signals: add_signal_handler / remove_signal_handler and wait_signal,
// dispositions installed and restored, and cancellation.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Watchdog;

bool has_default_disposition(int sig) {
  struct sigaction sa {};
  sigaction(sig, nullptr, &sa);
  return sa.sa_handler == SIG_DFL;
}

Coro<void> signal_after(int sig, Duration d) {
  co_await sleep(d);
  ::kill(::getpid(), sig);  // process-directed: any thread may take it
}

WEFT_CO_TEST(IoSignals, WaitSignal) {
  Watchdog wd(2s);
  auto sender = create_task(signal_after(SIGUSR1, 5ms));
  int sig = co_await wait_signal(SIGUSR2, SIGUSR1);
  EXPECT_EQ(sig, SIGUSR1);
  co_await sender;
  EXPECT_TRUE(has_default_disposition(SIGUSR1));  // restored
  EXPECT_TRUE(has_default_disposition(SIGUSR2));
}

WEFT_CO_TEST(IoSignals, SigtermDoesNotKillAWaiter) {
  Watchdog wd(2s);
  auto sender = create_task(signal_after(SIGTERM, 2ms));
  EXPECT_EQ(co_await wait_signal(SIGINT, SIGTERM), SIGTERM);
  co_await sender;
}

WEFT_CO_TEST(IoSignals, HandlerRunsOnTheRegisteringLoop) {
  Watchdog wd(2s);
  std::atomic<int> calls{0};
  Loop* loop = &get_running_loop();
  std::atomic<bool> right_loop{true};
  add_signal_handler(SIGUSR2, [&] {
    if (&get_running_loop() != loop) right_loop = false;
    calls.fetch_add(1);
  });
  EXPECT_FALSE(has_default_disposition(SIGUSR2));
  for (int i = 0; i < 3; ++i) {
    std::thread([] { ::kill(::getpid(), SIGUSR2); }).join();
    EXPECT_TRUE(co_await testing::wait_until([&] { return calls.load() == i + 1; }));
  }
  EXPECT_TRUE(right_loop.load());
  EXPECT_TRUE(remove_signal_handler(SIGUSR2));
  EXPECT_FALSE(remove_signal_handler(SIGUSR2));
  EXPECT_TRUE(has_default_disposition(SIGUSR2));
}

WEFT_CO_TEST(IoSignals, ReplacingAHandler) {
  Watchdog wd(2s);
  std::atomic<int> first{0}, second{0};
  add_signal_handler(SIGUSR1, [&] { first.fetch_add(1); });
  add_signal_handler(SIGUSR1, [&] { second.fetch_add(1); });
  ::kill(::getpid(), SIGUSR1);
  EXPECT_TRUE(co_await testing::wait_until([&] { return second.load() == 1; }));
  EXPECT_EQ(first.load(), 0);
  remove_signal_handler(SIGUSR1);
}

WEFT_CO_TEST(IoSignals, WaitSignalIsCancellable) {
  Watchdog wd(2s);
  auto t = create_task(wait_signal(SIGUSR1));
  co_await sleep(2ms);
  EXPECT_FALSE(has_default_disposition(SIGUSR1));
  t.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(t)).has_value());
  EXPECT_TRUE(has_default_disposition(SIGUSR1));
}

WEFT_CO_TEST(IoSignals, BadArguments) {
  EXPECT_THROW(add_signal_handler(SIGKILL, [] {}), std::invalid_argument);
  EXPECT_THROW(add_signal_handler(0, [] {}), std::invalid_argument);
  EXPECT_THROW(add_signal_handler(SIGUSR1, nullptr), std::invalid_argument);
  EXPECT_TRUE((co_await testing::raises<std::invalid_argument>(wait_signal(std::vector<int>{})))
                  .has_value());
  EXPECT_TRUE((co_await testing::raises<std::invalid_argument>(wait_signal(SIGSTOP)))
                  .has_value());
}

TEST(IoSignalsOutsideRuntime, HandlersEndWithTheirRuntime) {
  run([]() -> Coro<void> {
    add_signal_handler(SIGUSR1, [] {});
    co_return;
  }(), testing::test_options());
  EXPECT_TRUE(has_default_disposition(SIGUSR1));
  EXPECT_THROW(add_signal_handler(SIGUSR1, [] {}), RuntimeError);
}

}  // namespace
}  // namespace weft
