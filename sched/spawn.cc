#include "weft/sched/spawn.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "absl/strings/str_format.h"
#include "weft/core/detail/await.h"

namespace weft {

namespace {
Loop& running_loop_for(const char* what) {
  auto* l = static_cast<Loop*>(detail::current_loop());
  if (l == nullptr) {
    throw RuntimeError(absl::StrFormat("%s: no running weft loop on this thread", what));
  }
  return *l;
}
}  // namespace

Loop& get_running_loop() { return running_loop_for("get_running_loop()"); }

AnyTask current_task() {
  detail::TaskBase* t = detail::current_task_base();
  if (t != nullptr) return AnyTask(t);
  (void)running_loop_for("current_task()");  // RuntimeError off a loop
  return AnyTask();
}

std::optional<AnyTask> try_current_task() {
  detail::TaskBase* t = detail::current_task_base();
  if (t == nullptr) return std::nullopt;
  return AnyTask(t);
}

std::vector<AnyTask> all_tasks() { return get_running_loop().runtime().all_tasks(); }
std::string dump_tasks() { return get_running_loop().runtime().dump_tasks(); }

namespace {
// "50 ms", "1.5 s", "250 us": a duration as a person reads it in a dump.
std::string readable(std::int64_t ns) {
  if (ns >= 10'000'000'000) return absl::StrFormat("%.0f s", ns / 1e9);
  if (ns >= 1'000'000'000) return absl::StrFormat("%.3g s", ns / 1e9);
  if (ns >= 1'000'000) return absl::StrFormat("%.3g ms", ns / 1e6);
  return absl::StrFormat("%.3g us", ns / 1e3);
}

// What a sleeping task waits on: a future that describes itself as
// "sleep 50 ms (12 ms left)" in task dumps. Completed by the sleep's timer.
class SleepState final : public detail::FutureState<void> {
 public:
  SleepState(detail::LoopBase* loop, std::int64_t duration_ns)
      : FutureState(loop), duration_ns_(duration_ns) {}

  // The timer's deadline (no clock read of its own: a sleep is hot). Set
  // before the sleeping task suspends, which publishes the state to dumps.
  void set_deadline(TimePoint deadline) noexcept {
    deadline_ns_ = deadline.time_since_epoch().count();
  }

  std::string describe() const override {
    const std::int64_t left = std::max<std::int64_t>(0, deadline_ns_ - loop()->now_ns());
    return absl::StrFormat("sleep %s (%s left)", readable(duration_ns_), readable(left));
  }

 private:
  const std::int64_t duration_ns_;
  std::int64_t deadline_ns_ = 0;
};
}  // namespace

Coro<void> sleep(Duration d) {
  if (d.count() <= 0) {
    co_await yield_now();
    co_return;
  }
  Loop& loop = running_loop_for("sleep()");
  detail::RefPtr<SleepState> done(
      new SleepState(&loop, d.count()),  // Duration counts nanoseconds
      detail::kAdoptRef);
  // try_: a cancelled sleep's timer may still fire (cancelled from another thread).
  TimerHandle timer = loop.call_later(d, [done] { done->try_set_result(); });
  done->set_deadline(timer.when());
  try {
    co_await detail::StateAwaiter<void>(detail::RefPtr<detail::FutureStateBase>(done.get()), done.get());
  } catch (...) {
    timer.cancel();
    throw;
  }
}

Coro<void> sleep_until(TimePoint deadline) {
  co_await sleep(deadline - get_running_loop().time());  // read when it starts
}

}  // namespace weft
