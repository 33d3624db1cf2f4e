// weft::to_thread: blocking calls on the runtime's oneTBB pool. Results,
// exceptions, the thread it runs on, context variables, cancellation (the
// awaiting task wakes at once; a std::stop_token parameter is signalled),
// many calls at once, the pool size option, and shutdown with a call still
// running.
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/mt_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"
#include "weft/sched/detail/offload_pool.h"
#include "weft/sched/detail/runtime_access.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using mt_testing::co_wait_until;
using mt_testing::kLongWait;
using mt_testing::ms_since;
using mt_testing::ThreadSet;
using testing::Counted;
using testing::CountedScope;
using testing::ErrorLog;
using testing::raises;
using testing::test_options;

RuntimeOptions pool_options(int to_thread_threads, std::uint32_t workers = 2) {
  RuntimeOptions o = test_options(workers);
  o.to_thread_threads = to_thread_threads;
  return o;
}

// Waits (on a pool thread) until `n` callers arrived, or `timeout`; true if
// all arrived. A barrier that fails instead of hanging, and remembers how
// many callers were ever inside it at once.
class TimedBarrier {
 public:
  explicit TimedBarrier(int n) : n_(n) {}
  bool arrive_and_wait(std::chrono::milliseconds timeout) {
    arrived_.fetch_add(1);
    int now = inside_.fetch_add(1) + 1;
    int prev = max_inside_.load();
    while (now > prev && !max_inside_.compare_exchange_weak(prev, now)) {
    }
    bool ok = mt_testing::wait_until([&] { return arrived_.load() >= n_; }, timeout);
    inside_.fetch_sub(1);
    return ok;
  }
  int max_inside() const { return max_inside_.load(); }

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<int> inside_{0};
  std::atomic<int> max_inside_{0};
};

// Waits until the runtime's pool has no call left running (so that a test
// does not end with one, which the runtime would report).
Coro<bool> pool_idle() {
  Runtime& rt = get_running_loop().runtime();
  co_return co_await co_wait_until([&rt] { return detail::RuntimeAccess::offload_pool(rt).running() == 0; });
}

// --- results -------------------------------------------------------------------

