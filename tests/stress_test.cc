// Randomized stress of the multi-worker runtime. Many tasks, each following
// a seeded random plan of yields, short sleeps and waits on futures that are
// completed elsewhere: by completer tasks (pinned to every loop, and free
// ones), by plain threads, by callbacks posted to a random loop, and by
// child tasks. Meanwhile a plain thread and a task cancel tasks at random
// moments, racing the completions, and a plain thread submits coroutines with
// run_coroutine_threadsafe and cancels some of those.
//
// What must hold: the test finishes (no lost wake-up; a watchdog aborts with
// a task dump otherwise); every task ends with the result its plan computes,
// or cancelled (or, for the tasks that swallow CancelledError, with the
// swallow marker); every task frame is destroyed (a Counted probe lives in
// each); no leak under ASan, no race under TSan.
//
// The default target runs a small variant; `stress_test_large` (size large,
// tags stress and manual) runs 10^5 tasks per configuration, 10^4 under a
// sanitizer. The seed is fixed and printed on failure; WEFT_STRESS_SEED
// overrides it.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/mt_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"
#include "weft/sched/detail/offload_pool.h"
#include "weft/sched/detail/runtime_access.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Counted;
using testing::kSanitized;

#if defined(WEFT_STRESS_LARGE)
constexpr bool kLarge = true;
#else
constexpr bool kLarge = false;
#endif

constexpr int kTasks = kLarge ? (kSanitized ? 10'000 : 100'000) : (kSanitized ? 500 : 2'000);
constexpr int kBatch = kLarge ? 4'000 : 500;
constexpr int kSubmissions = kLarge ? (kSanitized ? 500 : 5'000) : (kSanitized ? 50 : 200);
constexpr std::chrono::milliseconds kWatchdogLimit = kLarge ? 800s : 240s;
constexpr long kSwallowed = -1;

std::uint64_t stress_seed() {
  if (const char* env = std::getenv("WEFT_STRESS_SEED"); env != nullptr && *env != '\0') {
    return std::strtoull(env, nullptr, 10);
  }
  return 20240611;
}

enum class Kind : std::uint8_t {
  kYield,            // yield_now
  kSleep,            // sleep(v microseconds)
  kTaskCompleted,    // a future completed by a completer task
  kThreadCompleted,  // a future completed by a plain thread
  kChild,            // await a child task
  kHop,              // a future completed by a callback on loop v % workers
  kToThread,         // a to_thread call returning v
  kLongSleep,        // sleep(20 ms): mostly ends cancelled, with its timer
};
constexpr int kNumKinds = 8;

struct Step {
  Kind kind;
  int value;
};

struct Plan {
  std::vector<Step> steps;
  long expected = 0;
  bool swallow = false;  // catches CancelledError and returns kSwallowed
};

Plan make_plan(std::uint64_t seed, int i) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(i));
  Plan p;
  p.swallow = rng() % 10 == 0;
  const int n = 1 + static_cast<int>(rng() % 6);
  for (int s = 0; s < n; ++s) {
    Step st{static_cast<Kind>(rng() % kNumKinds), static_cast<int>(rng() % 100)};
    // Long sleeps are rare: one task in ~50 has one.
    if (st.kind == Kind::kLongSleep && rng() % 8 != 0) st.kind = Kind::kYield;
    switch (st.kind) {
      case Kind::kYield:
        p.expected += 1;
        break;
      case Kind::kSleep:
        st.value = static_cast<int>(rng() % 200);  // microseconds; 0 yields
        p.expected += 2;
        break;
      case Kind::kLongSleep:
        p.expected += 3;
        break;
      default:
        p.expected += st.value;
        break;
    }
    p.steps.push_back(st);
  }
  return p;
}

// Futures waiting for someone to complete them with a value.
class Mailbox {
 public:
  void push(Future<int> f, int v) {
    std::lock_guard<std::mutex> lock(mu_);
    q_.emplace_back(std::move(f), v);
  }
  bool pop(std::optional<Future<int>>* f, int* v) {
    std::lock_guard<std::mutex> lock(mu_);
    if (q_.empty()) return false;
    f->emplace(std::move(q_.front().first));
    *v = q_.front().second;
    q_.pop_front();
    return true;
  }
  bool empty() const {
    std::lock_guard<std::mutex> lock(mu_);
    return q_.empty();
  }

