// detail::LocalQueue, the per-worker run queue (Tokio's design): the owner
// pushes and pops FIFO, a full queue sends its oldest half plus the new task
// to the global InjectQueue in one batch, and thieves take about half of the
// queue at a time. The same at four slots (BasicLocalQueue<4>), where
// overflow and the steal limits are hit all the time, single-threaded and
// with an owner and three thieves on seeded schedules. The queue stores TaskBase pointers and never runs them, so
// these tests use inert FakeTasks that are only counted.
#include "weft/sched/detail/local_queue.h"

#include <cstdlib>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "weft/core/detail/loop_base.h"
#include "weft/core/detail/ref_ptr.h"
#include "weft/core/detail/task_base.h"
#include "weft/sched/detail/inject_queue.h"

namespace weft::detail {
namespace {

using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

constexpr std::uint32_t kCap = LocalQueue::kCapacity;

// A LoopBase that nothing may use: the fake tasks are never run or woken.
class DummyLoop final : public LoopBase {
 public:
  void post(Callback) override { ADD_FAILURE() << "DummyLoop::post"; }
  void schedule(TaskBase*, Wake) override { ADD_FAILURE() << "DummyLoop::schedule"; }
  void task_finished(TaskBase*) noexcept override {}
  const void* runtime_id() const noexcept override { return this; }
  std::int64_t now_ns() const noexcept override { return 0; }
  void report_error(std::string_view m) noexcept override {
    ADD_FAILURE() << "DummyLoop::report_error: " << m;
  }
};

// A task that is only ever queued, never run.
class FakeTask final : public TaskBase {
 public:
  FakeTask(LoopBase* loop, int index) : TaskBase(loop, "fake"), index_(index) {}
  int index() const { return index_; }

 private:
  void on_body_done() noexcept override { ADD_FAILURE() << "FakeTask ran"; }
  // It has no body: the task state never asks for its promise.
  const PromiseBase& promise_of(std::coroutine_handle<>) const noexcept override { std::abort(); }
  const int index_;
};

int index_of(TaskBase* t) { return static_cast<FakeTask*>(t)->index(); }

class LocalQueueTest : public ::testing::Test {
 protected:
  // Makes tasks 0..n-1 (appended to the pool; indices continue).
  void make_tasks(int n) {
    for (int i = 0; i < n; ++i) {
      int idx = static_cast<int>(tasks_.size());
      tasks_.emplace_back(new FakeTask(&loop_, idx), kAdoptRef);
    }
  }
  TaskBase* task(int i) { return tasks_.at(static_cast<std::size_t>(i)).get(); }

  // Pops everything from `q`'s owner side, returning the indices in order.
  static std::vector<int> drain(LocalQueue& q) {
    std::vector<int> out;
    auto owner = q.owner();
    while (TaskBase* t = owner.pop()) out.push_back(index_of(t));
    return out;
  }
  static std::vector<int> drain(InjectQueue& q) {
    std::vector<int> out;
    while (TaskBase* t = q.pop()) out.push_back(index_of(t));
    return out;
  }
  static std::vector<int> range(int from, int to) {
    std::vector<int> v;
    for (int i = from; i < to; ++i) v.push_back(i);
    return v;
  }

