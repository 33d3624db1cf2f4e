// The workloads of the throughput harness (shared/perf/README.md, W1-W6), one
// function per workload and run, with the sizes as parameters.
//
// Each function runs ONE repetition of its workload on `rt` (one
// `Runtime::run`), times it from inside the runtime (the runtime's start-up
// and shutdown are not part of the figure) and returns both the time and what
// the workload computed, so that the harness binary (throughput.cc) can report
// figures and the smoke test (throughput_smoke_test.cc) can check the results
// with small sizes. Repetitions, statistics and the output format are the
// harness's business, not this file's.
//
// Stand-ins: some APIs the README's definitions name are not written yet. Each
// stand-in lives in one clearly named function in workloads.cc, to be switched
// to the real API when it lands:
//  - W2: `submit_remote()` uses `Loop::create_pinned_task` (thread-safe) until
//    `weft::run_coroutine_threadsafe` is the submission API.
//  - W4: a one-slot channel made of one `weft::Future<int>` per message
//    (`OneSlot`), until `weft::Queue` exists.
//  - W6: `wait_ready_with_timeout()` / `wait_pending_with_timeout()` arm a
//    `call_later` timer and cancel it, until `weft::wait_for` exists.
//  - W7 (to_thread offload) is not here at all yet.
//
// Thread safety: call these from a thread that is not running a weft loop;
// `rt` must not be running.
#pragma once

#include <cstdint>

#include "weft/sched/clock.h"
#include "weft/sched/runtime.h"

namespace weft::bench {

// --- W1 spawn_local ---------------------------------------------------------
struct SpawnLocalResult {
  std::uint32_t tasks = 0;     // tasks spawned and joined
  std::uint64_t counter = 0;   // the shared counter after the joins (== tasks)
  double seconds = 0;          // first spawn to last join
};
// From a task, spawns `n` tasks with create_task that each increment a shared
// atomic counter, then joins them all.
SpawnLocalResult spawn_local(Runtime& rt, std::uint32_t n);

// --- W2 spawn_remote --------------------------------------------------------
struct SpawnRemoteResult {
  std::uint32_t tasks = 0;  // tasks submitted
  std::uint64_t ran = 0;    // tasks that ran (== tasks)
  double seconds = 0;       // measured by the plain thread: first submit to "all ran"
};
// A plain std::thread (not a worker) submits `n` tasks to the running
// runtime and waits until all of them ran; meanwhile the runtime's main task
// awaits a Future that the last task completes.
SpawnRemoteResult spawn_remote(Runtime& rt, std::uint32_t n);

// --- W3 fib -----------------------------------------------------------------
struct FibResult {
  int n = 0;
  std::uint64_t value = 0;  // fib(n)
  std::uint64_t tasks = 0;  // tasks run, counted by the tasks themselves
  double seconds = 0;
};
// Recursive fib(n) where every call is a task and every call with n >= 2
// spawns two child tasks (create_task) and awaits both. No cutoff.
FibResult fib(Runtime& rt, int n);
// What fib() must return: fib(n), and the number of calls (2 * fib(n+1) - 1).
std::uint64_t expected_fib_value(int n);
std::uint64_t expected_fib_tasks(int n);

// --- W4 ping_pong -----------------------------------------------------------
struct PingPongResult {
  std::uint32_t round_trips = 0;
  std::uint64_t counter = 0;  // +1 per message: 2 * round_trips at the end
  double seconds = 0;
};
// Two tasks pass a counter back and forth through two one-slot channels.
PingPongResult ping_pong(Runtime& rt, std::uint32_t round_trips);

// --- W5 yield_many ----------------------------------------------------------
struct YieldManyResult {
  std::uint32_t tasks = 0;
  std::uint64_t yields = 0;  // counted by the tasks: tasks * yields_per_task
  double seconds = 0;
};
// `tasks` tasks each `co_await yield_now()` `yields_per_task` times.
YieldManyResult yield_many(Runtime& rt, std::uint32_t tasks, std::uint32_t yields_per_task);

// --- W6 timers --------------------------------------------------------------
struct TimersResult {
  std::uint32_t tasks = 0;
  std::uint32_t woke = 0;       // tasks whose sleep ended (== tasks)
  std::uint32_t early = 0;      // sleeps that ended before their duration (== 0)
  Duration max_sleep{};         // the longest requested sleep
  Duration max_lateness{};      // worst (wake-up time - requested end)
  double seconds = 0;           // wall: first spawn to last join
  double cpu_seconds = 0;       // process user+sys (getrusage) over the same span
};
// The sleep of task i of n: ((i * 7919) % n) * max_sleep / n. With n = 100,000
// and max_sleep = 100 ms this is the README's definition.
Duration timer_sleep_duration(std::uint32_t i, std::uint32_t n, Duration max_sleep);
// Spawns `tasks` tasks, task i sleeping timer_sleep_duration(i, ...), and
// joins them all.
TimersResult timers(Runtime& rt, std::uint32_t tasks, Duration max_sleep);

struct TimeoutsResult {
  std::uint32_t timeouts = 0;
  std::uint64_t completed = 0;   // awaits that returned normally (== timeouts)
  std::uint64_t fired = 0;       // timeout callbacks that ran (== 0)
  std::uint64_t not_cancelled = 0;  // cancel() calls that returned false (== 0)
  double seconds = 0;
};
// The README's deadline for these timeouts: long enough never to fire.
inline constexpr Duration kTimeoutThatNeverFires = std::chrono::seconds(10);
// `n` timeouts that never fire around an already-finished awaitable, one
// after the other in one task (`ns_per_timeout`).
TimeoutsResult timeouts_ready(Runtime& rt, std::uint32_t n);
// `n` timeouts around an awaitable that is still pending when the timeout is
// armed (it completes one scheduler round later), so the timer sits in the
// loop's timer structure across a suspension before it is cancelled
// (`ns_per_timeout_armed`).
TimeoutsResult timeouts_armed(Runtime& rt, std::uint32_t n);

}  // namespace weft::bench
