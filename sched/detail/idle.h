// Who sleeps and who wakes them (Tokio's idle.rs, adapted).
//
// `state_` packs two counters: the number of workers searching for work
// (high 32 bits) and the number not parked (low 32 bits). `sleepers_` lists
// parked workers; it and each worker's flags (`workers_`, by worker index:
// registered as a sleeper; unparked by another thread as a searcher) are
// guarded by mu_. Idle owns all of that state; the workers reach it only
// through the calls below, and every call that unparks a worker also wakes
// it (its eventfd), so no caller can do one without the other.
//
// Invariants (WEFT_DCHECK'd): searching <= unparked <= num_workers; a worker
// is in `sleepers_` exactly when its flag says so; a parked worker was
// counted unparked (and searching, if it was) until it parked.
//
// Rules:
//  - At most about half of the workers search at once
//    (transition_to_searching refuses beyond that).
//  - New work wakes a sleeper only if nobody is searching and somebody
//    sleeps (notify_should_wakeup); the woken worker starts out searching.
//  - A searcher that finds work and was the last searcher wakes another
//    worker (the rest of the work may need it).
//
// Why no wake-up is lost: a producer makes work visible with a seq_cst store
// (local queue tail, lifo slot, inject length) and then reads `state_`
// seq_cst. A worker going to sleep decrements `state_` (seq_cst RMW) and then
// reads every queue seq_cst before it blocks. In the single total order of
// seq_cst operations one of the two comes first: either the producer sees the
// decremented count and wakes a sleeper, or the sleeper sees the work and
// does not sleep. Wake-ups go through the sleeper's eventfd, whose counter
// keeps a wake written before the sleeper reaches epoll_wait.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "weft/core/detail/spin_lock.h"

namespace weft::detail {

class Worker;

class Idle {
 public:
  explicit Idle(std::uint32_t num_workers)
      : num_workers_(num_workers), state_(num_workers), workers_(num_workers) {}

  // A worker wants to search; false if enough others already do.
  bool transition_to_searching() noexcept;
  // A searcher stops searching; true if it was the last one.
  bool transition_from_searching() noexcept;

  // Registers `w` as parked. Returns the number of workers still unparked.
  std::uint32_t transition_to_parked(Worker* w, bool searching) noexcept;
  // After waking: returns true if another thread unparked `w` (it now counts
  // as searching), false if `w` woke on its own (timeout, IO) and
  // unregistered itself.
  bool transition_from_parked(Worker* w) noexcept;

  // New work: wakes a sleeper if the rules above say one should go and
  // look, counted as unparked and searching. True if one was woken.
  bool wake_one_for_new_work() noexcept;
  // Directed wake-ups (pinned tasks, posted callbacks, a timer's owner
  // after a clock jump): unparks and wakes `w` if it is parked. True if it
  // was.
  bool wake_if_parked(Worker* w) noexcept;
  // Unparks and wakes every parked worker (shutdown, clock advances).
  void wake_all() noexcept;

  std::uint32_t num_searching() const noexcept {
    return static_cast<std::uint32_t>(state_.load(std::memory_order_seq_cst) >> 32);
  }
  std::uint32_t num_unparked() const noexcept {
    return static_cast<std::uint32_t>(state_.load(std::memory_order_seq_cst));
  }

 private:
  static constexpr std::uint64_t kSearchingOne = std::uint64_t{1} << 32;
  static constexpr std::uint64_t kUnparkedOne = 1;
  struct WorkerFlags {
    bool in_sleepers = false;
    // Unparked by another thread, which counted it as searching.
    bool unparked_searching = false;
  };
  bool notify_should_wakeup() const noexcept;
  Worker* take_worker_to_notify() noexcept;
  bool unpark_specific(Worker* w) noexcept;
  void unregister_locked(Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  WorkerFlags& flags_locked(const Worker* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks the counters' invariant on a value of state_.
  void check_counts(std::uint64_t s) const noexcept;

  const std::uint32_t num_workers_;
  std::atomic<std::uint64_t> state_;
  SpinLock mu_;
  std::vector<Worker*> sleepers_ ABSL_GUARDED_BY(mu_);
  std::vector<WorkerFlags> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace weft::detail
