// weft::run and weft::Runtime: asyncio.run's contract (main's result or
// exception, orderly shutdown that cancels and joins leftover tasks, one
// loop per thread), runtime options, reuse, and many-worker stress.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::Counted;
using testing::CountedScope;
using testing::ErrorLog;
using testing::raises;
using testing::scaled;

using std::chrono::milliseconds;

struct MyError : std::runtime_error {
  explicit MyError(int c) : std::runtime_error("my error " + std::to_string(c)), code(c) {}
  int code;
};

Coro<int> value_after_yield(int v) {
  co_await yield_now();
  co_return v;
}

// --- run(): results and exceptions -------------------------------------------

TEST(Run, ReturnsMainsResult) {
  EXPECT_EQ(run(value_after_yield(42), testing::test_options(1)), 42);
  auto str = []() -> Coro<std::string> { co_return "weft"; };
  EXPECT_EQ(run(str(), testing::test_options(2)), "weft");
  auto ptr = []() -> Coro<std::unique_ptr<int>> { co_return std::make_unique<int>(5); };
  std::unique_ptr<int> p = run(ptr(), testing::test_options(2));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);
  bool ran = false;
  auto v = [](bool* ran) -> Coro<void> {
    co_await yield_now();
    *ran = true;
  };
  run(v(&ran), testing::test_options(2));
  EXPECT_TRUE(ran);
}

TEST(Run, CountedResultNeitherLeakedNorDestroyedTwice) {
  CountedScope scope;
  auto make = [](Counted c) -> Coro<Counted> {
    co_await yield_now();
    co_return Counted(c.value + 1);
  };
  {
    Counted r = run(make(Counted(1)), testing::test_options(2));
    EXPECT_EQ(r.value, 2);
  }
  EXPECT_EQ(Counted::alive(), 0);
}

Coro<int> main_throws(int code) {
  co_await yield_now();
  throw MyError(code);
}

TEST(Run, RethrowsMainsException) {
  try {
    run(main_throws(3), testing::test_options(2));
    ADD_FAILURE() << "run must rethrow";
  } catch (const MyError& e) {
    EXPECT_EQ(e.code, 3);
  }
  auto non_std = []() -> Coro<void> {
    co_await yield_now();
    throw 7;
  };
  EXPECT_THROW(run(non_std(), testing::test_options(1)), int);
}

Coro<int> main_cancels_itself() {
  current_task().cancel("main off");
  co_await yield_now();
  co_return 1;
}

TEST(Run, MainCancelledRaisesCancelledError) {
  try {
    run(main_cancels_itself(), testing::test_options(2));
    ADD_FAILURE() << "run must raise CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "main off");
  }
}

TEST(Run, MainCancelledFromAnotherThread) {
  std::atomic<bool> ready{false};
  // Future has no default constructor outside a runtime: keep it in an
  // optional and hand the body a pointer to its storage.
  struct Holder {
    std::optional<Future<int>> f;
  } holder;
  auto body = [](Holder* h, std::atomic<bool>* ready) -> Coro<int> {
    h->f.emplace();
    ready->store(true);
    co_return co_await *h->f;
  };
  std::thread canceller([&] {
    while (!ready.load()) std::this_thread::yield();
    holder.f->cancel("from outside");
  });
  try {
    run(body(&holder, &ready), testing::test_options(2));
    ADD_FAILURE() << "run must raise CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_EQ(e.message(), "from outside");
  }
  canceller.join();
  holder.f.reset();
}

TEST(Run, EmptyMainIsInvalidArgument) {
  EXPECT_THROW(run(Coro<int>(), testing::test_options(1)), std::invalid_argument);
}

Coro<int> nested_run_attempt(bool* threw) {
  CountedScope scope;
  auto inner = [](Counted c) -> Coro<int> { co_return c.value; };
  try {
    (void)run(inner(Counted(1)), testing::test_options(1));
  } catch (const RuntimeError&) {
    *threw = true;
  }
  EXPECT_EQ(Counted::alive(), 0) << "the refused Coro must be destroyed";
  co_return 0;
}

