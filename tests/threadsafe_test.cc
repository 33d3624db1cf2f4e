// Plain threads driving a running runtime: run_coroutine_threadsafe and its
// ConcurrentFuture (result, result(timeout), exception, cancel, callbacks),
// submissions pinned to one Loop, call_soon_threadsafe, and the error paths:
// a runtime that is not running, blocking on a result from inside the
// runtime, and submissions racing the runtime's shutdown.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/mt_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"
#include "weft/sched/detail/offload_pool.h"
#include "weft/sched/detail/runtime_access.h"

// --- Fault injection -------------------------------------------------------
// The next operator new on a thread that armed `t_alloc_hook` first runs the
// hook (once). Used to stop the runtime at a precise point inside
// run_coroutine_threadsafe: after its "is the runtime running?" check, before
// the task is queued. Unarmed, these are plain malloc/free.
namespace {
thread_local std::function<void()>* t_alloc_hook = nullptr;
}  // namespace

void* operator new(std::size_t n) {
  if (std::function<void()>* hook = t_alloc_hook) {
    t_alloc_hook = nullptr;
    (*hook)();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace weft {
namespace {

using namespace std::chrono_literals;
using mt_testing::kLongWait;
using mt_testing::RuntimeThread;
using mt_testing::ThreadSet;
using mt_testing::wait_until;
using testing::scaled;
using testing::test_options;

Coro<int> answer() { co_return 42; }

Coro<int> add_after_yields(int a, int b) {
  co_await yield_now();
  co_await sleep(100us);
  co_await yield_now();
  co_return a + b;
}

Coro<int> await_gate(Future<int> gate) { co_return co_await gate; }

Coro<void> void_after_yield(std::atomic<int>* counter) {
  co_await yield_now();
  counter->fetch_add(1);
}

struct CustomError {
  int code;
};

Coro<int> throws_after_yield(std::string what) {
  co_await yield_now();
  throw std::runtime_error(what);
}

Coro<int> throws_custom() {
  co_await yield_now();
  throw CustomError{7};
}

// Observes the cancellation of a submitted task.
struct CancelProbe {
  absl::Notification started;
  absl::Notification saw_cancel;
  std::string message;  // written before saw_cancel.Notify()
  std::atomic<bool> finished_normally{false};
};

Coro<int> sleep_until_cancelled(CancelProbe* p) {
  p->started.Notify();
  try {
    co_await sleep(std::chrono::hours(1));
  } catch (const CancelledError& e) {
    p->message = e.message();
    p->saw_cancel.Notify();
    throw;
  }
  p->finished_normally = true;
  co_return 0;
}

// --- result() ----------------------------------------------------------------

TEST(RunCoroutineThreadsafe, ResultFromPlainThread) {
  RuntimeThread rt;
  ConcurrentFuture<int> f = run_coroutine_threadsafe(add_after_yields(40, 2), rt.runtime());
  ASSERT_TRUE(f.valid());
  EXPECT_EQ(f.result(), 42);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(f.result(), 42) << "result() can be read again";
}

TEST(RunCoroutineThreadsafe, VoidAndMoveOnlyResults) {
  RuntimeThread rt;
  std::atomic<int> counter{0};
  ConcurrentFuture<void> v = run_coroutine_threadsafe(void_after_yield(&counter), rt.runtime());
  v.result();
  EXPECT_EQ(counter.load(), 1);

  auto make = []() -> Coro<std::unique_ptr<int>> {
    co_await yield_now();
    co_return std::make_unique<int>(5);
  };
  ConcurrentFuture<std::unique_ptr<int>> m = run_coroutine_threadsafe(make(), rt.runtime());
  std::unique_ptr<int> p = m.result();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);
  EXPECT_THROW(m.result(), InvalidStateError) << "a move-only result is taken once";
}

TEST(RunCoroutineThreadsafe, ManyThreadsSubmitConcurrently) {
  RuntimeThread rt;
  constexpr int kThreads = 4;
  const int per_thread = scaled(200);
  std::vector<std::thread> threads;
  std::atomic<long> sum{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<ConcurrentFuture<int>> fs;
      for (int i = 0; i < per_thread; ++i) {
        fs.push_back(run_coroutine_threadsafe(add_after_yields(t, i), rt.runtime()));
      }
      for (auto& f : fs) sum += f.result(kLongWait);
    });
  }
  for (auto& th : threads) th.join();
  long expected = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < per_thread; ++i) expected += t + i;
  }
  EXPECT_EQ(sum.load(), expected);
}

