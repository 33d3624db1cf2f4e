// Helpers for weft's multi-worker tests (threadsafe, to_thread, context,
// scheduler, stress). Builds on tests/testing.h (WEFT_CO_TEST, ErrorLog,
// scaled, test_options).
//
//  - RuntimeThread: a Runtime running on a background thread until stop(),
//    for tests that act on it from plain threads (run_coroutine_threadsafe,
//    call_soon_threadsafe). Its main coroutine waits on a weft::Future that
//    stop() completes from the test thread.
//  - wait_until(pred, timeout): blocks a plain thread (never a loop) until
//    pred() holds; false on timeout, so a lost wake-up fails instead of hangs.
//  - co_wait_until(pred, timeout): the same from inside a task, sleeping 1 ms
//    between polls.
//  - Watchdog: aborts the process with a task dump if a test runs past its
//    limit (a hang is a bug; the dump says who waits on what).
//  - ThreadSet: a thread-safe set of thread ids, to prove which threads ran
//    what.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft::mt_testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Timeouts for things that should take micro- to milliseconds: generous, so
// that a slow sanitizer run on a loaded 2-core machine does not flake, but
// finite, so that a lost wake-up fails the test instead of hanging it.
inline constexpr std::chrono::milliseconds kLongWait = 10s;

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = kLongWait) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(200us);
  }
  return true;
}

template <typename Pred>
Coro<bool> co_wait_until(Pred pred, std::chrono::milliseconds timeout = kLongWait) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) co_return pred();
    co_await sleep(1ms);
  }
  co_return true;
}

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

class ThreadSet {
 public:
  void add(std::thread::id id = std::this_thread::get_id()) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.insert(id);
  }
  std::set<std::thread::id> get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_.size();
  }
  bool contains(std::thread::id id) const {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_.count(id) != 0;
  }

 private:
  mutable std::mutex mu_;
  std::set<std::thread::id> ids_;
};

// A Runtime whose main coroutine runs on a background thread until stop().
class RuntimeThread {
 public:
  explicit RuntimeThread(RuntimeOptions options = testing::test_options())
      : rt_(std::move(options)) {
    thread_ = std::thread([this] {
      try {
        rt_.run(main_body(this));
      } catch (...) {
        error_ = std::current_exception();
      }
      finished_.Notify();
    });
    if (!started_.WaitForNotificationWithTimeout(absl::Seconds(30))) {
      std::fprintf(stderr, "RuntimeThread: the runtime did not start\n");
      std::abort();
    }
  }
  ~RuntimeThread() { stop(); }
  RuntimeThread(const RuntimeThread&) = delete;
  RuntimeThread& operator=(const RuntimeThread&) = delete;

  Runtime& runtime() { return rt_; }
  Loop& loop(std::uint32_t i) { return rt_.loop(i); }

  // Lets main return (the runtime then cancels what is left) and joins.
  // Fails the test if the runtime does not stop within `timeout`.
  void stop(std::chrono::milliseconds timeout = kLongWait) {
    if (!thread_.joinable()) return;
    gate_->try_set_result();
    if (!finished_.WaitForNotificationWithTimeout(absl::FromChrono(timeout))) {
      std::fprintf(stderr, "RuntimeThread: the runtime did not stop within %lld ms\n",
                   static_cast<long long>(timeout.count()));
      std::abort();  // a hang: let the test fail loudly (run under gdb to see where)
    }
    thread_.join();
    gate_.reset();
    if (error_) {
      ADD_FAILURE() << "Runtime::run threw: " << describe_exception(error_);
    }
  }
  // Lets main return without waiting (stop() still has to be called).
  void request_stop() { gate_->try_set_result(); }
  // Waits up to `timeout` for run() to return; true if it did.
  bool wait_finished(std::chrono::milliseconds timeout) {
    return finished_.WaitForNotificationWithTimeout(absl::FromChrono(timeout));
  }
  // Whether run() has returned (e.g. after main was cancelled).
  bool finished() const { return finished_.HasBeenNotified(); }

 private:
  static Coro<void> main_body(RuntimeThread* self) {
    Future<void> gate;
    self->gate_ = gate;
    self->started_.Notify();  // publishes gate_ to the test thread
    co_await gate;
  }

  Runtime rt_;
  std::optional<Future<void>> gate_;
  absl::Notification started_;
  absl::Notification finished_;
  std::exception_ptr error_;
  std::thread thread_;
};

// Aborts with a diagnostic if not destroyed within `limit`.
class Watchdog {
 public:
  Watchdog(std::chrono::milliseconds limit, std::function<std::string()> describe = {})
      : describe_(std::move(describe)) {
    thread_ = std::thread([this, limit] {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
      std::string what = describe_ ? describe_() : std::string();
      std::fprintf(stderr, "\n*** Watchdog: the test did not finish within %lld ms (a hang)\n%s\n",
                   static_cast<long long>(limit.count()), what.c_str());
      std::fflush(stderr);
      std::abort();
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::function<std::string()> describe_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// A dump of the unfinished tasks of `rt` (name and what each waits on).
inline std::string describe_tasks(Runtime& rt, std::size_t max = 50) {
  std::vector<AnyTask> tasks = rt.all_tasks();
  std::string out = "unfinished tasks: " + std::to_string(tasks.size()) + "\n";
  for (std::size_t i = 0; i < tasks.size() && i < max; ++i) {
    out += "  " + tasks[i].get_name() + " waiting on [" + tasks[i].waiting_on() + "]\n";
  }
  return out;
}

}  // namespace weft::mt_testing