 private:
  mutable std::mutex mu_;
  std::deque<std::pair<Future<int>, int>> q_;
};

struct Env {
  std::uint64_t seed = 0;
  std::uint32_t workers = 0;
  std::vector<Plan> plans;
  std::vector<Task<long>> handles;     // written by main before `published`
  std::atomic<int> published{0};       // handles[0, published) are set
  Mailbox for_tasks;
  Mailbox for_threads;
  std::atomic<bool> stop{false};       // all worker tasks are done
  absl::Notification started;          // main is running
  std::atomic<bool> submitter_finished{false};
  std::atomic<long> cancels_requested{0};
  std::atomic<long> cancels_accepted{0};
  std::atomic<long> completions{0};
  std::atomic<long> completions_refused{0};  // the future was cancelled first
};

Coro<int> child(int v) {
  co_await yield_now();
  co_return v;
}

Coro<long> worker(Env* env, int i) {
  Counted frame_probe(i);  // destroyed with the frame
  const Plan& plan = env->plans[static_cast<std::size_t>(i)];
  long acc = 0;
  try {
    for (const Step& st : plan.steps) {
      switch (st.kind) {
        case Kind::kYield:
          co_await yield_now();
          acc += 1;
          break;
        case Kind::kSleep:
          co_await sleep(std::chrono::microseconds(st.value));
          acc += 2;
          break;
        case Kind::kTaskCompleted: {
          Future<int> f;
          env->for_tasks.push(f, st.value);
          acc += co_await f;
          break;
        }
        case Kind::kThreadCompleted: {
          Future<int> f;
          env->for_threads.push(f, st.value);
          acc += co_await f;
          break;
        }
        case Kind::kChild:
          acc += co_await create_task(child(st.value));
          break;
        case Kind::kHop: {
          Future<int> f;
          Loop& target = get_running_loop().runtime().loop(static_cast<std::uint32_t>(st.value) %
                                                           env->workers);
          target.call_soon_threadsafe([f, v = st.value] { f.try_set_result(v); });
          acc += co_await f;
          break;
        }
        case Kind::kToThread: {
          auto call = [v = st.value] { return v; };  // named: see to_thread_test
          acc += co_await to_thread(std::move(call));
          break;
        }
        case Kind::kLongSleep:
          co_await sleep(20ms);
          acc += 3;
          break;
      }
    }
  } catch (const CancelledError&) {
    if (!plan.swallow) throw;
    co_return kSwallowed;
  }
  co_return acc;
}

void complete_one(Env* env, std::optional<Future<int>>& f, int v) {
  if (f->try_set_result(v)) {
    env->completions.fetch_add(1, std::memory_order_relaxed);
  } else {
    env->completions_refused.fetch_add(1, std::memory_order_relaxed);  // cancelled meanwhile
  }
}

Coro<void> completer_task(Env* env) {
  std::mt19937 rng(static_cast<std::uint32_t>(env->seed));
  for (;;) {
    int n = 0;
    std::optional<Future<int>> f;
    int v = 0;
    while (n < 16 && env->for_tasks.pop(&f, &v)) {
      complete_one(env, f, v);
      ++n;
    }
    if (n == 0) {
      if (env->stop.load() && env->for_tasks.empty()) co_return;
      co_await sleep(std::chrono::microseconds(10 + rng() % 40));
    } else {
      co_await yield_now();
    }
  }
}

void completer_thread(Env* env) {
  std::optional<Future<int>> f;
  int v = 0;
  for (;;) {
    if (env->for_threads.pop(&f, &v)) {
      complete_one(env, f, v);
      continue;
    }
    if (env->stop.load() && env->for_threads.empty()) return;
    std::this_thread::sleep_for(20us);
  }
}

