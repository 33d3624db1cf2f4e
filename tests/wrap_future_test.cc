// wrap_future (sched/wrap_future.h), asyncio.wrap_future: a task awaits a
// ConcurrentFuture, std::future or std::shared_future without blocking its
// loop; cancelling the awaiting task cancels a ConcurrentFuture's source
// and detaches from a std::future.
#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "tests/testing.h"

namespace weft {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using testing::raises;

// The loop keeps running while a std::future is waited for: a task that
// counts yields makes progress meanwhile.
WEFT_CO_TEST_WITH(WrapFuture, StdFutureDoesNotBlockTheLoop, testing::test_options(1)) {
  std::promise<int> p;
  Future<int> wrapped = wrap_future(p.get_future());
  std::atomic<int> ticks{0};
  Task<void> ticker = create_task([](std::atomic<int>* ticks) -> Coro<void> {
    for (int i = 0; i < 5; ++i) {
      ++*ticks;
      co_await yield_now();
    }
  }(&ticks));
  // The value comes only once the ticker ran (or after 5 s, if the loop
  // were blocked by the wait).
  int ticks_at_set = -1;
  std::thread producer([&p, &ticks, &ticks_at_set] {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (ticks.load() < 5 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    ticks_at_set = ticks.load();
    p.set_value(42);
  });
  EXPECT_EQ(co_await wrapped, 42);
  producer.join();
  co_await ticker;
  EXPECT_EQ(ticks_at_set, 5) << "the single loop ran other tasks while waiting";
}

WEFT_CO_TEST(WrapFuture, ExceptionsAndVoidAndSharedFutures) {
  std::promise<void> v;
  v.set_value();
  co_await wrap_future(v.get_future());
  std::promise<int> failing;
  failing.set_exception(std::make_exception_ptr(std::runtime_error("source failed")));
  auto e = co_await raises<std::runtime_error>(wrap_future(failing.get_future()));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_STREQ(e->what(), "source failed");
  std::promise<std::string> s;
  std::shared_future<std::string> shared = s.get_future().share();
  Future<std::string> a = wrap_future(shared);
  Future<std::string> b = wrap_future(shared);
  s.set_value("both");
  EXPECT_EQ(co_await a, "both");
  EXPECT_EQ(co_await b, "both");
  EXPECT_THROW((void)wrap_future(std::future<int>()), std::invalid_argument);
}

// Cancelling the awaiting task detaches from a std::future: the task ends
// at once, and the pool thread stops waiting (the runtime's shutdown would
// otherwise report an abandoned call).
WEFT_CO_TEST(WrapFuture, CancellingDetachesFromAStdFuture) {
  std::promise<int> never;
  Task<int> waiter = create_task([](std::future<int> f) -> Coro<int> {
    co_return co_await wrap_future(std::move(f));
  }(never.get_future()));
  co_await sleep(milliseconds(5));
  waiter.cancel("give up");
  auto e = co_await raises<CancelledError>(waiter);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "give up");
  co_await sleep(milliseconds(50));  // the pool thread notices within kDetachPoll
}

// A ConcurrentFuture of another runtime: completed through its callback.
TEST(WrapFuture, ConcurrentFutureOfAnotherRuntime) {
  Runtime producer(testing::test_options(1));
  std::promise<ConcurrentFuture<int>> handed;
  std::atomic<bool> stop{false};
  std::thread producer_thread([&] {
    producer.run([](std::promise<ConcurrentFuture<int>>* handed, Runtime* self,
                    std::atomic<bool>* stop) -> Coro<void> {
      handed->set_value(run_coroutine_threadsafe(
          []() -> Coro<int> {
            co_await sleep(milliseconds(10));
            co_return 9;
          }(),
          *self));
      while (!stop->load()) co_await sleep(milliseconds(1));
    }(&handed, &producer, &stop));
  });
  ConcurrentFuture<int> cf = handed.get_future().get();
  int v = run([](ConcurrentFuture<int> cf) -> Coro<int> { co_return co_await wrap_future(cf); }(cf),
              testing::test_options(1));
  EXPECT_EQ(v, 9);
  stop.store(true);
  producer_thread.join();
}

// Cancelling the task that awaits a wrapped ConcurrentFuture cancels the
// source, and so the task behind it.
WEFT_CO_TEST(WrapFuture, CancellingCancelsAConcurrentFutureSource) {
  Runtime& rt = get_running_loop().runtime();
  std::atomic<bool> source_cancelled{false};
  ConcurrentFuture<int> cf = run_coroutine_threadsafe(
      [](std::atomic<bool>* cancelled) -> Coro<int> {
        try {
          co_await sleep(hours(1));
        } catch (const CancelledError&) {
          cancelled->store(true);
          throw;
        }
        co_return 1;
      }(&source_cancelled),
      rt);
  Task<int> waiter = create_task([](ConcurrentFuture<int> cf) -> Coro<int> {
    co_return co_await wrap_future(cf);
  }(cf));
  co_await sleep(milliseconds(2));
  waiter.cancel("stop");
  EXPECT_TRUE((co_await raises<CancelledError>(waiter)).has_value());
  EXPECT_TRUE(cf.cancelled());
  EXPECT_TRUE(co_await testing::yield_until([&] { return source_cancelled.load(); }));
}

}  // namespace
}  // namespace weft