TEST(RunCoroutineThreadsafe, ResultWithTimeoutRaisesTimeoutError) {
  RuntimeThread rt;
  Future<int> gate(rt.loop(0));  // completed below, from this plain thread
  ConcurrentFuture<int> f = run_coroutine_threadsafe(await_gate(gate), rt.runtime());
  auto t0 = mt_testing::Clock::now();
  EXPECT_THROW(f.result(50ms), TimeoutError);
  EXPECT_GE(mt_testing::ms_since(t0), 45.0) << "result(timeout) returned before its timeout";
  EXPECT_THROW(f.exception(20ms), TimeoutError);
  EXPECT_FALSE(f.done()) << "a timed-out wait does not cancel the task";
  EXPECT_FALSE(f.cancelled());
  gate.set_result(7);
  EXPECT_EQ(f.result(kLongWait), 7);
}

// --- exceptions --------------------------------------------------------------

TEST(RunCoroutineThreadsafe, ExceptionPropagates) {
  RuntimeThread rt;
  ConcurrentFuture<int> f = run_coroutine_threadsafe(throws_after_yield("boom"), rt.runtime());
  try {
    f.result();
    ADD_FAILURE() << "result() did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  std::exception_ptr e = f.exception();
  ASSERT_NE(e, nullptr);
  EXPECT_THROW(std::rethrow_exception(e), std::runtime_error);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.cancelled());

  ConcurrentFuture<int> g = run_coroutine_threadsafe(throws_custom(), rt.runtime());
  try {
    g.result();
    ADD_FAILURE() << "result() did not throw";
  } catch (const CustomError& c) {
    EXPECT_EQ(c.code, 7) << "non-std exceptions cross threads too";
  }
}

// --- cancel() ----------------------------------------------------------------

TEST(RunCoroutineThreadsafe, CancelCancelsTheTask) {
  RuntimeThread rt;
  CancelProbe probe;
  ConcurrentFuture<int> f = run_coroutine_threadsafe(sleep_until_cancelled(&probe), rt.runtime());
  ASSERT_TRUE(probe.started.WaitForNotificationWithTimeout(absl::FromChrono(kLongWait)));
  EXPECT_TRUE(f.cancel("stop it"));
  EXPECT_TRUE(f.done());
  EXPECT_TRUE(f.cancelled());
  try {
    f.result();
    ADD_FAILURE() << "result() of a cancelled future did not throw";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "stop it");
  }
  EXPECT_THROW(f.exception(), CancelledError);
  ASSERT_TRUE(probe.saw_cancel.WaitForNotificationWithTimeout(absl::FromChrono(kLongWait)))
      << "the task never saw the cancellation";
  EXPECT_EQ(probe.message, "stop it");
  EXPECT_FALSE(probe.finished_normally.load());
  EXPECT_FALSE(f.cancel()) << "cancelling a done future fails";
}

TEST(RunCoroutineThreadsafe, CancelAfterCompletionFails) {
  RuntimeThread rt;
  ConcurrentFuture<int> f = run_coroutine_threadsafe(answer(), rt.runtime());
  EXPECT_EQ(f.result(), 42);
  EXPECT_FALSE(f.cancel());
  EXPECT_FALSE(f.cancelled());
  EXPECT_EQ(f.result(), 42);
}

// A coroutine that spins (without suspending) until released: it blocks its
// worker.
Coro<void> block_worker(std::atomic<bool>* started, std::atomic<bool>* release) {
  started->store(true);
  auto deadline = mt_testing::Clock::now() + kLongWait;
  while (!release->load() && mt_testing::Clock::now() < deadline) {
    std::this_thread::sleep_for(100us);
  }
  co_return;
}

