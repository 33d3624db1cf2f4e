// Intrusive reference counting for the shared states of futures and tasks.
//
// Thread safety: `RefCounted` counts may be changed from any thread. An
// increment is relaxed (a new reference is always made from an existing one,
// which already keeps the object alive); the decrement is acq_rel so that
// every access made through any reference happens-before the destructor run
// by the thread that drops the last one.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace weft::detail {

class RefCounted {
 public:
  void add_ref() const noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() const noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      const_cast<RefCounted*>(this)->destroy();
    }
  }
  // True if the caller's reference is the only one: nobody else can reach
  // the object (new references are made only from existing ones). Acquire
  // pairs with the acq_rel decrements of the references dropped before.
  bool sole_owner() const noexcept { return refs_.load(std::memory_order_acquire) == 1; }
  std::uint32_t ref_count_for_testing() const noexcept {
    return refs_.load(std::memory_order_relaxed);
  }

 protected:
  RefCounted() = default;
  virtual ~RefCounted() = default;
  // Called once, when the last reference is dropped.
  virtual void destroy() noexcept { delete this; }

 private:
  mutable std::atomic<std::uint32_t> refs_{1};
};

struct AdoptRef {};
inline constexpr AdoptRef kAdoptRef{};

// Owning pointer to a RefCounted object.
template <typename T>
class RefPtr {
 public:
  RefPtr() noexcept = default;
  // Takes over a reference the caller already owns.
  RefPtr(T* p, AdoptRef) noexcept : p_(p) {}
  // Takes a new reference.
  explicit RefPtr(T* p) noexcept : p_(p) {
    if (p_) p_->add_ref();
  }
  RefPtr(const RefPtr& o) noexcept : RefPtr(o.p_) {}
  RefPtr(RefPtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  template <typename U>
  RefPtr(RefPtr<U>&& o) noexcept : p_(o.leak()) {}
  RefPtr& operator=(RefPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~RefPtr() {
    if (p_) p_->release();
  }

  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  T& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  // Gives up ownership without releasing.
  T* leak() noexcept { return std::exchange(p_, nullptr); }
  void reset() noexcept { RefPtr().swap(*this); }
  void swap(RefPtr& o) noexcept { std::swap(p_, o.p_); }
  friend bool operator==(const RefPtr& a, const RefPtr& b) { return a.p_ == b.p_; }

 private:
  T* p_ = nullptr;
};

}  // namespace weft::detail