TEST(Run, CalledFromInsideARunningTaskIsRuntimeError) {
  bool threw = false;
  run(nested_run_attempt(&threw), testing::test_options(1));
  EXPECT_TRUE(threw);
  // Also from a task on another worker than the one run() was called on.
  threw = false;
  auto on_worker_1 = [](bool* threw) -> Coro<void> {
    Loop& l1 = get_running_loop().runtime().loop(1);
    co_await l1.create_pinned_task(nested_run_attempt(threw));
  };
  run(on_worker_1(&threw), testing::test_options(2));
  EXPECT_TRUE(threw);
}

// A loop callback runs on a loop thread too: run() refuses it as well.
Coro<bool> run_from_a_callback() {
  Future<bool> threw;
  call_soon([threw] {
    try {
      (void)run(value_after_yield(1), testing::test_options(1));
      threw.set_result(false);
    } catch (const RuntimeError&) {
      threw.set_result(true);
    }
  });
  co_return co_await threw;
}

TEST(Run, CalledFromALoopCallbackIsRuntimeError) {
  EXPECT_TRUE(run(run_from_a_callback(), testing::test_options(1)));
}

// A second runtime on another thread is fine (one loop per thread).
TEST(Run, IndependentRuntimesOnTwoThreads) {
  int a = 0;
  int b = 0;
  std::thread other([&] { b = run(value_after_yield(2), testing::test_options(2)); });
  a = run(value_after_yield(1), testing::test_options(2));
  other.join();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
}

// --- Runtime objects ------------------------------------------------------------

TEST(RuntimeObject, RunsTwiceInARow) {
  Runtime rt(testing::test_options(2));
  EXPECT_FALSE(rt.running());
  EXPECT_EQ(rt.run(value_after_yield(1)), 1);
  EXPECT_FALSE(rt.running());
  EXPECT_EQ(rt.run(value_after_yield(2)), 2);
  EXPECT_THROW(rt.run(main_throws(4)), MyError);
  EXPECT_EQ(rt.run(value_after_yield(3)), 3) << "a runtime is reusable after a failed main";
}

Coro<long> spawn_and_sum(int n) {
  std::vector<Task<int>> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back(create_task(value_after_yield(i)));
  long sum = 0;
  for (auto& t : tasks) sum += co_await t;
  co_await sleep(std::chrono::microseconds(100));
  co_return sum;
}

TEST(RuntimeObject, ManyRunsInARowWithWork) {
  Runtime rt(testing::test_options(4));
  for (int i = 0; i < scaled(20, 4); ++i) {
    EXPECT_EQ(rt.run(spawn_and_sum(200)), 199L * 200 / 2) << "run " << i;
  }
}

TEST(RuntimeObject, RunWhileRunningIsRuntimeError) {
  Runtime rt(testing::test_options(2));
  auto body = [](Runtime* rt) -> Coro<bool> {
    bool threw = false;
    std::thread th([&] {
      try {
        (void)rt->run(value_after_yield(1));
      } catch (const RuntimeError&) {
        threw = true;
      }
    });
    th.join();
    EXPECT_TRUE(rt->running());
    co_return threw;
  };
  EXPECT_TRUE(rt.run(body(&rt)));
}