TEST(RunCoroutineThreadsafe, CancelBeforeStartNeverRunsTheBody) {
  RuntimeThread rt;
  // Keep loop 1 busy so that a task pinned to it cannot start.
  std::atomic<bool> blocked{false};
  std::atomic<bool> release{false};
  ConcurrentFuture<void> blocker =
      run_coroutine_threadsafe(block_worker(&blocked, &release), rt.loop(1));
  ASSERT_TRUE(wait_until([&] { return blocked.load(); }));

  CancelProbe probe;
  ConcurrentFuture<int> f = run_coroutine_threadsafe(sleep_until_cancelled(&probe), rt.loop(1));
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(f.result(), CancelledError);
  release = true;
  blocker.result(kLongWait);
  // Give loop 1 the chance to (wrongly) run the body.
  ConcurrentFuture<int> after = run_coroutine_threadsafe(answer(), rt.loop(1));
  EXPECT_EQ(after.result(kLongWait), 42);
  EXPECT_FALSE(probe.started.HasBeenNotified()) << "a task cancelled before it ran must not start";
}

// --- add_done_callback() -----------------------------------------------------

TEST(RunCoroutineThreadsafe, DoneCallbackRunsOnCompletion) {
  RuntimeThread rt;
  Future<int> gate(rt.loop(0));
  ConcurrentFuture<int> f = run_coroutine_threadsafe(await_gate(gate), rt.runtime());
  absl::Notification called;
  std::atomic<int> calls{0};
  int seen_value = 0;
  std::thread::id seen_thread;
  f.add_done_callback([&](ConcurrentFuture<int>& g) {
    EXPECT_TRUE(g.done());
    seen_value = g.result();  // done: allowed even on a loop thread
    seen_thread = std::this_thread::get_id();
    calls.fetch_add(1);
    called.Notify();
  });
  EXPECT_FALSE(called.HasBeenNotified());
  gate.set_result(11);
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::FromChrono(kLongWait)));
  EXPECT_EQ(seen_value, 11);
  EXPECT_NE(seen_thread, std::this_thread::get_id()) << "ran on the completing (worker) thread";
  EXPECT_EQ(f.result(), 11);
  EXPECT_EQ(calls.load(), 1);
}

TEST(RunCoroutineThreadsafe, DoneCallbackOnDoneFutureRunsAtOnceOnCaller) {
  RuntimeThread rt;
  ConcurrentFuture<int> f = run_coroutine_threadsafe(answer(), rt.runtime());
  ASSERT_EQ(f.result(), 42);
  bool called = false;
  const std::thread::id caller = std::this_thread::get_id();
  f.add_done_callback([&](ConcurrentFuture<int>& g) {
    called = true;
    EXPECT_EQ(g.result(), 42);
    EXPECT_EQ(std::this_thread::get_id(), caller);
  });
  EXPECT_TRUE(called) << "concurrent.futures runs it at once on the caller's thread";
}

TEST(RunCoroutineThreadsafe, DoneCallbacksRunOnCancelInOrder) {
  RuntimeThread rt;
  CancelProbe probe;
  ConcurrentFuture<int> f = run_coroutine_threadsafe(sleep_until_cancelled(&probe), rt.runtime());
  ASSERT_TRUE(probe.started.WaitForNotificationWithTimeout(absl::FromChrono(kLongWait)));
  std::vector<int> order;
  std::mutex mu;
  for (int i = 0; i < 3; ++i) {
    f.add_done_callback([&, i](ConcurrentFuture<int>& g) {
      EXPECT_TRUE(g.cancelled());
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
    });
  }
  EXPECT_TRUE(f.cancel());
  // The canceller completes the future: its callbacks have run when cancel returns.
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  }
  // The task itself sees the request later; `probe` must outlive that.
  EXPECT_TRUE(probe.saw_cancel.WaitForNotificationWithTimeout(absl::FromChrono(kLongWait)));
}

