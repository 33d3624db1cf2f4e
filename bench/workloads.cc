#include "weft/bench/workloads.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "weft/weft.h"

namespace weft::bench {
namespace {

using WallClock = std::chrono::steady_clock;

double seconds_since(WallClock::time_point t0) {
  return std::chrono::duration<double>(WallClock::now() - t0).count();
}

// Process CPU time (user + system, every thread), in seconds.
double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

void require_positive(std::uint32_t n, const char* what) {
  if (n == 0) throw std::invalid_argument(std::string(what) + ": the size must be positive");
}

// ---------------------------------------------------------------------------
// W1 spawn_local

Coro<void> increment(std::atomic<std::uint64_t>* counter) {
  // Relaxed: only the total matters, read after every task was joined (the
  // joins order the increments before the read).
  counter->fetch_add(1, std::memory_order_relaxed);
  co_return;
}

Coro<SpawnLocalResult> spawn_local_main(std::uint32_t n) {
  std::atomic<std::uint64_t> counter{0};
  const auto t0 = WallClock::now();
  std::vector<Task<void>> tasks;
  tasks.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) tasks.push_back(create_task(increment(&counter)));
  for (Task<void>& t : tasks) co_await t;
  const double seconds = seconds_since(t0);
  co_return SpawnLocalResult{n, counter.load(std::memory_order_relaxed), seconds};
}

// ---------------------------------------------------------------------------
// W2 spawn_remote

// Shared by the submitting thread, the submitted tasks and the main task.
// Lives in the main task's frame, which outlives every submitted task: the
// main task returns only after the last task completed `all_ran_future`.
struct RemoteRun {
  explicit RemoteRun(std::uint32_t n) : n(n) {}
  const std::uint32_t n;
  std::atomic<std::uint64_t> ran{0};
  // Set by the last task; the plain thread blocks on it (atomic wait).
  std::atomic<bool> all_ran{false};
  // Completed by the last task; the main task awaits it. Made on the runtime.
  Future<void> all_ran_future;
};

Coro<void> remote_task(RemoteRun* run) {
  // Read before counting: once the last task has counted, the main task may
  // return and destroy *run while this one is still finishing.
  const std::uint32_t n = run->n;
  // acq_rel: the increments form one RMW chain, so exactly one task sees the
  // count reach n; acquire also makes it see the other tasks' writes.
  if (run->ran.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
    // Copy the handle first: once the future is done the main task may
    // return, destroying *run.
    Future<void> done = run->all_ran_future;
    // Release pairs with the plain thread's acquire in wait/load.
    run->all_ran.store(true, std::memory_order_release);
    run->all_ran.notify_all();
    done.set_result();  // *run may be destroyed past this point
  }
  co_return;
}

// THE remote submission of W2, from a thread that is not a worker.
// Stand-in until the thread-safe submission API is the one to measure: a task
// pinned to loop i % workers (Loop::create_pinned_task is thread-safe; round
// robin because pinned tasks are never stolen). To switch, replace the body
// with:
//     weft::run_coroutine_threadsafe(std::move(body), rt);
// (and drop the returned ConcurrentFuture, or keep it if the API requires).
void submit_remote(Runtime& rt, std::uint32_t i, Coro<void> body) {
  rt.loop(i % rt.num_workers()).create_pinned_task(std::move(body));
}

Coro<SpawnRemoteResult> spawn_remote_main(std::uint32_t n) {
  Runtime& rt = get_running_loop().runtime();
  RemoteRun run(n);
  double seconds = 0;
  std::thread submitter([&rt, &run, &seconds] {
    const auto t0 = WallClock::now();
    for (std::uint32_t i = 0; i < run.n; ++i) submit_remote(rt, i, remote_task(&run));
    run.all_ran.wait(false, std::memory_order_acquire);
    seconds = seconds_since(t0);
  });
  co_await run.all_ran_future;
  // The thread has seen all_ran (set before the future) or is about to: a
  // short block of this worker, after the measured span.
  submitter.join();
  co_return SpawnRemoteResult{n, run.ran.load(std::memory_order_acquire), seconds};
}

// ---------------------------------------------------------------------------
// W3 fib

struct FibOut {
  std::uint64_t value;
  std::uint64_t calls;  // tasks in this subtree, this one included
};

// Every call is a task; n >= 2 spawns both children, then awaits both. The
// task count travels with the result: no shared counter to contend on.
Coro<FibOut> fib_task(int n) {
  if (n < 2) co_return FibOut{static_cast<std::uint64_t>(n), 1};
  Task<FibOut> a = create_task(fib_task(n - 1));
  Task<FibOut> b = create_task(fib_task(n - 2));
  FibOut x = co_await a;
  FibOut y = co_await b;
  co_return FibOut{x.value + y.value, 1 + x.calls + y.calls};
}

Coro<FibResult> fib_main(int n) {
  const auto t0 = WallClock::now();
  FibOut out = co_await create_task(fib_task(n));
  const double seconds = seconds_since(t0);
  co_return FibResult{n, out.value, out.calls, seconds};
}

// ---------------------------------------------------------------------------
// W4 ping_pong

// A one-slot channel built from futures until weft::Queue exists: one
// Future per message. The receiver, after taking a message, replaces the
// future with a fresh one before it answers; the sender of the next message
// only sends after that answer, so the handle is never read and written at
// once. Exactly one message may be in flight (enough for ping-pong).
struct OneSlot {
  Future<std::uint64_t> message;

