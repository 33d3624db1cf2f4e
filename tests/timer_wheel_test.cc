// The timing wheel (sched/detail/timer_wheel.h) on its own, against a
// reference model, and through a runtime on a ManualClock: slot and level
// boundaries, cascading, deadlines in the past, cancels during expiry and
// from other threads, clock jumps across many levels.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "tests/testing.h"
#include "weft/sched/detail/timer_wheel.h"

namespace weft::detail {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TimePoint at(std::int64_t ns) { return TimePoint(nanoseconds(ns)); }
constexpr std::int64_t kTick = std::int64_t{1} << TimerWheel::kTickShift;

// Runs everything due at `now`.
void fire_due(TimerWheel& w, std::int64_t now) {
  Callback cb;
  while (w.pop_one_due(at(now), &cb)) {
    cb();
    cb = nullptr;
  }
}

struct Recorder {
  std::vector<std::pair<int, std::int64_t>> fired;  // id, clock at firing
  std::int64_t now = 0;
  Callback make(int id) {
    return [this, id] { fired.emplace_back(id, now); };
  }
};

TEST(TimerWheel, SlotAndLevelBoundariesFireExactlyAndInOrder) {
  TimerWheel w;
  Recorder r;
  std::vector<std::int64_t> deadlines;
  // Around the edges of the first levels' slots and windows.
  for (int level = 0; level < 4; ++level) {
    const std::int64_t span = kTick << (TimerWheel::kSlotBits * level);
    for (std::int64_t edge : {span * 64 - 1, span * 64, span * 64 + 1, span - 1, span, span + 1}) {
      deadlines.push_back(edge);
    }
  }
  std::vector<RefPtr<TimerEntry>> entries;
  for (std::size_t i = 0; i < deadlines.size(); ++i) {
    entries.push_back(w.add(at(deadlines[i]), at(0), r.make(static_cast<int>(i))));
  }
  std::vector<std::int64_t> sorted = deadlines;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t d : sorted) {
    r.now = d - 1;
    fire_due(w, r.now);
    EXPECT_TRUE(std::all_of(r.fired.begin(), r.fired.end(), [&](auto& f) { return deadlines[f.first] <= f.second; }))
        << "a timer fired early";
    r.now = d;
    fire_due(w, r.now);
  }
  ASSERT_EQ(r.fired.size(), deadlines.size());
  for (std::size_t i = 1; i < r.fired.size(); ++i) {
    const auto [a, b] = std::pair(r.fired[i - 1].first, r.fired[i].first);
    EXPECT_TRUE(deadlines[a] < deadlines[b] || (deadlines[a] == deadlines[b] && a < b))
        << "out of (deadline, arming) order at " << i;
  }
  for (auto& f : r.fired) EXPECT_EQ(f.second, deadlines[f.first]) << "fired at its exact deadline";
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, FarTimersSitHighAndCascadeDown) {
  TimerWheel w;
  Recorder r;
  const std::int64_t day = std::int64_t{86'400} * 1'000'000'000;
  RefPtr<TimerEntry> far = w.add(at(3 * day), at(0), r.make(1));
  RefPtr<TimerEntry> near = w.add(at(5 * kTick), at(0), r.make(0));
  EXPECT_GE(TimerWheel::level_of_for_testing(*far), 5) << "days ahead: a high level";
  EXPECT_EQ(TimerWheel::level_of_for_testing(*near), 0);
  EXPECT_EQ(w.next_deadline(), at(5 * kTick));
  r.now = 5 * kTick;
  fire_due(w, r.now);
  EXPECT_EQ(w.next_deadline(), at(3 * day)) << "exact, after cascading through the levels";
  r.now = 3 * day - 1;
  fire_due(w, r.now);
  EXPECT_EQ(r.fired.size(), 1u);
  r.now = 3 * day;
  fire_due(w, r.now);
  ASSERT_EQ(r.fired.size(), 2u);
  EXPECT_EQ(r.fired[1], std::pair(1, 3 * day));
}

TEST(TimerWheel, PastDeadlinesAreDueAtOnceAndTheHugestIsFine) {
  TimerWheel w;
  Recorder r;
  r.now = 1'000'000;
  auto past = w.add(at(10), at(r.now), r.make(0));
  auto now = w.add(at(r.now), at(r.now), r.make(1));
  auto huge = w.add(TimePoint::max() - hours(1), at(r.now), r.make(2));
  EXPECT_EQ(w.next_deadline(), at(10));
  fire_due(w, r.now);
  ASSERT_EQ(r.fired.size(), 2u);
  EXPECT_EQ(r.fired[0].first, 0);
  EXPECT_EQ(r.fired[1].first, 1);
  EXPECT_EQ(w.next_deadline(), TimePoint::max() - hours(1));
  EXPECT_TRUE(w.cancel(huge.get(), false));
  EXPECT_EQ(w.next_deadline(), TimePoint::max());
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, ACallbackCancelsATimerDueAtTheSameInstant) {
  TimerWheel w;
  bool second_ran = false;
  RefPtr<TimerEntry> second;
  auto first = w.add(at(100 * kTick), at(0), [&] {
    EXPECT_TRUE(w.cancel(second.get(), false));
  });
  second = w.add(at(100 * kTick), at(0), [&] { second_ran = true; });
  fire_due(w, 100 * kTick);
  EXPECT_FALSE(second_ran);
  EXPECT_FALSE(second->try_cancel()) << "cancelled once";
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, CancelFromAnotherThreadIsDroppedWhenReached) {
  TimerWheel w;
  std::atomic<int> ran{0};
  std::vector<RefPtr<TimerEntry>> entries;
  for (int i = 0; i < 1000; ++i) {
    entries.push_back(w.add(at((i % 97 + 1) * 1000 * kTick), at(0), [&ran] { ++ran; }));
  }
  std::atomic<int> cancelled{0};
  std::thread other([&] {
    for (int i = 0; i < 1000; i += 2) cancelled += entries[i]->try_cancel() ? 1 : 0;
  });
  other.join();
  EXPECT_EQ(cancelled.load(), 500);
  EXPECT_EQ(w.size(), 1000u) << "left in place: the other thread touched nothing of the wheel";
  fire_due(w, std::int64_t{98} * 1000 * kTick);
  EXPECT_EQ(ran.load(), 500);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.next_deadline(), TimePoint::max());
}

