// The multi-worker scheduler: work stealing while a worker is blocked,
// fairness (the LIFO slot, pinned tasks, the yield budget, timers), pinned
// tasks staying on their loop, idle workers parking and waking, and the
// seeded shuffle mode.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/mt_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using mt_testing::co_wait_until;
using mt_testing::kLongWait;
using mt_testing::ms_since;
using mt_testing::ThreadSet;
using testing::scaled;
using testing::test_options;

// Spins without suspending: the worker running it is stuck until `until`
// holds or `limit` passed. Returns whether `until` held.
template <typename Pred>
bool block_worker_until(Pred until, std::chrono::milliseconds limit) {
  const auto deadline = mt_testing::Clock::now() + limit;
  while (!until()) {
    if (mt_testing::Clock::now() >= deadline) return until();
    std::this_thread::sleep_for(50us);
  }
  return true;
}

// --- stealing -----------------------------------------------------------------------

struct StealProbe {
  std::atomic<int> done{0};
  std::atomic<int> on_blocked_thread{0};
  std::atomic<std::thread::id> blocked_thread{};
  ThreadSet small_threads;
  std::atomic<bool> all_done_while_blocked{false};
};

Coro<void> small_task(StealProbe* p, Future<void> go) {
  co_await go;
  p->small_threads.add();
  if (std::this_thread::get_id() == p->blocked_thread.load()) p->on_blocked_thread.fetch_add(1);
  p->done.fetch_add(1);
}

Coro<void> blocker(StealProbe* p, Future<void> go, int n) {
  p->blocked_thread = std::this_thread::get_id();
  // Wakes all the small tasks from this worker: they land in its LIFO slot,
  // its ring and (past 256) the inject queue. This worker then blocks, so the
  // other one must steal every one of them.
  go.set_result();
  p->all_done_while_blocked =
      block_worker_until([&] { return p->done.load() == n; }, std::chrono::milliseconds(5000));
  co_return;
}

Coro<void> idle_worker_steals_from_a_blocked_one() {
  const int n = 1000;
  StealProbe p;
  Future<void> go;
  std::vector<Task<void>> smalls;
  for (int i = 0; i < n; ++i) smalls.push_back(create_task(small_task(&p, go)));
  // Let every small task start and suspend on `go` first.
  EXPECT_TRUE(co_await co_wait_until([&] {
    return std::all_of(smalls.begin(), smalls.end(),
                       [](const Task<void>& t) { return !t.waiting_on().empty(); });
  }));
  auto t0 = mt_testing::Clock::now();
  Task<void> b = create_task(blocker(&p, go, n));
  co_await b;
  for (auto& t : smalls) co_await t;
  EXPECT_TRUE(p.all_done_while_blocked.load())
      << "only " << p.done.load() << " of " << n << " tasks ran while a worker was blocked";
  EXPECT_EQ(p.on_blocked_thread.load(), 0);
  EXPECT_EQ(p.small_threads.size(), 1u) << "all ran on the one free worker";
  EXPECT_FALSE(p.small_threads.contains(p.blocked_thread.load()));
  EXPECT_LT(ms_since(t0), 2000.0);
}

WEFT_CO_TEST_WITH(Scheduler, IdleWorkerStealsFromABlockedOne, test_options(2)) {
  co_await idle_worker_steals_from_a_blocked_one();
}

WEFT_CO_TEST_WITH(Scheduler, NewTasksSpreadOverWorkers, test_options(2)) {
  // Tasks spawned by one task in a burst end up on both workers.
  ThreadSet threads;
  std::vector<Task<void>> tasks;
  for (int i = 0; i < 200; ++i) {
    tasks.push_back(create_task([](ThreadSet* threads) -> Coro<void> {
      threads->add();
      // Busy for a moment, so that one worker cannot drain the queue alone.
      block_worker_until([] { return false; }, 1ms);
      co_return;
    }(&threads)));
  }
  for (auto& t : tasks) co_await t;
  EXPECT_EQ(threads.size(), 2u);
}

Coro<void> await_and_flag(Future<void> wake, std::atomic<bool>* ran) {
  co_await wake;
  ran->store(true);
}

Coro<void> wake_then_block(Future<void> wake, std::atomic<bool>* ran, bool* ran_while_blocked) {
  // Give the other worker time to run out of work and park.
  std::this_thread::sleep_for(20ms);
  wake.set_result();  // the waiter goes to this worker's LIFO slot
  *ran_while_blocked = block_worker_until([ran] { return ran->load(); }, 500ms);
  co_return;
}

