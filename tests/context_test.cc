// Context variables (Python's contextvars) across tasks and threads: get,
// defaults and LookupError; set/reset with single-use tokens; a task gets a
// copy of its creator's context at creation; siblings are isolated; values
// survive yields and migration between workers; plain threads and worker
// threads keep their own contexts.
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/mt_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using mt_testing::kLongWait;
using testing::scaled;
using testing::test_options;

// --- get / default / LookupError ------------------------------------------------

TEST(ContextVar, GetWithoutValueOrDefaultRaisesLookupError) {
  ContextVar<int> v("v");
  EXPECT_EQ(v.name(), "v");
  EXPECT_THROW(v.get(), LookupError);
  EXPECT_EQ(v.get(7), 7) << "get(fallback) does not raise";
  try {
    v.get();
  } catch (const LookupError& e) {
    EXPECT_NE(std::string(e.what()).find("'v'"), std::string::npos) << e.what();
  }
}

TEST(ContextVar, DefaultIsUsedUntilSet) {
  ContextVar<std::string> v("lang", "en");
  EXPECT_EQ(v.get(), "en");
  EXPECT_EQ(v.get("fr"), "fr") << "an explicit fallback wins over the default (Python)";
  auto t = v.set("de");
  EXPECT_EQ(v.get(), "de");
  EXPECT_EQ(v.get("fr"), "de");
  v.reset(t);
  EXPECT_EQ(v.get(), "en");
}

WEFT_CO_TEST(ContextVar, GetInsideATask) {
  static ContextVar<int> no_default("no_default");
  static ContextVar<int> with_default("with_default", 3);
  EXPECT_THROW(no_default.get(), LookupError);
  EXPECT_EQ(with_default.get(), 3);
  co_await yield_now();
  EXPECT_THROW(no_default.get(), LookupError);
  co_return;
}

// --- set / reset / Token ---------------------------------------------------------------

TEST(ContextVar, SetAndResetRestoreThePreviousValue) {
  ContextVar<int> v("v");
  auto t1 = v.set(1);
  EXPECT_EQ(v.get(), 1);
  auto t2 = v.set(2);
  EXPECT_EQ(v.get(), 2);
  v.reset(t2);
  EXPECT_EQ(v.get(), 1);
  v.reset(t1);
  EXPECT_THROW(v.get(), LookupError) << "reset to 'no value' removes it";
}

TEST(ContextVar, TokenIsSingleUse) {
  ContextVar<int> v("v");
  auto t = v.set(1);
  v.reset(t);
  EXPECT_THROW(v.reset(t), InvalidStateError);
  EXPECT_THROW(v.get(), LookupError) << "a failed reset changes nothing";
}

TEST(ContextVar, TokenOfAnotherVariableIsRejected) {
  ContextVar<int> a("a");
  ContextVar<int> b("b");
  auto ta = a.set(1);
  auto tb = b.set(2);
  EXPECT_THROW(b.reset(ta), InvalidStateError);
  EXPECT_EQ(a.get(), 1);
  EXPECT_EQ(b.get(), 2);
  a.reset(ta);  // still usable by its own variable
  b.reset(tb);
  EXPECT_THROW(a.get(), LookupError);
  EXPECT_THROW(b.get(), LookupError);
}

WEFT_CO_TEST(ContextVar, SetAndResetInsideATaskAcrossSuspensions) {
  static ContextVar<int> v("v", 0);
  auto t = v.set(5);
  co_await yield_now();
  co_await sleep(1ms);
  EXPECT_EQ(v.get(), 5);
  v.reset(t);
  co_await yield_now();
  EXPECT_EQ(v.get(), 0);
  EXPECT_THROW(v.reset(t), InvalidStateError);
}

// --- inheritance at task creation ----------------------------------------------------------

struct ChildReport {
  int before_gate = -1;
  int after_gate = -1;
};

Coro<void> child_reads(ContextVar<int>* v, Future<void> gate, ChildReport* r) {
  r->before_gate = v->get(-1);
  co_await gate;
  r->after_gate = v->get(-1);
  auto t = v->set(100);  // the child's change stays in the child
  (void)t;
  co_await yield_now();
  EXPECT_EQ(v->get(), 100);
}

