#include "weft/sched/detail/idle.h"

#include <algorithm>
#include <utility>

#include "weft/sched/loop.h"

namespace weft::detail {

bool Idle::transition_to_searching() noexcept {
  std::uint64_t s = state_.load(std::memory_order_seq_cst);
  std::uint32_t searching = static_cast<std::uint32_t>(s >> 32);
  // Keep at most half of the workers searching (at least one may).
  if (2 * searching >= num_workers_ && searching > 0) return false;
  state_.fetch_add(kSearchingOne, std::memory_order_seq_cst);
  return true;
}

bool Idle::transition_from_searching() noexcept {
  std::uint64_t prev = state_.fetch_sub(kSearchingOne, std::memory_order_seq_cst);
  return (prev >> 32) == 1;
}

std::uint32_t Idle::transition_to_parked(Loop* w, bool searching) noexcept {
  SpinLockHolder lock(&mu_);
  sleepers_.push_back(w);
  w->in_sleepers_ = true;
  std::uint64_t dec = kUnparkedOne + (searching ? kSearchingOne : 0);
  // seq_cst: the sleeper's half of the Dekker pairing (see idle.h).
  std::uint64_t prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
  return static_cast<std::uint32_t>(prev - dec);
}

bool Idle::transition_from_parked(Loop* w) noexcept {
  SpinLockHolder lock(&mu_);
  if (!w->in_sleepers_) {
    // Someone unparked us; worker_to_notify counted us as searching.
    return std::exchange(w->unparked_searching_, false);
  }
  unregister_locked(w);
  state_.fetch_add(kUnparkedOne, std::memory_order_seq_cst);
  return false;
}

void Idle::unregister_locked(Loop* w) {
  auto it = std::find(sleepers_.begin(), sleepers_.end(), w);
  if (it != sleepers_.end()) sleepers_.erase(it);
  w->in_sleepers_ = false;
}

bool Idle::notify_should_wakeup() const noexcept {
  // seq_cst: the producer's half of the Dekker pairing.
  std::uint64_t s = state_.load(std::memory_order_seq_cst);
  return (s >> 32) == 0 && static_cast<std::uint32_t>(s) < num_workers_;
}

Loop* Idle::worker_to_notify() noexcept {
  if (!notify_should_wakeup()) return nullptr;
  SpinLockHolder lock(&mu_);
  if (!notify_should_wakeup() || sleepers_.empty()) return nullptr;
  Loop* w = sleepers_.back();
  sleepers_.pop_back();
  w->in_sleepers_ = false;
  w->unparked_searching_ = true;
  state_.fetch_add(kUnparkedOne + kSearchingOne, std::memory_order_seq_cst);
  return w;
}

bool Idle::unpark_specific(Loop* w) noexcept {
  SpinLockHolder lock(&mu_);
  if (!w->in_sleepers_) return false;
  unregister_locked(w);
  state_.fetch_add(kUnparkedOne, std::memory_order_seq_cst);
  return true;
}

std::vector<Loop*> Idle::unpark_all() noexcept {
  SpinLockHolder lock(&mu_);
  std::vector<Loop*> out;
  out.swap(sleepers_);
  for (Loop* w : out) w->in_sleepers_ = false;
  state_.fetch_add(kUnparkedOne * out.size(), std::memory_order_seq_cst);
  return out;
}

}  // namespace weft::detail