TEST(RunCoroutineThreadsafe, ThrowingDoneCallbackIsReportedAndOthersStillRun) {
  std::vector<std::string> reports;
  std::mutex mu;
  set_fallback_error_reporter([&](std::string_view m) {
    std::lock_guard<std::mutex> lock(mu);
    reports.emplace_back(m);
  });
  {
    RuntimeThread rt;
    ConcurrentFuture<int> f = run_coroutine_threadsafe(answer(), rt.runtime());
    ASSERT_EQ(f.result(), 42);
    bool second = false;
    f.add_done_callback([](ConcurrentFuture<int>&) { throw std::runtime_error("cb failed"); });
    f.add_done_callback([&](ConcurrentFuture<int>&) { second = true; });
    EXPECT_TRUE(second);
  }
  set_fallback_error_reporter(nullptr);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("cb failed"), std::string::npos) << reports[0];
}

// --- submitting to one Loop ----------------------------------------------------

struct LoopRecord {
  std::vector<std::uint32_t> indices;
  ThreadSet threads;
};

Coro<void> record_loop(LoopRecord* r, Future<void> external) {
  for (int i = 0; i < 20; ++i) {
    r->indices.push_back(get_running_loop().index());
    r->threads.add();
    switch (i % 3) {
      case 0:
        co_await yield_now();
        break;
      case 1:
        co_await sleep(200us);
        break;
      default:
        if (i == 5) co_await external;  // completed by a plain thread
        break;
    }
  }
  r->indices.push_back(get_running_loop().index());
  r->threads.add();
}

TEST(RunCoroutineThreadsafe, SubmittingToALoopPinsTheTaskThere) {
  RuntimeThread rt(test_options(3));
  for (std::uint32_t target : {1u, 2u, 0u}) {
    SCOPED_TRACE("loop " + std::to_string(target));
    LoopRecord rec;
    Future<void> external(rt.loop(target));
    ConcurrentFuture<void> f =
        run_coroutine_threadsafe(record_loop(&rec, external), rt.loop(target));
    std::this_thread::sleep_for(2ms);
    external.set_result();
    f.result(kLongWait);
    ASSERT_FALSE(rec.indices.empty());
    for (std::uint32_t idx : rec.indices) EXPECT_EQ(idx, target);
    EXPECT_EQ(rec.threads.size(), 1u) << "a pinned task runs on one thread";
  }
}

// --- call_soon_threadsafe --------------------------------------------------------

Coro<std::thread::id> thread_of_loop() {
  co_await yield_now();
  co_return std::this_thread::get_id();
}

TEST(CallSoonThreadsafe, RunsOnTheLoopInPostingOrder) {
  RuntimeThread rt;
  const std::thread::id loop1_thread =
      run_coroutine_threadsafe(thread_of_loop(), rt.loop(1)).result(kLongWait);
  constexpr int kCalls = 100;
  std::mutex mu;
  std::vector<int> order;
  std::atomic<int> wrong_loop{0};
  std::atomic<int> wrong_thread{0};
  absl::Notification last;
  for (int i = 0; i < kCalls; ++i) {
    call_soon_threadsafe(rt.loop(1), [&, i] {
      if (get_running_loop().index() != 1) wrong_loop.fetch_add(1);
      if (std::this_thread::get_id() != loop1_thread) wrong_thread.fetch_add(1);
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
      }
      if (i == kCalls - 1) last.Notify();
    });
  }
  ASSERT_TRUE(last.WaitForNotificationWithTimeout(absl::FromChrono(kLongWait)));
  EXPECT_EQ(wrong_loop.load(), 0);
  EXPECT_EQ(wrong_thread.load(), 0);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kCalls));
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
}

