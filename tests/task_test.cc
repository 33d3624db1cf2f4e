// weft::Task<T> and the task-level calls of asyncio: create_task,
// ensure_future, current_task, all_tasks, names, sleep, yield_now,
// create_pinned_task. Cancellation has its own file (cancel_test.cc).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing.h"

namespace weft {
namespace {

using testing::Counted;
using testing::CountedScope;
using testing::ErrorLog;
using testing::raises;

struct MyError : std::runtime_error {
  explicit MyError(int c) : std::runtime_error("my error " + std::to_string(c)), code(c) {}
  int code;
};

// --- compile-time surface --------------------------------------------------

template <typename F>
concept CanSetResult = requires(const F& f) { f.set_result(1); };
template <typename F>
concept CanSetVoidResult = requires(const F& f) { f.set_result(); };
template <typename F>
concept CanSetException = requires(const F& f) { f.set_exception(std::exception_ptr()); };
template <typename F>
concept CanSetExceptionObject = requires(const F& f) { f.set_exception(std::runtime_error("")); };
template <typename F>
concept CanTrySetResult = requires(const F& f) { f.try_set_result(1); };

static_assert(CanSetResult<Future<int>>, "the probe must accept a Future");
static_assert(CanSetVoidResult<Future<void>>);
static_assert(CanSetException<Future<int>>);
static_assert(CanSetExceptionObject<Future<int>>);
static_assert(CanTrySetResult<Future<int>>);
static_assert(!CanSetResult<Task<int>>, "a Task is completed only by its body");
static_assert(!CanSetVoidResult<Task<void>>, "a Task is completed only by its body");
static_assert(!CanSetException<Task<int>>, "a Task is completed only by its body");
static_assert(!CanSetExceptionObject<Task<int>>, "a Task is completed only by its body");
static_assert(!CanTrySetResult<Task<int>>, "a Task is completed only by its body");
// ...but it is a future for everything else.
static_assert(std::is_base_of_v<BasicFuture<int>, Task<int>>);
static_assert(std::is_base_of_v<BasicFuture<int>, Future<int>>);

Coro<int> value(int v) { co_return v; }
Coro<void> nothing() { co_return; }
Coro<int> fail(int code) {
  co_await yield_now();
  throw MyError(code);
}
Coro<void> set_true(bool* b) {
  *b = true;
  co_return;
}
Coro<void> set_future(Future<void> f) {
  f.set_result();
  co_return;
}
Coro<int> await_future(Future<int> f) { co_return co_await f; }

// --- creation --------------------------------------------------------------

TEST(Task, CreateTaskOutsideARuntimeIsRuntimeError) {
  CountedScope scope;
  auto body = [](Counted c) -> Coro<int> { co_return c.value; };
  EXPECT_THROW((void)create_task(body(Counted(1))), RuntimeError);
  EXPECT_THROW((void)create_task(nothing()), RuntimeError);
  EXPECT_THROW((void)create_pinned_task(nothing()), RuntimeError);
  EXPECT_THROW((void)ensure_future(value(1)), RuntimeError);
  EXPECT_EQ(Counted::alive(), 0) << "the refused Coro must be destroyed";
}

WEFT_CO_TEST(Task, CreateTaskFromANonLoopThreadIsRuntimeError) {
  bool threw = false;
  std::thread th([&] {
    try {
      (void)create_task(nothing());
    } catch (const RuntimeError&) {
      threw = true;
    }
  });
  th.join();
  EXPECT_TRUE(threw);
  co_return;
}

WEFT_CO_TEST(Task, ReturnsItsValue) {
  Task<int> t = create_task(value(5));
  EXPECT_TRUE(t.valid());
  EXPECT_EQ(co_await t, 5);
  EXPECT_TRUE(t.done());
  EXPECT_FALSE(t.cancelled());
  EXPECT_EQ(t.result(), 5);
  EXPECT_EQ(t.exception(), nullptr);
  EXPECT_EQ(co_await t, 5) << "a done task can be awaited again";
}

WEFT_CO_TEST(Task, VoidTask) {
  bool ran = false;
  Task<void> t = create_task(set_true(&ran));
  co_await t;
  EXPECT_TRUE(ran);
  EXPECT_TRUE(t.done());
  t.result();
}

WEFT_CO_TEST(Task, MoveOnlyResultMovedOutOnce) {
  auto make = []() -> Coro<std::unique_ptr<int>> { co_return std::make_unique<int>(3); };
  Task<std::unique_ptr<int>> t = create_task(make());
  std::unique_ptr<int> p = co_await t;
  WEFT_CO_ASSERT_TRUE(p != nullptr);
  EXPECT_EQ(*p, 3);
  EXPECT_THROW((void)co_await t, InvalidStateError);
}

WEFT_CO_TEST(Task, ResultBeforeDoneIsInvalidState) {
  Future<int> gate;
  Task<int> t = create_task(await_future(gate));
  EXPECT_FALSE(t.done());
  EXPECT_THROW((void)t.result(), InvalidStateError);
  EXPECT_THROW((void)t.exception(), InvalidStateError);
  gate.set_result(1);
  EXPECT_EQ(co_await t, 1);
}

WEFT_CO_TEST(Task, EmptyHandle) {
  Task<int> t;
  EXPECT_FALSE(t.valid());
  EXPECT_THROW((void)t.done(), InvalidStateError);
  EXPECT_THROW((void)t.cancel(), InvalidStateError);
  EXPECT_THROW((void)t.get_name(), InvalidStateError);
  co_return;
}

// asyncio: a new task starts after the current step, not inside create_task.
WEFT_CO_TEST_WITH(Task, StartsAfterTheCurrentStep, testing::test_options(1)) {
  bool ran = false;
  Task<void> t = create_task(set_true(&ran));
  EXPECT_FALSE(ran) << "create_task ran the body eagerly";
  co_await yield_now();
  EXPECT_TRUE(ran);
  co_await t;
}

WEFT_CO_TEST(Task, RunsEvenIfItsHandleIsDropped) {
  Future<void> done;
  (void)create_task(set_future(done));
  co_await done;
  EXPECT_TRUE(done.done());
}

WEFT_CO_TEST(Task, DroppedHandleTaskFrameStillDestroyed) {
  CountedScope scope;
  Future<void> done;
  auto body = [](Counted c, Future<void> f) -> Coro<void> {
    co_await yield_now();
    f.set_result();
    (void)c;
  };
  (void)create_task(body(Counted(1), done));
  co_await done;
  EXPECT_TRUE(co_await testing::yield_until([] { return Counted::alive() == 0; }, 10000));
}

WEFT_CO_TEST(Task, CopiesOfAHandleShareTheTask) {
  Task<int> a = create_task(value(4));
  Task<int> b = a;
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.id(), b.id());
  EXPECT_EQ(co_await b, 4);
  EXPECT_TRUE(a.done());
}

WEFT_CO_TEST(Task, DoneCallbacksGetTheTask) {
  Future<int> gate;
  Task<int> t = create_task(await_future(gate));
  std::vector<int> order;
  Future<void> last;
  bool removed_ran = false;
  t.add_done_callback([&order](Task<int>& self) { order.push_back(self.result()); });
  CallbackHandle h = t.add_done_callback([&removed_ran](Task<int>&) { removed_ran = true; });
  t.add_done_callback([&order, last, t](Task<int>& self) {
    EXPECT_TRUE(self == t);
    order.push_back(-1);
    last.set_result();
  });
  EXPECT_EQ(t.remove_done_callback(h), 1u);
  gate.set_result(6);
  co_await last;
  EXPECT_EQ(order, (std::vector<int>{6, -1}));
  EXPECT_FALSE(removed_ran);
}

// --- exceptions --------------------------------------------------------------

WEFT_CO_TEST(Task, ExceptionPropagatesToAwaiter) {
  Task<int> t = create_task(fail(7));
  auto e = co_await raises<MyError>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 7);
  EXPECT_TRUE(t.done());
  EXPECT_FALSE(t.cancelled());
  EXPECT_NE(t.exception(), nullptr);
  EXPECT_THROW((void)t.result(), MyError);
}

