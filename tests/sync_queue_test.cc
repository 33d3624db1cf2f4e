// weft::Queue, PriorityQueue, LifoQueue: asyncio's queue semantics (Python
// 3.13, with shutdown), bounded backpressure, join/task_done, FIFO fairness
// of waiting getters and putters, cancellation that never loses or
// duplicates an item, move-only and counted items, and MPMC stress across
// workers.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::Counted;
using testing::CountedScope;
using testing::raises;
using testing::scaled;
using testing::test_options;
using testing::yield_times;
using testing::yield_until;

// Options with a manual clock that jumps to the next timer whenever every
// worker is idle: deadlines pass at once and exactly, and a lost wake-up
// (everybody idle) ends a test's safety deadline at once instead of hanging.
RuntimeOptions manual_clock_options(std::uint32_t workers) {
  static ManualClock clock;  // time only moves forward: shared by the tests
  return test_options(workers, &clock);
}

template <typename Q>
Coro<bool> getters_reach(Q& q, std::size_t n) {
  co_return co_await yield_until([&] { return q.statistics().getters == n; });
}
template <typename Q>
Coro<bool> putters_reach(Q& q, std::size_t n) {
  co_return co_await yield_until([&] { return q.statistics().putters == n; });
}

template <typename Q>
Coro<typename Q::value_type> get_one(Q& q) {
  co_return co_await q.get();
}
template <typename Q>
Coro<void> put_one(Q& q, typename Q::value_type v) {
  co_await q.put(std::move(v));
}

// --- basics ---------------------------------------------------------------------

TEST(Queue, NonWaitingCallsWithoutRuntime) {
  Queue<int> q;
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full()) << "an unbounded queue is never full";
  EXPECT_EQ(q.maxsize(), 0u);
  EXPECT_THROW(q.get_nowait(), QueueEmpty);
  q.put_nowait(1);
  q.put_nowait(2);
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_EQ(q.get_nowait(), 2);
  EXPECT_THROW(q.get_nowait(), QueueEmpty);
}

TEST(Queue, BoundedPutNowaitRaisesQueueFull) {
  Queue<int> q(2);
  EXPECT_EQ(q.maxsize(), 2u);
  q.put_nowait(1);
  EXPECT_FALSE(q.full());
  q.put_nowait(2);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), QueueFull);
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_FALSE(q.full());
}

WEFT_CO_TEST(Queue, FifoOrder) {
  Queue<int> q;
  for (int i : {1, 3, 2}) co_await q.put(i);
  std::vector<int> got;
  for (int i = 0; i < 3; ++i) got.push_back(co_await q.get());
  EXPECT_EQ(got, (std::vector<int>{1, 3, 2}));
}

WEFT_CO_TEST(Queue, LifoOrder) {
  LifoQueue<int> q;
  for (int i : {1, 3, 2}) co_await q.put(i);
  std::vector<int> got;
  for (int i = 0; i < 3; ++i) got.push_back(co_await q.get());
  EXPECT_EQ(got, (std::vector<int>{2, 3, 1}));
}

WEFT_CO_TEST(Queue, PriorityOrderSmallestFirst) {
  PriorityQueue<int> q;
  for (int i : {5, 1, 4, 2, 3}) co_await q.put(i);
  std::vector<int> got;
  for (int i = 0; i < 5; ++i) got.push_back(co_await q.get());
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3, 4, 5}));

  PriorityQueue<std::pair<int, std::string>> tasks;
  tasks.put_nowait({2, "b"});
  tasks.put_nowait({1, "a"});
  tasks.put_nowait({3, "c"});
  EXPECT_EQ(tasks.get_nowait().second, "a");

  PriorityQueue<int, std::greater<int>> maxq;  // a custom order
  for (int i : {5, 1, 4}) maxq.put_nowait(i);
  EXPECT_EQ(maxq.get_nowait(), 5);
  EXPECT_EQ(maxq.get_nowait(), 4);
}

