// Microbenchmarks of weft's hot paths (Google Benchmark). Every figure is
// nanoseconds per operation: one benchmark iteration is one operation.
//
// Most operations only exist inside a running weft task, so those benchmarks
// run their timing loop inside the main task of a fresh one-worker runtime:
// `for (auto _ : state)` is driven from the coroutine, so Google Benchmark's
// timer covers exactly the loop (runtime start-up and shutdown are outside
// it). With one worker the task never changes threads, so the CPU-time
// column is meaningful too.
//
// The frame-pool pairs (`pool:0` / `pool:1`) switch
// weft::detail::set_frame_pool_enabled around the benchmark: pool:0 is what a
// coroutine frame costs straight from the pool's backing allocator (oneTBB's
// scalable allocator), pool:1 what it costs with weft's per-thread free lists.
//
//
// WEFT_BENCH_ABSL_DEADLOCK_DETECTION=off switches Abseil's mutex deadlock
// detection off for the whole run (see bench/README.md); the setting is
// recorded in the output's context lines.
//
//   bazel run -c opt //bench:micro_bench
//   bazel run -c opt //bench:micro_bench -- --benchmark_filter=Coro

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "weft/bench/workloads.h"
#include "weft/core/detail/frame_alloc.h"
#include "weft/weft.h"

namespace weft::bench {
namespace {

// Applied at start-up, before any benchmark runs.
[[maybe_unused]] const bool kAbslDeadlockDetectionOff = [] {
  const char* env = std::getenv("WEFT_BENCH_ABSL_DEADLOCK_DETECTION");
  const bool off = env != nullptr && std::string_view(env) == "off";
  if (off) absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::AddCustomContext("absl_deadlock_detection", off ? "off" : "library default");
  return off;
}();

// Switches the frame pool for one benchmark run and restores it after.
class FramePoolSetting {
 public:
  explicit FramePoolSetting(bool enabled) : previous_(detail::frame_pool_enabled()) {
    detail::set_frame_pool_enabled(enabled);
  }
  ~FramePoolSetting() { detail::set_frame_pool_enabled(previous_); }
  FramePoolSetting(const FramePoolSetting&) = delete;
  FramePoolSetting& operator=(const FramePoolSetting&) = delete;

 private:
  const bool previous_;
};

// Runs `main` (whose loop drives `state`) as the main task of a runtime with
// `workers` workers.
void run_in_runtime(Coro<void> main, std::uint32_t workers = 1) {
  RuntimeOptions options;
  options.workers = workers;
  weft::run(std::move(main), std::move(options));
}

Coro<int> trivial(int x) { co_return x + 1; }

// --- Coroutine frames -----------------------------------------------------------

// A Coro created, resumed to completion and destroyed by hand, outside any
// runtime: the bare cost of a frame (README: 41 ns global new / 16 ns free list).
void BM_CoroCreateResumeDestroy(benchmark::State& state) {
  FramePoolSetting pool(state.range(0) != 0);
  int x = 0;
  for (auto _ : state) {
    Coro<int> c = trivial(x);
    c.handle().resume();  // runs to its final suspend (no continuation, no task)
    x = c.handle().promise().take();
    benchmark::DoNotOptimize(x);
  }  // ~Coro destroys the frame
}
BENCHMARK(BM_CoroCreateResumeDestroy)->ArgName("pool")->Arg(0)->Arg(1);

// `co_await trivial()` inside a task: create + symmetric transfer in + out +
// destroy, i.e. asyncio's `await coro` of a coroutine that does not suspend.
Coro<void> coro_await_loop(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) {
    x = co_await trivial(x);
    benchmark::DoNotOptimize(x);
  }
}
void BM_CoroAwaitInTask(benchmark::State& state) {
  FramePoolSetting pool(state.range(0) != 0);
  run_in_runtime(coro_await_loop(state));
}
BENCHMARK(BM_CoroAwaitInTask)->ArgName("pool")->Arg(0)->Arg(1);

// --- Tasks --------------------------------------------------------------------------

// create_task + run + complete + await, one task at a time (the awaiting task
// suspends, the child runs, completing it wakes the parent).
Coro<void> spawn_join_loop(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) {
    x = co_await create_task(trivial(x));
    benchmark::DoNotOptimize(x);
  }
}
void BM_SpawnJoin(benchmark::State& state) {
  FramePoolSetting pool(state.range(0) != 0);
  run_in_runtime(spawn_join_loop(state));
}
BENCHMARK(BM_SpawnJoin)->ArgName("pool")->Arg(0)->Arg(1);