Coro<int> awaits_task(Task<int> t) { co_return co_await t; }

WEFT_CO_TEST(Task, ExceptionPropagatesThroughAChainOfTasks) {
  Task<int> inner = create_task(fail(3));
  Task<int> middle = create_task(awaits_task(inner));
  Task<int> outer = create_task(awaits_task(middle));
  auto e = co_await raises<MyError>(outer);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 3);
  EXPECT_THROW((void)middle.result(), MyError);
}

WEFT_CO_TEST(Task, SeveralAwaitersAllGetTheException) {
  Task<int> t = create_task(fail(1));
  std::vector<Task<int>> awaiters;
  for (int i = 0; i < 10; ++i) awaiters.push_back(create_task(awaits_task(t)));
  for (auto& a : awaiters) {
    auto e = co_await raises<MyError>(a);
    EXPECT_TRUE(e.has_value());
  }
  (void)t.exception();
}

Coro<int> throws_non_std() {
  co_await yield_now();
  throw 42;
}

WEFT_CO_TEST(Task, NonStandardExceptionPropagates) {
  Task<int> t = create_task(throws_non_std());
  auto e = co_await raises<int>(t);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, 42);
}

Coro<int> await_self(std::shared_ptr<Task<int>> self) {
  co_await yield_now();
  co_return co_await *self;
}