  DummyLoop loop_;
  std::vector<RefPtr<FakeTask>> tasks_;
  LocalQueue q_;
  InjectQueue inject_;
};

TEST_F(LocalQueueTest, NewQueueIsEmpty) {
  auto owner = q_.owner();
  EXPECT_TRUE(owner.is_empty());
  EXPECT_EQ(owner.size(), 0u);
  EXPECT_EQ(owner.pop(), nullptr);
  EXPECT_TRUE(q_.stealer().looks_empty());
}

TEST_F(LocalQueueTest, OwnerPushPopIsFifo) {
  make_tasks(10);
  auto owner = q_.owner();
  for (int i = 0; i < 10; ++i) owner.push_back(task(i), inject_);
  EXPECT_EQ(owner.size(), 10u);
  EXPECT_FALSE(owner.is_empty());
  EXPECT_FALSE(q_.stealer().looks_empty());
  EXPECT_EQ(drain(q_), range(0, 10));
  EXPECT_TRUE(owner.is_empty());
  EXPECT_EQ(owner.pop(), nullptr);
  EXPECT_TRUE(inject_.is_empty());
}

TEST_F(LocalQueueTest, InterleavedPushPopStaysFifoAcrossRingWraps) {
  // 10 laps of the 256-slot ring with 1..7 tasks in the queue at a time.
  const int n = 10 * static_cast<int>(kCap);
  make_tasks(n);
  auto owner = q_.owner();
  std::vector<int> popped;
  int next = 0;
  std::mt19937 rng(7);
  while (next < n || !owner.is_empty()) {
    int pushes = std::min<int>(n - next, static_cast<int>(rng() % 8));
    for (int i = 0; i < pushes; ++i) owner.push_back(task(next++), inject_);
    int pops = static_cast<int>(rng() % 8);
    for (int i = 0; i < pops; ++i) {
      if (TaskBase* t = owner.pop()) popped.push_back(index_of(t));
    }
  }
  EXPECT_EQ(popped, range(0, n));
  EXPECT_TRUE(inject_.is_empty()) << "the queue never held more than a few tasks";
}

TEST_F(LocalQueueTest, HoldsCapacityTasksWithoutOverflow) {
  make_tasks(kCap);
  auto owner = q_.owner();
  for (std::uint32_t i = 0; i < kCap; ++i) owner.push_back(task(static_cast<int>(i)), inject_);
  EXPECT_EQ(owner.size(), kCap);
  EXPECT_TRUE(inject_.is_empty());
  EXPECT_EQ(drain(q_), range(0, kCap));
}

TEST_F(LocalQueueTest, OverflowMovesOldestHalfPlusNewTaskToInjectQueue) {
  make_tasks(kCap + 1);
  auto owner = q_.owner();
  for (std::uint32_t i = 0; i <= kCap; ++i) owner.push_back(task(static_cast<int>(i)), inject_);
  // The 257th push moved the oldest 128 and itself: half + 1.
  EXPECT_EQ(inject_.size(), kCap / 2 + 1);
  EXPECT_EQ(owner.size(), kCap / 2);
  std::vector<int> expected_inject = range(0, kCap / 2);
  expected_inject.push_back(kCap);
  EXPECT_EQ(drain(inject_), expected_inject) << "one FIFO batch: oldest half, then the new task";
  EXPECT_EQ(drain(q_), range(kCap / 2, kCap));
}

TEST_F(LocalQueueTest, RepeatedOverflowKeepsEveryTaskOnce) {
  const int n = 5 * static_cast<int>(kCap) + 17;
  make_tasks(n);
  auto owner = q_.owner();
  for (int i = 0; i < n; ++i) owner.push_back(task(i), inject_);
  EXPECT_LE(owner.size(), kCap);
  std::vector<int> all = drain(inject_);
  std::vector<int> local = drain(q_);
  // Each overflow batch is the oldest half of the ring then the task being
  // pushed, so the inject queue is not globally sorted; the local queue
  // stays FIFO. Every task is in exactly one of them, once.
  EXPECT_TRUE(std::is_sorted(local.begin(), local.end()));
  EXPECT_EQ(all.size() % (kCap / 2 + 1), 0u) << "overflow moves batches of half + 1";
  all.insert(all.end(), local.begin(), local.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, range(0, n));
}

TEST_F(LocalQueueTest, OverflowAfterRingWrap) {
  // Move the ring's start to the middle, then fill past capacity.
  make_tasks(100 + kCap + 1);
  auto owner = q_.owner();
  for (int i = 0; i < 100; ++i) owner.push_back(task(i), inject_);
  EXPECT_EQ(drain(q_), range(0, 100));
  for (std::uint32_t i = 0; i <= kCap; ++i) owner.push_back(task(100 + static_cast<int>(i)), inject_);
  std::vector<int> expected_inject = range(100, 100 + kCap / 2);
  expected_inject.push_back(100 + kCap);
  EXPECT_EQ(drain(inject_), expected_inject);
  EXPECT_EQ(drain(q_), range(100 + kCap / 2, 100 + kCap));
}

TEST_F(LocalQueueTest, StealFromEmptyQueueReturnsNull) {
  LocalQueue dst;
  auto dst_owner = dst.owner();
  EXPECT_EQ(q_.stealer().steal_into(dst_owner, dst), nullptr);
  EXPECT_TRUE(dst.owner().is_empty());

  // Also once the queue has been used and emptied again.
  make_tasks(3);
  auto owner = q_.owner();
  for (int i = 0; i < 3; ++i) owner.push_back(task(i), inject_);
  drain(q_);
  EXPECT_EQ(q_.stealer().steal_into(dst_owner, dst), nullptr);
  EXPECT_TRUE(dst.owner().is_empty());
}

TEST_F(LocalQueueTest, StealMovesAboutHalfAndReturnsOne) {
  for (int n : {1, 2, 3, 10, 11, 100, static_cast<int>(kCap)}) {
    SCOPED_TRACE("queued tasks: " + std::to_string(n));
    tasks_.clear();
    make_tasks(n);
    LocalQueue src;
    LocalQueue dst;
    auto src_owner = src.owner();
    for (int i = 0; i < n; ++i) src_owner.push_back(task(i), inject_);
    auto dst_owner = dst.owner();
    TaskBase* got = src.stealer().steal_into(dst_owner, dst);
    ASSERT_NE(got, nullptr);
    std::vector<int> moved = drain(dst);
    std::vector<int> left = drain(src);
    const int stolen = static_cast<int>(moved.size()) + 1;
    // About half: ceil(n / 2), at most half the capacity.
    EXPECT_EQ(stolen, std::min<int>((n + 1) / 2, kCap / 2));
    // Thieves take the oldest tasks; the victim keeps the newest, in order.
    std::vector<int> taken = moved;
    taken.push_back(index_of(got));
    std::sort(taken.begin(), taken.end());
    EXPECT_EQ(taken, range(0, stolen));
    EXPECT_TRUE(std::is_sorted(moved.begin(), moved.end())) << "stolen tasks keep FIFO order";
    EXPECT_EQ(left, range(stolen, n));
    EXPECT_TRUE(inject_.is_empty());
  }
}

TEST_F(LocalQueueTest, StealAfterOwnerPopsAndAcrossRingWrap) {
  make_tasks(300);
  auto owner = q_.owner();
  for (int i = 0; i < 200; ++i) owner.push_back(task(i), inject_);
  for (int i = 0; i < 190; ++i) ASSERT_EQ(index_of(owner.pop()), i);
  for (int i = 200; i < 300; ++i) owner.push_back(task(i), inject_);  // wraps the ring
  // Queued: 190..299 (110 tasks).
  LocalQueue dst;
  auto dst_owner = dst.owner();
  TaskBase* got = q_.stealer().steal_into(dst_owner, dst);
  ASSERT_NE(got, nullptr);
  std::vector<int> moved = drain(dst);
  moved.push_back(index_of(got));
  EXPECT_EQ(moved, range(190, 245));
  EXPECT_EQ(drain(q_), range(245, 300));
}

TEST_F(LocalQueueTest, StealIntoAFullishQueueTakesNothing) {
  // The thief's own queue must have room for half a queue.
  make_tasks(kCap / 2 + 1 + 10);
  LocalQueue dst;
  auto dst_owner = dst.owner();
  for (std::uint32_t i = 0; i <= kCap / 2; ++i) dst_owner.push_back(task(static_cast<int>(i)), inject_);
  auto owner = q_.owner();
  for (int i = 0; i < 10; ++i) owner.push_back(task(kCap / 2 + 1 + i), inject_);
  EXPECT_EQ(q_.stealer().steal_into(dst_owner, dst), nullptr);
  EXPECT_EQ(owner.size(), 10u) << "a refused steal leaves the victim untouched";
  EXPECT_EQ(dst_owner.size(), kCap / 2 + 1);
}

TEST_F(LocalQueueTest, RepeatedStealsEmptyTheVictim) {
  make_tasks(kCap);
  auto owner = q_.owner();
  for (std::uint32_t i = 0; i < kCap; ++i) owner.push_back(task(static_cast<int>(i)), inject_);
  std::vector<int> got;
  LocalQueue dst;
  auto dst_owner = dst.owner();
  while (TaskBase* t = q_.stealer().steal_into(dst_owner, dst)) {
    got.push_back(index_of(t));
    for (int i : drain(dst)) got.push_back(i);
  }
  EXPECT_TRUE(owner.is_empty());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, range(0, kCap));
}

// One owner pushing (and sometimes popping) while thieves steal from it and
// from each other: every task is taken exactly once, by exactly one thread.
template <typename Queue = LocalQueue>
void run_concurrent_accounting(int num_thieves, int num_tasks, std::uint32_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed) + ", thieves " + std::to_string(num_thieves));
  DummyLoop loop;
  std::vector<RefPtr<FakeTask>> tasks;
  tasks.reserve(static_cast<std::size_t>(num_tasks));
  for (int i = 0; i < num_tasks; ++i) tasks.emplace_back(new FakeTask(&loop, i), kAdoptRef);

  InjectQueue inject;
  std::vector<std::unique_ptr<Queue>> queues;  // [0] is the main owner's
  for (int i = 0; i <= num_thieves; ++i) queues.push_back(std::make_unique<Queue>());
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(num_tasks));
  for (auto& s : seen) s.store(0);
  std::atomic<int> total{0};
  std::atomic<bool> start{false};
  std::vector<std::atomic<long>> taken_by(static_cast<std::size_t>(num_thieves + 1));
  for (auto& t : taken_by) t.store(0);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  std::atomic<bool> timed_out{false};

  auto take = [&](TaskBase* t, int who) {
    int idx = index_of(t);
    seen[static_cast<std::size_t>(idx)].fetch_add(1, std::memory_order_relaxed);
    taken_by[static_cast<std::size_t>(who)].fetch_add(1, std::memory_order_relaxed);
    total.fetch_add(1, std::memory_order_acq_rel);
  };
  auto expired = [&] {
    if (std::chrono::steady_clock::now() < deadline) return false;
    timed_out.store(true);
    return true;
  };

  std::thread owner_thread([&] {
    while (!start.load()) std::this_thread::yield();
    std::mt19937 rng(seed);
    auto owner = queues[0]->owner();
    for (int i = 0; i < num_tasks; ++i) {
      owner.push_back(tasks[static_cast<std::size_t>(i)].get(), inject);
      switch (rng() % 8) {
        case 0:
          if (TaskBase* t = owner.pop()) take(t, 0);
          break;
        case 1:  // a burst, to fill the ring and overflow
          for (int k = 0; k < std::min<int>(64, Queue::kCapacity + 1) && i + 1 < num_tasks; ++k) {
            owner.push_back(tasks[static_cast<std::size_t>(++i)].get(), inject);
          }
          break;
        case 2:
          if (TaskBase* t = inject.pop()) take(t, 0);
          break;
        default:
          break;
      }
    }
    // Leave the rest to the thieves for a while: on a loaded machine the OS
    // may run this thread alone until now, and the run must exercise steals.
    const auto grace = std::chrono::steady_clock::now() + 5s;
    auto thieves_took = [&] {
      long n = 0;
      for (int w = 1; w <= num_thieves; ++w) n += taken_by[static_cast<std::size_t>(w)].load();
      return n > 0;
    };
    while (!thieves_took() && total.load(std::memory_order_acquire) < num_tasks &&
           std::chrono::steady_clock::now() < grace) {
      std::this_thread::yield();
    }
    while (total.load(std::memory_order_acquire) < num_tasks && !expired()) {
      if (TaskBase* t = owner.pop()) {
        take(t, 0);
      } else if (TaskBase* t2 = inject.pop()) {
        take(t2, 0);
      } else {
        std::this_thread::yield();
      }
    }
  });

  std::vector<std::thread> thieves;
  for (int w = 1; w <= num_thieves; ++w) {
    thieves.emplace_back([&, w] {
      while (!start.load()) std::this_thread::yield();
      std::mt19937 rng(seed * 31 + static_cast<std::uint32_t>(w));
      Queue& mine = *queues[static_cast<std::size_t>(w)];
      auto my_owner = mine.owner();
      while (total.load(std::memory_order_acquire) < num_tasks && !expired()) {
        // Mostly the main owner's queue, sometimes another thief's.
        std::size_t victim = rng() % 4 != 0 ? 0 : rng() % queues.size();
        if (victim == static_cast<std::size_t>(w)) victim = 0;
        TaskBase* t = queues[victim]->stealer().steal_into(my_owner, mine);
        if (t != nullptr) {
          take(t, w);
          // Run part of the loot now; the rest stays stealable for a while.
          int runs = static_cast<int>(rng() % 8);
          for (int k = 0; k < runs; ++k) {
            if (TaskBase* u = my_owner.pop()) take(u, w);
          }
        } else if (TaskBase* u = my_owner.pop()) {
          take(u, w);
        } else if (rng() % 16 == 0) {
          if (TaskBase* v = inject.pop()) take(v, w);
        }
      }
    });
  }

  start.store(true);
  owner_thread.join();
  for (auto& t : thieves) t.join();

  EXPECT_FALSE(timed_out.load()) << "only " << total.load() << " of " << num_tasks
                                 << " tasks were taken: some were lost";
  int lost = 0;
  int twice = 0;
  for (int i = 0; i < num_tasks; ++i) {
    int n = seen[static_cast<std::size_t>(i)].load();
    if (n == 0) ++lost;
    if (n > 1) ++twice;
  }
  EXPECT_EQ(lost, 0) << "tasks never taken";
  EXPECT_EQ(twice, 0) << "tasks taken more than once";
  EXPECT_EQ(total.load(), num_tasks);
  long by_thieves = 0;
  for (int w = 1; w <= num_thieves; ++w) by_thieves += taken_by[static_cast<std::size_t>(w)].load();
  EXPECT_GT(by_thieves, 0) << "the thieves never stole anything";
  for (auto& q : queues) EXPECT_TRUE(q->owner().is_empty());
  EXPECT_TRUE(inject.is_empty());
}

