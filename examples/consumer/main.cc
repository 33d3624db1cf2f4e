// The smallest program on weft, built from another Bazel workspace against @weft//:weft.
// tools/test.sh runs it and expects exit status 0.
#include <cstdio>

#include "weft/weft.h"

namespace {

weft::Coro<int> answer() { co_return 42; }

}  // namespace

int main() {
  const int result = weft::run(answer());
  std::printf("weft::run(answer()) = %d\n", result);
  return result == 42 ? 0 : 1;
}
