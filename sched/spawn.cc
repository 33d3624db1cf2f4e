#include "weft/sched/spawn.h"

#include "absl/strings/str_format.h"

namespace weft {

Loop& get_running_loop() {
  auto* l = static_cast<Loop*>(detail::current_loop());
  if (l == nullptr) throw RuntimeError("no running weft loop on this thread");
  return *l;
}

AnyTask current_task() {
  detail::TaskBase* t = detail::current_task_base();
  return t == nullptr ? AnyTask() : AnyTask(t);
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