WEFT_CO_TEST(Queue, MoveOnlyItems) {
  Queue<std::unique_ptr<int>> q(1);
  co_await q.put(std::make_unique<int>(7));
  std::unique_ptr<int> p = co_await q.get();
  WEFT_CO_ASSERT_TRUE(p != nullptr);
  EXPECT_EQ(*p, 7);
  Task<std::unique_ptr<int>> getter = create_task(get_one(q));
  EXPECT_TRUE(co_await getters_reach(q, 1));
  q.put_nowait(std::make_unique<int>(8));
  EXPECT_EQ(*(co_await getter), 8);
}

WEFT_CO_TEST_WITH(Queue, CountedItemsAreNeitherLeakedNorDuplicated, test_options(2)) {
  // Items go through hand-offs, waits, cancelled puts and a shutdown: every
  // Counted made is destroyed exactly once, and every queued one is got once.
  {
    CountedScope scope;
    Queue<Counted> q(3);
    std::vector<Task<void>> putters;
    for (int i = 0; i < 20; ++i) putters.push_back(create_task(put_one(q, Counted(i))));
    std::vector<int> got;
    for (int i = 0; i < 10; ++i) got.push_back((co_await q.get()).value);
    for (std::size_t i = 10; i < putters.size(); ++i) putters[i].cancel();
    q.shutdown();  // putters still waiting raise QueueShutDown
    for (auto& p : putters) {
      try {
        co_await p;
      } catch (const CancelledError&) {
      } catch (const QueueShutDown&) {
      }
    }
    while (!q.empty()) got.push_back(q.get_nowait().value);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(std::unique(got.begin(), got.end()), got.end()) << "an item was got twice";
    EXPECT_GE(got.size(), 10u);
  }
  EXPECT_EQ(Counted::alive(), 0);
}

WEFT_CO_TEST(Queue, Statistics) {
  Queue<int> q(1);
  q.put_nowait(1);
  QueueStatistics s = q.statistics();
  EXPECT_EQ(s.qsize, 1u);
  EXPECT_EQ(s.maxsize, 1u);
  EXPECT_EQ(s.unfinished_tasks, 1u);
  EXPECT_FALSE(s.shut_down);
  Task<void> putter = create_task(put_one(q, 2));
  EXPECT_TRUE(co_await putters_reach(q, 1));
  EXPECT_EQ(q.statistics().putters, 1u);
  EXPECT_EQ(q.get_nowait(), 1);
  co_await putter;
  EXPECT_EQ(q.get_nowait(), 2);
  Task<int> getter = create_task(get_one(q));
  EXPECT_TRUE(co_await getters_reach(q, 1));
  q.put_nowait(3);
  EXPECT_EQ(co_await getter, 3);
  EXPECT_EQ(q.statistics().unfinished_tasks, 3u);
}

// --- waiting put and get --------------------------------------------------------