WEFT_CO_TEST(Task, AwaitingItselfIsRuntimeError) {
  auto slot = std::make_shared<Task<int>>();
  *slot = create_task(await_self(slot));
  Task<int> t = *slot;
  auto e = co_await raises<RuntimeError>(t);
  EXPECT_TRUE(e.has_value()) << "a task awaiting itself must raise RuntimeError";
  slot.reset();
}

// --- "exception was never retrieved" for tasks -------------------------------

Coro<void> drop_failed_task_handle() {
  Task<int> t = create_task(fail(11));
  EXPECT_TRUE(co_await testing::yield_until([&] { return t.done(); }));
  t = Task<int>();  // the last reference: reported here, on the loop
  co_await testing::yield_times(3);
}

TEST(TaskNeverRetrieved, FailedTaskNobodyLookedAtIsReportedOnce) {
  ErrorLog log;
  run(drop_failed_task_handle(), testing::logged_options(log, 1));
  EXPECT_EQ(log.count({"never retrieved", "my error 11"}), 1) << log.dump();
  EXPECT_EQ(log.size(), 1u) << log.dump();
}

Coro<void> fire_and_forget_failure() {
  (void)create_task(fail(12));  // nobody keeps the handle
  co_await testing::yield_times(20);
}

TEST(TaskNeverRetrieved, FireAndForgetFailureIsReportedOnce) {
  ErrorLog log;
  run(fire_and_forget_failure(), testing::logged_options(log, 1));
  EXPECT_EQ(log.count({"never retrieved", "my error 12"}), 1) << log.dump();
  EXPECT_EQ(log.size(), 1u) << log.dump();
}

Coro<void> failed_tasks_looked_at() {
  {
    Task<int> t = create_task(fail(13));
    EXPECT_THROW((void)co_await t, MyError);
  }
  {
    Task<int> t = create_task(fail(14));
    co_await testing::yield_until([&] { return t.done(); });
    EXPECT_NE(t.exception(), nullptr);
  }
  {
    Task<int> t = create_task(fail(15));
    co_await testing::yield_until([&] { return t.done(); });
    EXPECT_THROW((void)t.result(), MyError);
  }
  co_await testing::yield_times(3);
}

TEST(TaskNeverRetrieved, NotReportedWhenRetrieved) {
  ErrorLog log;
  run(failed_tasks_looked_at(), testing::logged_options(log, 2));
  EXPECT_EQ(log.size(), 0u) << log.dump();
}

// --- names and ids -----------------------------------------------------------

WEFT_CO_TEST(TaskNames, DefaultNameIsTaskN) {
  Task<int> a = create_task(value(1));
  Task<int> b = create_task(value(2));
  EXPECT_NE(a.id(), b.id());
  EXPECT_LT(a.id(), b.id()) << "ids grow in creation order";
  EXPECT_EQ(a.get_name(), "Task-" + std::to_string(a.id()));
  EXPECT_EQ(b.get_name(), "Task-" + std::to_string(b.id()));
  EXPECT_TRUE(std::regex_match(a.get_name(), std::regex("Task-[0-9]+")));
  co_await a;
  co_await b;
  EXPECT_EQ(a.get_name(), "Task-" + std::to_string(a.id())) << "a done task keeps its name";
}

WEFT_CO_TEST(TaskNames, ExplicitNameAndSetName) {
  Task<int> t = create_task(value(1), "worker");
  EXPECT_EQ(t.get_name(), "worker");
  t.set_name("renamed");
  EXPECT_EQ(t.get_name(), "renamed");
  co_await t;
  t.set_name("after");
  EXPECT_EQ(t.get_name(), "after");
}

// asyncio: set_name('') names the task ''. create_task's empty name stands
// for asyncio's name=None (docs/asyncio.md): the default name.
WEFT_CO_TEST(TaskNames, AnEmptyNameIsStillAName) {
  Task<int> t = create_task(value(1), "");
  EXPECT_EQ(t.get_name(), "Task-" + std::to_string(t.id()));
  t.set_name("");
  EXPECT_EQ(t.get_name(), "");
  co_await t;
}

