// weft::ScopedRelease<M>: releases a Lock (LockGuard) or a semaphore permit
// (SemaphoreGuard) when it goes out of scope; asyncio's `async with lock:`.
//
//   {
//     auto guard = co_await lock.scoped();   // acquired
//     ...
//   }                                        // released here (or on throw)
//
// Movable, not copyable. Thread safety: a guard is owned by one task at a
// time (it may be moved to another task); the release itself is thread-safe.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <utility>

namespace weft {

template <typename M>
class [[nodiscard]] ScopedRelease {
 public:
  ScopedRelease() noexcept = default;
  ScopedRelease(ScopedRelease&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  ScopedRelease& operator=(ScopedRelease&& o) noexcept {
    if (this != &o) {
      reset();
      m_ = std::exchange(o.m_, nullptr);
    }
    return *this;
  }
  ScopedRelease(const ScopedRelease&) = delete;
  ScopedRelease& operator=(const ScopedRelease&) = delete;
  ~ScopedRelease() { reset(); }

  // True while the guard holds what it releases.
  bool owns() const noexcept { return m_ != nullptr; }
  explicit operator bool() const noexcept { return owns(); }
  M* primitive() const noexcept { return m_; }

  // Releases now (idempotent).
  void reset() noexcept {
    if (M* m = std::exchange(m_, nullptr)) m->release_from_guard();
  }
  // Gives up ownership without releasing: the caller must release.
  M* dismiss() noexcept { return std::exchange(m_, nullptr); }

 private:
  friend M;
  explicit ScopedRelease(M* m) noexcept : m_(m) {}
  M* m_ = nullptr;
};

}  // namespace weft
