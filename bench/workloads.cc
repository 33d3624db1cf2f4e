#include "weft/bench/workloads.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "weft/core/detail/loop_base.h"
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

// THE remote submission of W2, from a thread that is not a worker: the
// fire-and-forget thread-safe API (Tokio's harness drops its JoinHandles the
// same way). The task may run on any worker; the last task signals the end
// of the run. run_coroutine_threadsafe would add a ConcurrentFuture per task.
void submit_remote(Runtime& rt, Coro<void> body) { spawn_threadsafe(std::move(body), rt); }

Coro<SpawnRemoteResult> spawn_remote_main(std::uint32_t n) {
  Runtime& rt = get_running_loop().runtime();
  RemoteRun run(n);
  double seconds = 0;
  std::thread submitter([&rt, &run, &seconds] {
    const auto t0 = WallClock::now();
    for (std::uint32_t i = 0; i < run.n; ++i) submit_remote(rt, remote_task(&run));
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

// The one-slot channels of W4: a bounded weft::Queue with room for one
// message, so a put waits while the previous message was not taken.
using OneSlot = Queue<std::uint64_t>;
constexpr std::size_t kOneSlot = 1;

Coro<std::uint64_t> ping(OneSlot* out, OneSlot* in, std::uint32_t round_trips) {
  std::uint64_t counter = 0;
  for (std::uint32_t i = 0; i < round_trips; ++i) {
    co_await out->put(counter + 1);
    counter = co_await in->get();
  }
  co_return counter;
}

Coro<void> pong(OneSlot* in, OneSlot* out, std::uint32_t round_trips) {
  for (std::uint32_t i = 0; i < round_trips; ++i) {
    const std::uint64_t v = co_await in->get();
    co_await out->put(v + 1);
  }
}

Coro<PingPongResult> ping_pong_main(std::uint32_t round_trips) {
  // In this frame, which outlives both tasks (joined below).
  OneSlot a_to_b(kOneSlot);
  OneSlot b_to_a(kOneSlot);
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

// The work under an armed timeout: a Coro that returns 1 without suspending,
// so that the figure is the timeout's own cost (the README's "armed in the
// timer structure and then cancelled", as Tokio's Sleep polled once and
// dropped), and the caller can check that wait_for handed back its value.
Coro<std::uint64_t> ready_one() { co_return 1; }

Coro<TimeoutsResult> timeouts_ready_main(std::uint32_t n) {
  Future<std::uint64_t> ready;
  ready.set_result(1);
  TimeoutsResult r;
  r.timeouts = n;
  const auto t0 = WallClock::now();
  for (std::uint32_t i = 0; i < n; ++i) {
    try {
      r.completed += co_await wait_for(ready, kTimeoutThatNeverFires);
    } catch (const TimeoutError&) {
      ++r.fired;
    }
  }
  r.seconds = seconds_since(t0);
  co_return r;
}

Coro<TimeoutsResult> timeouts_armed_main(std::uint32_t n) {
  TimeoutsResult r;
  r.timeouts = n;
  const auto t0 = WallClock::now();
  for (std::uint32_t i = 0; i < n; ++i) {
    try {
      r.completed += co_await wait_for(ready_one(), kTimeoutThatNeverFires);
    } catch (const TimeoutError&) {
      ++r.fired;
    }
  }
  r.seconds = seconds_since(t0);
  co_return r;
}

// ---------------------------------------------------------------------------
// W7 offload

// What the tasks of one run share; in the main task's frame, which outlives
// every task (all are joined before it returns).
struct OffloadRun {
  std::uint64_t iterations = 0;
  std::uint64_t expected = 0;  // offload_work(iterations)
  // Relaxed: only totals matter, read after every task was joined (the joins
  // order the increments before the reads).
  std::atomic<std::uint64_t> on_loop_thread{0};
};

// The offloaded call: the work, plus a check of where it ran.
std::uint64_t offloaded_call(OffloadRun* run) {
  if (detail::current_loop() != nullptr) run->on_loop_thread.fetch_add(1, std::memory_order_relaxed);
  return offload_work(run->iterations);
}

// One task's share: offload, await, repeat. Returns the calls that returned
// the expected value.
Coro<std::uint64_t> offloader(OffloadRun* run, std::uint32_t calls) {
  std::uint64_t good = 0;
  for (std::uint32_t i = 0; i < calls; ++i) {
    if (co_await to_thread(offloaded_call, run) == run->expected) ++good;
  }
  co_return good;
}

Coro<OffloadResult> offload_main(std::uint32_t calls, std::uint32_t tasks,
                                 std::uint64_t iterations, std::uint64_t expected) {
  OffloadRun run;
  run.iterations = iterations;
  run.expected = expected;
  const auto t0 = WallClock::now();
  std::vector<Task<std::uint64_t>> all;
  all.reserve(tasks);
  for (std::uint32_t i = 0; i < tasks; ++i) {
    all.push_back(create_task(offloader(&run, calls / tasks + (i < calls % tasks ? 1 : 0))));
  }
  OffloadResult r;
  for (Task<std::uint64_t>& t : all) r.completed += co_await t;
  r.seconds = seconds_since(t0);
  r.calls = calls;
  r.tasks = tasks;
  r.on_loop_thread = run.on_loop_thread.load(std::memory_order_relaxed);
  co_return r;
}

// ---------------------------------------------------------------------------
// M1 idle_memory

Coro<void> parked(Event& ev, std::atomic<std::uint64_t>& woke) {
  co_await ev.wait();
  woke.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after the joins
}

Coro<IdleMemoryResult> idle_memory_main(std::uint32_t n) {
  IdleMemoryResult r;
  r.tasks = n;
  Event ev;
  std::atomic<std::uint64_t> woke{0};
  std::vector<Task<void>> handles;
  handles.reserve(n);
  const std::int64_t before = resident_bytes();
  for (std::uint32_t i = 0; i < n; ++i) handles.push_back(create_task(parked(ev, woke)));
  // Every task runs to its wait() and parks; a 1 ms poll costs nothing that
  // stays resident.
  while (ev.statistics().waiters < n) co_await sleep(std::chrono::milliseconds(1));
  r.rss_growth = resident_bytes() - before;
  r.bytes_per_task = static_cast<double>(r.rss_growth) / n;
  ev.set();
  for (Task<void>& t : handles) co_await t;
  r.woke = woke.load(std::memory_order_relaxed);
  co_return r;
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

std::int64_t resident_bytes() {
  // statm's second field: resident pages.
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) throw std::runtime_error("resident_bytes: cannot open /proc/self/statm");
  long long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (got != 2) throw std::runtime_error("resident_bytes: cannot parse /proc/self/statm");
  return static_cast<std::int64_t>(resident) * ::sysconf(_SC_PAGESIZE);
}

IdleMemoryResult idle_memory(Runtime& rt, std::uint32_t tasks) {
  require_positive(tasks, "idle_memory");
  return rt.run(idle_memory_main(tasks));
}

TimeoutsResult timeouts_ready(Runtime& rt, std::uint32_t n) {
  require_positive(n, "timeouts");
  return rt.run(timeouts_ready_main(n));
}

TimeoutsResult timeouts_armed(Runtime& rt, std::uint32_t n) {
  require_positive(n, "timeouts_armed");
  return rt.run(timeouts_armed_main(n));
}

std::uint64_t offload_work(std::uint64_t iterations) {
  // A 64-bit LCG step per iteration (multiply + add: ~4 cycles of latency).
  // The asm statement makes `x` opaque to the optimiser at every step, so the
  // loop can be neither folded into a closed form nor vectorised.
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    asm volatile("" : "+r"(x));
  }
  return x;
}

OffloadWork calibrate_offload_work(Duration target) {
  if (target <= Duration(0) || target > std::chrono::seconds(1)) {
    throw std::invalid_argument("calibrate_offload_work: the target must be in (0, 1 s]");
  }
  // Nanoseconds per iteration: the fastest of several timings of a long
  // chain (a preemption or a busy sibling core only makes a timing slower).
  constexpr std::uint64_t kProbe = 200'000;
  double best_ns_per_iter = 1e9;
  for (int i = 0; i < 7; ++i) {
    const auto t0 = WallClock::now();
    const std::uint64_t v = offload_work(kProbe);
    const double ns = std::chrono::duration<double, std::nano>(WallClock::now() - t0).count();
    if (v == 0) continue;  // never true; keeps `v` alive
    best_ns_per_iter = std::min(best_ns_per_iter, ns / kProbe);
  }
  OffloadWork w;
  w.iterations = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::llround(static_cast<double>(target.count()) /
                                                 best_ns_per_iter)));
  // One call as the workload makes it: the median of many timed calls.
  std::vector<double> ns(101);
  for (double& x : ns) {
    const auto t0 = WallClock::now();
    const std::uint64_t v = offload_work(w.iterations);
    x = std::chrono::duration<double, std::nano>(WallClock::now() - t0).count();
    if (v == 0) x = 0;  // never true; keeps `v` alive
  }
  std::nth_element(ns.begin(), ns.begin() + ns.size() / 2, ns.end());
  w.ns_per_call = ns[ns.size() / 2];
  return w;
}

OffloadResult offload(Runtime& rt, std::uint32_t calls, std::uint32_t tasks, OffloadWork work) {
  require_positive(calls, "offload");
  require_positive(tasks, "offload");
  if (work.iterations == 0) throw std::invalid_argument("offload: the work has no iterations");
  tasks = std::min(tasks, calls);
  return rt.run(offload_main(calls, tasks, work.iterations, offload_work(work.iterations)));
}

}  // namespace weft::bench