TEST(RuntimeObject, NumWorkers) {
  for (std::uint32_t n : {1u, 2u, 4u}) {
    RuntimeOptions options;
    options.workers = n;
    Runtime rt(std::move(options));
    EXPECT_EQ(rt.num_workers(), n);
    EXPECT_EQ(rt.loop(n - 1).index(), n - 1);
    EXPECT_THROW((void)rt.loop(n), std::out_of_range);
  }
  Runtime def;
  EXPECT_EQ(def.num_workers(), std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_FALSE(def.clock().is_manual()) << "the default clock is the system clock";
}

// Tasks run on the runtime's workers only; worker 0 is the thread that
// called run().
Coro<std::thread::id> thread_after_yield() {
  co_await yield_now();
  co_return std::this_thread::get_id();
}

Coro<std::size_t> distinct_threads(int tasks) {
  std::vector<Task<std::thread::id>> ts;
  for (int i = 0; i < tasks; ++i) ts.push_back(create_task(thread_after_yield()));
  std::set<std::thread::id> ids;
  for (auto& t : ts) ids.insert(co_await t);
  co_return ids.size();
}

class RuntimeWorkers : public ::testing::TestWithParam<int> {};

TEST_P(RuntimeWorkers, TasksRunOnAtMostThatManyThreads) {
  const auto n = static_cast<std::uint32_t>(GetParam());
  std::size_t threads = run(distinct_threads(200), testing::test_options(n));
  EXPECT_GE(threads, 1u);
  EXPECT_LE(threads, n);
}

// Busy tasks queued on one worker are stolen by the idle ones: each task
// spins (never yielding) until it has seen a second worker thread, so only
// stealing can end the spin before the deadline.
struct Spread {
  std::mutex mu;
  std::set<std::thread::id> ids;
};

Coro<void> spin_until_spread(Spread* s, std::chrono::steady_clock::time_point deadline) {
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->ids.insert(std::this_thread::get_id());
  }
  while (std::chrono::steady_clock::now() < deadline) {
    std::lock_guard<std::mutex> lock(s->mu);
    if (s->ids.size() >= 2) break;
  }
  co_return;
}

Coro<std::size_t> busy_tasks_spread(int tasks) {
  Spread s;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  std::vector<Task<void>> ts;
  for (int i = 0; i < tasks; ++i) ts.push_back(create_task(spin_until_spread(&s, deadline)));
  for (auto& t : ts) co_await t;
  co_return s.ids.size();
}

TEST_P(RuntimeWorkers, IdleWorkersStealBusyTasks) {
  const auto n = static_cast<std::uint32_t>(GetParam());
  if (n < 2) GTEST_SKIP() << "needs two workers";
  const auto start = std::chrono::steady_clock::now();
  std::size_t threads = run(busy_tasks_spread(8), testing::test_options(n));
  EXPECT_GE(threads, 2u) << "no idle worker stole the queued busy tasks";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
}

TEST_P(RuntimeWorkers, SpawnAndSum) {
  const auto n = static_cast<std::uint32_t>(GetParam());
  EXPECT_EQ(run(spawn_and_sum(1000), testing::test_options(n)), 999L * 1000 / 2);
}

INSTANTIATE_TEST_SUITE_P(Workers, RuntimeWorkers, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "workers" + std::to_string(i.param);
                         });

// --- shutdown ---------------------------------------------------------------------

struct Cleanup {
  std::atomic<int> started{0};
  std::atomic<int> cleaned{0};
  std::atomic<int> after_await_in_cleanup{0};
  std::atomic<int> body_ran_unexpectedly{0};
};

Coro<void> leftover_waiting(Future<int> never, Cleanup* c) {
  ++c->started;
  try {
    (void)co_await never;
  } catch (const CancelledError&) {
    ++c->cleaned;
    throw;
  }
}

Coro<void> leftover_sleeping_with_async_cleanup(Cleanup* c) {
  ++c->started;
  try {
    co_await sleep(std::chrono::hours(1));
  } catch (const CancelledError&) {
    ++c->cleaned;
  }
  // Cleanup that itself awaits: run() must wait for it.
  co_await sleep(milliseconds(2));
  co_await yield_now();
  ++c->after_await_in_cleanup;
}

Coro<void> should_never_start(Cleanup* c) {
  ++c->body_ran_unexpectedly;
  co_return;
}

Coro<int> main_leaves_tasks(Cleanup* c, int n) {
  Future<int> never;
  for (int i = 0; i < n; ++i) {
    (void)create_task(leftover_waiting(never, c));
    (void)create_task(leftover_sleeping_with_async_cleanup(c));
  }
  EXPECT_TRUE(co_await testing::yield_until([&] { return c->started.load() == 2 * n; }));
  co_await sleep(milliseconds(1));
  co_return 5;
}