Coro<void> task_woken_by_a_worker_that_then_blocks_runs_elsewhere() {
  // The scheduler's own rule (Loop::search): "a task woken by a worker that is
  // now stuck in a long step must not wait for it". Here the other worker is
  // parked when that happens.
  for (int round = 0; round < 3; ++round) {
    Future<void> wake;
    std::atomic<bool> ran{false};
    bool ran_while_blocked = false;
    Task<void> waiter = create_task(await_and_flag(wake, &ran));
    EXPECT_TRUE(co_await co_wait_until([&] { return !waiter.waiting_on().empty(); }));
    co_await create_task(wake_then_block(wake, &ran, &ran_while_blocked));
    co_await waiter;
    EXPECT_TRUE(ran_while_blocked)
        << "round " << round << ": the woken task waited for its waker's worker to finish "
        << "a long step while the other worker slept";
  }
}

WEFT_CO_TEST_WITH(Scheduler, TaskWokenByAWorkerThatThenBlocksRunsElsewhere, test_options(2)) {
  co_await task_woken_by_a_worker_that_then_blocks_runs_elsewhere();
}

// Wakes the awaiting task from a callback on loop `i`: a woken task that is
// not pinned runs on the worker that woke it (unless someone steals it).
Coro<void> hop_to(std::uint32_t i) {
  Future<void> f;
  get_running_loop().runtime().loop(i).call_soon_threadsafe([f] { f.set_result(); });
  co_await f;
}

struct SleeperProbe {
  std::atomic<bool> woke{false};
  std::atomic<bool> sleeping_on_loop0{false};
  double slept_ms = 0;
};

Coro<void> block_loop0_until_woken(Future<void> go, SleeperProbe* p) {
  co_await go;
  block_worker_until([p] { return p->woke.load(); }, 500ms);
}

Coro<void> sleep_on_loop0(Future<void> go, SleeperProbe* p) {
  // Get onto loop 0, so that the sleep's timer is loop 0's.
  for (int i = 0; i < 100 && get_running_loop().index() != 0; ++i) co_await hop_to(0);
  p->sleeping_on_loop0 = get_running_loop().index() == 0;
  go.set_result();  // the blocker (pinned to loop 0) runs as soon as we suspend
  auto t0 = mt_testing::Clock::now();
  co_await sleep(10ms);
  p->slept_ms = ms_since(t0);
  p->woke = true;
}

// Known limitation, kept as a target: a timer fires on the loop that armed it,
// so a sleep whose loop is blocked by a long step ends late even when another
// worker is idle (docs/scheduler.md, "Timers"). Enable when idle workers can
// fire overdue timers of a busy loop.
WEFT_CO_TEST_WITH(Scheduler, DISABLED_SleepEndsOnTimeWhileItsTimersLoopIsBlocked, test_options(2)) {
  // A task that is not pinned sleeps; the loop holding its timer is then
  // blocked by another task for a long step while the other worker is idle.
  // The sleeper is not tied to that loop: it should wake about on time.
  Runtime& rt = get_running_loop().runtime();
  SleeperProbe p;
  Future<void> go;
  Task<void> blocker = rt.loop(0).create_pinned_task(block_loop0_until_woken(go, &p));
  Task<void> sleeper = create_task(sleep_on_loop0(go, &p));
  co_await sleeper;
  co_await blocker;
  WEFT_CO_ASSERT_TRUE(p.sleeping_on_loop0.load());
  EXPECT_LT(p.slept_ms, 250.0) << "a 10 ms sleep took " << p.slept_ms
                               << " ms: its timer waited for the blocked loop while another "
                                  "worker was idle";
}

// --- fairness ------------------------------------------------------------------------------

struct PingPong {
  Future<int> to_a;
  Future<int> to_b;
  std::atomic<long> exchanges{0};
  std::atomic<bool> stop{false};
};