  void send(std::uint64_t v) const {
    // Complete through a copy: the receiver may wake on another worker and
    // replace `message` (dropping its reference) while set_result is still
    // running here.
    Future<std::uint64_t> m = message;
    m.set_result(v);
  }
};

// Receiving is written inline at the call sites (a Coro would add a frame
// per message): `v = co_await ch->message;` then re-arm the slot with
// `ch->message = Future<std::uint64_t>();` before answering.
Coro<std::uint64_t> ping(OneSlot* out, OneSlot* in, std::uint32_t round_trips) {
  std::uint64_t counter = 0;
  for (std::uint32_t i = 0; i < round_trips; ++i) {
    out->send(counter + 1);
    counter = co_await in->message;
    in->message = Future<std::uint64_t>();
  }
  co_return counter;
}

Coro<void> pong(OneSlot* in, OneSlot* out, std::uint32_t round_trips) {
  for (std::uint32_t i = 0; i < round_trips; ++i) {
    std::uint64_t v = co_await in->message;
    in->message = Future<std::uint64_t>();
    out->send(v + 1);
  }
}

Coro<PingPongResult> ping_pong_main(std::uint32_t round_trips) {
  OneSlot a_to_b;
  OneSlot b_to_a;
  const auto t0 = WallClock::now();
  Task<void> b = create_task(pong(&a_to_b, &b_to_a, round_trips));
  Task<std::uint64_t> a = create_task(ping(&a_to_b, &b_to_a, round_trips));
  std::uint64_t counter = co_await a;
  co_await b;
  const double seconds = seconds_since(t0);
  co_return PingPongResult{round_trips, counter, seconds};
}

// ---------------------------------------------------------------------------
// W5 yield_many

Coro<std::uint64_t> yielder(std::uint32_t yields) {
  std::uint64_t done = 0;
  for (std::uint32_t i = 0; i < yields; ++i) {
    co_await yield_now();
    ++done;
  }
  co_return done;
}

Coro<YieldManyResult> yield_many_main(std::uint32_t tasks, std::uint32_t yields_per_task) {
  const auto t0 = WallClock::now();
  std::vector<Task<std::uint64_t>> all;
  all.reserve(tasks);
  for (std::uint32_t i = 0; i < tasks; ++i) all.push_back(create_task(yielder(yields_per_task)));
  std::uint64_t yields = 0;
  for (Task<std::uint64_t>& t : all) yields += co_await t;
  const double seconds = seconds_since(t0);
  co_return YieldManyResult{tasks, yields, seconds};
}

// ---------------------------------------------------------------------------
// W6 timers

constexpr std::int64_t kNotWoken = INT64_MIN;

// Sleeps `d`, then records in *lateness how much later than asked it woke
// (negative: too early).
Coro<void> sleeper(Duration d, std::int64_t* lateness) {
  const auto t0 = WallClock::now();
  co_await sleep(d);
  *lateness = std::chrono::duration_cast<Duration>(WallClock::now() - t0 - d).count();
}

Coro<TimersResult> timers_main(std::uint32_t n, Duration max_sleep) {
  std::vector<std::int64_t> lateness(n, kNotWoken);  // one slot per task: nothing shared
  const double cpu0 = process_cpu_seconds();
  const auto t0 = WallClock::now();
  std::vector<Task<void>> tasks;
  tasks.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    tasks.push_back(create_task(sleeper(timer_sleep_duration(i, n, max_sleep), &lateness[i])));
  }
  for (Task<void>& t : tasks) co_await t;
  TimersResult r;
  r.seconds = seconds_since(t0);
  r.cpu_seconds = process_cpu_seconds() - cpu0;
  r.tasks = n;
  for (std::uint32_t i = 0; i < n; ++i) {
    r.max_sleep = std::max(r.max_sleep, timer_sleep_duration(i, n, max_sleep));
    if (lateness[i] == kNotWoken) continue;
    ++r.woke;
    if (lateness[i] < 0) ++r.early;
    r.max_lateness = std::max(r.max_lateness, Duration(lateness[i]));
  }
  co_return r;
}

// --- W6 timeouts ---