TEST(LocalQueueConcurrent, OwnerAndTwoThievesAccountForEveryTask) {
  run_concurrent_accounting(2, kSanitized ? 20'000 : 200'000, 1);
}

TEST(LocalQueueConcurrent, OwnerAndThreeThievesAccountForEveryTask) {
  for (std::uint32_t seed : {2u, 3u}) {
    run_concurrent_accounting(3, kSanitized ? 20'000 : 100'000, seed);
  }
}

// --- four slots: every few pushes overflow, every steal is at its limit -------------------

using TinyQueue = BasicLocalQueue<4>;

template <typename Q>
std::vector<int> drain_owner(Q& q) {
  std::vector<int> out;
  auto owner = q.owner();
  while (TaskBase* t = owner.pop()) out.push_back(index_of(t));
  return out;
}

std::vector<int> drain_inject(InjectQueue& q) {
  std::vector<int> out;
  while (TaskBase* t = q.pop()) out.push_back(index_of(t));
  return out;
}

struct FakeTasks {
  explicit FakeTasks(int n) {
    for (int i = 0; i < n; ++i) tasks.emplace_back(new FakeTask(&loop, i), kAdoptRef);
  }
  TaskBase* operator[](int i) { return tasks.at(static_cast<std::size_t>(i)).get(); }
  DummyLoop loop;
  std::vector<RefPtr<FakeTask>> tasks;
};

