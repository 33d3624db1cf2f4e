// The clocks a runtime can run on.
//
// Time in weft is a `Clock::time_point` of std::chrono::steady_clock's type.
// A runtime uses the real monotonic clock by default; tests give it a
// ManualClock, whose time only moves when told to (or, with autojump, when
// every worker is idle: it jumps to the next timer, as Trio's
// MockClock(autojump_threshold=0) does), so timer tests are exact and never
// sleep.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <atomic>
#include <chrono>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace weft {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const noexcept = 0;
  // True if time only moves when advanced (the loop never sleeps for it).
  virtual bool is_manual() const noexcept { return false; }
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const noexcept override { return std::chrono::steady_clock::now(); }
};

// Thread safety: any thread may read or advance it. Time never goes back.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(bool autojump = true) : autojump_(autojump) {}
  TimePoint now() const noexcept override {
    return TimePoint(Duration(ns_.load(std::memory_order_acquire)));
  }
  bool is_manual() const noexcept override { return true; }
  bool autojump() const noexcept { return autojump_; }
  // Moves time forward by d (negative d is ignored) and wakes the sleeping
  // loops of the runtime using the clock, so their due timers run.
  void advance(Duration d) noexcept {
    if (d.count() <= 0) return;
    ns_.fetch_add(d.count(), std::memory_order_acq_rel);
    notify();
  }
  // Moves time forward to t if t is later than now (and wakes, as advance).
  void advance_to(TimePoint t) noexcept {
    if (jump_to(t)) notify();
  }
  // Moves time forward to t if t is later than now, waking nobody; true if
  // it moved. For the runtime's autojump, which wakes the one loop whose
  // timer is due itself.
  bool jump_to(TimePoint t) noexcept {
    std::int64_t target = t.time_since_epoch().count();
    std::int64_t cur = ns_.load(std::memory_order_acquire);
    while (cur < target) {
      if (ns_.compare_exchange_weak(cur, target, std::memory_order_acq_rel)) return true;
    }
    return false;
  }
  // Set by the runtime using the clock: called after every advance().
  void set_on_advance(absl::AnyInvocable<void()> fn) {
    absl::MutexLock lock(&mu_);
    on_advance_ = std::move(fn);
  }

 private:
  void notify() noexcept {
    absl::MutexLock lock(&mu_);
    if (on_advance_) on_advance_();
  }
  absl::Mutex mu_;
  absl::AnyInvocable<void()> on_advance_ ABSL_GUARDED_BY(mu_);
  const bool autojump_;
  std::atomic<std::int64_t> ns_{0};
};

}  // namespace weft
