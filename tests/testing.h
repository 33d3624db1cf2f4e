// Helpers shared by weft's tests.
//
//  - WEFT_CO_TEST(Suite, Name) { ...coroutine body... } defines a gtest whose
//    body is a Coro<void> run by weft::run (folly's CO_TEST). Inside it use
//    EXPECT_* (ASSERT_* `return`s, which a coroutine cannot do: use
//    WEFT_CO_ASSERT_TRUE / WEFT_CO_ASSERT_EQ, which `co_return`).
//    WEFT_CO_TEST_WITH(Suite, Name, options) picks the RuntimeOptions;
//    WEFT_MANUAL_TEST(Suite, Name, workers) runs it on a ManualClock.
//    By default an error reported to the runtime's error_handler (an
//    exception never retrieved, a callback that threw) fails the test.
//  - Counted: a probe that counts constructions, copies, moves and
//    destructions (cppcoro's test/counted.hpp), to check that values and
//    frames are neither leaked nor destroyed twice.
//  - ErrorLog: collects what a runtime reports through its error_handler.
//  - raises<E>(awaitable): awaits and returns the E it threw (or nullopt).
//  - kSanitized / scaled(n): iteration counts shrink under ASan and TSan.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "weft/weft.h"

namespace weft::testing {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

#if defined(__OPTIMIZE__)
inline constexpr bool kOptimized = true;
#else
inline constexpr bool kOptimized = false;
#endif

// `n` in a plain build, n / divisor (at least 1) under a sanitizer.
constexpr int scaled(int n, int divisor = 10) {
  return kSanitized ? std::max(1, n / divisor) : n;
}

// ---------------------------------------------------------------------------
// Counted
// ---------------------------------------------------------------------------
struct Counted {
  static inline std::atomic<int> default_constructions{0};
  static inline std::atomic<int> value_constructions{0};
  static inline std::atomic<int> copy_constructions{0};
  static inline std::atomic<int> move_constructions{0};
  static inline std::atomic<int> copy_assignments{0};
  static inline std::atomic<int> move_assignments{0};
  static inline std::atomic<int> destructions{0};
  // Destructor calls on an object that was already destroyed (or never
  // constructed).
  static inline std::atomic<int> bad_destructions{0};

  static void reset() {
    default_constructions = 0;
    value_constructions = 0;
    copy_constructions = 0;
    move_constructions = 0;
    copy_assignments = 0;
    move_assignments = 0;
    destructions = 0;
    bad_destructions = 0;
  }
  static int constructions() {
    return default_constructions + value_constructions + copy_constructions +
           move_constructions;
  }
  // Objects constructed and not yet destroyed.
  static int alive() { return constructions() - destructions; }

  Counted() { ++default_constructions; }
  explicit Counted(int v) : value(v) { ++value_constructions; }
  Counted(const Counted& o) : value(o.value) { ++copy_constructions; }
  Counted(Counted&& o) noexcept : value(o.value) {
    o.moved_from = true;
    ++move_constructions;
  }
  Counted& operator=(const Counted& o) {
    value = o.value;
    moved_from = false;
    ++copy_assignments;
    return *this;
  }
  Counted& operator=(Counted&& o) noexcept {
    value = o.value;
    moved_from = false;
    o.moved_from = true;
    ++move_assignments;
    return *this;
  }
  ~Counted() {
    if (magic_ != kLive) ++bad_destructions;
    magic_ = kDead;
    ++destructions;
  }

  int value = 0;
  bool moved_from = false;

 private:
  static constexpr unsigned kLive = 0xC0FFEE11u;
  static constexpr unsigned kDead = 0xDEADBEEFu;
  volatile unsigned magic_ = kLive;
};

// Resets the counters on construction; on destruction checks that every
// Counted made since is gone, exactly once.
class CountedScope {
 public:
  CountedScope() { Counted::reset(); }
  ~CountedScope() {
    EXPECT_EQ(Counted::alive(), 0) << "leaked Counted objects";
    EXPECT_EQ(Counted::bad_destructions.load(), 0) << "Counted destroyed twice";
  }
};

// ---------------------------------------------------------------------------
// ErrorLog
// ---------------------------------------------------------------------------
class ErrorLog {
 public:
  // A handler for RuntimeOptions::error_handler; the log must outlive the
  // runtime.
  absl::AnyInvocable<void(std::string_view)> handler() {
    return [this](std::string_view m) { add(m); };
  }
  void add(std::string_view m) {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.emplace_back(m);
  }
  std::vector<std::string> messages() const {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_.size();
  }
  // How many messages contain every one of `parts`.
  int count(std::initializer_list<std::string_view> parts) const {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const std::string& m : messages_) {
      bool all = true;
      for (std::string_view p : parts) all = all && m.find(p) != std::string::npos;
      if (all) ++n;
    }
    return n;
  }
  std::string dump() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const std::string& m : messages_) out += "  [" + m + "]\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> messages_;
};

