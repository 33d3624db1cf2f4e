// The README's example: gather, a timeout and a task group. Exits 0 when the
// result is right; built and run as a test.
#include <chrono>

#include "weft/weft.h"

weft::Coro<int> fetch(int i) {
  co_await weft::sleep(std::chrono::milliseconds(10));
  co_return i * i;
}

weft::Coro<int> main_task() {
  auto [a, b] = co_await weft::gather(fetch(2), fetch(3));            // run concurrently
  int c = co_await weft::timeout(std::chrono::seconds(1), fetch(4));  // TimeoutError if late
  co_await weft::task_group([&](weft::TaskGroup& tg) -> weft::Coro<void> {
    tg.create_task(fetch(5));  // joined before returning
    co_return;
  });
  co_return a + b + c;
}

int main() { return weft::run(main_task()) == 29 ? 0 : 1; }