WEFT_CO_TEST(ToThread, ReturnsValue) {
  int v = co_await to_thread([](int a, int b) { return a * b; }, 6, 7);
  EXPECT_EQ(v, 42);
  std::string s = co_await to_thread([](std::string a) { return a + "!"; }, std::string("hi"));
  EXPECT_EQ(s, "hi!");
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

WEFT_CO_TEST(ToThread, VoidCall) {
  std::atomic<int> n{0};
  co_await to_thread([&n] { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 1) << "the call finished before the await returned";
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

WEFT_CO_TEST(ToThread, MoveOnlyResult) {
  std::unique_ptr<int> p = co_await to_thread([] { return std::make_unique<int>(5); });
  WEFT_CO_ASSERT_TRUE(p != nullptr);
  EXPECT_EQ(*p, 5);
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

WEFT_CO_TEST(ToThread, ResultIsNeitherLeakedNorDestroyedTwice) {
  CountedScope scope;
  {
    Counted c = co_await to_thread([] { return Counted(3); });
    EXPECT_EQ(c.value, 3);
  }
  // The pool thread drops its copy of the call (and of the result's future)
  // a moment after the await returned.
  EXPECT_TRUE(co_await co_wait_until([] { return Counted::alive() == 0; }));
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

// to_thread's contract: "The arguments are moved into the coroutine and then
// into the call". A call taking a move-only argument by value must therefore
// be accepted.
template <typename F, typename... A>
constexpr bool kCanCallToThread = requires(F f, A... a) { to_thread(std::move(f), std::move(a)...); };

struct TakesUniquePtr {
  int operator()(std::unique_ptr<int> p) const { return *p + 1; }
};

// A template, so that the call is only compiled where to_thread accepts it.
template <typename F>
Coro<int> call_with_unique_ptr() {
  if constexpr (kCanCallToThread<F, std::unique_ptr<int>>) {
    co_return co_await to_thread(F{}, std::make_unique<int>(41));
  } else {
    co_return -1;
  }
}

WEFT_CO_TEST(ToThread, MoveOnlyArgumentIsMovedIntoTheCall) {
  constexpr bool kAccepted = kCanCallToThread<TakesUniquePtr, std::unique_ptr<int>>;
  EXPECT_TRUE(kAccepted)
      << "to_thread(f, std::unique_ptr<int>) does not compile when f takes the pointer by value: "
         "the arguments are passed to the call as lvalues instead of being moved into it";
  if (kAccepted) {
    EXPECT_EQ(co_await call_with_unique_ptr<TakesUniquePtr>(), 42);
  }
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

WEFT_CO_TEST(ToThread, ByValueArgumentIsNotCopied) {
  CountedScope scope;
  int v = co_await to_thread([](Counted c) { return c.value; }, Counted(9));
  EXPECT_EQ(v, 9);
  EXPECT_EQ(Counted::copy_constructions.load(), 0)
      << "the argument was copied into the call instead of moved";
  EXPECT_TRUE(co_await co_wait_until([] { return Counted::alive() == 0; }));
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

// --- exceptions ------------------------------------------------------------------

WEFT_CO_TEST(ToThread, RethrowsExceptions) {
  auto e = co_await raises<std::runtime_error>(
      to_thread([]() -> int { throw std::runtime_error("disk on fire"); }));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_STREQ(e->what(), "disk on fire");

  auto v = co_await raises<std::invalid_argument>(
      to_thread([] { throw std::invalid_argument("void call failed"); }));
  WEFT_CO_ASSERT_TRUE(v.has_value());
  EXPECT_STREQ(v->what(), "void call failed");

  // The loop keeps going after a failed call.
  EXPECT_EQ(co_await to_thread([] { return 1; }), 1);
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

// --- where it runs -----------------------------------------------------------------

WEFT_CO_TEST(ToThread, RunsOnAThreadThatIsNotALoop) {
  Runtime& rt = get_running_loop().runtime();
  // The worker threads, from tasks pinned to each loop.
  ThreadSet workers;
  for (std::uint32_t i = 0; i < rt.num_workers(); ++i) {
    co_await rt.loop(i).create_pinned_task([](ThreadSet* w) -> Coro<void> {
      w->add();
      co_return;
    }(&workers));
  }
  WEFT_CO_ASSERT_EQ(workers.size(), rt.num_workers());
  const std::thread::id here = std::this_thread::get_id();
  struct Seen {
    std::thread::id id;
    bool had_loop;
  };
  Seen seen = co_await to_thread([] {
    return Seen{std::this_thread::get_id(), detail::current_loop() != nullptr};
  });
  EXPECT_NE(seen.id, here);
  EXPECT_FALSE(workers.contains(seen.id)) << "the call ran on a worker thread";
  EXPECT_FALSE(seen.had_loop) << "a pool thread must not look like a loop";
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

WEFT_CO_TEST(ToThread, ResumesAPinnedTaskOnItsLoop) {
  Runtime& rt = get_running_loop().runtime();
  auto body = []() -> Coro<std::vector<std::uint32_t>> {
    std::vector<std::uint32_t> seen;
    for (int i = 0; i < 10; ++i) {
      seen.push_back(get_running_loop().index());
      co_await to_thread([] { std::this_thread::sleep_for(100us); });
    }
    seen.push_back(get_running_loop().index());
    co_return seen;
  };
  std::vector<std::uint32_t> seen = co_await rt.loop(1).create_pinned_task(body());
  for (std::uint32_t i : seen) EXPECT_EQ(i, 1u);
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

// --- context variables ----------------------------------------------------------------

WEFT_CO_TEST(ToThread, ContextVariablesAreVisibleInTheCall) {
  static ContextVar<int> var("request_id");
  static ContextVar<std::string> name("user", "nobody");
  auto token = var.set(5);
  auto name_token = name.set("ada");
  int seen = co_await to_thread([] { return var.get(); });
  EXPECT_EQ(seen, 5);
  std::string seen_name = co_await to_thread([] { return name.get(); });
  EXPECT_EQ(seen_name, "ada");

  // The value at the time of the call, even if it changes later.
  auto token2 = var.set(6);
  EXPECT_EQ(co_await to_thread([] { return var.get(); }), 6);
  var.reset(token2);
  var.reset(token);
  name.reset(name_token);
  EXPECT_EQ(co_await to_thread([] { return var.get(-1); }), -1);
  EXPECT_EQ(co_await to_thread([] { return name.get(); }), "nobody");
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

WEFT_CO_TEST(ToThread, ContextSetInsideTheCallDoesNotLeak) {
  static ContextVar<int> var("v");
  auto token = var.set(1);
  co_await to_thread([] {
    auto t = var.set(99);  // never reset: must stay inside the call
    (void)t;
    EXPECT_EQ(var.get(), 99);
  });
  EXPECT_EQ(var.get(), 1) << "a set inside the call leaked back into the task";
  var.reset(token);

  // Nor does it stay on the pool threads: later calls see their caller's
  // context only. Many calls at once so that every pool thread is reused.
  std::vector<Task<int>> calls;
  for (int i = 0; i < 16; ++i) {
    calls.push_back(create_task([]() -> Coro<int> {
      co_return co_await to_thread([] {
        std::this_thread::sleep_for(1ms);
        return var.get(-1);
      });
    }()));
  }
  for (auto& c : calls) EXPECT_EQ(co_await c, -1) << "a pool thread kept a previous call's value";
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

// --- cancellation ------------------------------------------------------------------------

struct BlockedCall {
  absl::Notification entered;
  absl::Notification release;
  std::atomic<bool> finished{false};
  std::atomic<bool> task_saw_cancel{false};
};

// A call that blocks until released, through to_thread or (kJoined)
// to_thread_joined. The callable is a named variable, not a temporary in the
// co_await statement, which g++ 12 would destroy twice (docs/pitfalls.md).
// task_saw_cancel: the awaiter got CancelledError; joined, only once the call
// was over.
template <bool kJoined>
Coro<int> await_blocking_call(std::shared_ptr<BlockedCall> b) {
  auto call = [b] {
    b->entered.Notify();
    b->release.WaitForNotificationWithTimeout(absl::FromChrono(kLongWait));
    b->finished = true;
    return 1;
  };
  try {
    if constexpr (kJoined) {
      co_return co_await to_thread_joined(std::move(call));
    } else {
      co_return co_await to_thread(std::move(call));
    }
  } catch (const CancelledError&) {
    b->task_saw_cancel = kJoined ? b->finished.load() : true;
    throw;
  }
}

Coro<int> await_blocked_call(std::shared_ptr<BlockedCall> b) {
  return await_blocking_call<false>(std::move(b));
}

WEFT_CO_TEST(ToThread, CancellingTheAwaiterWakesItAtOnce) {
  auto b = std::make_shared<BlockedCall>();
  Task<int> t = create_task(await_blocked_call(b));
  WEFT_CO_ASSERT_TRUE(co_await co_wait_until([&] { return b->entered.HasBeenNotified(); }));
  auto t0 = mt_testing::Clock::now();
  EXPECT_TRUE(t.cancel("enough"));
  auto e = co_await raises<CancelledError>(t);
  const double waited = ms_since(t0);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "enough");
  EXPECT_TRUE(t.cancelled());
  EXPECT_TRUE(b->task_saw_cancel.load());
  EXPECT_FALSE(b->finished.load()) << "the call is still blocked";
  EXPECT_LT(waited, 1000.0) << "the cancelled task waited for the blocked call";
  b->release.Notify();
  EXPECT_TRUE(co_await co_wait_until([&] { return b->finished.load(); }));
  EXPECT_TRUE(co_await pool_idle());
}


struct CaptureSync {
  absl::Notification entered;
  absl::Notification release;
  std::atomic<bool> finished{false};
};


struct StoppableCall {
  absl::Notification entered;
  std::atomic<bool> saw_stop{false};
  std::atomic<bool> finished{false};
};

WEFT_CO_TEST(ToThread, StopTokenIsSignalledOnCancel) {
  auto s = std::make_shared<StoppableCall>();
  Task<int> t = create_task([](std::shared_ptr<StoppableCall> s) -> Coro<int> {
    co_return co_await to_thread(
        [](std::stop_token st, std::shared_ptr<StoppableCall> s) {
          s->entered.Notify();
          auto deadline = mt_testing::Clock::now() + kLongWait;
          while (!st.stop_requested() && mt_testing::Clock::now() < deadline) {
            std::this_thread::sleep_for(200us);
          }
          s->saw_stop = st.stop_requested();
          s->finished = true;
          return 0;
        },
        s);
  }(s));
  WEFT_CO_ASSERT_TRUE(co_await co_wait_until([&] { return s->entered.HasBeenNotified(); }));
  EXPECT_FALSE(s->finished.load());
  t.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t)).has_value());
  EXPECT_TRUE(co_await co_wait_until([&] { return s->finished.load(); }));
  EXPECT_TRUE(s->saw_stop.load()) << "the call's stop_token was not signalled by the cancel";
  EXPECT_TRUE(co_await pool_idle());
}

// --- to_thread_joined ----------------------------------------------------------------------

Coro<int> await_joined_call(std::shared_ptr<BlockedCall> b) {
  return await_blocking_call<true>(std::move(b));
}

WEFT_CO_TEST(ToThread, JoinedCallReturnsValueAndPassesArguments) {
  auto add = [](std::string a, std::unique_ptr<int> b) { return a + std::to_string(*b); };
  EXPECT_EQ(co_await to_thread_joined(add, std::string("n="), std::make_unique<int>(7)), "n=7");
  auto fails = [] { throw std::out_of_range("joined"); };
  EXPECT_TRUE((co_await raises<std::out_of_range>(to_thread_joined(fails))).has_value());
  EXPECT_TRUE(co_await pool_idle());
}

WEFT_CO_TEST(ToThread, CancelledJoinedCallerWaitsUntilTheCallReturned) {
  auto b = std::make_shared<BlockedCall>();
  Task<int> t = create_task(await_joined_call(b));
  WEFT_CO_ASSERT_TRUE(co_await co_wait_until([&] { return b->entered.HasBeenNotified(); }));
  EXPECT_TRUE(t.cancel("enough"));
  // The cancellation is held while the call runs.
  co_await sleep(20ms);
  EXPECT_FALSE(t.done()) << "the cancelled caller did not wait for the running call";
  b->release.Notify();
  auto e = co_await raises<CancelledError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message(), "enough");
  EXPECT_TRUE(b->task_saw_cancel.load()) << "CancelledError reached the caller before the call ended";
  EXPECT_TRUE(co_await pool_idle());
}

WEFT_CO_TEST(ToThread, JoinedCallWithAStopTokenIsAskedToStop) {
  auto s = std::make_shared<StoppableCall>();
  auto call = [s](std::stop_token st) {
    s->entered.Notify();
    auto deadline = mt_testing::Clock::now() + kLongWait;
    while (!st.stop_requested() && mt_testing::Clock::now() < deadline) {
      std::this_thread::sleep_for(200us);
    }
    s->saw_stop = st.stop_requested();
    s->finished = true;
  };
  Task<void> t = create_task(to_thread_joined(std::move(call)));
  WEFT_CO_ASSERT_TRUE(co_await co_wait_until([&] { return s->entered.HasBeenNotified(); }));
  t.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t)).has_value());
  EXPECT_TRUE(s->finished.load()) << "the caller's CancelledError came before the call returned";
  EXPECT_TRUE(s->saw_stop.load());
}

// A joined call that fails after its caller was cancelled: the caller ends
// cancelled (CancelledError, once the call is over), as a plain to_thread's
// does, and the call's exception goes with its discarded result: it is not
// raised in the caller and not reported as never retrieved.
Coro<void> cancel_a_joined_call_that_then_throws(std::shared_ptr<BlockedCall> b) {
  auto call = [b]() -> int {
    b->entered.Notify();
    b->release.WaitForNotificationWithTimeout(absl::FromChrono(kLongWait));
    b->finished = true;
    throw std::runtime_error("failed after the caller left");
  };
  Task<int> t = create_task(to_thread_joined(std::move(call)));
  EXPECT_TRUE(co_await co_wait_until([&] { return b->entered.HasBeenNotified(); }));
  t.cancel("enough");
  co_await sleep(5ms);
  b->release.Notify();
  auto e = co_await raises<CancelledError>(t);
  EXPECT_TRUE(e.has_value()) << "the call's exception replaced the caller's cancellation";
  if (e) {
    EXPECT_EQ(e->message(), "enough");
  }
  EXPECT_TRUE(b->finished.load()) << "the caller's CancelledError came before the call returned";
  EXPECT_TRUE(co_await pool_idle());
}

TEST(ToThread, JoinedCallFailingAfterItsCallerWasCancelledEndsCancelled) {
  ErrorLog log;
  run(cancel_a_joined_call_that_then_throws(std::make_shared<BlockedCall>()),
      testing::logged_options(log));
  EXPECT_EQ(log.size(), 0u) << log.dump();
}

// One pool thread, held by a first call: a second joined call cancelled while
// it waits for the pool never runs, and its caller does not wait for it.
TEST(ToThread, JoinedCallCancelledBeforeItStartsNeverRuns) {
  run(
      []() -> Coro<void> {
        auto first = std::make_shared<BlockedCall>();
        Task<int> holder = create_task(await_joined_call(first));
        EXPECT_TRUE(co_await co_wait_until([&] { return first->entered.HasBeenNotified(); }));
        auto ran = std::make_shared<std::atomic<bool>>(false);
        auto second = [ran] { ran->store(true); };
        Task<void> waiting = create_task(to_thread_joined(std::move(second)));
        co_await sleep(5ms);
        waiting.cancel();
        EXPECT_TRUE((co_await raises<CancelledError>(waiting)).has_value());
        EXPECT_FALSE(first->finished.load()) << "the cancelled caller waited for the pool";
        first->release.Notify();
        EXPECT_EQ(co_await holder, 1);
        EXPECT_TRUE(co_await pool_idle());
        EXPECT_FALSE(ran->load()) << "a joined call ran after its caller was cancelled";
      }(),
      pool_options(1));
}

WEFT_CO_TEST(ToThread, StopTokenNotSignalledWithoutCancel) {
  bool requested = co_await to_thread([](std::stop_token st) {
    std::this_thread::sleep_for(1ms);
    return st.stop_requested();
  });
  EXPECT_FALSE(requested);
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

// --- many calls, pool size ------------------------------------------------------------------

WEFT_CO_TEST(ToThread, ManyConcurrentCallsAllComplete) {
  constexpr int kCalls = 64;
  std::vector<Task<int>> tasks;
  for (int i = 0; i < kCalls; ++i) {
    tasks.push_back(create_task([](int i) -> Coro<int> {
      co_return co_await to_thread([i] {
        std::this_thread::sleep_for(1ms);
        return i;
      });
    }(i)));
  }
  long sum = 0;
  for (auto& t : tasks) sum += co_await t;
  EXPECT_EQ(sum, kCalls * (kCalls - 1) / 2);
  // Let the pool finish its clean-up before main returns (see
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await pool_idle());
}

// `n` calls that each wait for all `n` to have started: they can only all
// finish if the pool runs n calls at once.
Coro<void> expect_concurrency(int n, std::chrono::milliseconds timeout = 3s) {
  auto barrier = std::make_shared<TimedBarrier>(n);
  std::vector<Task<bool>> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(create_task([](std::shared_ptr<TimedBarrier> b,
                                   std::chrono::milliseconds timeout) -> Coro<bool> {
      auto call = [b, timeout] { return b->arrive_and_wait(timeout); };
      co_return co_await to_thread(std::move(call));
    }(barrier, timeout)));
  }
  int ok = 0;
  for (auto& t : tasks) ok += (co_await t) ? 1 : 0;
  EXPECT_EQ(ok, n) << "at most " << barrier->max_inside() << " of " << n
                   << " calls ran at once: the pool is smaller than configured";
  EXPECT_TRUE(co_await pool_idle());
}

WEFT_CO_TEST_WITH(ToThread, PoolOfEightRunsEightCallsAtOnce, pool_options(8)) {
  // 8 > the 2 cores of the test machine: proves the pool is not capped at the
  // core count.
  auto t0 = mt_testing::Clock::now();
  co_await expect_concurrency(8);
  EXPECT_LT(ms_since(t0), 4000.0);
}

WEFT_CO_TEST_WITH(ToThread, DefaultPoolIsCoresPlusFour, pool_options(0)) {
  // asyncio's default executor size: min(32, cores + 4).
  const int n = static_cast<int>(std::min(32u, std::max(1u, std::thread::hardware_concurrency()) + 4));
  co_await expect_concurrency(n);
}

WEFT_CO_TEST_WITH(ToThread, PoolSizeBoundsConcurrency, pool_options(2)) {
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 8; ++i) {
    tasks.push_back(create_task([](std::atomic<int>* running, std::atomic<int>* max) -> Coro<void> {
      co_await to_thread([running, max] {
        int now = running->fetch_add(1) + 1;
        int prev = max->load();
        while (now > prev && !max->compare_exchange_weak(prev, now)) {
        }
        std::this_thread::sleep_for(5ms);
        running->fetch_sub(1);
      });
    }(&running, &max_running)));
  }
  for (auto& t : tasks) co_await t;
  EXPECT_LE(max_running.load(), 2) << "more calls ran at once than to_thread_threads";
  EXPECT_GE(max_running.load(), 1);
}

// Two runtimes in one process, each with its own pool: the size of one must
// not limit the other.
TEST(ToThread, PoolSizeIsPerRuntime) {
  mt_testing::RuntimeThread small(pool_options(2));
  // Make the small runtime's pool exist.
  auto use_pool = []() -> Coro<int> { co_return co_await to_thread([] { return 1; }); };
  ASSERT_EQ(run_coroutine_threadsafe(use_pool(), small.runtime()).result(kLongWait), 1);
  run(expect_concurrency(8, 1s), pool_options(8));
  small.stop();
}

// --- shutdown -------------------------------------------------------------------------------

Coro<void> leave_a_call_running(std::shared_ptr<BlockedCall> b) {
  create_task(await_blocked_call(b));
  EXPECT_TRUE(co_await co_wait_until([&] { return b->entered.HasBeenNotified(); }));
  // main returns with the call still blocked
}

TEST(ToThread, ShutdownWithACallRunningDoesNotHangAndIsReported) {
  auto b = std::make_shared<BlockedCall>();
  ErrorLog log;
  auto t0 = mt_testing::Clock::now();
  run(leave_a_call_running(b), testing::logged_options(log));
  EXPECT_LT(ms_since(t0), 2000.0) << "run() waited for the blocked call";
  EXPECT_FALSE(b->finished.load());
  EXPECT_TRUE(b->task_saw_cancel.load()) << "the awaiting task was cancelled at shutdown";
  EXPECT_EQ(log.count({"to_thread", "still running"}), 1) << log.dump();
  EXPECT_EQ(log.size(), 1u) << log.dump();
  // The call ends after its runtime is gone; it must touch nothing of it.
  b->release.Notify();
  EXPECT_TRUE(mt_testing::wait_until([&] { return b->finished.load(); }));
  std::this_thread::sleep_for(5ms);  // let the pool thread finish its job
}

// One pool thread, held by a call that outlives the runtime; joined and
// plain calls queued behind it, whose callers were cancelled, will never run.
Coro<void> queue_calls_behind_a_running_one(std::shared_ptr<BlockedCall> b,
                                            std::shared_ptr<std::atomic<int>> ran) {
  create_task(await_blocked_call(b));
  EXPECT_TRUE(co_await co_wait_until([&] { return b->entered.HasBeenNotified(); }));
  auto call = [ran] { ran->fetch_add(1); };
  std::vector<Task<void>> queued;
  for (int i = 0; i < 3; ++i) {
    queued.push_back(create_task(to_thread_joined(call)));
    queued.push_back(create_task(to_thread(call)));
  }
  co_await sleep(5ms);  // each has submitted its call
  for (Task<void>& t : queued) t.cancel();
  for (Task<void>& t : queued) EXPECT_TRUE((co_await raises<CancelledError>(t)).has_value());
}

// The shutdown report counts the calls that run, not the ones abandoned
// before they began (a cancelled pipeline left its queued compressions in
// the count and reported them as "still running").
TEST(ToThread, CallsCancelledBeforeTheyBeganAreNotReportedAsRunning) {
  auto b = std::make_shared<BlockedCall>();
  auto ran = std::make_shared<std::atomic<int>>(0);
  ErrorLog log;
  RuntimeOptions o = testing::logged_options(log);
  o.to_thread_threads = 1;
  run(queue_calls_behind_a_running_one(b, ran), std::move(o));
  EXPECT_EQ(log.count({"1 to_thread call(s) still running"}), 1) << log.dump();
  EXPECT_EQ(log.size(), 1u) << log.dump();
  b->release.Notify();
  EXPECT_TRUE(mt_testing::wait_until([&] { return b->finished.load(); }));
  std::this_thread::sleep_for(20ms);  // the pool thread passes over the abandoned calls
  EXPECT_EQ(ran->load(), 0) << "a call ran after its caller was cancelled";
}

// A result whose destruction (of the moved-from temporary, on the pool
// thread, after the value was handed to the awaiting task) takes a while.
// Only the first moved-from object destroyed on a thread that is not a loop
// (the temporary the call returned, on the pool thread) is slow.
struct SlowToDestroy {
  static inline std::atomic<bool> slow{false};
  SlowToDestroy() = default;
  SlowToDestroy(SlowToDestroy&& o) noexcept : moved_from_(false) { o.moved_from_ = true; }
  ~SlowToDestroy() {
    if (moved_from_ && detail::current_loop() == nullptr && slow.exchange(false)) {
      std::this_thread::sleep_for(100ms);
    }
  }
  bool moved_from_ = false;
};

TEST(ToThread, CompletedCallIsNotReportedAsStillRunning) {
  // main's last call has delivered its result when main returns; the pool
  // thread is only cleaning up. That call is not "still running" and its
  // caller was not cancelled: nothing must be reported.
  ErrorLog log;
  SlowToDestroy::slow = true;
  run([]() -> Coro<void> {
    SlowToDestroy v = co_await to_thread([] { return SlowToDestroy(); });
    (void)v;
  }(), testing::logged_options(log));
  SlowToDestroy::slow = false;
  EXPECT_EQ(log.size(), 0u) << "a call whose result was already delivered was reported:\n"
                            << log.dump();
  std::this_thread::sleep_for(150ms);  // the pool thread finishes its clean-up
}

TEST(ToThread, ShutdownWithoutRunningCallsReportsNothing) {
  ErrorLog log;
  run([]() -> Coro<void> {
    EXPECT_EQ(co_await to_thread([] { return 2; }), 2);
    EXPECT_TRUE(co_await pool_idle());
  }(), testing::logged_options(log));
  EXPECT_EQ(log.size(), 0u) << log.dump();
}

}  // namespace
}  // namespace weft
