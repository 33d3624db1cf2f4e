// Allocation of coroutine frames from a per-thread pool.
//
// g++ 12 heap-allocates every coroutine frame. Frames have a handful of
// distinct sizes per program and are freed soon after they are made, so a
// per-thread free list per 64-byte size class turns malloc+free into two
// pointer moves. Each thread caches at most kMaxCachedBytesPerClass per class
// (a frame freed on another thread than it was made on joins that thread's
// cache); larger frames go straight to operator new. Under AddressSanitizer
// the pool is off so that use-after-free of a frame is still caught.
#pragma once

#include <cstddef>

namespace weft::detail {

void* allocate_frame(std::size_t size);
void deallocate_frame(void* p, std::size_t size) noexcept;

// The pool can be switched off (e.g. by benchmarks that measure what it saves).
// Safe to flip at any time: pooled blocks are ordinary operator-new blocks.
void set_frame_pool_enabled(bool enabled) noexcept;
bool frame_pool_enabled() noexcept;

}  // namespace weft::detail