Coro<std::string> own_name() {
  current_task().set_name("self-named");
  co_return current_task().get_name();
}

WEFT_CO_TEST(TaskNames, TaskCanNameItself) {
  Task<std::string> t = create_task(own_name());
  EXPECT_EQ(co_await t, "self-named");
  EXPECT_EQ(t.get_name(), "self-named");
}

WEFT_CO_TEST(TaskNames, MainTaskHasAName) {
  EXPECT_FALSE(current_task().get_name().empty());
  co_return;
}

// --- current_task ------------------------------------------------------------

Coro<std::uint64_t> current_id_in_nested_coro() { co_return current_task().id(); }
Coro<std::uint64_t> current_id() {
  AnyTask me = current_task();
  EXPECT_TRUE(me.valid());
  co_await yield_now();
  EXPECT_EQ(current_task(), me) << "still the same task after a suspension";
  std::uint64_t nested = co_await current_id_in_nested_coro();
  EXPECT_EQ(nested, me.id());
  co_return me.id();
}

WEFT_CO_TEST(CurrentTask, InsideATaskIsThatTask) {
  Task<std::uint64_t> t = create_task(current_id());
  EXPECT_EQ(co_await t, t.id());
  EXPECT_EQ(AnyTask(t).id(), t.id());
  AnyTask main_task = current_task();
  EXPECT_TRUE(main_task.valid());
  EXPECT_NE(main_task.id(), t.id());
}

