// weft::Queue<T>, weft::PriorityQueue<T, Compare>, weft::LifoQueue<T>:
// asyncio's queues (Python 3.13, with shutdown) for tasks on any worker.
//
//   weft::Queue<Job> q(/*maxsize=*/100);          // 0: unbounded
//   co_await q.put(job);                           // waits while full
//   Job j = co_await q.get();                      // waits while empty
//   q.task_done();  co_await q.join();             // work accounting
//   q.shutdown();                                  // puts fail; gets drain, then fail
//
// Order: Queue is FIFO; LifoQueue returns the newest item first;
// PriorityQueue returns the smallest item first according to Compare (as
// Python's heapq: with std::less the smallest, the opposite of
// std::priority_queue).
//
// Bounded queues (maxsize > 0) apply backpressure: put() waits while the
// queue is full; put_nowait() raises QueueFull instead. get() waits while it
// is empty; get_nowait() raises QueueEmpty.
//
// Fairness: strictly FIFO among waiting getters and among waiting putters.
// put() hands its item straight to the oldest waiting getter; get() frees a
// slot and reserves it for the oldest waiting putter, so a put_nowait() that
// comes later cannot take it: full() is true while every free slot is
// reserved (asyncio would let it in). qsize() counts the items in the queue.
//
// join()/task_done(): every item put raises the count of unfinished tasks;
// task_done() lowers it (std::invalid_argument, asyncio's ValueError, when
// called more times than items were put); join() waits until it is zero.
//
// shutdown(immediate=false) (Python 3.13): put(), put_nowait() and waiting
// putters raise QueueShutDown; get() returns the items left, then raises
// QueueShutDown (waiting getters raise at once). With immediate=true the
// items left are discarded (each counts as task_done(), which may release
// join()) and every get() raises QueueShutDown.
//
// Cancellation: get(), put() and join() are cancellation points, and no item
// is ever lost or duplicated by a cancellation:
//  - a getter cancelled while it waits takes nothing; a getter that had been
//    handed an item when the cancellation arrived gives it to the next
//    waiting getter, or puts it back at the head of the queue (the top for
//    LifoQueue; into the heap for PriorityQueue), before raising
//    CancelledError. (Putting it back may make qsize() exceed maxsize by the
//    number of such getters, briefly: items are never dropped.)
//  - a putter cancelled while it waits puts nothing; one that had been
//    granted a slot passes the slot to the next putter. put() raising
//    CancelledError therefore always means the item was not queued.
//
// Visibility: for any tasks X and Y, everything X did before putting an item
// is visible to Y after the get() that returns it; everything done before a
// task_done() that brings the count to zero is visible after join() returns.
//
// Thread safety: every method may be called from any thread (the *_nowait
// methods, task_done() and shutdown() even outside a runtime); get(), put()
// and join() must be awaited by a weft task. The queue must outlive its
// waiters. T must be nothrow move-constructible (for PriorityQueue also
// nothrow move-assignable), so that hand-offs under the lock cannot fail
// half-way.
//
// Design: the items, the waiting getters and putters (FIFO lists, see
// detail/waiter.h), `reserved_` (slots granted to woken putters that have
// not put yet) and the counters live under `mu_`. Invariants under `mu_`:
//  - a getter is parked only while the queue is empty: an item arriving goes
//    to the oldest getter that takes it, else into the buffer;
//  - a putter is parked only while qsize() + reserved_ >= maxsize: a slot
//    that frees up is granted to the oldest putter that takes it;
//  - a woken getter owns the item in its node; a woken putter owns one unit
//    of reserved_ (its `granted` flag).
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/sched/sync/detail/waiter.h"
#include "weft/sched/sync/errors.h"

namespace weft {

struct QueueStatistics {
  std::size_t qsize = 0;
  std::size_t maxsize = 0;  // 0: unbounded
  std::size_t getters = 0;  // tasks parked in get()
  std::size_t putters = 0;  // tasks parked in put()
  std::size_t joiners = 0;  // tasks parked in join()
  std::size_t reserved = 0;  // free slots granted to woken putters
  std::size_t unfinished_tasks = 0;
  bool shut_down = false;
};

namespace detail {

// Storage policies: how items are ordered.
template <typename T>
class FifoBuffer {
 public:
  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  void push(T&& v) { items_.push_back(std::move(v)); }
  // An item given back by a cancelled getter: it was the oldest.
  void push_returned(T&& v) { items_.push_front(std::move(v)); }
  T pop() {
    T v(std::move(items_.front()));
    items_.pop_front();
    return v;
  }
  // Removes every item, returning them.
  std::deque<T> take_all() noexcept {
    std::deque<T> out;
    out.swap(items_);
    return out;
  }

