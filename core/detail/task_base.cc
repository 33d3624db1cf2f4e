#include "weft/core/detail/task_base.h"

#include <algorithm>
#include <new>

#include "absl/base/optimization.h"
#include "absl/strings/str_format.h"
#include "weft/core/coro.h"
#include "weft/core/detail/weft_dcheck.h"

namespace weft::detail {
namespace {
// Written by every task creation on every thread: alone on its cache line,
// so that the read-mostly globals the linker places beside it (the frame
// pool's switch, read by every frame allocation) do not bounce between
// cores with it. A build whose data layout put the pool's switch on this
// line ran W3 (fib) 15% slower on two workers.
struct alignas(ABSL_CACHELINE_SIZE) TaskIdCounter {
  std::atomic<std::uint64_t> next{1};
};
TaskIdCounter g_task_ids;
}  // namespace

void PromiseBase::finish_root(TaskBase* task) noexcept { task->on_body_done(); }

void PromiseBase::report_never_awaited(const PromiseBase& p) noexcept {
  report_error(absl::StrFormat(
      "a Coro of %s was destroyed without ever being awaited or made a task; its body "
      "never ran",
      p.where()));
}

std::string PromiseBase::where() const {
  return absl::StrFormat("%s (%s:%d)", location_.function_name(), location_.file_name(),
                         location_.line());
}


TaskBase::TaskBase(LoopBase* loop, std::string&& name)
    : FutureStateBase(loop),
      // Relaxed: ids only need to be unique.
      id_(g_task_ids.next.fetch_add(1, std::memory_order_relaxed)),
      context_(current_context_data()) {
  if (!name.empty()) {
    // Not yet reachable from another thread: no lock needed.
    cold_ = std::make_unique<Cold>();
    cold_->named = true;
    cold_->name = std::move(name);
  }
}

TaskBase::Cold& TaskBase::cold_locked() {
  if (!cold_) cold_ = std::make_unique<Cold>();
  return *cold_;
}

std::string TaskBase::name() const {
  {
    detail::SpinLockHolder lock(&mu_);
    if (cold_ && cold_->named) return cold_->name;
  }
  // Formatted on demand: most tasks are never asked for their name.
  return absl::StrFormat("Task-%d", id_);
}

void TaskBase::set_name(std::string name) {
  detail::SpinLockHolder lock(&mu_);
  Cold& c = cold_locked();
  c.named = true;
  c.name = std::move(name);
}

std::string TaskBase::describe() const {
  return absl::StrFormat("Task '%s' (id %d)", name(), id_);
}

std::string TaskBase::waiting_on() const {
  RefPtr<FutureStateBase> w;
  {
    detail::SpinLockHolder lock(&mu_);
    if (node_wait_ != nullptr) return node_wait_->ended() ? "" : node_wait_->what();
    w = waiter_;
  }
  if (!w || w->done()) return "";
  return w->describe();
}

namespace {
// "Task 'a' (id 1) in fetch(int) (x.cc:3)"
std::string describe_with_body(const TaskBase& t) {
  std::string out = t.describe();
  if (std::string where = t.body_where(); !where.empty()) out += " in " + where;
  return out;
}
}  // namespace

std::string TaskBase::await_chain() const {
  std::string out = describe_with_body(*this);
  RefPtr<FutureStateBase> w;
  std::string node_what;
  {
    detail::SpinLockHolder lock(&mu_);
    if (node_wait_ != nullptr && !node_wait_->ended()) node_what = node_wait_->what();
    w = waiter_;
  }
  for (int depth = 0; node_what.empty() && w && !w->done() && depth < 64; ++depth) {
    auto* t = dynamic_cast<TaskBase*>(w.get());
    out += " -> awaits " + (t != nullptr ? describe_with_body(*t) : w->describe());
    if (t == nullptr) break;
    detail::SpinLockHolder lock(&t->mu_);
    if (t->node_wait_ != nullptr && !t->node_wait_->ended()) node_what = t->node_wait_->what();
    w = t->waiter_;
  }
  if (!node_what.empty()) out += " -> awaits " + node_what;
  return out;
}

int TaskBase::uncancel() noexcept {
  detail::SpinLockHolder lock(&mu_);
  int n = num_cancels_.load(std::memory_order_relaxed);
  if (n == 0) return 0;
  num_cancels_.store(n - 1, std::memory_order_relaxed);
  if (n == 1) {
    // Python 3.13: withdrawing the last request also withdraws an
    // undelivered cancellation.
    must_cancel_ = false;
    must_cancel_flag_.store(false, std::memory_order_relaxed);
  }
  return n - 1;
}

std::string TaskBase::last_cancel_message() const {
  detail::SpinLockHolder lock(&mu_);
  return cancel_request_msg_locked();
}

void TaskBase::run() noexcept {
  TaskBase* prev = current_task_base();
  set_current_task(this);
  ContextScope context_scope(&context_);  // touches no member when it ends
  reset_budget();
  if (!started_.load(std::memory_order_relaxed)) {
    started_.store(true, std::memory_order_relaxed);
    std::string msg;
    if (take_must_cancel(&msg)) {
      // Cancelled before it ever ran: the body never starts (asyncio);
      // finish() destroys it unrun.
      set_cancelled_outcome(std::move(msg));
      finish(Outcome::kCancelled);  // *this may be destroyed
      set_current_task(prev);
      return;
    }
  }
  resume_point_.resume();  // *this may be destroyed or running elsewhere now
  set_current_task(prev);
}

bool TaskBase::take_must_cancel(std::string* msg) {
  // Acquire pairs with the release store under mu_ in deliver().
  if (!must_cancel_flag_.load(std::memory_order_acquire)) return false;
  detail::SpinLockHolder lock(&mu_);
  if (!must_cancel_ || shielded_locked()) return false;  // a shield defers it
  must_cancel_ = false;
  must_cancel_flag_.store(false, std::memory_order_relaxed);
  *msg = cancel_request_msg_locked();
  return true;
}

bool TaskBase::cancel(std::string msg) {
  if (done()) return false;
  num_cancels_.fetch_add(1, std::memory_order_relaxed);
  deliver(std::move(msg));
  return true;
}

void TaskBase::deliver(std::string msg) {
  RefPtr<FutureStateBase> tried;  // a future whose cancel() failed
  for (;;) {
    RefPtr<FutureStateBase> w;
    {
      detail::SpinLockHolder lock(&mu_);
      if (!tried) {
        set_cancel_request_msg_locked(msg);
        if (shielded_locked()) {
          // Inside a shielded scope: deliver at the first checkpoint after it.
          set_must_cancel_locked();
          return;
        }
      }
      if (node_wait_ != nullptr) {
        const std::uint8_t from = node_wait_->cancel_locked(msg);
        // kIdle: the task is suspending and sees the cancellation as it arms.
        if (from == WaitNode::kIdle) return;
        // Ended already (it is being woken): deliver at the next checkpoint.
        if (from != WaitNode::kArmed) {
          set_must_cancel_locked();
          return;
        }
      } else if (!waiter_ || waiter_ == tried) {
        // Not waiting (or its wait is ending): deliver at the next checkpoint.
        set_must_cancel_locked();
        return;
      } else {
        w = waiter_;
      }
    }
    // We ended the node wait of a suspended task: nobody else will wake it.
    if (!w) {
      schedule(Wake::kNotify);
      return;
    }
    // Cancel what the task waits on outside our lock: that may take the
    // waiter's own lock (a task awaiting a task), and we never hold two.
    if (!w->done() && w->cancel(msg)) return;
    tried = std::move(w);  // if it suspended on something new meanwhile, cancel that
  }
}

bool TaskBase::suspend_on(FutureStateBase& f, Waiter& w, std::coroutine_handle<> h) {
  if (&f == this) throw RuntimeError(describe() + " cannot await itself");
  if (f.loop()->runtime_id() != loop()->runtime_id()) {
    throw RuntimeError(absl::StrFormat("%s awaits %s, which belongs to another runtime",
                                       describe(), f.describe()));
  }
  resume_point_ = h;
  std::string msg;
  // Deadlines first, outside our lock: expiring a scope wakes this task.
  CancelScopeState* top = innermost_scope();
  bool scope_cancelled = ABSL_PREDICT_FALSE(top != nullptr) && check_scopes(top, &msg);
  bool cancel_now;
  {
    detail::SpinLockHolder lock(&mu_);
    waiter_ = RefPtr<FutureStateBase>(&f);
    node_wait_ = nullptr;  // ended and unpublished by its awaiter already
    // Level-triggered: a cancelled scope cancels every wait inside it. Read
    // again under the lock: a scope cancel() racing with this suspension
    // either sees the new waiter or is seen here.
    if (ABSL_PREDICT_FALSE(scope_top_ != nullptr) && !scope_cancelled) {
      scope_cancelled = scope_cancellation(scope_top_, &msg);
    }
    cancel_now = !scope_cancelled && must_cancel_ && !shielded_locked();
    if (cancel_now) msg = cancel_request_msg_locked();
  }
  if (scope_cancelled) {
    f.cancel(msg);  // the wait below ends at once
  } else if (cancel_now && f.cancel(msg)) {
    // asyncio: cancelling what we are about to wait on consumes the request;
    // the wait below then ends at once with CancelledError.
    detail::SpinLockHolder lock(&mu_);
    must_cancel_ = false;
    must_cancel_flag_.store(false, std::memory_order_relaxed);
  }
  return f.add_waiter(&w);
  // If true, *this may now be running on another thread.
}

bool TaskBase::suspend_on_node(WaitNode& n, std::coroutine_handle<> h) {
  resume_point_ = h;
  std::string msg;
  CancelScopeState* top = innermost_scope();
  bool scope_cancelled = ABSL_PREDICT_FALSE(top != nullptr) && check_scopes(top, &msg);
  RefPtr<FutureStateBase> stale;  // released outside the lock
  {
    detail::SpinLockHolder lock(&mu_);
    stale = std::move(waiter_);
    WEFT_DCHECK(node_wait_ == nullptr);  // one wait at a time: the last one was unpublished
    node_wait_ = &n;
    if (ABSL_PREDICT_FALSE(scope_top_ != nullptr) && !scope_cancelled) {
      scope_cancelled = scope_cancellation(scope_top_, &msg);
    }
    if (scope_cancelled) {
      n.cancel_locked(msg);  // the arm below fails: no suspension
    } else if (must_cancel_ && !shielded_locked()) {
      // As in suspend_on: ending the wait consumes the request, unless a
      // waker ended it first (then the request stays for the next checkpoint).
      if (n.cancel_locked(cancel_request_msg_locked()) == WaitNode::kIdle) {
        must_cancel_ = false;
        must_cancel_flag_.store(false, std::memory_order_relaxed);
      }
    }
  }
  return n.arm();
  // If true, *this may now be running on another thread.
}

bool TaskBase::end_node_wait(WaitNode& n, std::string* msg) noexcept {
  detail::SpinLockHolder lock(&mu_);
  if (node_wait_ == &n) node_wait_ = nullptr;
  // Relaxed: a cancellation was made under this lock.
  if (n.state_.load(std::memory_order_relaxed) != WaitNode::kCancelled) return false;
  if (n.cancel_msg_) {
    *msg = std::move(*n.cancel_msg_);
    n.cancel_msg_.reset();
  }
  return true;
}

bool WaitNode::wake() noexcept {
  TaskBase* task = task_;  // read first: once ended, *this may be destroyed
  std::uint8_t from = state_.load(std::memory_order_relaxed);
  do {
    if (from >= kWoken) return false;
  } while (!state_.compare_exchange_weak(from, kWoken, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
  if (from == kArmed) task->schedule(Wake::kNotify);  // else it sees kWoken as it arms
  return true;
}

std::uint8_t WaitNode::cancel_locked(const std::string& msg) {
  std::uint8_t from = state_.load(std::memory_order_relaxed);
  do {
    if (from >= kWoken) return from;
  } while (!state_.compare_exchange_weak(from, kCancelled, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
  if (!msg.empty()) cancel_msg_ = std::make_unique<std::string>(msg);
  return from;
}

void TaskBase::suspend_and_yield(std::coroutine_handle<> h) noexcept {
  resume_point_ = h;
  schedule(Wake::kYieldCurrent);  // *this may now be running on another thread
}

void TaskBase::throw_if_cancelled_slow() {
  std::string msg;
  if (CancelScopeState* top = innermost_scope(); top != nullptr && check_scopes(top, &msg)) {
    throw CancelledError(std::move(msg));
  }
  if (take_must_cancel(&msg)) throw CancelledError(std::move(msg));
}

void TaskBase::throw_if_request_pending_slow() {
  std::string msg;
  if (take_must_cancel(&msg)) throw CancelledError(std::move(msg));
}

bool TaskBase::take_cancel_at_return() noexcept {
  std::string msg;
  if (!take_must_cancel(&msg)) return false;
  set_cancelled_outcome(std::move(msg));
  return true;
}

bool CancelScopeState::cancel(std::string reason) { return cancel_impl(std::move(reason), false); }

bool CancelScopeState::expire() {
  if (cancel_called()) return false;
  return cancel_impl(absl::StrFormat("cancelled by a cancel scope whose deadline passed (scope %p)",
                                     static_cast<const void*>(this)),
                     true);
}

bool CancelScopeState::cancel_impl(std::string reason, bool expiring) {
  RefPtr<TaskBase> task;
  {
    detail::SpinLockHolder lock(&mu_);
    if (cancel_called_.load(std::memory_order_relaxed)) return false;
    reason_ = reason;
    if (expiring) expired_.store(true, std::memory_order_release);
    cancel_called_.store(true, std::memory_order_release);
    // While the scope is active its task has not finished: it is alive.
    if (task_ != nullptr) task = RefPtr<TaskBase>(task_);
  }
  if (task) task->wake_for_scope(this, reason);
  return true;
}

std::string CancelScopeState::reason() const {
  detail::SpinLockHolder lock(&mu_);
  return reason_;
}

void CancelScopeState::set_shield(bool on) {
  // acq_rel: a checkpoint that reads the new value sees everything before it.
  if (shield_.exchange(on, std::memory_order_acq_rel) == on || on) return;
  RefPtr<TaskBase> task;
  {
    detail::SpinLockHolder lock(&mu_);
    if (task_ != nullptr) task = RefPtr<TaskBase>(task_);
  }
  if (task) task->on_shield_lowered(this);
}

void TaskBase::enter_scope(CancelScopeState* s, bool shared) {
  if (shared) {
    detail::SpinLockHolder lock(&s->mu_);
    s->task_ = this;
  } else {
    s->set_task_unshared(this);
  }
  detail::SpinLockHolder lock(&mu_);
  s->parent_ = scope_top_;
  scope_top_ = s;
}

void TaskBase::exit_scope(CancelScopeState* s, bool shared) {
  {
    detail::SpinLockHolder lock(&mu_);
    scope_top_ = s->parent_;
  }
  if (shared) {
    detail::SpinLockHolder lock(&s->mu_);
    s->task_ = nullptr;
  } else {
    s->set_task_unshared(nullptr);
  }
}

bool TaskBase::scope_cancellation(const CancelScopeState* from, std::string* reason) const {
  for (const CancelScopeState* s = from; s != nullptr; s = s->parent_) {
    if (s->cancel_called()) {
      if (reason != nullptr) *reason = s->reason();
      return true;
    }
    if (s->shield()) return false;  // nothing outside reaches in
  }
  return false;
}

bool TaskBase::check_scopes(CancelScopeState* from, std::string* reason) {
  std::int64_t now = 0;
  bool have_now = false;
  for (CancelScopeState* s = from; s != nullptr; s = s->parent_) {
    if (!s->cancel_called()) {
      const std::int64_t deadline = s->deadline_ns();
      if (deadline != CancelScopeState::kNoDeadline) {
        if (!have_now) {
          now = loop()->now_ns();
          have_now = true;
        }
        if (deadline <= now) s->expire();
      }
    }
    if (s->cancel_called()) {
      if (reason != nullptr) *reason = s->reason();
      return true;
    }
    if (s->shield()) return false;
  }
  return false;
}

std::int64_t TaskBase::effective_deadline_ns() const {
  std::int64_t earliest = CancelScopeState::kNoDeadline;
  for (const CancelScopeState* s = innermost_scope(); s != nullptr; s = s->parent_) {
    if (s->cancel_called()) return INT64_MIN;
    earliest = std::min(earliest, s->deadline_ns());
    if (s->shield()) break;
  }
  return earliest;
}

bool TaskBase::shielded_locked() const {
  for (const CancelScopeState* s = scope_top_; s != nullptr; s = s->parent_) {
    if (s->shield()) return true;
  }
  return false;
}

bool TaskBase::inside_locked(const CancelScopeState* s) const {
  // Only if no shield between s and the innermost scope keeps s out.
  for (const CancelScopeState* c = scope_top_; c != nullptr; c = c->parent_) {
    if (c == s) return true;
    if (c->shield()) return false;
  }
  return false;
}

void TaskBase::wake_for_scope(CancelScopeState* s, const std::string& reason) {
  RefPtr<FutureStateBase> w;
  bool reschedule = false;
  {
    detail::SpinLockHolder lock(&mu_);
    if (!inside_locked(s)) return;
    if (node_wait_ != nullptr) {
      // Only a suspended task needs waking: one that is suspending sees the
      // ended wait as it arms, one that is running checks the scope.
      reschedule = node_wait_->cancel_locked(reason) == WaitNode::kArmed;
    } else {
      w = waiter_;
    }
  }
  if (reschedule) {
    schedule(Wake::kNotify);  // we ended its node wait: nobody else wakes it
  } else if (w && !w->done()) {
    // If it is running now, its next checkpoint sees the cancelled scope.
    w->cancel(reason);
  }
}

void TaskBase::on_shield_lowered(CancelScopeState*) {
  // Recomputed from the innermost scope: an inner shield may still keep
  // everything outside it away.
  RefPtr<FutureStateBase> w;
  std::string msg;
  bool scope_cancelled = false;
  bool request = false;
  bool reschedule = false;
  {
    detail::SpinLockHolder lock(&mu_);
    scope_cancelled = scope_top_ != nullptr && scope_cancellation(scope_top_, &msg);
    if (!scope_cancelled && must_cancel_ && !shielded_locked()) {
      // The request the shield deferred: deliver it now, as cancel() would.
      request = true;
      must_cancel_ = false;
      must_cancel_flag_.store(false, std::memory_order_relaxed);
      msg = cancel_request_msg_locked();
    }
    if (scope_cancelled && node_wait_ != nullptr) {
      reschedule = node_wait_->cancel_locked(msg) == WaitNode::kArmed;
    } else {
      w = waiter_;
    }
  }
  if (reschedule) {
    schedule(Wake::kNotify);  // we ended its node wait: nobody else wakes it
  } else if (scope_cancelled) {
    if (w && !w->done()) w->cancel(msg);
  } else if (request) {
    deliver(std::move(msg));
  }
}

FutureStateBase::Outcome TaskBase::record_exception(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError& c) {
    set_cancelled_outcome(c.message());
    return Outcome::kCancelled;
  } catch (...) {
  }
  set_exception_outcome(std::move(e));
  return Outcome::kException;
}

void TaskBase::destroy_frame_keeping_block(std::coroutine_handle<> body) noexcept {
  KeepBodyBlock keep(body.address(), &frame_bytes_);
  body.destroy();
  WEFT_DCHECK(keep.kept());  // the frame's operator delete saw the scope
}

TaskBase::~TaskBase() {
  // finish() destroys the body, and TaskState::destroy the body of a task
  // that never ran, before the state goes.
  WEFT_DCHECK(!body_unlocked());
}

std::string TaskBase::body_where() const {
  std::source_location where;
  {
    detail::SpinLockHolder lock(&mu_);
    if (!body_) return "";
    where = promise_of(body_).location_;  // static data: valid after the lock
  }
  return absl::StrFormat("%s (%s:%d)", where.function_name(), where.file_name(), where.line());
}

void TaskBase::finish(Outcome outcome) noexcept {
  std::coroutine_handle<> body;
  RefPtr<FutureStateBase> waited;
  {
    // The task no longer waits on anything; drop that reference now.
    detail::SpinLockHolder lock(&mu_);
    waited = std::move(waiter_);
    node_wait_ = nullptr;  // unpublished by its awaiter already; a frame gone at teardown
    body = std::exchange(body_, {});
  }
  // Before the outcome is published: the body's locals are destroyed before
  // anyone awaiting the task resumes (their destructors may be what makes
  // the result complete).
  if (body) {
    void* frame = body.address();
    const std::uint64_t home = this->loop()->loop_id();  // the loop runs us: alive
    destroy_frame_keeping_block(body);
    WEFT_DCHECK(frame_bytes_ >= sizeof(std::uint64_t));  // resume and destroy pointers at least
    // The frame's storage stays this state's until the block goes: it keeps
    // the home loop's id for a done task whose handle outlives the runtime
    // (TaskState::loop_id). Written before publish (release), read after
    // done() (acquire).
    ::new (frame) std::uint64_t(home);
  }
  waited.reset();
  mark_claimed();
  LoopBase* loop = this->loop();
  publish(outcome);
  loop->task_finished(this);
  release();  // the running reference: *this may be destroyed
}

void TaskBase::abandon(std::string msg) noexcept {
  if (done()) return;
  set_cancelled_outcome(std::move(msg));
  finish(Outcome::kCancelled);  // destroys the body
}

}  // namespace weft::detail