WEFT_CO_TEST_WITH(Queue, PutWaitsWhileFull, test_options(1)) {
  // asyncio's test_maxsize.
  Queue<int> q(2);
  std::vector<int> have_been_put;
  Task<void> t = create_task([](Queue<int>& q, std::vector<int>& put) -> Coro<void> {
    for (int i = 0; i < 3; ++i) {
      co_await q.put(i);
      put.push_back(i);
    }
  }(q, have_been_put));
  EXPECT_TRUE(co_await putters_reach(q, 1));
  EXPECT_EQ(have_been_put, (std::vector<int>{0, 1}));
  EXPECT_EQ(co_await q.get(), 0);
  co_await t;
  EXPECT_EQ(have_been_put, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(co_await q.get(), 1);
  EXPECT_EQ(co_await q.get(), 2);
}

WEFT_CO_TEST_WITH(Queue, GetWaitsWhileEmpty, test_options(1)) {
  Queue<int> q;
  Task<int> getter = create_task(get_one(q));
  EXPECT_TRUE(co_await getters_reach(q, 1));
  EXPECT_FALSE(getter.done());
  co_await q.put(5);
  EXPECT_EQ(q.qsize(), 0u) << "handed straight to the waiting getter";
  EXPECT_EQ(co_await getter, 5);
}

WEFT_CO_TEST_WITH(Queue, GetWithWaitingPutters, test_options(1)) {
  // asyncio's test_get_with_waiting_putters.
  Queue<std::string> q(1);
  Task<void> a = create_task(put_one(q, std::string("a")));
  EXPECT_TRUE(co_await yield_until([&] { return q.qsize() == 1; }));
  Task<void> b = create_task(put_one(q, std::string("b")));
  EXPECT_TRUE(co_await putters_reach(q, 1));
  EXPECT_EQ(co_await q.get(), "a");
  EXPECT_EQ(co_await q.get(), "b");
  co_await a;
  co_await b;
}

WEFT_CO_TEST_WITH(Queue, WaitingGettersAreServedInOrder, test_options(1)) {
  Queue<int> q;
  std::vector<Task<int>> getters;
  for (int i = 0; i < 4; ++i) {
    getters.push_back(create_task(get_one(q)));
    EXPECT_TRUE(co_await getters_reach(q, static_cast<std::size_t>(i + 1)));
  }
  for (int i = 0; i < 4; ++i) q.put_nowait(i * 10);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(co_await getters[static_cast<std::size_t>(i)], i * 10);
}

WEFT_CO_TEST_WITH(Queue, WaitingPuttersAreServedInOrderAndCannotBeBypassed, test_options(1)) {
  // A slot freed by get() is reserved for the oldest waiting putter: a later
  // put_nowait() raises QueueFull instead of taking it.
  Queue<int> q(1);
  q.put_nowait(0);
  std::vector<Task<void>> putters;
  for (int i = 1; i <= 3; ++i) {
    putters.push_back(create_task(put_one(q, i)));
    EXPECT_TRUE(co_await putters_reach(q, static_cast<std::size_t>(i)));
  }
  EXPECT_EQ(q.get_nowait(), 0);
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_TRUE(q.full()) << "the free slot is reserved for putter 1";
  EXPECT_EQ(q.statistics().reserved, 1u);
  EXPECT_THROW(q.put_nowait(99), QueueFull);
  std::vector<int> got;
  for (int i = 0; i < 3; ++i) got.push_back(co_await q.get());
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  for (auto& p : putters) co_await p;
  EXPECT_EQ(q.statistics().reserved, 0u);
}

WEFT_CO_TEST_WITH(Queue, ProducerConsumerOfSizeOne, test_options(1)) {
  // asyncio's test_why_are_getters_waiting / putters_waiting.
  Queue<int> q(1);
  const int n = 50;
  Task<void> producer = create_task([](Queue<int>& q, int n) -> Coro<void> {
    for (int i = 0; i < n; ++i) co_await q.put(i);
  }(q, n));
  int sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await q.get();
  co_await producer;
  EXPECT_EQ(sum, n * (n - 1) / 2);
}

WEFT_CO_TEST(Queue, AsCoro) {
  Queue<int> q;
  Task<int> t = create_task(q.get().as_coro());
  EXPECT_TRUE(co_await getters_reach(q, 1));
  co_await create_task(q.put(4).as_coro());
  EXPECT_EQ(co_await t, 4);
}

// --- cancellation ---------------------------------------------------------------

WEFT_CO_TEST_WITH(Queue, CancelledGetterIsNotKept, manual_clock_options(1)) {
  // asyncio's test_get_cancelled_race / test_cancelled_getters_not_being_held.
  Queue<std::string> q;
  Task<std::string> t1 = create_task(get_one(q));
  Task<std::string> t2 = create_task(get_one(q));
  EXPECT_TRUE(co_await getters_reach(q, 2));
  t1.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(t1)).has_value());
  EXPECT_EQ(q.statistics().getters, 1u);
  co_await q.put("a");
  EXPECT_EQ(co_await t2, "a");
  auto r = co_await move_on_after(std::chrono::milliseconds(5), q.get().as_coro());
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(q.statistics().getters, 0u);
}

