// Unix signals as loop events (asyncio's loop.add_signal_handler, and an
// awaitable in the spirit of Trio's open_signal_receiver).
//
//   weft::add_signal_handler(SIGHUP, [] { reload_config(); });
//   int sig = co_await weft::wait_signal(SIGINT, SIGTERM);   // graceful stop
//
// Design: why not signalfd. A signalfd only sees a signal that every thread
// of the process blocks; a runtime's workers, its to_thread pool and any
// thread the program made earlier already run with the signal unblocked, and
// the kernel would deliver it to one of them (for SIGINT/SIGTERM: killing
// the process) instead. So weft does what CPython does (signal.set_wakeup_fd):
// a sigaction handler, async-signal-safe, writes the signal number into a
// process-wide non-blocking pipe; a dispatcher task of the runtime waits on
// the pipe's read end with wait_readable and runs the registered callbacks
// (posted to the loop that registered them) and completes the waiters.
// Signals of the same number that arrive close together may be coalesced by
// a full pipe (like signalfd, which also merges pending signals).
//
// Dispositions: weft installs its handler when a signal gets its first
// callback or waiter and restores the previous disposition when it has
// none left. Handlers belong to their runtime: when the runtime stops (its
// dispatcher task is cancelled at shutdown) they are removed.
//
// Thread safety: every function may be called from any task of a runtime.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <functional>
#include <vector>

#include "weft/core/coro.h"

namespace weft {

// Runs `callback` on the calling loop (call_soon_threadsafe) each time `sig`
// arrives, replacing a previous handler of `sig`. std::invalid_argument for
// SIGKILL, SIGSTOP or a number out of range; RuntimeError outside a runtime.
void add_signal_handler(int sig, std::function<void()> callback);
// Removes the handler of `sig`; false if there was none.
bool remove_signal_handler(int sig);
// Completes with the number of the first of `sigs` that arrives after the
// call. Cancellable.
[[nodiscard]] Coro<int> wait_signal(std::vector<int> sigs);
// wait_signal(SIGINT, SIGTERM). (Prefer it to wait_signal({...}) inside a
// co_await: g++ 12 rejects braced lists there, "array used as initializer".)
template <typename... More>
[[nodiscard]] Coro<int> wait_signal(int sig, More... more) {
  return wait_signal(std::vector<int>{sig, static_cast<int>(more)...});
}

}  // namespace weft