WEFT_CO_TEST(ContextVar, ChildTaskGetsACopyAtCreation) {
  static ContextVar<int> v("v");
  auto t1 = v.set(1);
  Future<void> gate;
  ChildReport r;
  Task<void> child = create_task(child_reads(&v, gate, &r));
  // Changes made after the child was created are not seen by it, even
  // before it started running.
  auto t2 = v.set(2);
  co_await yield_now();
  gate.set_result();
  co_await child;
  EXPECT_EQ(r.before_gate, 1);
  EXPECT_EQ(r.after_gate, 1) << "the child saw its parent's later change";
  EXPECT_EQ(v.get(), 2) << "the child's change leaked into its parent";
  v.reset(t2);
  v.reset(t1);
}

WEFT_CO_TEST(ContextVar, ValueUnsetAtCreationStaysUnsetInTheChild) {
  static ContextVar<int> v("v");
  Future<void> gate;
  ChildReport r;
  Task<void> child = create_task(child_reads(&v, gate, &r));
  auto t = v.set(9);
  gate.set_result();
  co_await child;
  EXPECT_EQ(r.before_gate, -1);
  EXPECT_EQ(r.after_gate, -1);
  v.reset(t);
}

WEFT_CO_TEST(ContextVar, GrandchildrenInheritThroughTheChain) {
  static ContextVar<std::string> v("path", "");
  auto t = v.set("a");
  auto level2 = []() -> Coro<std::string> {
    auto t = v.set(v.get() + "/c");
    (void)t;
    co_await yield_now();
    co_return v.get();
  };
  auto level1 = [level2]() -> Coro<std::string> {
    auto t = v.set(v.get() + "/b");
    (void)t;
    Task<std::string> grandchild = create_task(level2());
    std::string from_grandchild = co_await grandchild;
    EXPECT_EQ(v.get(), "a/b");
    co_return from_grandchild;
  };
  EXPECT_EQ(co_await create_task(level1()), "a/b/c");
  EXPECT_EQ(v.get(), "a");
  v.reset(t);
}

WEFT_CO_TEST(ContextVar, SiblingsAreIsolated) {
  static ContextVar<int> v("v", -1);
  const int kSiblings = 16;
  std::vector<Task<int>> tasks;
  for (int i = 0; i < kSiblings; ++i) {
    tasks.push_back(create_task([](int i) -> Coro<int> {
      auto t = v.set(i);
      (void)t;
      int bad = 0;
      for (int k = 0; k < 20; ++k) {
        if (k % 3 == 0) {
          co_await sleep(std::chrono::microseconds(50 * ((i + k) % 4)));
        } else {
          co_await yield_now();
        }
        if (v.get() != i) ++bad;
        if (k == 10) {
          auto t2 = v.set(i + 1000);  // a nested change, undone
          co_await yield_now();
          if (v.get() != i + 1000) ++bad;
          v.reset(t2);
        }
      }
      co_return bad;
    }(i)));
  }
  for (int i = 0; i < kSiblings; ++i) {
    EXPECT_EQ(co_await tasks[static_cast<std::size_t>(i)], 0) << "sibling " << i << " saw another's value";
  }
  EXPECT_EQ(v.get(), -1) << "siblings leaked into their parent";
}

// Awaiting a Coro runs it inline in the awaiting task: it shares the task's
// context (asyncio's `await coro`), so its sets are visible afterwards.
Coro<void> set_inline(ContextVar<int>* v, int value) {
  auto t = v->set(value);
  (void)t;
  co_return;
}

WEFT_CO_TEST(ContextVar, AwaitedCoroSharesTheTasksContext) {
  static ContextVar<int> v("v", 0);
  co_await set_inline(&v, 4);
  EXPECT_EQ(v.get(), 4);
  // A task made from the same kind of Coro has its own copy.
  co_await create_task(set_inline(&v, 8));
  EXPECT_EQ(v.get(), 4);
}

// --- migration between workers ----------------------------------------------------------------

// Wakes the awaiting task from a callback on loop `i`: a woken task that is
// not pinned runs on the worker that woke it (unless someone steals it).
Coro<void> hop_to(std::uint32_t i) {
  Future<void> f;
  get_running_loop().runtime().loop(i).call_soon_threadsafe([f] { f.set_result(); });
  co_await f;
}