WEFT_CO_TEST_WITH(Queue, GetterCancelledAfterHandOffGivesTheItemBack, test_options(1)) {
  // asyncio's test_get_cancel_drop_one_pending_reader: the reader is handed
  // 1, then cancelled before it runs; 1 must not be dropped.
  Queue<int> q;
  Task<int> reader = create_task(get_one(q));
  EXPECT_TRUE(co_await getters_reach(q, 1));
  q.put_nowait(1);
  q.put_nowait(2);
  reader.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(reader)).has_value());
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(co_await q.get(), 1) << "the returned item is back at the head";
  EXPECT_EQ(co_await q.get(), 2);
}

WEFT_CO_TEST_WITH(Queue, GetterCancelledAfterHandOffPassesTheItemOn, test_options(1)) {
  // asyncio's test_get_cancel_drop_many_pending_readers: the item goes to
  // the next waiting getter.
  Queue<int> q;
  std::vector<Task<int>> readers;
  for (int i = 0; i < 3; ++i) {
    readers.push_back(create_task(get_one(q)));
    EXPECT_TRUE(co_await getters_reach(q, static_cast<std::size_t>(i + 1)));
  }
  q.put_nowait(1);
  q.put_nowait(2);
  readers[0].cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(readers[0])).has_value());
  int a = co_await readers[1];
  int b = co_await readers[2];
  EXPECT_EQ(std::min(a, b), 1);
  EXPECT_EQ(std::max(a, b), 2);
  EXPECT_TRUE(q.empty());
}

WEFT_CO_TEST_WITH(Queue, ReturnedItemOrderInLifoAndPriorityQueues, test_options(1)) {
  LifoQueue<int> lifo;
  Task<int> r1 = create_task(get_one(lifo));
  EXPECT_TRUE(co_await getters_reach(lifo, 1));
  lifo.put_nowait(1);  // handed to r1
  lifo.put_nowait(2);
  r1.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(r1)).has_value());
  EXPECT_EQ(lifo.get_nowait(), 1) << "given back on top";
  EXPECT_EQ(lifo.get_nowait(), 2);

  PriorityQueue<int> pq;
  Task<int> r2 = create_task(get_one(pq));
  EXPECT_TRUE(co_await getters_reach(pq, 1));
  pq.put_nowait(5);  // handed to r2
  pq.put_nowait(9);
  pq.put_nowait(1);
  r2.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(r2)).has_value());
  EXPECT_EQ(pq.get_nowait(), 1);
  EXPECT_EQ(pq.get_nowait(), 5);
  EXPECT_EQ(pq.get_nowait(), 9);
}

WEFT_CO_TEST_WITH(Queue, CancelledPutterDoesNotPut, test_options(1)) {
  // asyncio's test_put_cancel_drop / test_cancelled_puts_not_being_held.
  Queue<int> q(1);
  q.put_nowait(1);
  Task<void> writer = create_task(put_one(q, 2));
  EXPECT_TRUE(co_await putters_reach(q, 1));
  writer.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(writer)).has_value());
  EXPECT_EQ(q.statistics().putters, 0u);
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_TRUE(q.empty()) << "a cancelled put() put nothing";
  EXPECT_EQ(q.statistics().unfinished_tasks, 1u);
}

