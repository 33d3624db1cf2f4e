// detail::RuntimeAccess: the way weft's own code outside Runtime and Loop
// reaches the runtime's scheduler side, which is private in runtime.h so that
// users see lifecycle and introspection only (Abseil keeps its internals
// behind `*_internal` accessors the same way). Each entry is one use:
//  - io_driver: the IO layer registers sockets with the shared epoll set;
//  - submit_external: run_coroutine_threadsafe and spawn_threadsafe start a
//    task from outside the runtime, serialised with its shutdown;
//  - offload_pool: to_thread's pool (and tests that watch it drain).
// Thread safety is each call's own, as documented in runtime.h. Defined in
// runtime.cc, so that this header (sched_internal) does not need runtime.h;
// none of these is on a per-step path.
#pragma once

#include "absl/functional/function_ref.h"

namespace weft {
class Runtime;
class OffloadPool;
}  // namespace weft

namespace weft::detail {

class IoDriver;

struct RuntimeAccess {
  static IoDriver& io_driver(Runtime& rt) noexcept;
  static void submit_external(Runtime& rt, absl::FunctionRef<void()> start);
  static OffloadPool& offload_pool(Runtime& rt);
};

}  // namespace weft::detail