TEST(Shutdown, LeftoverTasksAreCancelledAndJoinedBeforeRunReturns) {
  Cleanup c;
  const int n = 20;
  EXPECT_EQ(run(main_leaves_tasks(&c, n), testing::test_options(2)), 5);
  EXPECT_EQ(c.cleaned.load(), 2 * n) << "a leftover task's catch (CancelledError&) must run";
  EXPECT_EQ(c.after_await_in_cleanup.load(), n) << "run() returned before cleanups finished";
}

Coro<int> main_leaves_unstarted_task(Cleanup* c) {
  (void)create_task(should_never_start(c));
  co_return 1;
}

TEST(Shutdown, TaskThatNeverStartedIsCancelledWithoutRunning) {
  Cleanup c;
  EXPECT_EQ(run(main_leaves_unstarted_task(&c), testing::test_options(1)), 1);
  EXPECT_EQ(c.body_ran_unexpectedly.load(), 0);
}

Coro<int> main_leaves_pinned_tasks(Cleanup* c) {
  Runtime& rt = get_running_loop().runtime();
  Future<int> never;
  for (std::uint32_t i = 0; i < rt.num_workers(); ++i) {
    (void)rt.loop(i).create_pinned_task(leftover_waiting(never, c));
    (void)rt.loop(i).create_pinned_task(leftover_sleeping_with_async_cleanup(c));
  }
  const int expected = 2 * static_cast<int>(rt.num_workers());
  EXPECT_TRUE(co_await testing::yield_until([&] { return c->started.load() == expected; }));
  co_return 0;
}

TEST(Shutdown, LeftoverPinnedTasksOnEveryLoopAreJoined) {
  Cleanup c;
  run(main_leaves_pinned_tasks(&c), testing::test_options(4));
  EXPECT_EQ(c.cleaned.load(), 8);
  EXPECT_EQ(c.after_await_in_cleanup.load(), 4);
}

Coro<void> leftover_with_counted(Counted c, Future<int> never) {
  Counted local(2);
  (void)co_await never;
  (void)c;
}

Coro<int> main_leaves_counted_tasks(int n) {
  Future<int> never;
  for (int i = 0; i < n; ++i) (void)create_task(leftover_with_counted(Counted(i), never));
  co_await yield_now();
  co_return 0;
}

TEST(Shutdown, LeftoverTaskFramesAreDestroyed) {
  CountedScope scope;
  run(main_leaves_counted_tasks(50), testing::test_options(2));
  EXPECT_EQ(Counted::alive(), 0);
}

Coro<void> leftover_that_fails_in_cleanup() {
  try {
    co_await sleep(std::chrono::hours(1));
  } catch (const CancelledError&) {
    throw MyError(77);
  }
}

Coro<int> main_leaves_failing_cleanup() {
  (void)create_task(leftover_that_fails_in_cleanup());
  co_await yield_now();
  co_return 3;
}

TEST(Shutdown, CleanupFailureIsReportedOnce) {
  ErrorLog log;
  EXPECT_EQ(run(main_leaves_failing_cleanup(), testing::logged_options(log, 2)), 3);
  EXPECT_EQ(log.count({"my error 77"}), 1) << log.dump();
  EXPECT_EQ(log.size(), 1u) << log.dump();
}

struct SpawnedDuringShutdown {
  Cleanup cleanup;
  AnyTask spawned;
};

