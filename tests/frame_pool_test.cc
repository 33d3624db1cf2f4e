// The frame pool (core/detail/frame_alloc.h): every block handed out comes
// back, whichever thread frees it, and its counts say so.
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/testing.h"
#include "weft/core/detail/frame_alloc.h"

namespace weft {
namespace {

using detail::frame_pool_stats;

Coro<int> short_task(int i) { co_return i; }

// The main task of the run below: `total` short tasks, in batches of `batch`
// made and then joined, on every worker. Returns the sum of their results;
// `*peak_live` gets the live blocks seen with one batch pending.
Coro<std::int64_t> many_short_tasks(int total, int batch, std::int64_t* peak_live) {
  std::int64_t sum = 0;
  std::vector<Task<int>> tasks;
  tasks.reserve(batch);
  for (int done = 0; done < total; done += batch) {
    for (int i = 0; i < batch; ++i) tasks.push_back(create_task(short_task(1)));
    if (done == 0) *peak_live = frame_pool_stats().live_blocks;
    for (Task<int>& t : tasks) sum += co_await t;
    tasks.clear();
  }
  co_return sum;
}

TEST(FramePool, MillionShortTasksLeaveNoBlockBehind) {
  constexpr int kBatch = 1000;
  const int total = testing::scaled(1'000'000);
  const detail::FramePoolStats before = frame_pool_stats();
  std::int64_t peak_live = 0;
  std::int64_t sum = 0;
  {
    RuntimeOptions options;
    options.workers = 2;
    Runtime rt(std::move(options));
    sum = rt.run(many_short_tasks(total, kBatch, &peak_live));
  }  // the workers exit here: their counts retire
  const detail::FramePoolStats after = frame_pool_stats();
  EXPECT_EQ(sum, total);
  // The counts saw the tasks: a pending batch holds a block per task at least.
  EXPECT_GE(peak_live - before.live_blocks, kBatch);
  EXPECT_GE(after.total_allocated - before.total_allocated, total);
  EXPECT_EQ(after.live_blocks, before.live_blocks);
}

// Blocks made on one thread and freed on another (a task finished on another
// worker than the one that made it), in both directions at once, with the
// per-thread cache on and off.
void cross_thread_round(bool pool) {
  const bool was = detail::frame_pool_enabled();
  detail::set_frame_pool_enabled(pool);
  const std::int64_t live_before = frame_pool_stats().live_blocks;
  constexpr int kBlocks = 20'000;
  const std::size_t sizes[] = {24, 64, 200, 640, 1000, 4096};
  auto make = [&](std::vector<void*>* out) {
    for (int i = 0; i < kBlocks; ++i) out->push_back(detail::allocate_frame(sizes[i % 6]));
  };
  auto free_all = [&](std::vector<void*>* blocks) {
    for (std::size_t i = 0; i < blocks->size(); ++i) {
      detail::deallocate_frame((*blocks)[i], sizes[i % 6]);
    }
  };
  std::vector<void*> a, b;
  std::thread ta([&] { make(&a); });
  std::thread tb([&] { make(&b); });
  ta.join();
  tb.join();
  EXPECT_EQ(frame_pool_stats().live_blocks - live_before, 2 * kBlocks);
  std::thread fa([&] { free_all(&b); });  // each thread frees the other's
  std::thread fb([&] { free_all(&a); });
  fa.join();
  fb.join();
  EXPECT_EQ(frame_pool_stats().live_blocks, live_before);
  detail::set_frame_pool_enabled(was);
}

TEST(FramePool, BlocksFreedOnAnotherThreadAreCounted) {
  cross_thread_round(true);
  cross_thread_round(false);
}

// Switching the cache off and on while blocks are out: each block still goes
// back to the allocator it came from.
TEST(FramePool, SwitchingTheCacheWithBlocksOut) {
  const bool was = detail::frame_pool_enabled();
  const std::int64_t live_before = frame_pool_stats().live_blocks;
  std::vector<void*> blocks;
  for (int round = 0; round < 4; ++round) {
    detail::set_frame_pool_enabled(round % 2 == 0);
    for (int i = 0; i < 1000; ++i) blocks.push_back(detail::allocate_frame(128));
    detail::set_frame_pool_enabled(round % 2 != 0);
    for (int i = 0; i < 500; ++i) {
      detail::deallocate_frame(blocks.back(), 128);
      blocks.pop_back();
    }
  }
  EXPECT_EQ(frame_pool_stats().live_blocks - live_before, 2000);
  for (void* p : blocks) detail::deallocate_frame(p, 128);
  detail::set_frame_pool_enabled(was);
  // A block given back to the wrong allocator would crash tbbmalloc in the
  // optimized build, and ASan reports a mismatch in the sanitized ones.
  EXPECT_EQ(frame_pool_stats().live_blocks, live_before);
}

// --- one block per task ----------------------------------------------------------------

Coro<std::string> named_result() { co_return std::string(100, 'x'); }

// On one worker nothing else allocates from the pool between two snapshots.
Coro<void> blocks_per_task(std::vector<std::int64_t>* blocks) {
  auto total = [] { return frame_pool_stats().total_allocated; };
  std::int64_t before = total();
  Task<int> a = create_task(short_task(7));
  blocks->push_back(total() - before);
  before = total();
  Task<std::string> b = create_task(named_result(), "named");
  blocks->push_back(total() - before);
  EXPECT_EQ(co_await a, 7);
  EXPECT_EQ(co_await b, std::string(100, 'x'));
}

TEST(FramePool, ATaskIsOneBlock) {
  // The frame's block holds the task state (core/coro.h): calling the
  // coroutine function allocates it, create_task nothing more.
  const std::int64_t live_before = frame_pool_stats().live_blocks;
  std::vector<std::int64_t> blocks;
  {
    RuntimeOptions options = testing::test_options(1);
    Runtime rt(std::move(options));
    rt.run(blocks_per_task(&blocks));
  }
  EXPECT_EQ(blocks, (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(frame_pool_stats().live_blocks, live_before);
}

// A parameter whose destructor makes a task that the task factory refuses:
// that task's state dies unstarted, destroying its frame, while the frame
// of the task that owned the parameter is being destroyed.
struct SpawnRefusedOnDestroy {
  std::atomic<int>* refused;
  explicit SpawnRefusedOnDestroy(std::atomic<int>* r) : refused(r) {}
  SpawnRefusedOnDestroy(SpawnRefusedOnDestroy&& o) noexcept
      : refused(std::exchange(o.refused, nullptr)) {}
  ~SpawnRefusedOnDestroy() {
    if (refused == nullptr) return;
    try {
      Task<int> t = create_task(short_task(1));
      ADD_FAILURE() << "the factory took the task";
    } catch (const std::runtime_error&) {
      refused->fetch_add(1);
    }
  }
};

Coro<int> owns_a_spawner(SpawnRefusedOnDestroy spawner) { co_return 5; }

Coro<void> nested_frame_destruction(std::atomic<bool>* refusing, std::atomic<int>* refused) {
  for (int i = 0; i < 100; ++i) {
    Task<int> outer = create_task(owns_a_spawner(SpawnRefusedOnDestroy(refused)));
    refusing->store(true);  // from here on the factory refuses: outer is made already
    EXPECT_EQ(co_await outer, 5);
    refusing->store(false);
  }
}

TEST(FramePool, ATaskStateDyingWhileAnotherTasksFrameIsDestroyedFreesBothBlocks) {
  // The frames' operator delete leaves a task's block to its state through
  // a per-thread scope (frame_alloc.h, KeepBodyBlock); these scopes nest
  // here, and each block is freed once, by its state (ASan would report a
  // double free or a use after free; the counts say nothing is left).
  const std::int64_t live_before = frame_pool_stats().live_blocks;
  std::atomic<bool> refusing{false};
  std::atomic<int> refused{0};
  {
    RuntimeOptions options = testing::test_options(1);
    options.task_factory = [&refusing](TaskSpec&) {
      if (refusing.load()) throw std::runtime_error("refused");
    };
    Runtime rt(std::move(options));
    rt.run(nested_frame_destruction(&refusing, &refused));
  }
  EXPECT_EQ(refused.load(), 100);
  EXPECT_EQ(frame_pool_stats().live_blocks, live_before);
}

}  // namespace
}  // namespace weft
