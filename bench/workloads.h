// The workloads of the throughput harness (shared/perf/README.md, W1-W7), one
// function per workload and run, with the sizes as parameters. W8 and W9
// (servers measured over loopback) are in net_workloads.h.
//
// Each function runs ONE repetition of its workload on `rt` (one
// `Runtime::run`), times it from inside the runtime (the runtime's start-up
// and shutdown are not part of the figure) and returns both the time and what
// the workload computed, so that the harness binary (throughput.cc) can report
// figures and the smoke test (throughput_smoke_test.cc) can check the results
// with small sizes. Repetitions, statistics and the output format are the
// harness's business, not this file's.
//
// Every workload uses the API its definition names, as a weft user would:
//  - W2 submits with `weft::spawn_threadsafe(coro, rt)` (the fire-and-forget
//    form of run_coroutine_threadsafe) from a plain std::thread (the last
//    task signals completion; nothing blocks on each submission);
//  - W4 passes the counter through two `weft::Queue<std::uint64_t>(1)`;
//  - W6's timeouts are `weft::wait_for(aw, 10s)`: around an already-finished
//    Future (`ns_per_timeout`), and around a Coro that returns without
//    suspending, under a timer armed and cancelled (`ns_per_timeout_armed`);
//  - W7 offloads calibrated busy-work with `weft::to_thread`;
//  - M1 parks its tasks on one `weft::Event`.
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
// runtime with spawn_threadsafe and waits until all of them ran;
// meanwhile the runtime's main task awaits a Future that the last task
// completes.
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
// Two tasks pass a counter back and forth through two one-slot channels,
// weft::Queue<std::uint64_t> with maxsize 1: ping puts counter + 1 into one
// and gets the answer from the other; pong gets, adds one and puts it back.
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
  std::uint64_t completed = 0;  // sum of the values wait_for returned: each is 1 (== timeouts)
  std::uint64_t fired = 0;      // wait_for calls that raised TimeoutError (== 0)
  double seconds = 0;
};
// The README's deadline for these timeouts: long enough never to fire.
inline constexpr Duration kTimeoutThatNeverFires = std::chrono::seconds(10);
// `n` times, one after the other in one task,
// `co_await weft::wait_for(ready, kTimeoutThatNeverFires)` where `ready` is a
// Future<std::uint64_t> already holding 1 (`ns_per_timeout`). weft's wait_for
// returns an already-finished awaitable's value without arming a timer.
TimeoutsResult timeouts_ready(Runtime& rt, std::uint32_t n);
// `n` times `co_await weft::wait_for(ready_one(), kTimeoutThatNeverFires)`,
// where ready_one() is a Coro that returns 1 without suspending: wait_for
// runs it inline under a timeout scope, which arms a timer in the loop's
// wheel at entry and cancels it at exit (`ns_per_timeout_armed`).
TimeoutsResult timeouts_armed(Runtime& rt, std::uint32_t n);

// --- W7 offload -------------------------------------------------------------
// The CPU work of one offloaded call: `iterations` steps of a dependency
// chain (each step needs the previous one's result; an empty asm statement
// keeps the compiler from folding or vectorising it).
struct OffloadWork {
  std::uint64_t iterations = 0;
  double ns_per_call = 0;  // measured on this thread: median of timed calls
};
// Calibrates the chain so that one call takes about `target` on this machine
// (timed on the calling thread: the fastest of several timings, so that a
// busy moment does not shrink the work), then measures one call.
// std::invalid_argument for a target that is not positive or above 1 s.
OffloadWork calibrate_offload_work(Duration target);
// Runs the work once; what every offloaded call returns (its value depends
// only on `iterations`, so the results can be checked).
std::uint64_t offload_work(std::uint64_t iterations);

struct OffloadResult {
  std::uint32_t calls = 0;
  std::uint32_t tasks = 0;
  std::uint64_t completed = 0;     // calls whose result was the expected value (== calls)
  std::uint64_t on_loop_thread = 0;  // calls that ran on a loop's thread (== 0)
  double seconds = 0;              // first offload to the last task joined
};
// `tasks` tasks (at most `calls`) share `calls` calls, task i doing
// calls / tasks (+1 for the first calls % tasks) of them one after the other:
// `co_await weft::to_thread(offload_work, work.iterations)` in a loop.
OffloadResult offload(Runtime& rt, std::uint32_t calls, std::uint32_t tasks, OffloadWork work);

// --- M1 idle_memory -----------------------------------------------------------
// The process's resident memory now (VmRSS, from /proc/self/statm), in bytes.
std::int64_t resident_bytes();

struct IdleMemoryResult {
  std::uint32_t tasks = 0;
  std::uint64_t woke = 0;          // tasks that returned after the event was set (== tasks)
  std::int64_t rss_growth = 0;     // bytes the parked tasks added to the resident set
  double bytes_per_task = 0;       // rss_growth / tasks
};
// One task makes `tasks` tasks that each await one Event (their handles kept
// in a vector reserved beforehand), waits until every one is parked on it,
// reads the resident set's growth, then sets the event and joins them all.
IdleMemoryResult idle_memory(Runtime& rt, std::uint32_t tasks);

}  // namespace weft::bench