// Two tasks handing a ball back and forth through futures: each wake puts
// the other one in the LIFO slot.
Coro<void> player(PingPong* pp, bool is_a, long max_exchanges) {
  for (;;) {
    int ball = co_await (is_a ? pp->to_a : pp->to_b);
    if (is_a) {
      pp->to_a = Future<int>();
    } else {
      pp->to_b = Future<int>();
    }
    long n = pp->exchanges.fetch_add(1) + 1;
    Future<int> other = is_a ? pp->to_b : pp->to_a;
    if (pp->stop.load() || n >= max_exchanges) {
      pp->stop = true;
      other.set_result(-1);
      co_return;
    }
    if (ball < 0) co_return;
    other.set_result(ball + 1);
  }
}

Coro<void> ping_pong_does_not_starve_a_yielder() {
  PingPong pp;
  const long kMaxExchanges = 2'000'000;
  const long kYieldsWanted = 1000;
  std::atomic<long> yields{0};
  pp.to_a = Future<int>();
  pp.to_b = Future<int>();
  Task<void> a = create_task(player(&pp, true, kMaxExchanges));
  Task<void> b = create_task(player(&pp, false, kMaxExchanges));
  Task<void> y = create_task([](PingPong* pp, std::atomic<long>* yields, long wanted) -> Coro<void> {
    while (!pp->stop.load()) {
      co_await yield_now();
      if (yields->fetch_add(1) + 1 >= wanted) pp->stop = true;
    }
  }(&pp, &yields, kYieldsWanted));
  co_await yield_now();
  pp.to_a.set_result(0);
  co_await a;
  co_await b;
  co_await y;
  EXPECT_GE(yields.load(), kYieldsWanted)
      << "the yielding task ran " << yields.load() << " times during " << pp.exchanges.load()
      << " ping-pong exchanges";
  EXPECT_LT(pp.exchanges.load(), kMaxExchanges);
}

WEFT_CO_TEST_WITH(Scheduler, PingPongDoesNotStarveAYielderOnOneWorker, test_options(1)) {
  co_await ping_pong_does_not_starve_a_yielder();
}

WEFT_CO_TEST_WITH(Scheduler, PingPongDoesNotStarveAYielderOnTwoWorkers, test_options(2)) {
  co_await ping_pong_does_not_starve_a_yielder();
}

WEFT_CO_TEST_WITH(Scheduler, YieldBudgetLetsOthersRun, test_options(1)) {
  // A task awaiting futures that are already done never suspends on them,
  // but must give the worker up now and then.
  Future<int> done_future;
  done_future.set_result(1);
  std::atomic<bool> flag{false};
  Task<void> other = create_task([](std::atomic<bool>* flag) -> Coro<void> {
    flag->store(true);
    co_return;
  }(&flag));
  long awaits = 0;
  const long kMax = 10'000'000;
  while (!flag.load() && awaits < kMax) {
    awaits += co_await done_future;
  }
  EXPECT_TRUE(flag.load()) << "the other task never ran during " << awaits << " awaits";
  EXPECT_LE(awaits, 10 * detail::kStepBudget) << "the budget should yield within a few budgets";
  co_await other;
}

WEFT_CO_TEST_WITH(Scheduler, TimersFireWhileATaskSpinsOnDoneFutures, test_options(1)) {
  Future<int> done_future;
  done_future.set_result(1);
  std::atomic<bool> fired{false};
  Task<void> sleeper = create_task([](std::atomic<bool>* fired) -> Coro<void> {
    co_await sleep(2ms);
    fired->store(true);
  }(&fired));
  auto t0 = mt_testing::Clock::now();
  while (!fired.load() && ms_since(t0) < 5000) co_await done_future;
  EXPECT_TRUE(fired.load());
  EXPECT_LT(ms_since(t0), 1000.0) << "a 2 ms timer fired late";
  co_await sleeper;
}