// One iteration spawns one task; they are joined 256 at a time (W1's shape on
// one worker: the parent does not suspend per child).
Coro<void> spawn_batch_loop(benchmark::State& state) {
  constexpr std::size_t kBatch = 256;
  std::vector<Task<int>> tasks;
  tasks.reserve(kBatch);
  int x = 0;
  for (auto _ : state) {
    tasks.push_back(create_task(trivial(x)));
    if (tasks.size() == kBatch) {
      for (Task<int>& t : tasks) x += co_await t;
      tasks.clear();
    }
  }
  for (Task<int>& t : tasks) x += co_await t;  // the last partial batch, untimed
  benchmark::DoNotOptimize(x);
}
void BM_SpawnBatchJoin(benchmark::State& state) {
  FramePoolSetting pool(state.range(0) != 0);
  run_in_runtime(spawn_batch_loop(state));
}
BENCHMARK(BM_SpawnBatchJoin)->ArgName("pool")->Arg(0)->Arg(1);

// --- Futures --------------------------------------------------------------------------

// new Future + set_result + co_await of the done future (no suspension).
Coro<void> future_ready_loop(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) {
    Future<int> f;
    f.set_result(x + 1);
    x = co_await f;
    benchmark::DoNotOptimize(x);
  }
}
void BM_FutureSetThenAwait(benchmark::State& state) { run_in_runtime(future_ready_loop(state)); }
BENCHMARK(BM_FutureSetThenAwait);

// A set_result + await round trip with suspension: two tasks pass a value
// back and forth, one new Future per message (W4's channel, on one worker).
// One iteration = one round trip = 2 x (new Future, set_result, the awaiting
// task suspends, is woken and resumes).
struct FutureSlot {
  Future<int> message;
  void send(int v) const {
    Future<int> m = message;  // see workloads.cc OneSlot: the receiver may replace `message`
    m.set_result(v);
  }
};

Coro<void> future_echo(FutureSlot* in, FutureSlot* out, const bool* stop) {
  for (;;) {
    int v = co_await in->message;
    in->message = Future<int>();
    if (*stop) co_return;
    out->send(v + 1);
  }
}

Coro<void> future_round_trip_loop(benchmark::State& state) {
  FutureSlot to_echo, from_echo;
  bool stop = false;
  Task<void> echo = create_task(future_echo(&to_echo, &from_echo, &stop));
  int x = 0;
  for (auto _ : state) {
    to_echo.send(x);
    x = co_await from_echo.message;
    from_echo.message = Future<int>();
  }
  stop = true;
  to_echo.send(0);
  co_await echo;
  benchmark::DoNotOptimize(x);
}
void BM_FutureRoundTrip(benchmark::State& state) { run_in_runtime(future_round_trip_loop(state)); }
BENCHMARK(BM_FutureRoundTrip);

// --- Timers ---------------------------------------------------------------------------------

// call_later(10 s) + TimerHandle::cancel() from inside a task, with
// state.range(0) other timers pending in the loop's timer structure.
Coro<void> timer_loop(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  std::vector<TimerHandle> others;
  others.reserve(pending);
  for (std::size_t i = 0; i < pending; ++i) {
    others.push_back(call_later(std::chrono::hours(1) + std::chrono::microseconds(i), [] {}));
  }
  for (auto _ : state) {
    TimerHandle h = call_later(std::chrono::seconds(10), [] {});
    benchmark::DoNotOptimize(h.cancel());
  }
  for (TimerHandle& h : others) h.cancel();
  co_return;  // (a coroutine: it runs inside the runtime's main task)
}
void BM_TimerInsertCancel(benchmark::State& state) { run_in_runtime(timer_loop(state)); }
BENCHMARK(BM_TimerInsertCancel)->ArgName("pending")->Arg(0)->Arg(1000)->Arg(100000);