WEFT_CO_TEST_WITH(Queue, PutterCancelledAfterGrantPassesTheSlotOn, test_options(1)) {
  // asyncio's test_cancelled_put_silence_value_error_exception and
  // test_put_cancelled_race: get() grants the slot to the first putter,
  // which is cancelled before it runs; the slot goes to the next putter.
  Queue<std::string> q(1);
  q.put_nowait("a");
  Task<void> pb = create_task(put_one(q, std::string("b")));
  EXPECT_TRUE(co_await putters_reach(q, 1));
  Task<void> pc = create_task(put_one(q, std::string("c")));
  EXPECT_TRUE(co_await putters_reach(q, 2));
  EXPECT_EQ(q.get_nowait(), "a");  // grants the slot to pb
  pb.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(pb)).has_value());
  co_await pc;
  EXPECT_EQ(q.get_nowait(), "c");
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.statistics().reserved, 0u);
  EXPECT_EQ(q.statistics().unfinished_tasks, 2u) << "a and c; b was never queued";
}

WEFT_CO_TEST_WITH(Queue, CancelRacesOnTheSameStep, test_options(1)) {
  // Cancel then wake in one step: the waker skips the cancelled waiter.
  Queue<int> q(1);
  Task<int> g1 = create_task(get_one(q));
  Task<int> g2 = create_task(get_one(q));
  EXPECT_TRUE(co_await getters_reach(q, 2));
  g1.cancel();
  q.put_nowait(7);
  EXPECT_TRUE((co_await raises<CancelledError>(g1)).has_value());
  EXPECT_EQ(co_await g2, 7);

  q.put_nowait(1);
  Task<void> p1 = create_task(put_one(q, 2));
  Task<void> p2 = create_task(put_one(q, 3));
  EXPECT_TRUE(co_await putters_reach(q, 2));
  p1.cancel();
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_TRUE((co_await raises<CancelledError>(p1)).has_value());
  co_await p2;
  EXPECT_EQ(q.get_nowait(), 3);
}

WEFT_CO_TEST_WITH(Queue, FrameDestroyedWhileParkedLeavesTheQueue, test_options(1)) {
  // Runtime teardown destroys the frames of parked getters and putters:
  // they leave without taking an item or a slot.
  Queue<int> q(1);
  Task<int> getter = create_task(get_one(q));
  EXPECT_TRUE(co_await getters_reach(q, 1));
  getter.base().abandon("teardown");
  EXPECT_EQ(q.statistics().getters, 0u);
  q.put_nowait(1);
  EXPECT_EQ(q.qsize(), 1u) << "not handed to the destroyed getter";
  Task<void> putter = create_task(put_one(q, 2));
  EXPECT_TRUE(co_await putters_reach(q, 1));
  putter.base().abandon("teardown");
  EXPECT_EQ(q.statistics().putters, 0u);
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_EQ(q.statistics().reserved, 0u) << "no slot granted to the destroyed putter";
  EXPECT_TRUE(q.empty());
}

// --- join / task_done -----------------------------------------------------------

TEST(Queue, TaskDoneTooManyTimes) {
  Queue<int> q;
  try {
    q.task_done();
    FAIL() << "task_done() without items must throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("too many times"), std::string::npos) << e.what();
  }
  q.put_nowait(1);
  q.task_done();
  EXPECT_THROW(q.task_done(), std::invalid_argument);
}

WEFT_CO_TEST(Queue, JoinOnEmptyQueueReturnsAtOnce) {
  Queue<int> q;
  co_await q.join();
  co_await q.join();
}

WEFT_CO_TEST_WITH(Queue, JoinWaitsForEveryTaskDone, test_options(2)) {
  // asyncio's test_task_done.
  Queue<int> q;
  for (int i = 0; i < 100; ++i) q.put_nowait(i);
  std::atomic<long> acc{0};
  std::atomic<bool> running{true};
  std::vector<Task<void>> workers;
  for (int w = 0; w < 2; ++w) {
    workers.push_back(create_task([](Queue<int>& q, std::atomic<long>& acc,
                                     std::atomic<bool>& run) -> Coro<void> {
      while (run.load()) {
        int item = co_await q.get();
        acc.fetch_add(item);
        q.task_done();
      }
    }(q, acc, running)));
  }
  co_await q.join();
  EXPECT_EQ(acc.load(), 99 * 100 / 2);
  running = false;
  for (std::size_t i = 0; i < workers.size(); ++i) q.put_nowait(0);
  for (auto& w : workers) co_await w;
}