 private:
  std::deque<T> items_;
};

template <typename T>
class LifoBuffer {
 public:
  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  void push(T&& v) { items_.push_back(std::move(v)); }
  void push_returned(T&& v) { items_.push_back(std::move(v)); }
  T pop() {
    T v(std::move(items_.back()));
    items_.pop_back();
    return v;
  }
  std::vector<T> take_all() noexcept {
    std::vector<T> out;
    out.swap(items_);
    return out;
  }

 private:
  std::vector<T> items_;
};

template <typename T, typename Compare>
class HeapBuffer {
  static_assert(std::is_nothrow_move_assignable_v<T>,
                "PriorityQueue<T>: T must be nothrow move-assignable");

 public:
  explicit HeapBuffer(Compare comp = Compare()) : comp_(std::move(comp)) {}
  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  void push(T&& v) {
    items_.push_back(std::move(v));
    std::push_heap(items_.begin(), items_.end(), after());
  }
  void push_returned(T&& v) { push(std::move(v)); }
  // The smallest item according to Compare.
  T pop() {
    std::pop_heap(items_.begin(), items_.end(), after());
    T v(std::move(items_.back()));
    items_.pop_back();
    return v;
  }
  std::vector<T> take_all() noexcept {
    std::vector<T> out;
    out.swap(items_);
    return out;
  }

 private:
  // std's heap functions keep the largest element first; inverting the
  // comparison keeps the smallest first.
  auto after() {
    return [this](const T& a, const T& b) { return comp_(b, a); };
  }
  Compare comp_;
  std::vector<T> items_;
};

}  // namespace detail

// The queue; use Queue, LifoQueue or PriorityQueue.
template <typename T, typename Buffer>
class BasicQueue {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "weft queues need a nothrow move-constructible T");
  struct GetOp;
  struct PutOp;
  struct JoinOp;

 public:
  using value_type = T;
  using GetAwaiter = detail::SyncAwaiter<GetOp>;
  using PutAwaiter = detail::SyncAwaiter<PutOp>;
  using JoinAwaiter = detail::SyncAwaiter<JoinOp>;

  // maxsize 0 means unbounded.
  explicit BasicQueue(std::size_t maxsize = 0, Buffer buffer = Buffer())
      : maxsize_(maxsize), buffer_(std::move(buffer)) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;
  ~BasicQueue();

  std::size_t maxsize() const noexcept { return maxsize_; }
  std::size_t qsize() const;
  bool empty() const;
  // True if put_nowait() would raise QueueFull (never for an unbounded queue).
  bool full() const;

  // Puts `item`, waiting while the queue is full. QueueShutDown if the queue
  // is or gets shut down. A cancellation point.
  [[nodiscard]] PutAwaiter put(T item) { return PutAwaiter(std::in_place, this, std::move(item)); }
  // Puts `item` now: QueueFull if full, QueueShutDown if shut down (the item
  // is then dropped).
  void put_nowait(T item);
  // Removes and returns an item, waiting while the queue is empty.
  // QueueShutDown if the queue is shut down and empty. A cancellation point.
  [[nodiscard]] GetAwaiter get() { return GetAwaiter(std::in_place, this); }
  // Removes and returns an item now: QueueEmpty if empty, QueueShutDown if
  // shut down and empty.
  T get_nowait();

  // Marks one item gotten earlier as processed. std::invalid_argument if
  // called more times than items were put.
  void task_done();
  // Waits until every item put has been marked done. A cancellation point.
  [[nodiscard]] JoinAwaiter join() { return JoinAwaiter(std::in_place, this); }

  // See the file comment. Idempotent; shutdown(true) after shutdown() drains.
  void shutdown(bool immediate = false);
  bool is_shut_down() const;

