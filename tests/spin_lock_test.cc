// SpinLock: mutual exclusion and visibility across threads, try_lock.
#include "weft/core/detail/spin_lock.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace weft::detail {
namespace {

TEST(SpinLock, TryLockFailsWhileHeldAndSucceedsAfter) {
  SpinLock lock;
  ASSERT_TRUE(lock.try_lock());
  EXPECT_FALSE(lock.try_lock());
  lock.unlock();
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
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