// --- Timeouts ----------------------------------------------------------------------------

// An armed timeout's cost: a Coro awaited alone, under wait_for(10 s) (which
// runs it inline in a timeout scope) and under timeout(10 s) (the same
// frame-held scope); the difference is the timeout (scope, timer armed and
// cancelled, checks). Two Coros: one that returns at once (W6's armed
// timeout as the workload defines it: armed, then cancelled, no scheduler
// turn inside, like Tokio's Sleep polled once and dropped), and one that
// yields once, whose checkpoint also checks the deadline.
Coro<int> ready_value() { co_return 1; }
Coro<int> yield_once_value() {
  co_await yield_now();
  co_return 1;
}
using Body = Coro<int> (*)();

template <Body body>
Coro<void> await_loop(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(co_await body());
}
template <Body body>
Coro<void> wait_for_loop(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(co_await wait_for(body(), std::chrono::seconds(10)));
  }
}
template <Body body>
Coro<void> timeout_loop(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(co_await timeout(std::chrono::seconds(10), body()));
  }
}

void BM_ReadyCoro(benchmark::State& state) { run_in_runtime(await_loop<ready_value>(state)); }
BENCHMARK(BM_ReadyCoro);
void BM_WaitForArmedNoYield(benchmark::State& state) {
  run_in_runtime(wait_for_loop<ready_value>(state));
}
BENCHMARK(BM_WaitForArmedNoYield);
void BM_YieldOnceCoro(benchmark::State& state) {
  run_in_runtime(await_loop<yield_once_value>(state));
}
BENCHMARK(BM_YieldOnceCoro);
void BM_WaitForArmed(benchmark::State& state) {
  run_in_runtime(wait_for_loop<yield_once_value>(state));
}
BENCHMARK(BM_WaitForArmed);
void BM_TimeoutArmed(benchmark::State& state) {
  run_in_runtime(timeout_loop<yield_once_value>(state));
}
BENCHMARK(BM_TimeoutArmed);

// What 1,000,000 armed timers hold: bytes per call_later timer, from the
// process's resident set before and after arming them (the handles' vector
// is reserved and touched before the first reading; VmRSS counts what every
// allocator, the pool's included, took from the system). Reported as the
// counter bytes_per_timer; the time is the arming. One iteration: a second
// would reuse the pages the first one touched.
Coro<void> timer_memory_loop(benchmark::State& state) {
  constexpr std::size_t kTimers = 1'000'000;
  std::vector<TimerHandle> handles(kTimers);
  handles.clear();
  double bytes = 0;
  for (auto _ : state) {
    const double before = static_cast<double>(resident_bytes());
    for (std::size_t i = 0; i < kTimers; ++i) {
      handles.push_back(call_later(std::chrono::hours(1) + std::chrono::microseconds(i), [] {}));
    }
    bytes = static_cast<double>(resident_bytes()) - before;
    state.PauseTiming();
    for (TimerHandle& h : handles) h.cancel();
    handles.clear();
    state.ResumeTiming();
  }
  state.counters["bytes_per_timer"] = bytes / kTimers;
  co_return;
}
void BM_TimersArmedMemory(benchmark::State& state) { run_in_runtime(timer_memory_loop(state)); }
BENCHMARK(BM_TimersArmedMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

// --- Yield --------------------------------------------------------------------------------

// co_await yield_now(): the task goes to the back of its loop's queue and is
// run again. Alone on one worker, and alone on two workers (whether a lone
// yielding task wakes the idle worker and migrates shows here).
Coro<void> yield_loop(benchmark::State& state) {
  for (auto _ : state) co_await yield_now();
}
void BM_YieldNow(benchmark::State& state) {
  run_in_runtime(yield_loop(state), static_cast<std::uint32_t>(state.range(0)));
}
// Real time: on two workers the task may resume on another thread, where the
// thread CPU clock Google Benchmark reads is not the one it started with.
BENCHMARK(BM_YieldNow)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime();

}  // namespace
}  // namespace weft::bench

// main() comes from @com_github_google_benchmark//:benchmark_main.
