#include "weft/sched/spawn.h"

#include "absl/strings/str_format.h"

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

Coro<void> sleep(Duration d) {
  if (d.count() <= 0) {
    co_await yield_now();
    co_return;
  }
  Future<void> done;
  TimerHandle timer = call_later(d, [done] { done.try_set_result(); });
  try {
    co_await done;
  } catch (...) {
    timer.cancel();
    throw;
  }
}

Coro<void> sleep_until(TimePoint deadline) {
  co_await sleep(deadline - get_running_loop().time());  // read when it starts
}

}  // namespace weft
