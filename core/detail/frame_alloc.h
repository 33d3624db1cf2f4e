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

// Blocks of coroutine frames with `prefix` bytes of room in front of the
// frame (core/coro.h): returns the frame's address, takes it back. A frame
// whose block a KeepBodyBlock on this thread names is not freed: its size is
// reported to the keeper instead, who frees the block later.
void* allocate_body_block(std::size_t frame_bytes, std::size_t prefix);
void deallocate_body_block(void* frame, std::size_t frame_bytes, std::size_t prefix) noexcept;

// For the duration of one coroutine_handle::destroy() of `frame` on this
// thread: its operator delete keeps the block and stores the frame's size in
// *frame_bytes. Scopes nest (a frame's destruction may destroy another
// task's frame through a parameter's destructor): each restores the one it
// replaced.
class KeepBodyBlock {
 public:
  KeepBodyBlock(void* frame, std::uint32_t* frame_bytes) noexcept;
  ~KeepBodyBlock();
  KeepBodyBlock(const KeepBodyBlock&) = delete;
  KeepBodyBlock& operator=(const KeepBodyBlock&) = delete;
  // True once the frame's operator delete ran.
  bool kept() const noexcept;

  struct Slot {
    void* frame = nullptr;
    std::uint32_t* frame_bytes = nullptr;
  };

 private:
  Slot saved_;
  void* const frame_;
};

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