TEST(CallSoonThreadsafe, WakesAnIdleLoopPromptly) {
  RuntimeThread rt;
  std::this_thread::sleep_for(50ms);  // every worker parks
  for (int round = 0; round < 5; ++round) {
    absl::Notification ran;
    auto t0 = mt_testing::Clock::now();
    rt.loop(round % 2).call_soon_threadsafe([&] { ran.Notify(); });
    ASSERT_TRUE(ran.WaitForNotificationWithTimeout(absl::FromChrono(kLongWait)));
    EXPECT_LT(mt_testing::ms_since(t0), 500.0) << "a parked loop woke late";
    std::this_thread::sleep_for(10ms);
  }
}

TEST(CallSoonThreadsafe, LoopOnlyCallsFromAPlainThreadRaise) {
  RuntimeThread rt;
  EXPECT_THROW(rt.loop(0).call_soon([] {}), RuntimeError);
  EXPECT_THROW(rt.loop(1).call_later(1ms, [] {}), RuntimeError);
}

// --- runtime not running -----------------------------------------------------------

TEST(RunCoroutineThreadsafe, RaisesWhenTheRuntimeIsNotRunning) {
  Runtime never_started(test_options());
  EXPECT_THROW(run_coroutine_threadsafe(answer(), never_started), RuntimeError);
  EXPECT_THROW(run_coroutine_threadsafe(answer(), never_started.loop(1)), RuntimeError);

  RuntimeThread rt;
  EXPECT_EQ(run_coroutine_threadsafe(answer(), rt.runtime()).result(kLongWait), 42);
  rt.stop();
  EXPECT_THROW(run_coroutine_threadsafe(answer(), rt.runtime()), RuntimeError)
      << "a runtime whose run() returned accepts no more work";
  EXPECT_THROW(run_coroutine_threadsafe(answer(), rt.loop(0)), RuntimeError);
}

TEST(RunCoroutineThreadsafe, RaisesForAnEmptyCoro) {
  RuntimeThread rt;
  Coro<int> empty;
  EXPECT_THROW(run_coroutine_threadsafe(std::move(empty), rt.runtime()), std::invalid_argument);
}

// --- spawn_threadsafe -------------------------------------------------------------

Coro<void> count_after_yield(std::atomic<int>* counter) {
  co_await yield_now();
  counter->fetch_add(1, std::memory_order_relaxed);
}

