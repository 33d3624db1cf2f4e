// Debug mode (RuntimeOptions::debug / WEFT_DEBUG=1, true, yes or on): the slow-step warning
// naming the task, the never-awaited Coro report, and weft::dump_tasks().
// No timing assertions beyond "a warning was produced".
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::ErrorLog;

RuntimeOptions debug_options(ErrorLog& log, std::uint32_t workers = 1) {
  RuntimeOptions o = testing::logged_options(log, workers);
  o.debug = true;
  o.slow_callback_threshold = std::chrono::microseconds(500);
  return o;
}

void busy_wait(Duration d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

Coro<void> blocks_the_loop() {
  busy_wait(milliseconds(5));
  co_return;
}

Coro<void> run_slow_task() {
  co_await create_task(blocks_the_loop(), "slowpoke");
}

TEST(DebugMode, SlowStepWarningNamesTheTask) {
  ErrorLog log;
  run(run_slow_task(), debug_options(log));
  EXPECT_GE(log.count({"slow task step", "slowpoke"}), 1) << log.dump();
}

Coro<void> run_slow_callback() {
  Future<void> done;
  call_soon([done] {
    busy_wait(milliseconds(5));
    done.set_result();
  });
  co_await done;
}

TEST(DebugMode, SlowCallbackWarning) {
  ErrorLog log;
  run(run_slow_callback(), debug_options(log));
  EXPECT_GE(log.count({"slow callback"}), 1) << log.dump();
}

TEST(DebugMode, NoSlowWarningWhenOff) {
  ErrorLog log;
  RuntimeOptions o = testing::logged_options(log, 1);
  o.slow_callback_threshold = std::chrono::microseconds(500);
  if (std::getenv("WEFT_DEBUG") == nullptr) {
    run(run_slow_task(), std::move(o));
    EXPECT_EQ(log.count({"slow"}), 0) << log.dump();
  }
}

constexpr int kNeverAwaitedLine = __LINE__ + 1;
Coro<int> never_awaited_body() { co_return 1; }

Coro<void> drop_a_coro() {
  {
    Coro<int> c = never_awaited_body();  // made, never awaited, destroyed
  }
  // An awaited one and a task are not reported.
  co_await never_awaited_body();
  co_await create_task(never_awaited_body());
}

TEST(DebugMode, NeverAwaitedCoroIsReported) {
  ErrorLog log;
  run(drop_a_coro(), debug_options(log));
  EXPECT_EQ(log.count({"never"}), 1) << log.dump();
  EXPECT_EQ(log.count({"without ever being awaited"}), 1) << log.dump();
  EXPECT_EQ(log.count({"a Coro of ", "never_awaited_body()",
                       "(tests/debug_mode_test.cc:" + std::to_string(kNeverAwaitedLine) + ")"}),
            1)
      << "the report names the coroutine function and where it is:\n" << log.dump();
}

// Sets an environment variable for one scope (restored after).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The never-awaited reports a run with WEFT_DEBUG=value makes.
int never_awaited_reports_with(const char* value, ErrorLog& log) {
  ScopedEnv env("WEFT_DEBUG", value);
  run(drop_a_coro(), testing::logged_options(log, 1));
  return log.count({"without ever being awaited"});
}

TEST(DebugMode, WeftDebugAcceptsTheUsualSpellingsOfOn) {
  for (const char* on : {"1", "true", "yes", "on", "TRUE", "Yes", "ON"}) {
    ErrorLog log;
    EXPECT_EQ(never_awaited_reports_with(on, log), 1) << "WEFT_DEBUG=" << on << "\n" << log.dump();
  }
}

TEST(DebugMode, WeftDebugAcceptsTheUsualSpellingsOfOff) {
  for (const char* off : {"0", "false", "no", "off", "False", "OFF", ""}) {
    ErrorLog log;
    EXPECT_EQ(never_awaited_reports_with(off, log), 0) << "WEFT_DEBUG=" << off;
    EXPECT_EQ(log.size(), 0u) << "WEFT_DEBUG=" << off << ": " << log.dump();
  }
}

TEST(DebugMode, WeftDebugOffDoesNotOverrideTheOption) {
  ScopedEnv env("WEFT_DEBUG", "0");
  ErrorLog log;
  run(drop_a_coro(), debug_options(log));
  EXPECT_EQ(log.count({"without ever being awaited"}), 1) << log.dump();
}

TEST(DebugMode, AnUnknownWeftDebugValueIsReportedOnce) {
  ErrorLog first;
  EXPECT_EQ(never_awaited_reports_with("maybe", first), 0) << "not turned on";
  EXPECT_EQ(first.count({"WEFT_DEBUG=\"maybe\"", "1/true/yes/on", "left off"}), 1) << first.dump();
  ErrorLog second;
  EXPECT_EQ(never_awaited_reports_with("sure", second), 0);
  EXPECT_EQ(second.count({"WEFT_DEBUG"}), 0) << "once per process: " << second.dump();
}

TEST(DebugMode, AMalformedShuffleSeedIsReportedAndIgnored) {
  ScopedEnv env("WEFT_SHUFFLE_SEED", "12abc");
  ErrorLog log;
  EXPECT_EQ(run([]() -> Coro<int> { co_return 7; }(), testing::logged_options(log, 1)), 7);
  EXPECT_EQ(log.count({"WEFT_SHUFFLE_SEED=\"12abc\"", "not a number"}), 1) << log.dump();
}

TEST(DebugMode, NeverAwaitedIsNotReportedWhenOff) {
  if (std::getenv("WEFT_DEBUG") != nullptr) GTEST_SKIP() << "WEFT_DEBUG is set";
  ErrorLog log;
  run(drop_a_coro(), testing::logged_options(log, 1));
  EXPECT_EQ(log.size(), 0u) << log.dump();
}

// --- dump_tasks -----------------------------------------------------------------------

constexpr int kWaitsOnLine = __LINE__ + 1;
Coro<int> waits_on(Future<int> f) { co_return co_await f; }
constexpr int kAwaitsTaskLine = __LINE__ + 1;
Coro<int> awaits_task(Task<int> t) { co_return co_await t; }

// True if one line of `text` contains `pieces` in order (a function's
// spelling differs between compilers, so a test names only parts of it).
bool has_chain(const std::string& text, const std::vector<std::string>& pieces) {
  for (std::size_t from = text.find(pieces[0]); from != std::string::npos;
       from = text.find(pieces[0], from + 1)) {
    std::size_t at = from + pieces[0].size();
    const std::size_t line_end = text.find('\n', from);
    bool ok = true;
    for (std::size_t i = 1; i < pieces.size() && ok; ++i) {
      at = text.find(pieces[i], at);
      ok = at != std::string::npos && at < line_end;
      if (ok) at += pieces[i].size();
    }
    if (ok) return true;
  }
  return false;
}

Coro<void> dump_body() {
  Future<int> f;
  Task<int> inner = create_task(waits_on(f), "inner-worker");
  Task<int> outer = create_task(awaits_task(inner), "outer-worker");
  Task<int> fresh = create_task(waits_on(f), "not-yet");
  EXPECT_TRUE(co_await testing::yield_until([&] {
    return !inner.waiting_on().empty() && !outer.waiting_on().empty();
  }));
  std::string dump = dump_tasks();
  EXPECT_NE(dump.find("Task 'outer-worker'"), std::string::npos) << dump;
  const std::string outer_id = "Task 'outer-worker' (id " + std::to_string(outer.id()) + ")";
  const std::string inner_id = "Task 'inner-worker' (id " + std::to_string(inner.id()) + ")";
  EXPECT_TRUE(has_chain(dump, {outer_id, " in ", "awaits_task(", "(tests/debug_mode_test.cc:" +
                               std::to_string(kAwaitsTaskLine) + ")", " -> awaits " + inner_id,
                               " in ", "waits_on(", "(tests/debug_mode_test.cc:" +
                               std::to_string(kWaitsOnLine) + ")", " -> awaits Future@"}))
      << "the await chain names each task's body and what it waits on:\n" << dump;
  EXPECT_NE(dump.find("[suspended]"), std::string::npos) << dump;
  // The dumping task itself is running.
  EXPECT_NE(dump.find("[running or ready]"), std::string::npos) << dump;
  EXPECT_NE(dump.find("Task 'main'"), std::string::npos) << "the dumping task is live too:\n" << dump;
  // The same text from the runtime, from a plain thread (production use).
  std::string from_thread;
  Runtime& rt = get_running_loop().runtime();
  std::thread th([&] { from_thread = rt.dump_tasks(); });
  th.join();
  EXPECT_NE(from_thread.find("outer-worker"), std::string::npos) << from_thread;
  f.set_result(3);
  EXPECT_EQ(co_await outer, 3);
  EXPECT_EQ(co_await fresh, 3);
  std::string after = dump_tasks();
  EXPECT_EQ(after.find("outer-worker"), std::string::npos) << "finished tasks are not listed:\n" << after;
}

WEFT_CO_TEST_WITH(DumpTasks, ListsLiveTasksWithNameStateAndAwaitChain, testing::test_options(2)) {
  co_await dump_body();
}

Coro<void> dump_not_started() {
  Task<int> t = create_pinned_task(never_awaited_body(), "pinned-later");
  std::string dump = dump_tasks();  // the pinned task cannot have run: we hold the loop
  EXPECT_NE(dump.find("Task 'pinned-later'"), std::string::npos) << dump;
  EXPECT_NE(dump.find("not started"), std::string::npos) << dump;
  co_await t;
}

WEFT_CO_TEST_WITH(DumpTasks, NotStartedState, testing::test_options(1)) { co_await dump_not_started(); }

// A task that caught a cancellation and waits on: the dump shows the count.
Coro<int> catches_then_waits(Future<int> first, Future<int> second) {
  try {
    co_await first;
  } catch (const CancelledError&) {
  }
  co_return co_await second;
}

Coro<void> dump_cancelling() {
  Future<int> first;
  Future<int> second;
  Task<int> t = create_task(catches_then_waits(first, second), "catches-cancel");
  EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
  t.cancel("dump test");
  EXPECT_TRUE(co_await testing::yield_until([&] { return first.cancelled() && !t.waiting_on().empty(); }));
  std::string dump = dump_tasks();
  EXPECT_NE(dump.find("Task 'catches-cancel'"), std::string::npos) << dump;
  EXPECT_NE(dump.find("[suspended, cancelling (1)]"), std::string::npos) << dump;
  second.set_result(5);
  EXPECT_EQ(co_await t, 5);
}

WEFT_CO_TEST_WITH(DumpTasks, ShowsPendingCancellations, testing::test_options(1)) {
  co_await dump_cancelling();
}

// A task waiting for to_thread names the call.
WEFT_CO_TEST_WITH(DumpTasks, NamesAToThreadCall, testing::test_options(1)) {
  std::atomic<bool> release{false};
  auto blocking = [&release] {
    while (!release.load()) std::this_thread::yield();
    return 5;
  };
  Task<int> t = create_task(to_thread(blocking), "offloader");
  EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
  const std::string what = t.waiting_on();
  EXPECT_EQ(what.rfind("to_thread(", 0), 0u) << what;
  // The lambda's type, spelled by the compiler ("...::{lambda()#1}" in g++,
  // "...::$_0" in clang), names the function it is in.
  EXPECT_NE(what.find("NamesAToThreadCall"), std::string::npos) << "the callable's type: " << what;
  release.store(true);
  EXPECT_EQ(co_await t, 5);
}

// A sleeping task says how long it sleeps and how long is left, in words.
WEFT_MANUAL_TEST(DumpTasks, NamesASleepAndTheTimeLeft, 1) {
  Task<void> t = create_task(sleep(milliseconds(50)), "napper");
  EXPECT_TRUE(co_await testing::yield_until([&] { return !t.waiting_on().empty(); }));
  EXPECT_EQ(t.waiting_on(), "sleep 50 ms (50 ms left)");
  clock->advance(milliseconds(38));
  EXPECT_EQ(t.waiting_on(), "sleep 50 ms (12 ms left)");
  EXPECT_TRUE(has_chain(dump_tasks(), {"Task 'napper'", " -> awaits sleep 50 ms (12 ms left)"}))
      << dump_tasks();
  t.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(t)).has_value());
}

}  // namespace
}  // namespace weft