// Random arming, cancelling and clock moves (small steps and jumps across
// many levels) against a reference: the same timers fire, in the same
// order, never early, and next_deadline() is always the reference's.
// Timers sharing one deadline fire in the order they were armed, whether
// each was armed far ahead, after the wheel moved on, once the deadline's
// slot had been moved into the heap, or at the deadline itself.
TEST(TimerWheel, EqualDeadlinesFireInArmingOrderFromEveryLevel) {
  TimerWheel w;
  Recorder r;
  const std::int64_t d = 3 * (kTick << (2 * TimerWheel::kSlotBits)) + 5;  // level 2 from 0
  std::vector<RefPtr<TimerEntry>> entries;
  entries.push_back(w.add(at(d), at(0), r.make(0)));
  EXPECT_EQ(TimerWheel::level_of_for_testing(*entries.back()), 2);
  // An earlier timer moves the wheel on to just before d.
  entries.push_back(w.add(at(d - 3 * kTick), at(0), r.make(100)));
  fire_due(w, d - 3 * kTick);
  ASSERT_EQ(r.fired.size(), 1u);
  entries.push_back(w.add(at(d), at(d - 3 * kTick), r.make(1)));
  // Nearer now, yet with the first one: d's tick still differs from the
  // wheel's in the level-2 digit, so both share its slot (and list).
  EXPECT_EQ(TimerWheel::level_of_for_testing(*entries.back()), 2);
  EXPECT_EQ(w.next_deadline(), at(d));  // moves the slot of d into the heap
  entries.push_back(w.add(at(d), at(d - 3 * kTick), r.make(2)));
  EXPECT_EQ(TimerWheel::level_of_for_testing(*entries.back()), -1);
  entries.push_back(w.add(at(d), at(d), r.make(3)));
  fire_due(w, d);
  std::vector<int> order;
  for (const auto& [id, when] : r.fired) order.push_back(id);
  EXPECT_EQ(order, (std::vector<int>{100, 0, 1, 2, 3}));
}

