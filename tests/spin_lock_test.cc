// SpinLock: mutual exclusion and visibility across threads, try_lock.
#include "weft/core/detail/spin_lock.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace weft::detail {
namespace {

// Branches rather than ASSERT_TRUE(lock.try_lock()), so that clang's thread-safety
// analysis can follow which paths hold the lock.
TEST(SpinLock, TryLockFailsWhileHeldAndSucceedsAfter) {
  SpinLock lock;
  if (!lock.try_lock()) {
    FAIL() << "try_lock of a free lock failed";
  }
  bool taken_elsewhere = true;
  std::thread([&] { taken_elsewhere = lock.try_lock(); }).join();
  EXPECT_FALSE(taken_elsewhere) << "try_lock succeeded while another thread held the lock";
  lock.unlock();
  if (lock.try_lock()) {
    lock.unlock();
  } else {
    ADD_FAILURE() << "try_lock of a released lock failed";
  }
}

// Non-atomic read-modify-writes of two fields under the lock: a lost update
// or a torn pair shows up as a wrong total (and as a race under TSan).
TEST(SpinLock, ExcludesAndPublishesAcrossThreads) {
  SpinLock lock;
  long count = 0;
  long shadow = 0;
  constexpr int kThreads = 4;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr int kIters = 20000;
#else
  constexpr int kIters = 200000;
#endif
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIters; ++i) {
        SpinLockHolder hold(&lock);
        EXPECT_EQ(count, shadow);
        ++count;
        ++shadow;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(count, long{kThreads} * kIters);
  EXPECT_EQ(shadow, count);
}

}  // namespace
}  // namespace weft::detail