  QueueStatistics statistics() const;

 private:
  using GetterNode = detail::ItemWaiter<T>;
  using PutterNode = detail::GrantWaiter;

  struct GetOp {
    using Node = GetterNode;
    using Result = T;
    static constexpr const char* kWhat = "Queue::get()";
    explicit GetOp(BasicQueue* queue) noexcept : q(queue) {}
    bool try_now(Node& n);
    bool try_now_or_park(Node& n, detail::TaskBase* task);
    void undo(Node& n) noexcept;
    void abandon(Node& n) noexcept;
    T take(Node& n, bool parked);
    BasicQueue* q;
  };
  struct PutOp {
    using Node = PutterNode;
    using Result = void;
    static constexpr const char* kWhat = "Queue::put()";
    PutOp(BasicQueue* queue, T&& v) noexcept : q(queue), item(std::move(v)) {}
    bool try_now(Node& n);
    bool try_now_or_park(Node& n, detail::TaskBase* task);
    void undo(Node&) noexcept {}  // a put that happened is not undone
    void abandon(Node& n) noexcept;
    void take(Node& n, bool parked);
    BasicQueue* q;
    std::optional<T> item;  // empty once queued
  };
  struct JoinOp {
    using Node = detail::SyncWaiter;
    using Result = void;
    static constexpr const char* kWhat = "Queue::join()";
    explicit JoinOp(BasicQueue* queue) noexcept : q(queue) {}
    bool try_now(Node&);
    bool try_now_or_park(Node& n, detail::TaskBase* task);
    void undo(Node&) noexcept {}
    void abandon(Node& n) noexcept;
    void take(Node&, bool) noexcept {}
    BasicQueue* q;
  };

  bool has_room_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return maxsize_ == 0 || buffer_.size() + reserved_ < maxsize_;
  }
  // Puts `*item` now if there is room; false otherwise. QueueShutDown if
  // shut down.
  bool put_now_locked(std::optional<T>& item) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes an item into `out` if there is one; false otherwise. QueueShutDown
  // if shut down and empty.
  bool get_now_locked(std::optional<T>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives `*item` to the oldest getter that takes it, else stores it.
  void deliver_locked(std::optional<T>& item, bool returned) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An item handed to a getter that did not take it: to the next getter, back
  // into the queue, or (after shutdown(immediate)) into `drop`.
  void return_item_locked(std::optional<T>& item, std::optional<T>& drop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Grants free slots to the oldest waiting putters.
  void grant_putters_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void finish_tasks_locked(std::size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::size_t maxsize_;
  mutable detail::SpinLock mu_;
  Buffer buffer_ ABSL_GUARDED_BY(mu_);
  std::size_t reserved_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t unfinished_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool immediate_ ABSL_GUARDED_BY(mu_) = false;
  detail::WaiterList getters_ ABSL_GUARDED_BY(mu_);
  detail::WaiterList putters_ ABSL_GUARDED_BY(mu_);
  detail::WaiterList joiners_ ABSL_GUARDED_BY(mu_);
};

// FIFO queue (asyncio.Queue).
template <typename T>
class Queue : public BasicQueue<T, detail::FifoBuffer<T>> {
 public:
  explicit Queue(std::size_t maxsize = 0) : BasicQueue<T, detail::FifoBuffer<T>>(maxsize) {}
};

// Newest-first queue (asyncio.LifoQueue).
template <typename T>
class LifoQueue : public BasicQueue<T, detail::LifoBuffer<T>> {
 public:
  explicit LifoQueue(std::size_t maxsize = 0) : BasicQueue<T, detail::LifoBuffer<T>>(maxsize) {}
};

// Smallest-first queue (asyncio.PriorityQueue), ordered by Compare.
template <typename T, typename Compare = std::less<T>>
class PriorityQueue : public BasicQueue<T, detail::HeapBuffer<T, Compare>> {
 public:
  explicit PriorityQueue(std::size_t maxsize = 0, Compare comp = Compare())
      : BasicQueue<T, detail::HeapBuffer<T, Compare>>(
            maxsize, detail::HeapBuffer<T, Compare>(std::move(comp))) {}
};

}  // namespace weft

#include "weft/sched/sync/detail/queue-inl.h"
