// Bodies of weft::BasicQueue (sched/sync/queue.h); see that file for the
// semantics, the invariants and the thread-safety contract.
#pragma once

#include <stdexcept>

#include "weft/core/detail/weft_dcheck.h"
// IWYU pragma: private, include "weft/sched/sync/queue.h"
#include "weft/sched/sync/queue.h"

namespace weft {

template <typename T, typename Buffer>
BasicQueue<T, Buffer>::~BasicQueue() {
  detail::SpinLockHolder lock(&mu_);
  WEFT_DCHECK(getters_.empty() && putters_.empty() && joiners_.empty() &&
         "a queue was destroyed while tasks wait on it");
}

template <typename T, typename Buffer>
std::size_t BasicQueue<T, Buffer>::qsize() const {
  detail::SpinLockHolder lock(&mu_);
  return buffer_.size();
}

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::empty() const {
  detail::SpinLockHolder lock(&mu_);
  return buffer_.empty();
}

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::full() const {
  detail::SpinLockHolder lock(&mu_);
  return !has_room_locked();
}

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::is_shut_down() const {
  detail::SpinLockHolder lock(&mu_);
  return shut_down_;
}

template <typename T, typename Buffer>
QueueStatistics BasicQueue<T, Buffer>::statistics() const {
  detail::SpinLockHolder lock(&mu_);
  QueueStatistics s;
  s.qsize = buffer_.size();
  s.maxsize = maxsize_;
  s.getters = getters_.size();
  s.putters = putters_.size();
  s.joiners = joiners_.size();
  s.reserved = reserved_;
  s.unfinished_tasks = unfinished_;
  s.shut_down = shut_down_;
  return s;
}

// --- The protocol, under mu_ ---------------------------------------------

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::deliver_locked(std::optional<T>& item, bool returned) {
  while (detail::SyncWaiter* w = getters_.pop_front()) {
    auto* getter = static_cast<GetterNode*>(w);
    // Hand the item over before waking (the getter reads it without the
    // lock once woken), and take it back if the getter was cancelled first.
    getter->item.emplace(std::move(*item));
    item.reset();
    if (getter->try_wake()) return;  // *getter may be destroyed now
    // Still alive: its task needs mu_ to clean up after the cancellation.
    item.emplace(std::move(*getter->item));
    getter->item.reset();
  }
  // Nobody waits: store it (strong guarantee: on bad_alloc `item` keeps it).
  if (returned) {
    buffer_.push_returned(std::move(*item));
  } else {
    buffer_.push(std::move(*item));
  }
  item.reset();
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::grant_putters_locked() {
  while (!putters_.empty() && has_room_locked()) {
    auto* putter = static_cast<PutterNode*>(putters_.pop_front());
    putter->granted = true;
    ++reserved_;
    if (putter->try_wake()) continue;  // *putter may be destroyed now
    putter->granted = false;  // cancelled first: the slot goes to the next one
    --reserved_;
  }
}

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::put_now_locked(std::optional<T>& item) {
  if (shut_down_) throw QueueShutDown("put on a queue that was shut down");
  // Free slots are granted to waiting putters first (FIFO), so no room
  // whenever putters wait or hold grants.
  if (!has_room_locked()) return false;
  deliver_locked(item, /*returned=*/false);
  ++unfinished_;  // after: a bad_alloc above leaves the count alone
  return true;
}

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::get_now_locked(std::optional<T>& out) {
  if (buffer_.empty()) {
    if (shut_down_) throw QueueShutDown("get on a queue that was shut down and is empty");
    return false;
  }
  // Waiting getters exist only while the buffer is empty: no one to pass.
  out.emplace(buffer_.pop());
  grant_putters_locked();
  return true;
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::return_item_locked(std::optional<T>& item, std::optional<T>& drop) {
  if (immediate_) {
    // shutdown(immediate) discarded the queue's items: this one too.
    drop.emplace(std::move(*item));
    item.reset();
    finish_tasks_locked(1);
    return;
  }
  deliver_locked(item, /*returned=*/true);
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::finish_tasks_locked(std::size_t n) {
  unfinished_ -= std::min(n, unfinished_);
  if (unfinished_ == 0) joiners_.wake_all();
}

// --- Non-waiting calls ----------------------------------------------------

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::put_nowait(T item) {
  std::optional<T> it(std::move(item));
  detail::SpinLockHolder lock(&mu_);
  if (!put_now_locked(it)) throw QueueFull("put_nowait on a full queue");
}

template <typename T, typename Buffer>
T BasicQueue<T, Buffer>::get_nowait() {
  std::optional<T> out;
  {
    detail::SpinLockHolder lock(&mu_);
    if (!get_now_locked(out)) throw QueueEmpty("get_nowait on an empty queue");
  }
  return std::move(*out);
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::task_done() {
  detail::SpinLockHolder lock(&mu_);
  if (unfinished_ == 0) {
    throw std::invalid_argument("Queue::task_done() called too many times");
  }
  finish_tasks_locked(1);
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::shutdown(bool immediate) {
  // The discarded items are destroyed when this returns, outside the lock
  // (their destructors are user code).
  decltype(buffer_.take_all()) discarded;
  {
    detail::SpinLockHolder lock(&mu_);
    shut_down_ = true;
    if (immediate) {
      immediate_ = true;
      discarded = buffer_.take_all();
      finish_tasks_locked(discarded.size());
    }
    // Getters that were handed nothing raise QueueShutDown; putters too.
    getters_.wake_all();
    putters_.wake_all();
  }
}

// --- get() ----------------------------------------------------------------

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::GetOp::try_now(Node& n) {
  detail::SpinLockHolder lock(&q->mu_);
  return q->get_now_locked(n.item);
}

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::GetOp::try_now_or_park(Node& n, detail::TaskBase* task) {
  detail::SpinLockHolder lock(&q->mu_);
  if (q->get_now_locked(n.item)) return true;
  n.park(q->getters_, task, kWhat);
  return false;
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::GetOp::undo(Node& n) noexcept {
  std::optional<T> drop;
  detail::SpinLockHolder lock(&q->mu_);
  if (n.item) q->return_item_locked(n.item, drop);
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::GetOp::abandon(Node& n) noexcept {
  std::optional<T> drop;  // destroyed after the lock is released
  detail::SpinLockHolder lock(&q->mu_);
  if (n.linked()) {
    q->getters_.remove(&n);  // never woken: nothing to give back
  } else if (n.item) {
    // Handed an item, then cancelled: it goes to the next getter or back.
    q->return_item_locked(n.item, drop);
  }
}

template <typename T, typename Buffer>
T BasicQueue<T, Buffer>::GetOp::take(Node& n, bool) {
  // Woken without an item: by shutdown().
  if (!n.item) throw QueueShutDown("get on a queue that was shut down and is empty");
  T v(std::move(*n.item));
  n.item.reset();
  return v;
}

// --- put() ----------------------------------------------------------------

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::PutOp::try_now(Node&) {
  detail::SpinLockHolder lock(&q->mu_);
  return q->put_now_locked(item);
}

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::PutOp::try_now_or_park(Node& n, detail::TaskBase* task) {
  detail::SpinLockHolder lock(&q->mu_);
  if (q->put_now_locked(item)) return true;
  n.park(q->putters_, task, kWhat);
  return false;
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::PutOp::abandon(Node& n) noexcept {
  detail::SpinLockHolder lock(&q->mu_);
  if (n.linked()) {
    q->putters_.remove(&n);  // never granted a slot
  } else if (n.granted) {
    // Granted a slot, then cancelled: the slot goes to the next putter.
    n.granted = false;
    --q->reserved_;
    q->grant_putters_locked();
  }
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::PutOp::take(Node& n, bool parked) {
  if (!parked) return;  // put at once
  detail::SpinLockHolder lock(&q->mu_);
  const bool granted = std::exchange(n.granted, false);
  if (granted) --q->reserved_;
  if (q->shut_down_) {
    q->grant_putters_locked();
    throw QueueShutDown("put on a queue that was shut down");
  }
  WEFT_DCHECK(granted && "a putter is only woken by a grant or by shutdown()");
  // Our slot: deliver straight to a getter or store it. If it went to a
  // getter (or storing failed) the slot is free again: grant it on.
  try {
    q->deliver_locked(item, /*returned=*/false);
  } catch (...) {
    q->grant_putters_locked();
    throw;
  }
  ++q->unfinished_;
  q->grant_putters_locked();
}

// --- join() ---------------------------------------------------------------

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::JoinOp::try_now(Node&) {
  detail::SpinLockHolder lock(&q->mu_);
  return q->unfinished_ == 0;
}

template <typename T, typename Buffer>
bool BasicQueue<T, Buffer>::JoinOp::try_now_or_park(Node& n, detail::TaskBase* task) {
  detail::SpinLockHolder lock(&q->mu_);
  if (q->unfinished_ == 0) return true;
  n.park(q->joiners_, task, kWhat);
  return false;
}

template <typename T, typename Buffer>
void BasicQueue<T, Buffer>::JoinOp::abandon(Node& n) noexcept {
  detail::SpinLockHolder lock(&q->mu_);
  if (n.linked()) q->joiners_.remove(&n);
}

}  // namespace weft