WEFT_CO_TEST_WITH(Queue, CancelledJoinerLeaves, test_options(1)) {
  Queue<int> q;
  q.put_nowait(1);
  Task<void> joiner = create_task(q.join().as_coro());
  EXPECT_TRUE(co_await yield_until([&] { return q.statistics().joiners == 1; }));
  joiner.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(joiner)).has_value());
  EXPECT_EQ(q.statistics().joiners, 0u);
  (void)q.get_nowait();
  q.task_done();
  co_await q.join();
}

// --- shutdown (Python 3.13) -------------------------------------------------------

template <typename Q>
Coro<void> shutdown_empty_case() {
  // asyncio's test_shutdown_empty.
  Q q;
  Task<typename Q::value_type> getter = create_task(get_one(q));
  EXPECT_TRUE(co_await getters_reach(q, 1));
  q.shutdown();
  EXPECT_TRUE(q.is_shut_down());
  EXPECT_EQ(q.qsize(), 0u);
  co_await q.join();
  {
    auto shut = co_await raises<QueueShutDown>(getter);
    EXPECT_TRUE(shut.has_value());
  }
  {
    auto shut = co_await raises<QueueShutDown>(q.put(1).as_coro());
    EXPECT_TRUE(shut.has_value());
  }
  EXPECT_THROW(q.put_nowait(1), QueueShutDown);
  {
    auto shut = co_await raises<QueueShutDown>(q.get().as_coro());
    EXPECT_TRUE(shut.has_value());
  }
  EXPECT_THROW(q.get_nowait(), QueueShutDown);
}

WEFT_CO_TEST_WITH(Queue, ShutdownEmpty, test_options(1)) {
  co_await shutdown_empty_case<Queue<int>>();
  co_await shutdown_empty_case<LifoQueue<int>>();
  co_await shutdown_empty_case<PriorityQueue<int>>();
}

template <typename Q>
Coro<void> shutdown_nonempty_case() {
  // asyncio's test_shutdown_nonempty: the waiting putter raises, the item
  // left can still be got, then gets raise; join() waits for task_done().
  Q q(1);
  q.put_nowait(1);
  Task<void> joiner = create_task(q.join().as_coro());
  Task<void> putter = create_task(put_one(q, 2));
  EXPECT_TRUE(co_await putters_reach(q, 1));
  q.shutdown();
  EXPECT_EQ(q.qsize(), 1u);
  {
    auto shut = co_await raises<QueueShutDown>(putter);
    EXPECT_TRUE(shut.has_value());
  }
  EXPECT_EQ(co_await q.get(), 1);
  co_await yield_times(2);
  EXPECT_FALSE(joiner.done());
  {
    auto shut = co_await raises<QueueShutDown>(q.put(3).as_coro());
    EXPECT_TRUE(shut.has_value());
  }
  EXPECT_THROW(q.put_nowait(3), QueueShutDown);
  {
    auto shut = co_await raises<QueueShutDown>(q.get().as_coro());
    EXPECT_TRUE(shut.has_value());
  }
  EXPECT_THROW(q.get_nowait(), QueueShutDown);
  q.task_done();
  co_await joiner;
  EXPECT_THROW(q.task_done(), std::invalid_argument);
}

WEFT_CO_TEST_WITH(Queue, ShutdownNonEmpty, test_options(1)) {
  co_await shutdown_nonempty_case<Queue<int>>();
  co_await shutdown_nonempty_case<LifoQueue<int>>();
  co_await shutdown_nonempty_case<PriorityQueue<int>>();
}