Coro<void> spawns_during_cleanup(SpawnedDuringShutdown* s) {
  ++s->cleanup.started;
  bool cancelled = false;
  try {
    co_await sleep(std::chrono::hours(1));
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (!cancelled) co_return;
  // Shutdown is under way: start a new task and let it begin its work. It
  // must be cancelled and joined too before run() returns.
  s->spawned = create_task(leftover_sleeping_with_async_cleanup(&s->cleanup));
  EXPECT_TRUE(co_await testing::yield_until([s] { return s->cleanup.started.load() == 2; }));
  throw CancelledError();
}

Coro<int> main_with_spawning_cleanup(SpawnedDuringShutdown* s) {
  (void)create_task(spawns_during_cleanup(s));
  EXPECT_TRUE(co_await testing::yield_until([s] { return s->cleanup.started.load() == 1; }));
  co_await yield_now();
  co_return 0;
}

TEST(Shutdown, TasksCreatedDuringShutdownAreJoinedToo) {
  SpawnedDuringShutdown s;
  run(main_with_spawning_cleanup(&s), testing::test_options(2));
  ASSERT_TRUE(s.spawned.valid());
  EXPECT_TRUE(s.spawned.done()) << "run() returned before a task made during shutdown ended";
  EXPECT_EQ(s.cleanup.cleaned.load(), 1);
  EXPECT_EQ(s.cleanup.after_await_in_cleanup.load(), 1);
}

Coro<int> main_fails_with_leftovers(Cleanup* c) {
  Future<int> never;
  (void)create_task(leftover_waiting(never, c));
  EXPECT_TRUE(co_await testing::yield_until([&] { return c->started.load() == 1; }));
  throw MyError(5);
}

TEST(Shutdown, MainsExceptionWithLeftovers) {
  Cleanup c;
  EXPECT_THROW(run(main_fails_with_leftovers(&c), testing::test_options(2)), MyError);
  EXPECT_EQ(c.cleaned.load(), 1);
}

// --- runtimes and futures -------------------------------------------------------

// A future belongs to one runtime: a task of another runtime cannot await it.
Coro<bool> await_foreign(Future<int> foreign) {
  try {
    (void)co_await foreign;
  } catch (const RuntimeError&) {
    co_return true;
  }
  co_return false;
}

Coro<void> main_lends_a_future() {
  Future<int> mine;
  Future<bool> verdict;
  std::thread other([mine, verdict] {
    bool threw = run(await_foreign(mine), testing::test_options(1));
    verdict.set_result(threw);
  });
  bool threw = co_await verdict;
  other.join();
  EXPECT_TRUE(threw) << "awaiting a future of another runtime must raise RuntimeError";
  EXPECT_FALSE(mine.done());
}

TEST(Runtimes, AwaitingAFutureOfAnotherRuntimeIsRuntimeError) {
  run(main_lends_a_future(), testing::test_options(1));
}

// --- many workers ------------------------------------------------------------------

Coro<long> leaf(int i) {
  if (i % 7 == 0) co_await yield_now();
  co_return i;
}

Coro<long> branch(int base, int fanout) {
  std::vector<Task<long>> kids;
  kids.reserve(fanout);
  for (int i = 0; i < fanout; ++i) kids.push_back(create_task(leaf(base + i)));
  long sum = 0;
  for (auto& k : kids) sum += co_await k;
  co_return sum;
}

Coro<long> tree(int branches, int fanout) {
  std::vector<Task<long>> bs;
  for (int b = 0; b < branches; ++b) bs.push_back(create_task(branch(b * fanout, fanout)));
  long sum = 0;
  for (auto& t : bs) sum += co_await t;
  co_return sum;
}

class Stress : public ::testing::TestWithParam<int> {};

TEST_P(Stress, TenThousandTasksCreatedFromTasks) {
  const int branches = scaled(100, 4);
  const int fanout = 100;
  const long n = static_cast<long>(branches) * fanout;
  EXPECT_EQ(run(tree(branches, fanout), testing::test_options(static_cast<std::uint32_t>(GetParam()))),
            n * (n - 1) / 2);
}

Coro<long> fib(int n) {
  if (n < 2) co_return n;
  Task<long> a = create_task(fib(n - 1));
  long b = co_await fib(n - 2);
  co_return co_await a + b;
}

TEST_P(Stress, ForkJoinFib) {
  const int n = testing::kSanitized ? 14 : 18;  // 18: ~4000 tasks
  const long expected = testing::kSanitized ? 377 : 2584;
  EXPECT_EQ(run(fib(n), testing::test_options(static_cast<std::uint32_t>(GetParam()))), expected);
}

// Two pinned tasks on different workers wake each other through futures:
// every wake-up crosses workers.
Coro<int> ping(std::vector<Future<int>>* to_pong, std::vector<Future<int>>* to_ping, int rounds) {
  int last = 0;
  for (int i = 0; i < rounds; ++i) {
    (*to_pong)[i].set_result(i);
    last = co_await (*to_ping)[i];
  }
  co_return last;
}

Coro<std::thread::id> pong(std::vector<Future<int>>* to_pong, std::vector<Future<int>>* to_ping,
                           int rounds) {
  for (int i = 0; i < rounds; ++i) {
    int v = co_await (*to_pong)[i];
    (*to_ping)[i].set_result(v + 1);
  }
  co_return std::this_thread::get_id();
}

Coro<std::thread::id> thread_here() { co_return std::this_thread::get_id(); }

Coro<void> cross_worker_ping_pong(int rounds) {
  Runtime& rt = get_running_loop().runtime();
  std::vector<Future<int>> to_pong;
  std::vector<Future<int>> to_ping;
  for (int i = 0; i < rounds; ++i) {
    to_pong.emplace_back();
    to_ping.emplace_back();
  }
  const std::uint32_t last = rt.num_workers() - 1;
  std::thread::id t0 = co_await rt.loop(0).create_pinned_task(thread_here());
  std::thread::id t1 = co_await rt.loop(last).create_pinned_task(thread_here());
  EXPECT_NE(t0, t1);
  Task<int> a = rt.loop(0).create_pinned_task(ping(&to_pong, &to_ping, rounds));
  Task<std::thread::id> b = rt.loop(last).create_pinned_task(pong(&to_pong, &to_ping, rounds));
  EXPECT_EQ(co_await a, rounds);
  EXPECT_EQ(co_await b, t1);
}

TEST_P(Stress, CrossWorkerWakeupsThroughFutures) {
  if (GetParam() < 2) GTEST_SKIP() << "needs two workers";
  run(cross_worker_ping_pong(scaled(2000)), testing::test_options(static_cast<std::uint32_t>(GetParam())));
}

// Unpinned tasks on any worker wake a chain of waiters; the chain hops
// between workers as they steal work.
Coro<int> relay(Future<int> in, Future<int> out) {
  int v = co_await in;
  auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
  while (std::chrono::steady_clock::now() < until) {
  }
  out.set_result(v + 1);
  co_return v;
}

Coro<void> relay_chain(int n) {
  std::vector<Future<int>> fs;
  for (int i = 0; i <= n; ++i) fs.emplace_back();
  std::vector<Task<int>> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back(create_task(relay(fs[i], fs[i + 1])));
  co_await yield_now();
  fs[0].set_result(0);
  EXPECT_EQ(co_await fs[n], n);
  for (int i = 0; i < n; ++i) EXPECT_EQ(co_await tasks[i], i);
}

TEST_P(Stress, RelayChainAcrossWorkers) {
  run(relay_chain(scaled(2000)), testing::test_options(static_cast<std::uint32_t>(GetParam())));
}

// Plain threads complete futures that tasks on every worker wait for.
Coro<void> threads_wake_tasks(int per_thread) {
  const int kThreads = 3;
  std::vector<std::vector<Future<int>>> fs(kThreads);
  std::vector<Task<int>> tasks;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < per_thread; ++i) {
      fs[t].emplace_back();
      auto wait = [](Future<int> f) -> Coro<int> { co_return co_await f; };
      tasks.push_back(create_task(wait(fs[t].back())));
    }
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&fs, t] {
      for (std::size_t i = 0; i < fs[t].size(); ++i) fs[t][i].set_result(1);
    });
  }
  long sum = 0;
  for (auto& task : tasks) sum += co_await task;
  for (auto& th : threads) th.join();
  EXPECT_EQ(sum, static_cast<long>(kThreads) * per_thread);
}

TEST_P(Stress, PlainThreadsWakeTasksOnAllWorkers) {
  run(threads_wake_tasks(scaled(3000)), testing::test_options(static_cast<std::uint32_t>(GetParam())));
}

INSTANTIATE_TEST_SUITE_P(Workers, Stress, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "workers" + std::to_string(i.param);
                         });

}  // namespace
}  // namespace weft