// Cancels a random recent task: most of them are still running or waiting.
bool cancel_random(Env* env, std::mt19937_64& rng) {
  int hi = env->published.load(std::memory_order_acquire);
  if (hi == 0) return false;
  int lo = std::max(0, hi - kBatch);
  int idx = lo + static_cast<int>(rng() % static_cast<std::uint64_t>(hi - lo));
  Task<long> t = env->handles[static_cast<std::size_t>(idx)];
  env->cancels_requested.fetch_add(1, std::memory_order_relaxed);
  if (t.cancel("stress")) env->cancels_accepted.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void canceller_thread(Env* env) {
  std::mt19937_64 rng(env->seed ^ 0xC0FFEE);
  while (!env->stop.load()) {
    cancel_random(env, rng);
    std::this_thread::sleep_for(std::chrono::microseconds(20 + rng() % 200));
  }
}

Coro<void> canceller_task(Env* env) {
  std::mt19937_64 rng(env->seed ^ 0xBADCAFE);
  while (!env->stop.load()) {
    cancel_random(env, rng);
    if (rng() % 2 == 0) {
      co_await sleep(std::chrono::microseconds(rng() % 300));
    } else {
      co_await yield_now();
    }
  }
}

Coro<int> submitted(int v) {
  co_await yield_now();
  if (v % 3 == 0) co_await sleep(std::chrono::microseconds(v % 100));
  co_return v;
}

// Submits coroutines from a plain thread, cancels some, and checks outcomes.
void submitter_thread(Env* env, Runtime* rt, std::atomic<int>* bad) {
  std::mt19937_64 rng(env->seed ^ 0x5AB);
  env->started.WaitForNotification();
  std::vector<std::pair<ConcurrentFuture<int>, int>> fs;
  for (int i = 0; i < kSubmissions; ++i) {
    ConcurrentFuture<int> f =
        rng() % 4 == 0
            ? run_coroutine_threadsafe(submitted(i), rt->loop(static_cast<std::uint32_t>(i) % env->workers))
            : run_coroutine_threadsafe(submitted(i), *rt);
    if (rng() % 5 == 0) {
      if (rng() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 50));
      f.cancel();
    }
    fs.emplace_back(std::move(f), i);
  }
  for (auto& [f, v] : fs) {
    try {
      if (f.result(mt_testing::kLongWait) != v) bad->fetch_add(1);
    } catch (const CancelledError&) {
    } catch (const TimeoutError&) {
      bad->fetch_add(1000);  // a submission that never completed
    }
  }
  env->submitter_finished = true;
}

Coro<void> stress_main(Env* env) {
  Runtime& rt = get_running_loop().runtime();
  std::vector<Task<void>> helpers;
  for (std::uint32_t l = 0; l < rt.num_workers(); ++l) {
    helpers.push_back(rt.loop(l).create_pinned_task(completer_task(env)));
    helpers.push_back(create_task(completer_task(env)));
  }
  helpers.push_back(create_task(canceller_task(env)));
  env->started.Notify();

  for (int lo = 0; lo < kTasks; lo += kBatch) {
    const int hi = std::min(kTasks, lo + kBatch);
    for (int i = lo; i < hi; ++i) {
      env->handles[static_cast<std::size_t>(i)] = create_task(worker(env, i));
      env->published.store(i + 1, std::memory_order_release);
      if (i % 64 == 0) co_await yield_now();  // let the batch start while it grows
    }
    for (int i = lo; i < hi; ++i) {
      try {
        co_await env->handles[static_cast<std::size_t>(i)];
      } catch (const CancelledError&) {
        // checked after run()
      }
    }
  }
  // Submissions must not race the shutdown (see threadsafe_test): wait for them.
  EXPECT_TRUE(co_await mt_testing::co_wait_until([env] { return env->submitter_finished.load(); },
                                                 std::chrono::milliseconds(kWatchdogLimit)));
  env->stop = true;
  for (auto& h : helpers) co_await h;
  // to_thread calls clean up on the pool a moment after their result was
  // delivered; the runtime would report them as still running (see
  // to_thread_test's CompletedCallIsNotReportedAsStillRunning).
  EXPECT_TRUE(co_await mt_testing::co_wait_until(
      [&rt] { return detail::RuntimeAccess::offload_pool(rt).running() == 0; }, kWatchdogLimit));
}