// ---------------------------------------------------------------------------
// Runtime options for tests
// ---------------------------------------------------------------------------
// Options whose error handler fails the current test: tests that expect an
// error report pass their own ErrorLog.
inline RuntimeOptions test_options(std::uint32_t workers = 2, Clock* clock = nullptr) {
  RuntimeOptions o;
  o.workers = workers;
  o.clock = clock;
  o.error_handler = [](std::string_view m) {
    ADD_FAILURE() << "unexpected error reported by weft: " << m;
  };
  return o;
}

inline RuntimeOptions logged_options(ErrorLog& log, std::uint32_t workers = 2,
                                     Clock* clock = nullptr) {
  RuntimeOptions o;
  o.workers = workers;
  o.clock = clock;
  o.error_handler = log.handler();
  return o;
}

// ---------------------------------------------------------------------------
// Awaiting helpers
// ---------------------------------------------------------------------------
// Awaits `a` (a Coro, Future or Task, taken by value so that it lives in this
// frame) and returns the E it raised; nullopt if it completed. Any other
// exception propagates.
template <typename E, typename A>
Coro<std::optional<E>> raises(A a) {
  try {
    co_await std::move(a);
  } catch (const E& e) {
    co_return e;
  }
  co_return std::nullopt;
}

// Yields `n` times (lets the other ready tasks run).
inline Coro<void> yield_times(int n) {
  for (int i = 0; i < n; ++i) co_await yield_now();
}

// Polls `cond` between yields until it holds; false if it did not within
// `max_yields`.
template <typename Pred>
Coro<bool> yield_until(Pred cond, int max_yields = 1'000'000) {
  for (int i = 0; i < max_yields; ++i) {
    if (cond()) co_return true;
    co_await yield_now();
  }
  co_return cond();
}

}  // namespace weft::testing

// A gtest whose body is a coroutine run by weft::run(body, options).
#define WEFT_CO_TEST_WITH(suite, name, options)                                 \
  static ::weft::Coro<void> WeftCoTestBody_##suite##_##name();                 \
  TEST(suite, name) { ::weft::run(WeftCoTestBody_##suite##_##name(), options); } \
  static ::weft::Coro<void> WeftCoTestBody_##suite##_##name()

#define WEFT_CO_TEST(suite, name) \
  WEFT_CO_TEST_WITH(suite, name, ::weft::testing::test_options())

// A test whose body runs on a fresh ManualClock (autojump) with `workers`
// workers; the body sees the clock as `clock`.
#define WEFT_MANUAL_TEST(suite, name, workers)                                    \
  static ::weft::Coro<void> WeftManualBody_##suite##_##name(::weft::ManualClock* clock); \
  TEST(suite, name) {                                                            \
    ::weft::ManualClock clock;                                                   \
    ::weft::run(WeftManualBody_##suite##_##name(&clock),                         \
                ::weft::testing::test_options(workers, &clock));                 \
  }                                                                              \
  static ::weft::Coro<void> WeftManualBody_##suite##_##name(                     \
      [[maybe_unused]] ::weft::ManualClock* clock)

// Fatal assertions for coroutine bodies returning Coro<void>.
#define WEFT_CO_ASSERT_TRUE(cond)                               \
  if (!(cond)) {                                                \
    ADD_FAILURE() << "Assertion failed: " #cond;                 \
    co_return;                                                  \
  } else                                                        \
    (void)0
#define WEFT_CO_ASSERT_EQ(a, b)                                 \
  if (!((a) == (b))) {                                          \
    EXPECT_EQ(a, b);                                            \
    co_return;                                                  \
  } else                                                        \
    (void)0