// asyncio.current_task() raises RuntimeError without a running loop;
// try_current_task() is the check that does not.
TEST(CurrentTask, RuntimeErrorOutsideARuntime) {
  EXPECT_THROW((void)current_task(), RuntimeError);
  EXPECT_FALSE(try_current_task().has_value());
  std::thread th([] {
    try {
      (void)current_task();
      ADD_FAILURE() << "current_task() off a loop returned";
    } catch (const RuntimeError& e) {
      EXPECT_NE(std::string(e.what()).find("no running weft loop"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(try_current_task().has_value());
  });
  th.join();
}

WEFT_CO_TEST(CurrentTask, TryCurrentTaskInsideATask) {
  std::optional<AnyTask> t = try_current_task();
  WEFT_CO_ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(*t == current_task());
  Future<bool> in_callback;
  call_soon([in_callback] { in_callback.set_result(try_current_task().has_value()); });
  EXPECT_FALSE(co_await in_callback) << "a callback runs outside any task";
}

WEFT_CO_TEST(CurrentTask, InvalidInsideALoopCallback) {
  Future<bool> valid_in_callback;
  call_soon([valid_in_callback] { valid_in_callback.set_result(current_task().valid()); });
  EXPECT_FALSE(co_await valid_in_callback) << "a callback does not run inside a task";
  Future<int> f;
  Future<bool> valid_in_done_callback;
  f.add_done_callback([valid_in_done_callback](Future<int>&) {
    valid_in_done_callback.set_result(current_task().valid());
  });
  f.set_result(1);
  EXPECT_FALSE(co_await valid_in_done_callback);
}

// --- all_tasks ---------------------------------------------------------------

bool contains(const std::vector<AnyTask>& v, std::uint64_t id) {
  return std::any_of(v.begin(), v.end(), [&](const AnyTask& t) { return t.id() == id; });
}

WEFT_CO_TEST(AllTasks, ListsUnfinishedTasks) {
  Future<int> gate;
  std::vector<Task<int>> waiting;
  for (int i = 0; i < 5; ++i) waiting.push_back(create_task(await_future(gate)));
  Task<int> finished = create_task(value(1));
  co_await finished;
  std::vector<AnyTask> all = all_tasks();
  EXPECT_TRUE(contains(all, current_task().id())) << "the running task is listed";
  for (auto& t : waiting) EXPECT_TRUE(contains(all, t.id()));
  EXPECT_FALSE(contains(all, finished.id())) << "a finished task is not listed";
  for (const AnyTask& t : all) EXPECT_FALSE(t.done());
  gate.set_result(2);
  for (auto& t : waiting) co_await t;
  std::vector<AnyTask> after = all_tasks();
  for (auto& t : waiting) EXPECT_FALSE(contains(after, t.id()));
  EXPECT_TRUE(contains(after, current_task().id()));
}

// One worker: with several, another worker may run it to completion at once.
WEFT_CO_TEST_WITH(AllTasks, IncludesTasksNotStartedYet, testing::test_options(1)) {
  Task<int> t = create_task(value(1));
  EXPECT_TRUE(contains(all_tasks(), t.id()));
  co_await t;
}

TEST(AllTasks, OutsideARuntimeIsRuntimeError) { EXPECT_THROW((void)all_tasks(), RuntimeError); }

WEFT_CO_TEST(AllTasks, RuntimeAllTasksMatches) {
  Future<int> gate;
  Task<int> t = create_task(await_future(gate));
  co_await yield_now();
  std::vector<AnyTask> all = get_running_loop().runtime().all_tasks();
  EXPECT_TRUE(contains(all, t.id()));
  gate.set_result(1);
  co_await t;
}

// --- ensure_future -----------------------------------------------------------

WEFT_CO_TEST(EnsureFuture, CoroBecomesATask) {
  Task<int> t = ensure_future(value(6));
  EXPECT_TRUE(t.valid());
  EXPECT_TRUE(contains(all_tasks(), t.id()));
  EXPECT_EQ(co_await t, 6);
}

WEFT_CO_TEST(EnsureFuture, TaskIsReturnedAsIs) {
  Task<int> t = create_task(value(7));
  const Task<int>& same = ensure_future(t);
  EXPECT_EQ(&same, &t);
  EXPECT_TRUE(same == t);
  EXPECT_EQ(co_await same, 7);
}

WEFT_CO_TEST(EnsureFuture, FutureIsReturnedAsIs) {
  Future<int> f;
  const Future<int>& same = ensure_future(f);
  EXPECT_EQ(&same, &f);
  f.set_result(8);
  EXPECT_EQ(co_await same, 8);
}

// --- sleep and yield_now -----------------------------------------------------

WEFT_CO_TEST(Sleep, SleepsAtLeastTheDuration) {
  auto start = std::chrono::steady_clock::now();
  co_await sleep(std::chrono::milliseconds(20));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(20));
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

WEFT_CO_TEST(Sleep, SleepWithValueReturnsIt) {
  EXPECT_EQ(co_await sleep(std::chrono::milliseconds(1), 42), 42);
  std::string s = co_await sleep(std::chrono::milliseconds(1), std::string("hello"));
  EXPECT_EQ(s, "hello");
  auto p = co_await sleep(std::chrono::milliseconds(0), std::make_unique<int>(4));
  WEFT_CO_ASSERT_TRUE(p != nullptr);
  EXPECT_EQ(*p, 4);
}

// asyncio.sleep: a zero or negative delay yields once (a delay computed as
// `deadline - now` is often negative); it is not an error.
WEFT_CO_TEST_WITH(Sleep, NegativeDurationYieldsOnce, testing::test_options(1)) {
  bool ran = false;
  Task<void> t = create_task(set_true(&ran));
  co_await sleep(std::chrono::seconds(-5));
  EXPECT_TRUE(ran) << "a negative sleep must yield to the ready tasks like sleep(0)";
  co_await t;
  EXPECT_EQ(co_await sleep(std::chrono::milliseconds(-1), 5), 5);
  bool started = false;
  Task<void> cancelled = create_task([](bool* started) -> Coro<void> {
    *started = true;
    co_await sleep(std::chrono::seconds(-1));
  }(&started));
  co_await yield_now();  // it starts and yields inside the sleep
  EXPECT_TRUE(started);
  cancelled.cancel("at the yield");
  EXPECT_TRUE((co_await testing::raises<CancelledError>(cancelled)).has_value())
      << "still a cancellation point";
}

WEFT_CO_TEST_WITH(Sleep, ZeroLetsOtherTasksRun, testing::test_options(1)) {
  bool ran = false;
  Task<void> t = create_task(set_true(&ran));
  co_await sleep(Duration(0));
  EXPECT_TRUE(ran) << "sleep(0) must yield to the ready tasks";
  co_await t;
}

Coro<void> sleep_ms(int ms) { co_await sleep(std::chrono::milliseconds(ms)); }

WEFT_CO_TEST(Sleep, ManySleepersSleepConcurrently) {
  auto start = std::chrono::steady_clock::now();
  std::vector<Task<void>> sleepers;
  for (int i = 0; i < 200; ++i) sleepers.push_back(create_task(sleep_ms(30)));
  for (auto& t : sleepers) co_await t;
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(30));
  EXPECT_LT(elapsed, std::chrono::milliseconds(1500)) << "sleeps must overlap";
}

WEFT_CO_TEST_WITH(YieldNow, LetsAnotherTaskRun, testing::test_options(1)) {
  bool ran = false;
  Task<void> t = create_task(set_true(&ran));
  EXPECT_FALSE(ran);
  co_await yield_now();
  EXPECT_TRUE(ran);
  co_await t;
}

Coro<void> append_n(std::vector<char>* out, char c, int n) {
  for (int i = 0; i < n; ++i) {
    out->push_back(c);
    co_await yield_now();
  }
}

// Ready tasks take turns in FIFO order (asyncio's ready queue).
WEFT_CO_TEST_WITH(YieldNow, TasksTakeTurns, testing::test_options(1)) {
  std::vector<char> out;
  Task<void> a = create_task(append_n(&out, 'a', 3));
  Task<void> b = create_task(append_n(&out, 'b', 3));
  co_await a;
  co_await b;
  EXPECT_EQ(std::string(out.begin(), out.end()), "ababab");
}

Coro<long> spin_yield(std::atomic<bool>* stop) {
  long n = 0;
  while (!stop->load()) {
    ++n;
    co_await yield_now();
  }
  co_return n;
}

// A task that yields forever does not starve a task that was woken.
WEFT_CO_TEST_WITH(YieldNow, YieldingTaskDoesNotStarveOthers, testing::test_options(1)) {
  std::atomic<bool> stop{false};
  Task<long> spinner = create_task(spin_yield(&stop));
  co_await sleep(std::chrono::milliseconds(5));
  stop = true;
  EXPECT_GT(co_await spinner, 0);
}

TEST(YieldNow, AwaitedOutsideATaskIsRuntimeError) {
  // A Coro resumed by hand, outside any task: yield_now has no task to
  // reschedule.
  auto body = []() -> Coro<void> { co_await yield_now(); };
  Coro<void> c = body();
  bool threw = false;
  auto outer = [](Coro<void>* inner, bool* threw) -> Coro<void> {
    try {
      co_await *inner;
    } catch (const RuntimeError&) {
      *threw = true;
    }
  };
  Coro<void> o = outer(&c, &threw);
  o.handle().resume();
  EXPECT_TRUE(threw);
  EXPECT_TRUE(o.handle().done());
}

// --- pinned tasks --------------------------------------------------------------

Coro<int> stays_on_thread(std::thread::id expected, int rounds) {
  int on_thread = 0;
  for (int i = 0; i < rounds; ++i) {
    if (std::this_thread::get_id() == expected) ++on_thread;
    if (i % 2 == 0) {
      co_await yield_now();
    } else {
      co_await sleep(std::chrono::microseconds(100));
    }
  }
  if (std::this_thread::get_id() == expected) ++on_thread;
  co_return on_thread;
}

Coro<std::thread::id> thread_here() { co_return std::this_thread::get_id(); }

WEFT_CO_TEST_WITH(PinnedTask, AlwaysRunsOnItsLoop, testing::test_options(4)) {
  Runtime& rt = get_running_loop().runtime();
  for (std::uint32_t i = 0; i < rt.num_workers(); ++i) {
    std::thread::id tid = co_await rt.loop(i).create_pinned_task(thread_here());
    Task<int> t = rt.loop(i).create_pinned_task(stays_on_thread(tid, 20));
    EXPECT_EQ(co_await t, 21) << "pinned task left loop " << i;
  }
  // create_pinned_task pins to the current loop.
  std::thread::id here = std::this_thread::get_id();
  Task<int> t = create_pinned_task(stays_on_thread(here, 1));
  (void)co_await t;
}

// --- get_running_loop ---------------------------------------------------------

TEST(RunningLoop, OutsideARuntimeIsRuntimeError) {
  EXPECT_THROW((void)get_running_loop(), RuntimeError);
  EXPECT_THROW(call_soon([] {}), RuntimeError);
  EXPECT_THROW((void)call_later(std::chrono::seconds(1), [] {}), RuntimeError);
  EXPECT_THROW((void)call_at(TimePoint{}, [] {}), RuntimeError);
}

WEFT_CO_TEST_WITH(RunningLoop, InsideATask, testing::test_options(2)) {
  Loop& loop = get_running_loop();
  EXPECT_TRUE(loop.is_current());
  EXPECT_LT(loop.index(), loop.runtime().num_workers());
  EXPECT_EQ(loop.runtime().num_workers(), 2u);
  EXPECT_TRUE(loop.runtime().running());
  co_return;
}

}  // namespace
}  // namespace weft