// `queue_slots`: RuntimeOptions::local_queue_slots (0: the full ring).
void run_stress(std::uint32_t workers, bool shuffle, std::uint32_t queue_slots = 0) {
  const std::uint64_t seed = stress_seed();
  SCOPED_TRACE("stress seed " + std::to_string(seed) + " (WEFT_STRESS_SEED=" + std::to_string(seed) +
               " reproduces it), workers " + std::to_string(workers) +
               (shuffle ? ", shuffle mode" : "") +
               (queue_slots != 0 ? ", " + std::to_string(queue_slots) + "-slot queues" : ""));
  testing::CountedScope frames;
  Env env;
  env.seed = seed;
  env.workers = workers;
  env.plans.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) env.plans.push_back(make_plan(seed, i));
  env.handles.resize(kTasks);

  RuntimeOptions options = testing::test_options(workers);
  if (shuffle) options.shuffle_seed = seed;
  options.local_queue_slots = queue_slots;
  Runtime rt(std::move(options));
  std::atomic<int> submit_bad{0};
  std::vector<std::thread> threads;
  {
    mt_testing::Watchdog watchdog(kWatchdogLimit, [&] {
      return "seed " + std::to_string(seed) + ", " + std::to_string(env.published.load()) +
             " tasks created\n" + mt_testing::describe_tasks(rt);
    });
    threads.emplace_back(completer_thread, &env);
    threads.emplace_back(completer_thread, &env);
    threads.emplace_back(canceller_thread, &env);
    threads.emplace_back(submitter_thread, &env, &rt, &submit_bad);
    auto t0 = mt_testing::Clock::now();
    rt.run(stress_main(&env));
    env.stop = true;  // in case main failed early
    for (auto& t : threads) t.join();
    std::printf("workers %u%s%s: %d tasks in %.0f ms\n", workers, shuffle ? " (shuffle)" : "",
                queue_slots != 0 ? " (small queues)" : "", kTasks, mt_testing::ms_since(t0));
  }

  int values = 0, cancelled = 0, swallowed = 0, wrong = 0, pending = 0;
  for (int i = 0; i < kTasks; ++i) {
    const Task<long>& t = env.handles[static_cast<std::size_t>(i)];
    const Plan& plan = env.plans[static_cast<std::size_t>(i)];
    if (!t.valid() || !t.done()) {
      ++pending;
      continue;
    }
    if (t.cancelled()) {
      ++cancelled;
      continue;
    }
    long r = t.result();
    if (r == plan.expected) {
      ++values;
    } else if (plan.swallow && r == kSwallowed) {
      ++swallowed;
    } else {
      if (wrong < 5) ADD_FAILURE() << "task " << i << " returned " << r << ", its plan gives " << plan.expected;
      ++wrong;
    }
  }
  std::printf(
      "  results %d, cancelled %d, swallowed %d; cancel requests %ld (accepted %ld); "
      "completions %ld (refused %ld)\n",
      values, cancelled, swallowed, env.cancels_requested.load(), env.cancels_accepted.load(),
      env.completions.load(), env.completions_refused.load());
  EXPECT_EQ(pending, 0) << "tasks not done after run() returned";
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(values + cancelled + swallowed, kTasks);
  EXPECT_GT(values, 0);
  EXPECT_GT(env.cancels_accepted.load(), 0) << "the cancellers never hit a live task";
  EXPECT_EQ(submit_bad.load(), 0) << "run_coroutine_threadsafe submissions with a wrong outcome";
  // Handles hold the task states, not the frames: every frame is gone.
  EXPECT_EQ(Counted::alive(), 0) << "task frames were not destroyed";
  env.handles.clear();
}

TEST(Stress, TwoWorkers) { run_stress(2, /*shuffle=*/false); }
TEST(Stress, FourWorkers) { run_stress(4, /*shuffle=*/false); }
TEST(Stress, FourWorkersShuffled) { run_stress(4, /*shuffle=*/true); }
// Four-slot local queues: wake-ups through the LIFO slot, overflow to the
// shared queue and steals at their limit all the time, with every worker.
TEST(Stress, FourWorkersFourSlotQueues) { run_stress(4, /*shuffle=*/false, /*queue_slots=*/4); }
TEST(Stress, FourWorkersFourSlotQueuesShuffled) {
  run_stress(4, /*shuffle=*/true, /*queue_slots=*/4);
}

}  // namespace
}  // namespace weft