WEFT_CO_TEST_WITH(Queue, ShutdownImmediate, test_options(1)) {
  // asyncio's test_shutdown_immediate.
  Queue<std::string> q;
  q.put_nowait("data");
  Task<void> joiner = create_task(q.join().as_coro());
  EXPECT_TRUE(co_await yield_until([&] { return q.statistics().joiners == 1; }));
  q.shutdown(true);
  EXPECT_EQ(q.qsize(), 0u);
  co_await joiner;
  EXPECT_TRUE((co_await raises<QueueShutDown>(q.put("x").as_coro())).has_value());
  EXPECT_THROW(q.put_nowait("x"), QueueShutDown);
  EXPECT_TRUE((co_await raises<QueueShutDown>(q.get().as_coro())).has_value());
  EXPECT_THROW(q.get_nowait(), QueueShutDown);
  EXPECT_THROW(q.task_done(), std::invalid_argument) << "the discarded item counted as done";
}

WEFT_CO_TEST_WITH(Queue, ShutdownImmediateWithUnfinished, test_options(1)) {
  // asyncio's test_shutdown_immediate_with_unfinished.
  Queue<std::string> q;
  q.put_nowait("data");
  q.put_nowait("data");
  Task<void> joiner = create_task(q.join().as_coro());
  EXPECT_EQ(co_await q.get(), "data");
  q.shutdown(true);  // unfinished: 2 -> 1
  EXPECT_EQ(q.qsize(), 0u);
  co_await yield_times(2);
  EXPECT_FALSE(joiner.done());
  q.task_done();
  EXPECT_THROW(q.task_done(), std::invalid_argument);
  co_await joiner;
}

WEFT_CO_TEST_WITH(Queue, ShutdownWakesEveryWaitingGetterAndPutter, test_options(2)) {
  Queue<int> getq;
  std::vector<Task<int>> getters;
  for (int i = 0; i < 10; ++i) getters.push_back(create_task(get_one(getq)));
  EXPECT_TRUE(co_await getters_reach(getq, 10));
  Queue<int> putq(1);
  putq.put_nowait(0);
  std::vector<Task<void>> putters;
  for (int i = 0; i < 10; ++i) putters.push_back(create_task(put_one(putq, i)));
  EXPECT_TRUE(co_await putters_reach(putq, 10));
  getq.shutdown();
  putq.shutdown();
  for (auto& g : getters) EXPECT_TRUE((co_await raises<QueueShutDown>(g)).has_value());
  for (auto& p : putters) EXPECT_TRUE((co_await raises<QueueShutDown>(p)).has_value());
  EXPECT_EQ(putq.get_nowait(), 0) << "non-immediate: the item left is still there";
}

WEFT_CO_TEST_WITH(Queue, HandedItemSurvivesShutdown, test_options(1)) {
  // An item handed to a getter before shutdown() is delivered; one given
  // back by a cancelled getter after shutdown(immediate) is discarded and
  // counted as done.
  Queue<int> q;
  Task<int> g = create_task(get_one(q));
  EXPECT_TRUE(co_await getters_reach(q, 1));
  q.put_nowait(1);
  q.shutdown(true);
  EXPECT_EQ(co_await g, 1);

  Queue<int> q2;
  Task<int> g2 = create_task(get_one(q2));
  EXPECT_TRUE(co_await getters_reach(q2, 1));
  q2.put_nowait(2);
  q2.shutdown(true);
  g2.cancel();
  EXPECT_TRUE((co_await raises<CancelledError>(g2)).has_value());
  EXPECT_EQ(q2.qsize(), 0u);
  EXPECT_EQ(q2.statistics().unfinished_tasks, 0u);
  co_await q2.join();
}

// --- across workers ---------------------------------------------------------------