struct TimeoutCounters {
  // Relaxed: counts read after the run; a callback (which should never run)
  // could run on another loop than the task.
  std::atomic<std::uint64_t> fired{0};
  std::uint64_t not_cancelled = 0;  // touched only by the measuring task
};

// ONE timeout that never fires around an already-finished awaitable.
// Stand-in for `co_await weft::wait_for(ready, kTimeoutThatNeverFires)`:
// arms a timer (call_later), awaits, cancels the timer. The callback captures
// one pointer, as a real timeout's would (it must know what to cancel).
Coro<std::uint64_t> wait_ready_with_timeout(const Future<std::uint64_t>& ready,
                                            TimeoutCounters* c) {
  TimerHandle timer =
      call_later(kTimeoutThatNeverFires, [c] { c->fired.fetch_add(1, std::memory_order_relaxed); });
  std::uint64_t v = co_await ready;
  if (!timer.cancel()) ++c->not_cancelled;
  co_return v;
}

// ONE timeout, armed in the timer structure while the awaitable is pending,
// then cancelled. Stand-in for
// `co_await weft::wait_for(weft::sleep(Duration(0)), kTimeoutThatNeverFires)`:
// the awaited operation is one yield (the cheapest one that suspends).
Coro<void> wait_pending_with_timeout(TimeoutCounters* c) {
  TimerHandle timer =
      call_later(kTimeoutThatNeverFires, [c] { c->fired.fetch_add(1, std::memory_order_relaxed); });
  co_await yield_now();
  if (!timer.cancel()) ++c->not_cancelled;
}

Coro<TimeoutsResult> timeouts_ready_main(std::uint32_t n) {
  Future<std::uint64_t> ready;
  ready.set_result(1);
  TimeoutCounters c;
  std::uint64_t completed = 0;
  const auto t0 = WallClock::now();
  for (std::uint32_t i = 0; i < n; ++i) completed += co_await wait_ready_with_timeout(ready, &c);
  const double seconds = seconds_since(t0);
  co_return TimeoutsResult{n, completed, c.fired.load(std::memory_order_relaxed),
                           c.not_cancelled, seconds};
}

Coro<TimeoutsResult> timeouts_armed_main(std::uint32_t n) {
  TimeoutCounters c;
  std::uint64_t completed = 0;
  const auto t0 = WallClock::now();
  for (std::uint32_t i = 0; i < n; ++i) {
    co_await wait_pending_with_timeout(&c);
    ++completed;
  }
  const double seconds = seconds_since(t0);
  co_return TimeoutsResult{n, completed, c.fired.load(std::memory_order_relaxed),
                           c.not_cancelled, seconds};
}

}  // namespace

SpawnLocalResult spawn_local(Runtime& rt, std::uint32_t n) {
  require_positive(n, "spawn_local");
  return rt.run(spawn_local_main(n));
}

SpawnRemoteResult spawn_remote(Runtime& rt, std::uint32_t n) {
  require_positive(n, "spawn_remote");
  return rt.run(spawn_remote_main(n));
}

FibResult fib(Runtime& rt, int n) {
  if (n < 0 || n > 60) throw std::invalid_argument("fib: n must be in [0, 60]");
  return rt.run(fib_main(n));
}

std::uint64_t expected_fib_value(int n) {
  std::uint64_t a = 0, b = 1;
  for (int i = 0; i < n; ++i) {
    std::uint64_t next = a + b;
    a = b;
    b = next;
  }
  return a;
}

std::uint64_t expected_fib_tasks(int n) { return 2 * expected_fib_value(n + 1) - 1; }

PingPongResult ping_pong(Runtime& rt, std::uint32_t round_trips) {
  require_positive(round_trips, "ping_pong");
  return rt.run(ping_pong_main(round_trips));
}

YieldManyResult yield_many(Runtime& rt, std::uint32_t tasks, std::uint32_t yields_per_task) {
  require_positive(tasks, "yield_many");
  return rt.run(yield_many_main(tasks, yields_per_task));
}

Duration timer_sleep_duration(std::uint32_t i, std::uint32_t n, Duration max_sleep) {
  const std::uint64_t slot = (static_cast<std::uint64_t>(i) * 7919) % n;
  return Duration(static_cast<std::int64_t>(slot) * max_sleep.count() / n);
}

TimersResult timers(Runtime& rt, std::uint32_t tasks, Duration max_sleep) {
  require_positive(tasks, "timers");
  return rt.run(timers_main(tasks, max_sleep));
}

TimeoutsResult timeouts_ready(Runtime& rt, std::uint32_t n) {
  require_positive(n, "timeouts");
  return rt.run(timeouts_ready_main(n));
}

TimeoutsResult timeouts_armed(Runtime& rt, std::uint32_t n) {
  require_positive(n, "timeouts_armed");
  return rt.run(timeouts_armed_main(n));
}

}  // namespace weft::bench