TEST(SpawnThreadsafe, EveryTaskFromManyThreadsRuns) {
  RuntimeThread rt;
  constexpr int kThreads = 4;
  const int per_thread = scaled(500);
  std::atomic<int> counter{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        spawn_threadsafe(count_after_yield(&counter), rt.runtime());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_TRUE(wait_until([&] { return counter.load() == kThreads * per_thread; }, kLongWait))
      << counter.load() << " of " << kThreads * per_thread << " tasks ran";
}

Coro<void> throws_named(std::string what) {
  co_await yield_now();
  throw std::runtime_error(what);
}

TEST(SpawnThreadsafe, AnExceptionNobodyRetrievedIsReported) {
  testing::ErrorLog log;
  {
    RuntimeThread rt(testing::logged_options(log));
    spawn_threadsafe(throws_named("lost-in-spawn"), rt.runtime(), "spawned");
    EXPECT_TRUE(wait_until([&] { return log.count({"lost-in-spawn"}) == 1; }, kLongWait))
        << log.dump();
  }
  EXPECT_EQ(log.count({"lost-in-spawn", "spawned"}), 1) << log.dump();
}

TEST(SpawnThreadsafe, RaisesWhenNotRunningOrEmpty) {
  Runtime never_started(test_options());
  EXPECT_THROW(spawn_threadsafe(answer(), never_started), RuntimeError);
  RuntimeThread rt;
  Coro<int> empty;
  EXPECT_THROW(spawn_threadsafe(std::move(empty), rt.runtime()), std::invalid_argument);
  rt.stop();
  EXPECT_THROW(spawn_threadsafe(answer(), rt.runtime()), RuntimeError);
}

WEFT_CO_TEST(SpawnThreadsafe, FromInsideTheRuntimeStartsATask) {
  std::atomic<int> counter{0};
  spawn_threadsafe(count_after_yield(&counter), get_running_loop().runtime());
  EXPECT_TRUE(co_await mt_testing::co_wait_until([&] { return counter.load() == 1; }, kLongWait));
}

// --- blocking from inside the runtime ------------------------------------------------

Coro<void> wait_gate_void(Future<void> gate) { co_await gate; }

WEFT_CO_TEST(RunCoroutineThreadsafe, ResultInsideTheRuntimeRaisesRuntimeError) {
  Runtime& rt = get_running_loop().runtime();
  Future<void> gate;
  ConcurrentFuture<void> f = run_coroutine_threadsafe(wait_gate_void(gate), rt);
  EXPECT_THROW(f.result(), RuntimeError) << "blocking a loop on its own runtime could deadlock";
  EXPECT_THROW(f.result(10ms), RuntimeError);
  EXPECT_THROW(f.exception(), RuntimeError);

  // From a callback on a loop of the runtime, too.
  Future<bool> from_callback;
  get_running_loop().call_soon([f, from_callback] {
    try {
      f.result();
      from_callback.set_result(false);
    } catch (const RuntimeError&) {
      from_callback.set_result(true);
    }
  });
  EXPECT_TRUE(co_await from_callback);

  gate.set_result();
  EXPECT_TRUE(co_await mt_testing::co_wait_until([&] { return f.done(); }));
  EXPECT_NO_THROW(f.result()) << "once done, result() does not block and is allowed";
}

WEFT_CO_TEST(RunCoroutineThreadsafe, ResultFromAToThreadCallIsAllowed) {
  Runtime& rt = get_running_loop().runtime();
  // A pool thread is not a loop: it may block on the result.
  int v = co_await to_thread(
      [&rt] { return run_coroutine_threadsafe(add_after_yields(1, 2), rt).result(kLongWait); });
  EXPECT_EQ(v, 3);
  // Let the pool finish its clean-up before main returns (see to_thread_test's
  // CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await mt_testing::co_wait_until([&rt] { return detail::RuntimeAccess::offload_pool(rt).running() == 0; }));
}

// --- submissions racing shutdown -------------------------------------------------------

// Deterministic: the runtime stops between run_coroutine_threadsafe's check
// that it is running and the moment the task is queued. The submission must
// then either raise RuntimeError or hand back a future that completes (with
// the result, or cancelled); a task queued into a stopped runtime never runs,
// and result() would block forever.
TEST(RunCoroutineThreadsafe, SubmissionRacingShutdownIsNotLost) {
  RuntimeThread rt;
  Coro<int> body = answer();  // its frame is allocated before the hook is armed
  bool hook_ran = false;
  bool stopped_in_hook = false;
  std::function<void()> hook = [&] {
    hook_ran = true;
    rt.request_stop();
    // Bounded: a fixed library may hold a lock here that shutdown needs.
    stopped_in_hook = rt.wait_finished(1s);
  };
  ConcurrentFuture<int> f;
  bool raised = false;
  t_alloc_hook = &hook;
  try {
    f = run_coroutine_threadsafe(std::move(body), rt.runtime());
  } catch (const RuntimeError&) {
    raised = true;
  }
  t_alloc_hook = nullptr;
  ASSERT_TRUE(hook_ran);
  rt.stop();  // run() has returned after this
  SCOPED_TRACE(stopped_in_hook ? "the runtime stopped inside the submission"
                               : "the submission held shutdown off");
  if (!raised) {
    ASSERT_TRUE(f.valid());
    EXPECT_TRUE(f.done())
        << "run() returned but the submitted task's future is still pending: the task was "
           "queued into a stopped runtime and result() would block forever";
    if (f.done()) {
      try {
        EXPECT_EQ(f.result(0ms), 42);
      } catch (const CancelledError&) {
        // Cancelled by the shutdown: fine.
      }
    }
  }
}

// Takes 50 ms to honour a cancellation (cleans up first).
Coro<int> slow_to_cancel() {
  bool cancelled = false;
  try {
    co_await sleep(std::chrono::hours(1));
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (cancelled) {
    co_await sleep(50ms);  // clean-up
    throw CancelledError("cleaned up");
  }
  co_return 0;
}

// Deterministic (unless the submitting thread is starved for 50 ms): a plain
// thread submits one task per millisecond, each taking 50 ms to honour its
// cancellation. run() must still return soon after
// main does (asyncio cancels the tasks left at that moment, then closes the
// loop, and later submissions raise RuntimeError).
TEST(RunCoroutineThreadsafe, ShutdownFinishesWhileAThreadKeepsSubmitting) {
  RuntimeThread rt;
  std::atomic<bool> give_up{false};
  std::atomic<int> submitted{0};
  std::atomic<bool> refused{false};
  std::thread submitter([&] {
    while (!give_up.load()) {
      try {
        run_coroutine_threadsafe(slow_to_cancel(), rt.runtime());
        submitted.fetch_add(1);
      } catch (const RuntimeError&) {
        refused = true;
        return;
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  ASSERT_TRUE(wait_until([&] { return submitted.load() >= 5; }));
  auto t0 = mt_testing::Clock::now();
  rt.request_stop();
  const bool finished = rt.wait_finished(2s);
  EXPECT_TRUE(finished) << "run() had not returned " << mt_testing::ms_since(t0)
                        << " ms after main ended: the shutdown keeps cancelling tasks that are "
                           "submitted meanwhile and never stops ("
                        << submitted.load() << " submitted so far)";
  give_up = true;  // lets a livelocked shutdown finish
  submitter.join();
  rt.stop();
  EXPECT_TRUE(refused.load() || !finished)
      << "after run() returned, a submission must raise RuntimeError";
}

// Randomized: threads keep submitting while the runtime shuts down; every
// future handed out completes by the time run() has returned.
TEST(RunCoroutineThreadsafe, SubmissionsDuringShutdownAllComplete) {
  const int rounds = scaled(20, 4);
  int completed = 0;
  int cancelled = 0;
  int refused = 0;
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    RuntimeThread rt;
    std::mutex mu;
    std::vector<ConcurrentFuture<int>> futures;
    std::atomic<bool> go{false};
    std::atomic<bool> give_up{false};
    std::atomic<int> refusals{0};
    std::vector<std::thread> submitters;
    for (int s = 0; s < 2; ++s) {
      submitters.emplace_back([&, s] {
        while (!go.load()) std::this_thread::yield();
        for (int i = 0; !give_up.load(); ++i) {
          try {
            ConcurrentFuture<int> f = run_coroutine_threadsafe(add_after_yields(s, i), rt.runtime());
            std::lock_guard<std::mutex> lock(mu);
            futures.push_back(std::move(f));
          } catch (const RuntimeError&) {
            refusals.fetch_add(1);
            return;
          }
        }
      });
    }
    go = true;
    std::this_thread::sleep_for(std::chrono::microseconds(500 + 300 * (round % 7)));
    rt.request_stop();
    bool livelocked = false;
    if (!rt.wait_finished(3s)) {
      livelocked = true;
      ADD_FAILURE() << "run() did not return within 3 s of main's end while plain threads kept "
                       "submitting: shutdown keeps cancelling new submissions and never stops ("
                    << mt_testing::describe_tasks(rt.runtime(), 3) << ")";
      give_up = true;  // let the shutdown finish
    }
    rt.stop();
    for (auto& th : submitters) th.join();
    if (livelocked) break;
    refused += refusals.load();
    int pending = 0;
    for (auto& f : futures) {
      if (!f.done()) {
        ++pending;
        continue;
      }
      if (f.cancelled()) {
        ++cancelled;
      } else {
        ++completed;
      }
    }
    EXPECT_EQ(pending, 0) << "of " << futures.size()
                          << " submissions, these never completed after run() returned";
  }
  if (::testing::Test::HasFailure()) return;
  EXPECT_EQ(refused, 2 * rounds) << "each submitter stops at its first RuntimeError";
  EXPECT_GT(completed, 0);
  std::printf("completed %d, cancelled at shutdown %d\n", completed, cancelled);
}

}  // namespace
}  // namespace weft
