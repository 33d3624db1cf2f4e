#!/usr/bin/env bash
# A wrong argument to one of weft's public templates fails with one error at the user's
# line that names what was expected (a concept), not deep inside weft's headers. With the
# C++ compiler of the build's configuration ($1), compiles small programs that make each
# newcomer's mistake and checks: the compile fails, with exactly one error, on the
# program's own line, and the output names the expected concept; the right spellings of
# the same calls compile.
set -uo pipefail

cxx=$1
root="$TEST_SRCDIR/$TEST_WORKSPACE"
include="$TEST_TMPDIR/include"
mkdir -p "$include"
ln -sfn "$root" "$include/weft"

# clang needs sized deallocation turned on for weft's headers (README, "Compilers").
flags=(-x c++ -std=c++20 -fsyntax-only)
[[ $("$cxx" --version) == *clang* ]] && flags+=(-fsized-deallocation)

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# compile <body>: the compiler's output for a coroutine whose body is <body> (on line 5).
compile() {
  printf '#include <chrono>\n#include <vector>\n#include "weft/weft.h"\nweft::Coro<void> user_code() {\n%s\n  co_return;\n}\n' "$1" |
    "$cxx" "${flags[@]}" -I"$include" - 2>&1
}

# fails_at <where> <what> <expected text> <body>: the compile fails with exactly one error,
# the output names <expected text>, and the user's line (5) is <where>: `error` (the error
# itself is there: a constraint) or `reached` (a static_assert in weft's header, reached from
# there).
fails_at() {
  local where=$1 what=$2 expected=$3 out rc errors line
  out=$(compile "$4")
  rc=$?
  errors=$(grep -c -E ': (fatal )?error: ' <<<"$out")
  if [[ $where == error ]]; then line='^<stdin>:5:[0-9]+: error: '; else line='<stdin>:5:[0-9]+'; fi
  if ((rc == 0)); then
    fail "$what compiled"
  elif ((errors != 1)); then
    fail "$what: $errors errors, expected one:"$'\n'"$out"
  elif ! grep -q -E "$line" <<<"$out"; then
    fail "$what: the error is not at the user's line:"$'\n'"$out"
  elif [[ $out != *"$expected"* ]]; then
    fail "$what: the output does not name '$expected':"$'\n'"$out"
  fi
}
rejects() { fails_at error "$@"; }
explains() { fails_at reached "$@"; }

explains "create_task of the coroutine function itself" "create_task takes a weft::Coro<T>" \
  '  (void)weft::create_task(weft::yield_now);'
explains "TaskGroup::create_task of the coroutine function itself" "create_task takes a weft::Coro<T>" \
  '  co_await weft::task_group([&](weft::TaskGroup& tg) -> weft::Coro<void> { (void)tg.create_task(weft::yield_now); co_return; });'
explains "create_task of a primitive's awaiter" "use as_coro()" \
  '  weft::Event ev; (void)weft::create_task(ev.wait());'
rejects "a task_group body returning void" "TaskGroupBody" \
  '  co_await weft::task_group([&](weft::TaskGroup& tg) { (void)tg; });'
rejects "gather of plain values" "FutureOrCoro" \
  '  (void)co_await weft::gather(1, 2);'
rejects "wait_for of a plain value" "FutureOrCoro" \
  '  (void)co_await weft::wait_for(42, std::chrono::seconds(1));'
rejects "shield of a lambda" "FutureOrCoro" \
  '  co_await weft::shield([]() -> weft::Coro<void> { co_return; });'
rejects "wait on Coros (asyncio.wait takes futures)" "FutureHandle" \
  '  std::vector<weft::Coro<int>> cs; (void)co_await weft::wait(std::move(cs));'
rejects "a connection handler returning void" "ConnectionHandler" \
  '  auto s = co_await weft::start_server([](weft::StreamReader, weft::StreamWriter) {}, "127.0.0.1", 0);'
rejects "to_thread of something that is not callable" "to_thread" \
  '  (void)co_await weft::to_thread(5);'

out=$(compile '
  co_await weft::task_group([&](weft::TaskGroup& tg) -> weft::Coro<void> { co_return; });
  auto [a, b] = co_await weft::gather(weft::sleep(std::chrono::milliseconds(1), 1),
                                      weft::Future<int>());
  (void)a; (void)b;
  (void)co_await weft::wait_for(weft::sleep(std::chrono::milliseconds(1), 2), std::chrono::seconds(1));
  co_await weft::shield(weft::sleep(std::chrono::milliseconds(1)));
  std::vector<weft::Task<int>> ts;
  ts.push_back(weft::create_task(weft::sleep(std::chrono::milliseconds(1), 3)));
  (void)co_await weft::wait(ts);
  (void)co_await weft::to_thread([] { return 4; });') ||
  fail "the right spellings do not compile:"$'\n'"$out"

echo "checked the constrained templates with $cxx: $failures failure(s)"
((failures == 0))
