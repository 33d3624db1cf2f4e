#include "weft/sched/detail/idle.h"

#include <algorithm>
#include <utility>

#include "weft/core/detail/weft_dcheck.h"
#include "weft/sched/detail/worker.h"

namespace weft::detail {

void Idle::check_counts(std::uint64_t s) const noexcept {
  const auto searching = static_cast<std::uint32_t>(s >> 32);
  const auto unparked = static_cast<std::uint32_t>(s);
  WEFT_DCHECK(searching <= unparked);
  WEFT_DCHECK(unparked <= num_workers_);
}

Idle::WorkerFlags& Idle::flags_locked(const Worker* w) {
  WEFT_DCHECK(w->index() < workers_.size());
  return workers_[w->index()];
}

bool Idle::transition_to_searching() noexcept {
  std::uint64_t s = state_.load(std::memory_order_seq_cst);
  std::uint32_t searching = static_cast<std::uint32_t>(s >> 32);
  // Keep at most half of the workers searching (at least one may).
  if (2 * searching >= num_workers_ && searching > 0) return false;
  check_counts(state_.fetch_add(kSearchingOne, std::memory_order_seq_cst) + kSearchingOne);
  return true;
}

bool Idle::transition_from_searching() noexcept {
  std::uint64_t prev = state_.fetch_sub(kSearchingOne, std::memory_order_seq_cst);
  WEFT_DCHECK((prev >> 32) >= 1);  // only a searcher stops searching
  return (prev >> 32) == 1;
}

std::uint32_t Idle::transition_to_parked(Worker* w, bool searching) noexcept {
  SpinLockHolder lock(&mu_);
  WorkerFlags& f = flags_locked(w);
  WEFT_DCHECK(!f.in_sleepers);
  sleepers_.push_back(w);
  f.in_sleepers = true;
  std::uint64_t dec = kUnparkedOne + (searching ? kSearchingOne : 0);
  // seq_cst: the sleeper's half of the Dekker pairing (see idle.h).
  std::uint64_t prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
  WEFT_DCHECK(static_cast<std::uint32_t>(prev) >= 1);      // it was counted unparked
  WEFT_DCHECK(!searching || (prev >> 32) >= 1);             // and searching, if it was
  check_counts(prev - dec);
  return static_cast<std::uint32_t>(prev - dec);
}

bool Idle::transition_from_parked(Worker* w) noexcept {
  SpinLockHolder lock(&mu_);
  WorkerFlags& f = flags_locked(w);
  if (!f.in_sleepers) {
    // Someone unparked us; wake_one_for_new_work counted us as searching.
    return std::exchange(f.unparked_searching, false);
  }
  unregister_locked(w);
  check_counts(state_.fetch_add(kUnparkedOne, std::memory_order_seq_cst) + kUnparkedOne);
  return false;
}

void Idle::unregister_locked(Worker* w) {
  auto it = std::find(sleepers_.begin(), sleepers_.end(), w);
  WEFT_DCHECK(it != sleepers_.end());  // the flag said it was there
  if (it != sleepers_.end()) sleepers_.erase(it);
  flags_locked(w).in_sleepers = false;
}

bool Idle::notify_should_wakeup() const noexcept {
  // seq_cst: the producer's half of the Dekker pairing.
  std::uint64_t s = state_.load(std::memory_order_seq_cst);
  return (s >> 32) == 0 && static_cast<std::uint32_t>(s) < num_workers_;
}

Worker* Idle::take_worker_to_notify() noexcept {
  if (!notify_should_wakeup()) return nullptr;
  SpinLockHolder lock(&mu_);
  if (!notify_should_wakeup() || sleepers_.empty()) return nullptr;
  Worker* w = sleepers_.back();
  sleepers_.pop_back();
  WorkerFlags& f = flags_locked(w);
  WEFT_DCHECK(f.in_sleepers);
  f.in_sleepers = false;
  f.unparked_searching = true;
  check_counts(state_.fetch_add(kUnparkedOne + kSearchingOne, std::memory_order_seq_cst) +
               kUnparkedOne + kSearchingOne);
  return w;
}

bool Idle::wake_one_for_new_work() noexcept {
  Worker* w = take_worker_to_notify();
  if (w == nullptr) return false;
  w->wake();
  return true;
}

bool Idle::unpark_specific(Worker* w) noexcept {
  SpinLockHolder lock(&mu_);
  if (!flags_locked(w).in_sleepers) return false;
  unregister_locked(w);
  check_counts(state_.fetch_add(kUnparkedOne, std::memory_order_seq_cst) + kUnparkedOne);
  return true;
}

bool Idle::wake_if_parked(Worker* w) noexcept {
  if (!unpark_specific(w)) return false;
  w->wake();
  return true;
}

void Idle::wake_all() noexcept {
  std::vector<Worker*> woken;
  {
    SpinLockHolder lock(&mu_);
    woken.swap(sleepers_);
    for (Worker* w : woken) flags_locked(w).in_sleepers = false;
    check_counts(state_.fetch_add(kUnparkedOne * woken.size(), std::memory_order_seq_cst) +
                 kUnparkedOne * woken.size());
  }
  for (Worker* w : woken) w->wake();
}

}  // namespace weft::detail
