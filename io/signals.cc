#include "weft/io/signals.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "weft/core/future.h"
#include "weft/io/errors.h"
#include "weft/io/reactor.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace {

// The write end, read by the C handler. -1 until the hub made the pipe.
// Relaxed: it is stored once, before any handler that reads it is installed
// (sigaction orders that).
std::atomic<int> g_wakeup_fd{-1};

extern "C" void weft_signal_handler(int sig) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  // A full pipe drops the byte: signals of a burst coalesce.
  [[maybe_unused]] ssize_t n = ::write(g_wakeup_fd.load(std::memory_order_relaxed), &byte, 1);
  errno = saved;
}

// The process-wide registry. Lives forever (a signal may arrive at any time).
class SignalHub {
 public:
  static SignalHub& get() {
    static SignalHub* hub = new SignalHub();
    return *hub;
  }

  void add_handler(int sig, std::function<void()> cb) {
    check_signal(sig);
    Loop& loop = get_running_loop();
    absl::MutexLock lock(&mu_);
    ensure_dispatcher_locked(loop);
    Sig& s = sigs_[sig];
    s.handler = std::make_shared<std::function<void()>>(std::move(cb));
    s.handler_loop = &loop;
    install_locked(sig);
  }

  bool remove_handler(int sig) {
    check_signal(sig);
    absl::MutexLock lock(&mu_);
    Sig& s = sigs_[sig];
    if (!s.handler) return false;
    s.handler.reset();
    s.handler_loop = nullptr;
    maybe_uninstall_locked(sig);
    return true;
  }

  void add_waiter(const std::vector<int>& sigs, const Future<int>& f) {
    for (int sig : sigs) check_signal(sig);
    Loop& loop = get_running_loop();
    absl::MutexLock lock(&mu_);
    ensure_dispatcher_locked(loop);
    for (int sig : sigs) {
      sigs_[sig].waiters.push_back(f);
      install_locked(sig);
    }
  }

  void remove_waiter(const std::vector<int>& sigs, const Future<int>& f) {
    absl::MutexLock lock(&mu_);
    for (int sig : sigs) {
      auto& w = sigs_[sig].waiters;
      for (auto it = w.begin(); it != w.end(); ++it) {
        if (*it == f) {
          w.erase(it);
          break;
        }
      }
      maybe_uninstall_locked(sig);
    }
  }

 private:
  static constexpr int kMaxSig = 65;

  struct Sig {
    std::shared_ptr<std::function<void()>> handler;
    Loop* handler_loop = nullptr;
    std::vector<Future<int>> waiters;
    bool installed = false;
    struct sigaction old {};
  };

  SignalHub() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw_errno("pipe2");
    read_fd_ = fds[0];
    g_wakeup_fd.store(fds[1], std::memory_order_relaxed);
  }

  static void check_signal(int sig) {
    if (sig <= 0 || sig >= kMaxSig || sig == SIGKILL || sig == SIGSTOP) {
      throw std::invalid_argument(absl::StrFormat("signal %d cannot be handled", sig));
    }
  }

  void install_locked(int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Sig& s = sigs_[sig];
    if (s.installed) return;
    struct sigaction sa {};
    sa.sa_handler = weft_signal_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, &s.old) != 0) throw_errno("sigaction");
    s.installed = true;
  }

  void maybe_uninstall_locked(int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Sig& s = sigs_[sig];
    if (!s.installed || s.handler || !s.waiters.empty()) return;
    sigaction(sig, &s.old, nullptr);
    s.installed = false;
  }

  // One dispatcher task at a time, in the runtime of the first caller.
  void ensure_dispatcher_locked(Loop& loop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (dispatcher_runtime_ != nullptr) {
      if (dispatcher_runtime_ != loop.runtime_id()) {
        throw RuntimeError("signal handling is in use by another running weft runtime");
      }
      return;
    }
    dispatcher_runtime_ = loop.runtime_id();
    create_task(dispatch(Lease{this}), "weft-signals");
  }

  // Ends the dispatcher's tenure when its frame goes: a parameter, so that
  // it also happens if the task is cancelled before it first runs.
  struct Lease {
    SignalHub* hub;
    explicit Lease(SignalHub* h) : hub(h) {}
    Lease(Lease&& o) noexcept : hub(std::exchange(o.hub, nullptr)) {}
    ~Lease() {
      if (hub != nullptr) hub->dispatcher_stopped();
    }
  };

  Coro<void> dispatch(Lease lease) {
    unsigned char buf[64];
    for (;;) {
      co_await wait_readable(read_fd_);
      ssize_t n = ::read(read_fd_, buf, sizeof buf);
      if (n <= 0) continue;  // EAGAIN: another reader raced us, or EINTR
      for (ssize_t i = 0; i < n; ++i) deliver(buf[i]);
    }
  }

  void deliver(int sig) {
    if (sig <= 0 || sig >= kMaxSig) return;
    std::shared_ptr<std::function<void()>> handler;
    Loop* loop = nullptr;
    std::vector<Future<int>> waiters;
    {
      absl::MutexLock lock(&mu_);
      Sig& s = sigs_[sig];
      handler = s.handler;
      loop = s.handler_loop;
      waiters.swap(s.waiters);
      maybe_uninstall_locked(sig);
    }
    if (handler) loop->call_soon_threadsafe([handler] { (*handler)(); });
    for (auto& f : waiters) f.try_set_result(sig);
  }

  // The runtime is stopping: its handlers go; waiters were cancelled with
  // their tasks.
  void dispatcher_stopped() {
    absl::MutexLock lock(&mu_);
    dispatcher_runtime_ = nullptr;
    for (int sig = 1; sig < kMaxSig; ++sig) {
      Sig& s = sigs_[sig];
      s.handler.reset();
      s.handler_loop = nullptr;
      s.waiters.clear();
      maybe_uninstall_locked(sig);
    }
  }

  int read_fd_ = -1;
  absl::Mutex mu_;
  const void* dispatcher_runtime_ ABSL_GUARDED_BY(mu_) = nullptr;
  Sig sigs_[kMaxSig] ABSL_GUARDED_BY(mu_);
};

}  // namespace

void add_signal_handler(int sig, std::function<void()> callback) {
  if (!callback) throw std::invalid_argument("add_signal_handler: empty callback");
  SignalHub::get().add_handler(sig, std::move(callback));
}

bool remove_signal_handler(int sig) { return SignalHub::get().remove_handler(sig); }

Coro<int> wait_signal(std::vector<int> sigs) {
  if (sigs.empty()) throw std::invalid_argument("wait_signal: no signal");
  Future<int> f;
  SignalHub::get().add_waiter(sigs, f);
  struct Remove {
    const std::vector<int>& sigs;
    const Future<int>& f;
    ~Remove() { SignalHub::get().remove_waiter(sigs, f); }
  } remove{sigs, f};
  co_return co_await f;
}

}  // namespace weft