WEFT_CO_TEST_WITH(ContextVar, ValuesSurviveMigrationBetweenWorkers, test_options(3)) {
  static ContextVar<int> v("v");
  std::vector<Task<void>> tasks;
  std::vector<std::set<std::thread::id>> threads(4);
  std::vector<int> errors(4, 0);
  for (int i = 0; i < 4; ++i) {
    tasks.push_back(create_task([](int i, std::set<std::thread::id>* threads, int* errors) -> Coro<void> {
      auto t = v.set(i * 10);
      (void)t;
      for (int k = 0; k < 30; ++k) {
        co_await hop_to(static_cast<std::uint32_t>((i + k) % 3));
        threads->insert(std::this_thread::get_id());
        if (v.get(-1) != i * 10) ++*errors;
        if (k % 5 == 0) co_await yield_now();
        if (k % 7 == 0) co_await sleep(100us);
        if (v.get(-1) != i * 10) ++*errors;
      }
    }(i, &threads[static_cast<std::size_t>(i)], &errors[static_cast<std::size_t>(i)])));
  }
  for (auto& t : tasks) co_await t;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(errors[static_cast<std::size_t>(i)], 0) << "task " << i << " lost its value";
    EXPECT_GE(threads[static_cast<std::size_t>(i)].size(), 2u)
        << "task " << i << " never migrated: the test proves nothing";
  }
  EXPECT_THROW(v.get(), LookupError);
}

// --- threads ------------------------------------------------------------------------------------

TEST(ContextVar, PlainThreadsHaveTheirOwnContext) {
  static ContextVar<int> v("v");
  auto t = v.set(1);
  int seen_in_thread = 0;
  std::thread th([&] {
    seen_in_thread = v.get(-1);
    auto t2 = v.set(2);
    (void)t2;
  });
  th.join();
  EXPECT_EQ(seen_in_thread, -1);
  EXPECT_EQ(v.get(), 1);
  v.reset(t);
}

Coro<int> read_and_set(ContextVar<int>* v) {
  int seen = v->get(-1);
  auto t = v->set(50);
  (void)t;
  co_await yield_now();
  co_return seen;
}

TEST(ContextVar, SubmittedTaskCopiesTheSubmittingThreadsContext) {
  static ContextVar<int> v("v");
  mt_testing::RuntimeThread rt;
  auto t = v.set(33);
  EXPECT_EQ(run_coroutine_threadsafe(read_and_set(&v), rt.runtime()).result(kLongWait), 33);
  EXPECT_EQ(v.get(), 33) << "the task's change leaked into the submitting thread";
  v.reset(t);
  EXPECT_EQ(run_coroutine_threadsafe(read_and_set(&v), rt.runtime()).result(kLongWait), -1);
}

WEFT_CO_TEST(ContextVar, TaskValuesDoNotStayOnTheWorkerThread) {
  static ContextVar<int> v("v");
  Runtime& rt = get_running_loop().runtime();
  // Tasks on every loop set a value and end without resetting it.
  for (std::uint32_t i = 0; i < rt.num_workers(); ++i) {
    co_await rt.loop(i).create_pinned_task([]() -> Coro<void> {
      auto t = v.set(77);
      (void)t;
      co_return;
    }());
  }
  // Code outside tasks on those threads (callbacks) uses the thread's own
  // context, and tasks created from it copy that: neither sees 77.
  for (std::uint32_t i = 0; i < rt.num_workers(); ++i) {
    Future<int> from_callback;
    Future<int> from_new_task;
    rt.loop(i).call_soon_threadsafe([from_callback, from_new_task] {
      from_callback.set_result(v.get(-1));
      create_task([](Future<int> out) -> Coro<void> {
        out.set_result(v.get(-1));
        co_return;
      }(from_new_task));
    });
    EXPECT_EQ(co_await from_callback, -1) << "loop " << i;
    EXPECT_EQ(co_await from_new_task, -1) << "loop " << i;
  }
}

// Many tasks on several workers setting, reading and resetting the same
// variables at once: every read sees the task's own value.
WEFT_CO_TEST_WITH(ContextVar, ConcurrentTasksNeverSeeEachOthersValues, test_options(4)) {
  static ContextVar<int> a("a");
  static ContextVar<std::string> b("b", "");
  const int kTasks = scaled(400);
  std::atomic<int> errors{0};
  std::vector<Task<void>> tasks;
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(create_task([](int i, std::atomic<int>* errors) -> Coro<void> {
      auto ta = a.set(i);
      auto tb = b.set(std::to_string(i));
      for (int k = 0; k < 10; ++k) {
        co_await yield_now();
        if (a.get() != i || b.get() != std::to_string(i)) errors->fetch_add(1);
      }
      b.reset(tb);
      a.reset(ta);
      if (a.get(-1) != -1 || !b.get().empty()) errors->fetch_add(1);
    }(i, &errors)));
  }
  for (auto& t : tasks) co_await t;
  EXPECT_EQ(errors.load(), 0);
}

}  // namespace
}  // namespace weft
