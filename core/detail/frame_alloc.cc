#include "weft/core/detail/frame_alloc.h"

#include <atomic>
#include <cstdint>
#include <new>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEFT_FRAME_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WEFT_FRAME_SANITIZED 1
#endif
#endif
#if !defined(WEFT_FRAME_SANITIZED)
#include "oneapi/tbb/scalable_allocator.h"
#define WEFT_FRAME_BACKING_TBBMALLOC 1
#endif

namespace weft::detail {
namespace {

#if defined(WEFT_FRAME_BACKING_TBBMALLOC)
constexpr bool kPoolByDefault = true;
// oneTBB's scalable allocator: per-thread heaps of 16 KiB slabs without a
// header per object; a block freed on another thread goes onto its slab's
// lock-free public list, which the owning thread takes back whole when it
// next needs memory of that size. So a frame made on one worker and freed on
// another costs no allocator lock and no arena traffic, and the owner gets
// its blocks back in batches.
void* backing_allocate(std::size_t size) {
  void* p = scalable_malloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void backing_free(void* p) noexcept { scalable_free(p); }
#else
// Under AddressSanitizer and ThreadSanitizer the pool is off and blocks come
// from operator new, so that use-after-free of a frame is still caught and
// every allocation is instrumented.
constexpr bool kPoolByDefault = false;
void* backing_allocate(std::size_t size) { return ::operator new(size); }
void backing_free(void* p) noexcept { ::operator delete(p); }
#endif

constexpr std::size_t kClassBytes = 16;
constexpr std::size_t kNumClasses = 64;  // frames up to 1 KiB are pooled
constexpr std::size_t kMaxCachedBytesPerClass = 128 * 1024;

// Relaxed: the flag only chooses whether the per-thread cache is used; every
// block of a pooled class comes from backing_allocate either way, so any
// block may be cached or handed back whatever the flag said at its birth.
std::atomic<bool> g_pool_enabled{kPoolByDefault};

struct FreeBlock {
  FreeBlock* next;
};

// Block counts of one thread: written only by that thread (a load and a
// store, no read-modify-write: nobody else writes them), read by
// frame_pool_stats() from any thread (relaxed: a snapshot that is exact
// once the counting threads are quiet).
struct Counts {
  std::atomic<std::int64_t> allocated{0};
  std::atomic<std::int64_t> freed{0};
  void bump(std::atomic<std::int64_t>& c, std::int64_t by) noexcept {
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
};

// Every live thread's counts, and what exited threads left behind.
class Registry {
 public:
  void add(Counts* c) {
    absl::MutexLock lock(&mu_);
    live_.push_back(c);
  }
  // A thread leaving: its totals move into the retired sums.
  void retire(Counts* c) {
    absl::MutexLock lock(&mu_);
    retired_allocated_ += c->allocated.load(std::memory_order_relaxed);
    retired_freed_ += c->freed.load(std::memory_order_relaxed);
    std::erase(live_, c);
  }
  // Blocks counted without a cache (a thread past its cache's destruction).
  void count_uncached(bool allocated) {
    (allocated ? uncached_allocated_ : uncached_freed_).fetch_add(1, std::memory_order_relaxed);
  }
  FramePoolStats stats() {
    absl::MutexLock lock(&mu_);
    std::int64_t allocated = retired_allocated_ + uncached_allocated_.load(std::memory_order_relaxed);
    std::int64_t freed = retired_freed_ + uncached_freed_.load(std::memory_order_relaxed);
    for (const Counts* c : live_) {
      allocated += c->allocated.load(std::memory_order_relaxed);
      freed += c->freed.load(std::memory_order_relaxed);
    }
    return FramePoolStats{allocated - freed, allocated};
  }

 private:
  absl::Mutex mu_;
  std::vector<Counts*> live_ ABSL_GUARDED_BY(mu_);
  std::int64_t retired_allocated_ ABSL_GUARDED_BY(mu_) = 0;
  std::int64_t retired_freed_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<std::int64_t> uncached_allocated_{0};
  std::atomic<std::int64_t> uncached_freed_{0};
};

// Never destroyed: threads exiting after main's statics are gone still retire.
Registry& registry() {
  static auto* r = new Registry();
  return *r;
}

// Touched only by its own thread (but for the counts, see Counts).
class ThreadCache {
 public:
  ThreadCache() { registry().add(&counts_); }
  ~ThreadCache() {
    for (auto& c : classes_) {
      while (c.head) {
        FreeBlock* b = c.head;
        c.head = b->next;
        backing_free(b);
      }
    }
    registry().retire(&counts_);
  }
  void* pop(std::size_t cls) {
    Class& c = classes_[cls];
    FreeBlock* b = c.head;
    if (!b) return nullptr;
    c.head = b->next;
    --c.count;
    return b;
  }
  bool push(std::size_t cls, void* p) {
    Class& c = classes_[cls];
    if ((c.count + 1) * (cls + 1) * kClassBytes > kMaxCachedBytesPerClass) return false;
    auto* b = static_cast<FreeBlock*>(p);
    b->next = c.head;
    c.head = b;
    ++c.count;
    return true;
  }
  Counts& counts() noexcept { return counts_; }

 private:
  struct Class {
    FreeBlock* head = nullptr;
    std::size_t count = 0;
  };
  Class classes_[kNumClasses];
  Counts counts_;
};

// The cache is reached through a trivially destructible pointer so that a
// frame freed during thread exit, after the cache itself is gone, falls back
// to the backing allocator instead of touching a destroyed object.
thread_local ThreadCache* t_cache_ptr = nullptr;
thread_local bool t_cache_dead = false;

struct CacheOwner {
  ThreadCache cache;
  CacheOwner() { t_cache_ptr = &cache; }
  ~CacheOwner() {
    t_cache_ptr = nullptr;
    t_cache_dead = true;
  }
};

ThreadCache* cache() {
  if (t_cache_ptr == nullptr && !t_cache_dead) {
    thread_local CacheOwner owner;
  }
  return t_cache_ptr;
}

inline std::size_t class_of(std::size_t size) { return (size - 1) / kClassBytes; }

void count_block(ThreadCache* c, bool allocated) {
  if (c == nullptr) {
    registry().count_uncached(allocated);
    return;
  }
  Counts& k = c->counts();
  k.bump(allocated ? k.allocated : k.freed, 1);
}

}  // namespace

namespace {
// The frame whose block its task keeps (KeepBodyBlock), on this thread.
thread_local KeepBodyBlock::Slot t_kept_body;
}  // namespace

void* allocate_body_block(std::size_t frame_bytes, std::size_t prefix) {
  return static_cast<char*>(allocate_frame(prefix + frame_bytes)) + prefix;
}

void deallocate_body_block(void* frame, std::size_t frame_bytes, std::size_t prefix) noexcept {
  if (frame == t_kept_body.frame) {
    *t_kept_body.frame_bytes = static_cast<std::uint32_t>(frame_bytes);
    t_kept_body.frame = nullptr;
    return;
  }
  deallocate_frame(static_cast<char*>(frame) - prefix, prefix + frame_bytes);
}

KeepBodyBlock::KeepBodyBlock(void* frame, std::uint32_t* frame_bytes) noexcept
    : saved_(t_kept_body), frame_(frame) {
  t_kept_body = Slot{frame, frame_bytes};
}

KeepBodyBlock::~KeepBodyBlock() { t_kept_body = saved_; }

bool KeepBodyBlock::kept() const noexcept { return t_kept_body.frame != frame_; }

void* allocate_frame(std::size_t size) {
  ThreadCache* c = cache();
  count_block(c, true);
  const std::size_t cls = class_of(size);
  if (cls >= kNumClasses) return ::operator new(size);
  if (c != nullptr && g_pool_enabled.load(std::memory_order_relaxed)) {
    if (void* p = c->pop(cls)) return p;
  }
  // Always the rounded size, so any block of a class may later be cached.
  return backing_allocate((cls + 1) * kClassBytes);
}

void deallocate_frame(void* p, std::size_t size) noexcept {
  ThreadCache* c = cache();
  count_block(c, false);
  const std::size_t cls = class_of(size);
  if (cls >= kNumClasses) {
    ::operator delete(p);
    return;
  }
  if (c != nullptr && g_pool_enabled.load(std::memory_order_relaxed) && c->push(cls, p)) return;
  backing_free(p);
}

void set_frame_pool_enabled(bool enabled) noexcept {
  g_pool_enabled.store(enabled, std::memory_order_relaxed);
}
bool frame_pool_enabled() noexcept {
  return g_pool_enabled.load(std::memory_order_relaxed);
}

FramePoolStats frame_pool_stats() { return registry().stats(); }

}  // namespace weft::detail
