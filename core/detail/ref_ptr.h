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

// The count itself, with the orders above; for objects that keep their own
// (TimerEntry: no vtable pointer, so that it stays one 64-byte block).
class RefCount {
 public:
  explicit RefCount(std::uint32_t initial = 1) noexcept : n_(initial) {}
  void add() const noexcept { n_.fetch_add(1, std::memory_order_relaxed); }
  // Drops `k` references; true if they were the last (then destroy).
  bool drop(std::uint32_t k = 1) const noexcept {
    return n_.fetch_sub(k, std::memory_order_acq_rel) == k;
  }
  // Acquire pairs with the acq_rel decrements of the references dropped
  // before: a sole owner sees everything done through them.
  bool sole() const noexcept { return n_.load(std::memory_order_acquire) == 1; }
  std::uint32_t value_for_testing() const noexcept { return n_.load(std::memory_order_relaxed); }

 private:
  mutable std::atomic<std::uint32_t> n_;
};

class RefCounted {
 public:
  void add_ref() const noexcept { refs_.add(); }
  void release() const noexcept {
    if (refs_.drop()) const_cast<RefCounted*>(this)->destroy();
  }
  // True if the caller's reference is the only one: nobody else can reach
  // the object (new references are made only from existing ones).
  bool sole_owner() const noexcept { return refs_.sole(); }
  std::uint32_t ref_count_for_testing() const noexcept { return refs_.value_for_testing(); }

 protected:
  RefCounted() = default;
  virtual ~RefCounted() = default;
  // Called once, when the last reference is dropped.
  virtual void destroy() noexcept { delete this; }

 private:
  RefCount refs_;
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