TEST(TinyLocalQueue, TheFifthPushMovesTheOldestTwoAndItselfToTheInjectQueue) {
  FakeTasks t(5);
  TinyQueue q;
  InjectQueue inject;
  auto owner = q.owner();
  for (int i = 0; i < 4; ++i) owner.push_back(t[i], inject);
  EXPECT_TRUE(inject.is_empty()) << "four tasks fit";
  owner.push_back(t[4], inject);
  EXPECT_EQ(drain_inject(inject), (std::vector<int>{0, 1, 4}));
  EXPECT_EQ(drain_owner(q), (std::vector<int>{2, 3}));
}

TEST(TinyLocalQueue, RingWrapsAndOverflowsKeepEveryTaskOnceAndTheRingFifo) {
  FakeTasks t(2000);
  TinyQueue q;
  InjectQueue inject;
  auto owner = q.owner();
  std::mt19937 rng(11);
  std::vector<int> popped;
  int next = 0;
  while (next < 2000 || !owner.is_empty()) {
    const int pushes = std::min<int>(2000 - next, static_cast<int>(rng() % 7));
    for (int i = 0; i < pushes; ++i) owner.push_back(t[next++], inject);
    const int pops = static_cast<int>(rng() % 5);
    for (int i = 0; i < pops; ++i) {
      if (TaskBase* x = owner.pop()) popped.push_back(index_of(x));
    }
    EXPECT_LE(owner.size(), TinyQueue::kCapacity);
  }
  EXPECT_TRUE(std::is_sorted(popped.begin(), popped.end())) << "the ring is FIFO";
  std::vector<int> all = drain_inject(inject);
  EXPECT_FALSE(all.empty()) << "seven pushes in a row must overflow four slots";
  all.insert(all.end(), popped.begin(), popped.end());
  std::sort(all.begin(), all.end());
  std::vector<int> expected(2000);
  for (int i = 0; i < 2000; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(all, expected);
}

TEST(TinyLocalQueue, AStealTakesHalfAndAThiefWithMoreThanHalfTakesNothing) {
  FakeTasks t(10);
  TinyQueue src;
  TinyQueue dst;
  InjectQueue inject;
  auto src_owner = src.owner();
  auto dst_owner = dst.owner();
  for (int i = 0; i < 4; ++i) src_owner.push_back(t[i], inject);
  TaskBase* got = src.stealer().steal_into(dst_owner, dst);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(index_of(got), 1) << "the newer of the two stolen runs now";
  EXPECT_EQ(drain_owner(dst), (std::vector<int>{0}));
  EXPECT_EQ(src_owner.size(), 2u);
  // A thief holding three of four slots has no room for half a queue.
  for (int i = 4; i < 7; ++i) dst_owner.push_back(t[i], inject);
  EXPECT_EQ(src.stealer().steal_into(dst_owner, dst), nullptr);
  EXPECT_EQ(src_owner.size(), 2u) << "a refused steal leaves the victim alone";
  EXPECT_EQ(drain_owner(src), (std::vector<int>{2, 3}));
  EXPECT_TRUE(inject.is_empty());
}

// The runtime's queue told to use four of its slots (RuntimeOptions::local_queue_slots)
// overflows and steals as the four-slot type does.
TEST(TinyLocalQueue, TheRuntimesQueueAtFourSlotsOverflowsAndStealsAsTheFourSlotType) {
  FakeTasks t(10);
  LocalQueue q(4);
  LocalQueue thief(4);
  InjectQueue inject;
  EXPECT_EQ(q.slots(), 4u);
  auto owner = q.owner();
  auto thief_owner = thief.owner();
  for (int i = 0; i < 4; ++i) owner.push_back(t[i], inject);
  EXPECT_TRUE(inject.is_empty()) << "four tasks fit";
  owner.push_back(t[4], inject);
  EXPECT_EQ(drain_inject(inject), (std::vector<int>{0, 1, 4}));
  for (int i = 5; i < 7; ++i) owner.push_back(t[i], inject);  // ring: 2 3 5 6
  TaskBase* got = q.stealer().steal_into(thief_owner, thief);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(index_of(got), 3) << "half of four is two; the newer one runs now";
  EXPECT_EQ(drain_owner(thief), (std::vector<int>{2}));
  EXPECT_EQ(drain_owner(q), (std::vector<int>{5, 6}));
}

TEST(TinyLocalQueue, ASlotCountThatIsNotAPowerOfTwoFromFourToTheCapacityIsRefused) {
  for (std::uint32_t bad : {0u, 2u, 3u, 6u, 512u}) {
    try {
      LocalQueue q(bad);
      ADD_FAILURE() << bad << " slots were accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("not " + std::to_string(bad)), std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(LocalQueue(256).slots(), 256u);
  EXPECT_EQ(LocalQueue().slots(), LocalQueue::kCapacity);
}

TEST(LocalQueueConcurrent, FourSlotQueuesAccountForEveryTask) {
  for (std::uint32_t seed : {4u, 5u, 6u}) {
    run_concurrent_accounting<TinyQueue>(3, kSanitized ? 10'000 : 100'000, seed);
  }
}

}  // namespace
}  // namespace weft::detail
