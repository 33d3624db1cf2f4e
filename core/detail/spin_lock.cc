#include "weft/core/detail/spin_lock.h"

#include <thread>

namespace weft::detail {
namespace {

constexpr int kSpinsBeforeYield = 64;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace

void SpinLock::lock_slow() {
  for (int spins = 0;; ++spins) {
    // Relaxed probe: only the exchange below must synchronise (acquire).
    if (!locked_.load(std::memory_order_relaxed) &&
        !locked_.exchange(true, std::memory_order_acquire)) {
      return;
    }
    if (spins < kSpinsBeforeYield) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace weft::detail