// cancel(e, true) drops the wheel's reference and the caller's at once,
// from a slot, from the heap, after a cancel from elsewhere, after firing.
TEST(TimerWheel, CancelAndDropFromEveryPlace) {
  TimerWheel w;
  Recorder r;
  TimerEntry* in_slot = w.add(at(100 * kTick), at(0), r.make(0)).leak();
  EXPECT_EQ(TimerWheel::level_of_for_testing(*in_slot), 1);
  TimerEntry* in_heap = w.add(at(0), at(0), r.make(1)).leak();  // due at once
  EXPECT_EQ(TimerWheel::level_of_for_testing(*in_heap), -1);
  RefPtr<TimerEntry> kept = w.add(at(200 * kTick), at(0), r.make(2));
  TimerEntry* cancelled_elsewhere = RefPtr<TimerEntry>(kept).leak();
  ASSERT_TRUE(kept->try_cancel());
  TimerEntry* fired = w.add(at(300 * kTick), at(0), r.make(3)).leak();
  EXPECT_EQ(w.size(), 4u);
  EXPECT_TRUE(w.cancel(in_slot, true));
  EXPECT_TRUE(w.cancel(in_heap, true));
  EXPECT_EQ(w.size(), 2u);
  EXPECT_FALSE(w.cancel(cancelled_elsewhere, true));
  EXPECT_EQ(w.size(), 1u) << "taken out although another thread cancelled it";
  EXPECT_EQ(kept->ref_count_for_testing(), 1u);
  fire_due(w, 300 * kTick);
  EXPECT_FALSE(w.cancel(fired, true));
  EXPECT_EQ(w.size(), 0u);
  ASSERT_EQ(r.fired.size(), 1u);
  EXPECT_EQ(r.fired[0].first, 3);
}

TEST(TimerWheel, MatchesAReferenceModel) {
  std::mt19937_64 rng(20261202);
  for (int round = 0; round < testing::scaled(20, 4); ++round) {
    TimerWheel w;
    std::int64_t now = static_cast<std::int64_t>(rng() % (std::int64_t{1} << 40));
    std::map<std::pair<std::int64_t, int>, RefPtr<TimerEntry>> model;  // (deadline, id)
    std::vector<int> fired;
    std::vector<int> expected;
    int next_id = 0;
    for (int step = 0; step < 2000; ++step) {
      const int op = static_cast<int>(rng() % 10);
      if (op < 5) {
        // Spans from below a tick to days, and some in the past.
        const int shift = static_cast<int>(rng() % 50);
        std::int64_t d = now + static_cast<std::int64_t>(rng() % (std::int64_t{1} << shift)) - (op == 0 ? (1 << 12) : 0);
        if (op == 1 && !model.empty()) {
          // The deadline of a pending timer, which may sit at any level or
          // in the heap by now: the model fires equal deadlines by id (FIFO).
          auto it = model.begin();
          std::advance(it, static_cast<long>(rng() % model.size()));
          d = it->first.first;
        }
        const int id = next_id++;
        model.emplace(std::pair(d, id), w.add(at(d), at(now), [&fired, id] { fired.push_back(id); }));
      } else if (op < 7 && !model.empty()) {
        auto it = model.begin();
        std::advance(it, static_cast<long>(rng() % model.size()));
        ASSERT_TRUE(w.cancel(it->second.get(), false));
        model.erase(it);
      } else {
        const int shift = op == 9 ? static_cast<int>(rng() % 48) : static_cast<int>(rng() % 16);
        now += static_cast<std::int64_t>(rng() % (std::int64_t{1} << shift));
        while (!model.empty() && model.begin()->first.first <= now) {
          expected.push_back(model.begin()->first.second);
          model.erase(model.begin());
        }
        Callback cb;
        while (w.pop_one_due(at(now), &cb)) {
          cb();
          cb = nullptr;
        }
        ASSERT_EQ(fired, expected) << "round " << round << " step " << step;
      }
      const TimePoint want = model.empty() ? TimePoint::max() : at(model.begin()->first.first);
      ASSERT_EQ(w.next_deadline(), want) << "round " << round << " step " << step;
    }
  }
}

}  // namespace
}  // namespace weft::detail

namespace weft {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

// Through a runtime: a ManualClock's autojump crosses the levels to the exact
// deadline of a sleep days long, with short timers before it.
WEFT_MANUAL_TEST(TimerWheelRuntime, AutojumpAcrossManyLevels, 1) {
  const TimePoint t0 = clock->now();
  Task<void> far = create_task(sleep(hours(24 * 3) + std::chrono::nanoseconds(7)));
  std::vector<Task<void>> near;
  for (int i = 1; i <= 5; ++i) near.push_back(create_task(sleep(milliseconds(i))));
  for (auto& t : near) co_await t;
  EXPECT_EQ(clock->now() - t0, milliseconds(5));
  co_await far;
  EXPECT_EQ(clock->now() - t0, hours(24 * 3) + std::chrono::nanoseconds(7)) << "exact to the nanosecond";
}

}  // namespace
}  // namespace weft