WEFT_CO_TEST_WITH(Scheduler, YieldingPinnedTaskDoesNotStarveLocalTasks, test_options(1)) {
  // A pinned task that keeps yielding must not monopolise its loop: the
  // ordinary tasks in the same loop's queue get their turn.
  std::atomic<bool> flag{false};
  Task<long> spinner = create_pinned_task([](std::atomic<bool>* flag) -> Coro<long> {
    long yields = 0;
    while (!flag->load() && yields < 200'000) {
      co_await yield_now();
      ++yields;
    }
    co_return yields;
  }(&flag));
  co_await yield_now();  // the spinner is running
  Task<void> setter = create_task([](std::atomic<bool>* flag) -> Coro<void> {
    flag->store(true);
    co_return;
  }(&flag));
  long yields = co_await spinner;
  EXPECT_TRUE(flag.load()) << "the ordinary task never ran while a pinned task yielded "
                           << yields << " times";
  EXPECT_LT(yields, 10'000);
  co_await setter;
}

WEFT_CO_TEST_WITH(Scheduler, TwoYieldingTasksShareOneWorker, test_options(1)) {
  std::atomic<long> a{0};
  std::atomic<long> b{0};
  std::atomic<bool> stop{false};
  auto body = [](std::atomic<long>* mine, std::atomic<bool>* stop) -> Coro<void> {
    while (!stop->load()) {
      ++*mine;
      co_await yield_now();
    }
  };
  Task<void> ta = create_task(body(&a, &stop));
  Task<void> tb = create_task(body(&b, &stop));
  EXPECT_TRUE(co_await co_wait_until([&] { return a.load() > 1000 && b.load() > 1000; }));
  stop = true;
  co_await ta;
  co_await tb;
  // Round robin: neither gets far ahead.
  double ratio = static_cast<double>(a.load()) / static_cast<double>(std::max(1L, b.load()));
  EXPECT_GT(ratio, 0.5);
  EXPECT_LT(ratio, 2.0);
}

// --- pinned tasks --------------------------------------------------------------------------

struct PinRecord {
  std::uint32_t expected = 0;
  std::atomic<int> wrong_loop{0};
  std::atomic<int> steps{0};
  ThreadSet threads;
};

Coro<void> pinned_body(PinRecord* r, int steps, Future<void> external) {
  for (int k = 0; k < steps; ++k) {
    if (get_running_loop().index() != r->expected) r->wrong_loop.fetch_add(1);
    r->threads.add();
    r->steps.fetch_add(1);
    switch (k % 4) {
      case 0:
        co_await yield_now();
        break;
      case 1:
        co_await sleep(std::chrono::microseconds(50 + 10 * (k % 7)));
        break;
      case 2:
        if (k == 6) co_await external;  // completed by a plain thread
        break;
      default:
        // Woken by a task that may run on another worker.
        co_await create_task([]() -> Coro<int> { co_return 1; }());
        break;
    }
  }
  if (get_running_loop().index() != r->expected) r->wrong_loop.fetch_add(1);
}

WEFT_CO_TEST_WITH(Scheduler, PinnedTasksNeverLeaveTheirLoop, test_options(3)) {
  Runtime& rt = get_running_loop().runtime();
  constexpr int kPerLoop = 4;
  const int steps = scaled(200, 4);
  std::vector<std::unique_ptr<PinRecord>> records;
  std::vector<Task<void>> tasks;
  std::vector<Future<void>> externals;
  for (std::uint32_t l = 0; l < rt.num_workers(); ++l) {
    for (int j = 0; j < kPerLoop; ++j) {
      records.push_back(std::make_unique<PinRecord>());
      records.back()->expected = l;
      Future<void> ext;
      externals.push_back(ext);
      tasks.push_back(rt.loop(l).create_pinned_task(pinned_body(records.back().get(), steps, ext)));
    }
  }
  // Meanwhile, ordinary tasks keep the other workers busy stealing.
  std::vector<Task<void>> noise;
  for (int i = 0; i < 200; ++i) {
    noise.push_back(create_task([]() -> Coro<void> {
      for (int k = 0; k < 5; ++k) co_await yield_now();
    }()));
  }
  std::thread completer([externals] {
    std::this_thread::sleep_for(2ms);
    for (auto& e : externals) e.set_result();
  });
  for (auto& t : tasks) co_await t;
  for (auto& t : noise) co_await t;
  completer.join();
  for (auto& r : records) {
    EXPECT_EQ(r->wrong_loop.load(), 0) << "a task pinned to loop " << r->expected << " ran elsewhere";
    EXPECT_EQ(r->threads.size(), 1u);
    EXPECT_EQ(r->steps.load(), steps);
  }
}

WEFT_CO_TEST_WITH(Scheduler, CreatePinnedTaskPinsToTheCurrentLoop, test_options(2)) {
  // From a task pinned to loop 1, weft::create_pinned_task pins to loop 1.
  Runtime& rt = get_running_loop().runtime();
  auto inner = []() -> Coro<std::set<std::uint32_t>> {
    std::set<std::uint32_t> seen;
    for (int k = 0; k < 50; ++k) {
      seen.insert(get_running_loop().index());
      if (k % 2) {
        co_await yield_now();
      } else {
        co_await sleep(50us);
      }
    }
    co_return seen;
  };
  auto outer = [inner]() -> Coro<std::set<std::uint32_t>> {
    co_return co_await create_pinned_task(inner());
  };
  std::set<std::uint32_t> seen = co_await rt.loop(1).create_pinned_task(outer());
  EXPECT_EQ(seen, (std::set<std::uint32_t>{1u}));
}

// --- idle workers --------------------------------------------------------------------------

double process_cpu_ms() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

WEFT_CO_TEST_WITH(Scheduler, IdleWorkersDoNotSpin, test_options(2)) {
  co_await sleep(20ms);  // start-up settles
  const double cpu0 = process_cpu_ms();
  auto t0 = mt_testing::Clock::now();
  co_await sleep(300ms);
  const double wall = ms_since(t0);
  const double cpu = process_cpu_ms() - cpu0;
  EXPECT_LT(cpu, 0.25 * wall) << "2 idle workers used " << cpu << " ms of CPU in " << wall
                              << " ms: they spin instead of parking";
}

WEFT_CO_TEST_WITH(Scheduler, ParkedWorkersWakePromptlyForRemoteWork, test_options(2)) {
  for (int round = 0; round < 10; ++round) {
    Future<int> f;
    co_await sleep(5ms);  // both workers park while this task waits
    auto t0 = mt_testing::Clock::now();
    std::thread th([f] { f.set_result(1); });
    EXPECT_EQ(co_await f, 1);
    EXPECT_LT(ms_since(t0), 500.0) << "round " << round;
    th.join();
  }
}

WEFT_CO_TEST_WITH(Scheduler, SleepersWakeOnTime, test_options(2)) {
  std::vector<Task<double>> tasks;
  for (int i = 0; i < 20; ++i) {
    tasks.push_back(create_task([](int i) -> Coro<double> {
      auto t0 = mt_testing::Clock::now();
      co_await sleep(std::chrono::milliseconds(5 + i % 5));
      co_return ms_since(t0);
    }(i)));
  }
  for (int i = 0; i < 20; ++i) {
    double took = co_await tasks[static_cast<std::size_t>(i)];
    EXPECT_GE(took, 5.0 + i % 5 - 0.5);
    EXPECT_LT(took, 500.0);
  }
}

// --- shuffle mode ---------------------------------------------------------------------------

Coro<long> shuffle_workload() {
  // A chain of futures (each task completes the next one's), fan-out, yields,
  // sleeps and pinned tasks.
  const int n = scaled(500, 5);
  std::vector<Future<long>> links(static_cast<std::size_t>(n + 1));
  std::vector<Task<void>> tasks;
  for (int i = 0; i < n; ++i) {
    tasks.push_back(create_task([](Future<long> in, Future<long> out, int i) -> Coro<void> {
      long v = co_await in;
      if (i % 3 == 0) co_await yield_now();
      if (i % 7 == 0) co_await sleep(20us);
      out.set_result(v + i);
    }(links[static_cast<std::size_t>(i)], links[static_cast<std::size_t>(i + 1)], i)));
  }
  Runtime& rt = get_running_loop().runtime();
  std::atomic<int> wrong{0};
  std::vector<Task<void>> pinned;
  for (std::uint32_t l = 0; l < rt.num_workers(); ++l) {
    pinned.push_back(rt.loop(l).create_pinned_task([](std::uint32_t l, std::atomic<int>* wrong) -> Coro<void> {
      for (int k = 0; k < 50; ++k) {
        co_await yield_now();
        if (get_running_loop().index() != l) wrong->fetch_add(1);
      }
    }(l, &wrong)));
  }
  links[0].set_result(0);
  long result = co_await links[static_cast<std::size_t>(n)];
  for (auto& t : tasks) co_await t;
  for (auto& t : pinned) co_await t;
  EXPECT_EQ(wrong.load(), 0);
  co_return result;
}

TEST(Scheduler, ShuffleModeRunsAWorkloadCorrectly) {
  const long n = scaled(500, 5);
  const long expected = n * (n - 1) / 2;
  for (std::uint64_t seed : {1ull, 42ull, 0xdeadbeefull}) {
    SCOPED_TRACE("shuffle seed " + std::to_string(seed));
    RuntimeOptions o = test_options(2);
    o.shuffle_seed = seed;
    Runtime rt(std::move(o));
    EXPECT_EQ(rt.shuffle_seed(), seed);
    EXPECT_EQ(rt.run(shuffle_workload()), expected);
  }
}

TEST(Scheduler, ShuffleModeOnOneWorker) {
  const long n = scaled(500, 5);
  RuntimeOptions o = test_options(1);
  o.shuffle_seed = 7;
  EXPECT_EQ(run(shuffle_workload(), std::move(o)), n * (n - 1) / 2);
}

// --- the whole scheduler at four-slot local queues ------------------------------------
// RuntimeOptions::local_queue_slots = 4: every few pushes overflow to the shared
// queue and every steal is at its limit, beside the LIFO slot. The tests above
// that exercise those paths run again here.

RuntimeOptions four_slot_options(std::uint32_t workers, std::uint64_t shuffle_seed = 0) {
  RuntimeOptions o = test_options(workers);
  o.local_queue_slots = 4;
  o.shuffle_seed = shuffle_seed;
  return o;
}

// The order in which 100 children made in one step run.
Coro<std::vector<int>> run_order_of_children() {
  std::vector<int> order;
  std::vector<Task<void>> children;
  for (int i = 0; i < 100; ++i) {
    children.push_back(create_task([](std::vector<int>* order, int i) -> Coro<void> {
      order->push_back(i);
      co_return;
    }(&order, i)));
  }
  for (auto& t : children) co_await t;
  co_return order;
}

WEFT_CO_TEST_WITH(FourSlotQueues, NewTasksOverflowToTheSharedQueueAndAllRunOnce, four_slot_options(1)) {
  // One worker, so the order is the scheduler's alone. With the full ring the
  // 100 children run in the order they were made; with four slots, every
  // fifth push sends the oldest two and itself to the shared queue, which the
  // worker takes after its ring: the order shows the overflow happened.
  EXPECT_EQ(get_running_loop().runtime().local_queue_slots(), 4u);
  std::vector<int> order = co_await run_order_of_children();
  WEFT_CO_ASSERT_TRUE(order.size() == 100u);
  EXPECT_FALSE(std::is_sorted(order.begin(), order.end())) << "no push overflowed";
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sorted[static_cast<std::size_t>(i)], i) << "each ran once";
}

