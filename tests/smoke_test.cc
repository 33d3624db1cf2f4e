#include "gtest/gtest.h"
#include "weft/weft.h"

namespace weft {
namespace {

Coro<int> add(int a, int b) { co_return a + b; }

Coro<int> main_body() {
  int x = co_await add(1, 2);
  auto t = create_task(add(x, 10));
  int y = co_await t;
  co_await sleep(std::chrono::milliseconds(1));
  co_return y;
}

TEST(Smoke, RunsMain) { EXPECT_EQ(run(main_body()), 13); }

}  // namespace
}  // namespace weft

namespace weft {
namespace {
Coro<int> slow(int v, int ms) {
  co_await sleep(std::chrono::milliseconds(ms));
  co_return v;
}
Coro<void> combos() {
  auto [a, b, c] = co_await gather(slow(1, 2), slow(2, 1), create_task(slow(3, 0)));
  EXPECT_EQ(a + b + c, 6);
  std::vector<Coro<int>> v;
  v.push_back(slow(4, 1));
  v.push_back(slow(5, 1));
  auto r = co_await gather(std::move(v));
  EXPECT_EQ(r[0] + r[1], 9);
  int x = co_await wait_for(slow(7, 1), std::chrono::seconds(5));
  EXPECT_EQ(x, 7);
  bool timed_out = false;
  try {
    co_await wait_for(slow(7, 1000), std::chrono::milliseconds(5));
  } catch (const TimeoutError&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  auto m = co_await move_on_after(std::chrono::milliseconds(5), slow(1, 1000));
  EXPECT_FALSE(m.has_value());
  int y = co_await shield(slow(3, 1));
  EXPECT_EQ(y, 3);
}
TEST(Smoke, Combinators) { run(combos()); }
}  // namespace
}  // namespace weft

namespace weft {
namespace {
Coro<int> boom(int ms) {
  co_await sleep(std::chrono::milliseconds(ms));
  throw std::runtime_error("boom");
}
Coro<void> groups() {
  int done = 0;
  co_await task_group([&](TaskGroup& tg) -> Coro<void> {
    tg.create_task([](int& d) -> Coro<void> { co_await sleep(std::chrono::milliseconds(1)); ++d; }(done));
    tg.create_task([](int& d) -> Coro<void> { co_await sleep(std::chrono::milliseconds(2)); ++d; }(done));
    co_return;
  });
  EXPECT_EQ(done, 2);
  bool got = false;
  try {
    co_await task_group([&](TaskGroup& tg) -> Coro<void> {
      tg.create_task(boom(1));
      tg.create_task(slow(1, 10000));
      co_await sleep(std::chrono::seconds(10));
    });
  } catch (const ExceptionGroup& eg) {
    got = eg.exceptions().size() == 1;
  }
  EXPECT_TRUE(got);
}
TEST(Smoke, TaskGroup) { run(groups()); }
}  // namespace
}  // namespace weft