WEFT_CO_TEST_WITH(Queue, MpmcNoItemLostOrDuplicated, test_options(4)) {
  // Producers put distinct items into a small bounded queue while consumers
  // (some cancelled and replaced at random points) get them. Every item is
  // received exactly once; put() raising CancelledError means not queued.
  const int kProducers = 4;
  const int kPerProducer = scaled(1500, 25);
  const int kItems = kProducers * kPerProducer;
  Queue<int> q(8);
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(kItems));
  std::atomic<int> received{0};
  std::atomic<int> not_queued{0};

  auto consumer = [](Queue<int>& q, std::vector<std::atomic<int>>& seen,
                     std::atomic<int>& rec) -> Coro<void> {
    for (;;) {
      int v = co_await q.get();
      if (v < 0) co_return;
      seen[static_cast<std::size_t>(v)].fetch_add(1);
      rec.fetch_add(1);
      q.task_done();
    }
  };
  auto producer = [](Queue<int>& q, int base, int n, std::atomic<int>& nq) -> Coro<void> {
    for (int i = 0; i < n; ++i) {
      try {
        co_await q.put(base + i);
      } catch (const CancelledError&) {
        nq.fetch_add(1);  // never queued: the producer was cancelled
        throw;
      }
    }
  };
  std::vector<Task<void>> consumers;
  for (int i = 0; i < 6; ++i) consumers.push_back(create_task(consumer(q, seen, received)));
  std::vector<Task<void>> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(create_task(producer(q, p * kPerProducer, kPerProducer, not_queued)));
  }
  // Cancel consumers while they wait or are being handed items; replace them.
  for (int round = 0; round < 6; ++round) {
    co_await yield_times(3);
    consumers[static_cast<std::size_t>(round)].cancel();
    consumers.push_back(create_task(consumer(q, seen, received)));
  }
  for (auto& p : producers) co_await p;
  co_await q.join();  // every queued item was received and marked done
  for (std::size_t i = 0; i < consumers.size(); ++i) q.put_nowait(-1);
  for (auto& c : consumers) {
    try {
      co_await c;
    } catch (const CancelledError&) {
    }
  }
  EXPECT_EQ(not_queued.load(), 0);
  EXPECT_EQ(received.load(), kItems);
  int bad = 0;
  for (auto& s : seen) bad += s.load() != 1;
  EXPECT_EQ(bad, 0) << "some item was lost or received twice";
  QueueStatistics st = q.statistics();
  EXPECT_EQ(st.getters, 0u);
  EXPECT_EQ(st.putters, 0u);
  EXPECT_EQ(st.reserved, 0u);
}

WEFT_CO_TEST_WITH(Queue, MpmcWithCancelledProducers, test_options(4)) {
  // Producers are cancelled while blocked on a full queue: an item counts as
  // queued iff its put() returned; the consumers get exactly those.
  const int kProducers = 8;
  const int kPerProducer = scaled(400, 10);
  Queue<int> q(2);
  std::atomic<long> queued_sum{0};
  std::atomic<int> queued_count{0};
  std::atomic<long> got_sum{0};
  std::atomic<int> got_count{0};
  std::vector<Task<void>> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(create_task([](Queue<int>& q, int n, std::atomic<long>& s,
                                       std::atomic<int>& c) -> Coro<void> {
      for (int i = 1; i <= n; ++i) {
        co_await q.put(i);
        s.fetch_add(i);
        c.fetch_add(1);
      }
    }(q, kPerProducer, queued_sum, queued_count)));
  }
  Task<void> consumer = create_task([](Queue<int>& q, std::atomic<long>& s,
                                       std::atomic<int>& c) -> Coro<void> {
    for (;;) {
      int v = co_await q.get();
      if (v < 0) co_return;
      s.fetch_add(v);
      c.fetch_add(1);
    }
  }(q, got_sum, got_count));
  for (int p = 0; p < kProducers; p += 2) {
    co_await yield_times(5);
    producers[static_cast<std::size_t>(p)].cancel();
  }
  for (auto& p : producers) {
    try {
      co_await p;
    } catch (const CancelledError&) {
    }
  }
  co_await q.put(-1);
  co_await consumer;
  EXPECT_EQ(got_count.load(), queued_count.load());
  EXPECT_EQ(got_sum.load(), queued_sum.load());
  EXPECT_EQ(q.statistics().reserved, 0u);
}

}  // namespace
}  // namespace weft