WEFT_CO_TEST_WITH(FourSlotQueues, TheFullRingRunsNewTasksInOrder, test_options(1)) {
  // The control for the test above: the same program on the default queue.
  EXPECT_EQ(get_running_loop().runtime().local_queue_slots(), 256u);
  std::vector<int> order = co_await run_order_of_children();
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

WEFT_CO_TEST_WITH(FourSlotQueues, IdleWorkerStealsFromABlockedOne, four_slot_options(2)) {
  co_await idle_worker_steals_from_a_blocked_one();
}

WEFT_CO_TEST_WITH(FourSlotQueues, TaskWokenByAWorkerThatThenBlocksRunsElsewhere, four_slot_options(2)) {
  co_await task_woken_by_a_worker_that_then_blocks_runs_elsewhere();
}

WEFT_CO_TEST_WITH(FourSlotQueues, PingPongDoesNotStarveAYielderOnOneWorker, four_slot_options(1)) {
  co_await ping_pong_does_not_starve_a_yielder();
}

WEFT_CO_TEST_WITH(FourSlotQueues, PingPongDoesNotStarveAYielderOnTwoWorkers, four_slot_options(2)) {
  co_await ping_pong_does_not_starve_a_yielder();
}

TEST(FourSlotQueues, ShuffleModeRunsAWorkloadCorrectly) {
  const long n = scaled(500, 5);
  for (std::uint64_t seed : {1ull, 42ull, 0xdeadbeefull}) {
    SCOPED_TRACE("shuffle seed " + std::to_string(seed));
    Runtime rt(four_slot_options(3, seed));
    EXPECT_EQ(rt.run(shuffle_workload()), n * (n - 1) / 2);
  }
}

TEST(FourSlotQueues, ASlotCountThatIsNotAPowerOfTwoFromFourTo256IsRefused) {
  for (std::uint32_t bad : {1u, 3u, 5u, 100u, 512u}) {
    RuntimeOptions o = test_options(1);
    o.local_queue_slots = bad;
    try {
      Runtime rt(std::move(o));
      ADD_FAILURE() << bad << " slots were accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("local_queue_slots is " + std::to_string(bad)),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace weft
