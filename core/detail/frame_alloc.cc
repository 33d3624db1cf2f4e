#include "weft/core/detail/frame_alloc.h"

#include <atomic>
#include <new>

namespace weft::detail {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kPoolByDefault = false;
#else
constexpr bool kPoolByDefault = true;
#endif

constexpr std::size_t kClassBytes = 64;
constexpr std::size_t kNumClasses = 16;  // frames up to 1 KiB are pooled
constexpr std::size_t kMaxCachedBytesPerClass = 256 * 1024;

// Relaxed: the flag only chooses a strategy; either choice is correct for any
// block because pooled blocks are plain operator-new blocks.
std::atomic<bool> g_pool_enabled{kPoolByDefault};

struct FreeBlock {
  FreeBlock* next;
};

// Touched only by its own thread.
class ThreadCache {
 public:
  ~ThreadCache() {
    for (auto& c : classes_) {
      while (c.head) {
        FreeBlock* b = c.head;
        c.head = b->next;
        ::operator delete(b);
      }
    }
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

 private:
  struct Class {
    FreeBlock* head = nullptr;
    std::size_t count = 0;
  };
  Class classes_[kNumClasses];
};

// The cache is reached through a trivially destructible pointer so that a
// frame freed during thread exit, after the cache itself is gone, falls back
// to operator delete instead of touching a destroyed object.
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

}  // namespace

void* allocate_frame(std::size_t size) {
  std::size_t cls = class_of(size);
  if (cls >= kNumClasses) return ::operator new(size);
  if (g_pool_enabled.load(std::memory_order_relaxed)) {
    if (ThreadCache* c = cache()) {
      if (void* p = c->pop(cls)) return p;
    }
  }
  // Always the rounded size, so any block of a class may later be pooled.
  return ::operator new((cls + 1) * kClassBytes);
}

void deallocate_frame(void* p, std::size_t size) noexcept {
  std::size_t cls = class_of(size);
  if (cls < kNumClasses && g_pool_enabled.load(std::memory_order_relaxed)) {
    ThreadCache* c = cache();
    if (c != nullptr && c->push(cls, p)) return;
  }
  ::operator delete(p);
}

void set_frame_pool_enabled(bool enabled) noexcept {
  g_pool_enabled.store(enabled, std::memory_order_relaxed);
}
bool frame_pool_enabled() noexcept {
  return g_pool_enabled.load(std::memory_order_relaxed);
}

}  // namespace weft::detail
