// Allocation of coroutine frames, task and future states and timer entries
// from a per-thread pool.
//
// g++ 12 heap-allocates every coroutine frame. Frames have a handful of
// distinct sizes per program and are freed soon after they are made, so a
// per-thread free list per 16-byte size class turns malloc+free into two
// pointer moves. Each thread caches at most kMaxCachedBytesPerClass per class
// (a block freed on another thread than it was made on joins that thread's
// cache); the rest go back to the backing allocator, oneTBB's scalable
// allocator, which returns a block freed on another thread to its owning
// thread's heap without a lock (see frame_alloc.cc). Larger blocks go
// straight to operator new. Under AddressSanitizer and ThreadSanitizer the
// pool is off and blocks come from operator new, so that use-after-free of a
// frame is still caught.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::detail {

void* allocate_frame(std::size_t size);
void deallocate_frame(void* p, std::size_t size) noexcept;

// The per-thread cache can be switched off (e.g. by benchmarks that measure
// what it saves). Safe to flip at any time: with it off, blocks still come
// from (and go back to) the same backing allocator.
void set_frame_pool_enabled(bool enabled) noexcept;
bool frame_pool_enabled() noexcept;

// Counts of every block allocate_frame handed out, on every thread.
struct FramePoolStats {
  // Allocated and not yet deallocated: what tasks, frames, futures and
  // timers hold now (blocks in a thread's cache are not live).
  std::int64_t live_blocks = 0;
  // Every allocation so far.
  std::int64_t total_allocated = 0;
};
// A snapshot: exact while no other thread allocates or frees blocks.
FramePoolStats frame_pool_stats();

}  // namespace weft::detail
