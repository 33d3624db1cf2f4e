// Minimal reproducers of g++ 12's miscompiled temporaries in co_await statements
// (docs/pitfalls.md). Self-contained: a lazy task, an awaitable that really suspends, and a
// one-queue event loop; no weft. Each SHAPE is one statement; the program checks that every
// object made was destroyed exactly once, and ASan reports the double free or use after free.
//
//   for cxx in g++ clang++-16; do for shape in 1 2 3 4 5 6 7 8 9 10; do
//     $cxx -std=c++20 -O1 -g -fsanitize=address,undefined -DSHAPE=$shape \
//       docs/repro/coroutine_temporaries.cc -o /tmp/repro && /tmp/repro >/dev/null 2>&1
//     echo "$cxx shape $shape: exit $?"
//   done; done
//
// On Debian 12 (g++ 12.2.0-14, clang 16.0.6): g++ fails shapes 1-6, passes 7-9 and does not
// compile 10 ("array used as initializer"); clang passes all ten.
#include <coroutine>
#include <cstdio>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

std::deque<std::coroutine_handle<>> ready;

// Suspends for real: the coroutine is resumed later, from the loop in main().
struct Yield {
  bool await_ready() { return false; }
  void await_suspend(std::coroutine_handle<> h) { ready.push_back(h); }
  void await_resume() {}
};

template <typename T>
struct Task {
  struct promise_type {
    T value{};
    std::coroutine_handle<> continuation;
    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().continuation;
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void return_value(T v) { value = std::move(v); }
    void unhandled_exception() { std::terminate(); }
  };
  explicit Task(std::coroutine_handle<promise_type> h) : h(h) {}
  Task(Task&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~Task() {
    if (h) h.destroy();
  }
  bool await_ready() { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> c) {
    h.promise().continuation = c;
    return h;
  }
  T await_resume() { return std::move(h.promise().value); }
  std::coroutine_handle<promise_type> h;
};

struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

int alive = 0;  // Probes constructed and not yet destroyed
struct Probe {  // owns heap memory, so ASan sees a second destruction
  std::unique_ptr<int> p = std::make_unique<int>(1);
  Probe() { ++alive; }
  Probe(const Probe& o) : p(std::make_unique<int>(*o.p)) { ++alive; }
  Probe(Probe&& o) noexcept : p(std::move(o.p)) { ++alive; }
  ~Probe() { --alive; }
};

template <typename F>
Task<int> call_later(F f) {  // a coroutine taking a callable by value, like to_thread
  co_await Yield{};
  co_return f();
}

template <typename F>
struct OwningAwaiter {  // what a plain function taking F&& could return instead
  F f;
  bool await_ready() { return false; }
  void await_suspend(std::coroutine_handle<> h) { ready.push_back(h); }
  int await_resume() { return f(); }
};
template <typename F>
OwningAwaiter<std::decay_t<F>> call_later_plain(F&& f) {
  return {std::forward<F>(f)};
}

struct Aggregate {
  Probe probe;
  int operator()() const { return *probe.p; }
};

struct StatefulAwaitable {  // an awaitable with a member that owns memory
  Probe probe;
  bool await_ready() { return false; }
  void await_suspend(std::coroutine_handle<> h) { ready.push_back(h); }
  int await_resume() { return *probe.p; }
};

Task<std::string> text(char c) {
  co_await Yield{};
  co_return std::string(40, c);
}

int length(const std::string& s) { return static_cast<int>(s.size()); }

Task<int> count_later(std::vector<Probe> v) {  // takes a braced list
  co_await Yield{};
  co_return static_cast<int>(v.size());
}

Detached body(bool cond) {
  Probe named;
  int r = 0;
#if SHAPE == 1  // a lambda copying a capture, passed inline to a coroutine
  r = co_await call_later([named] { return *named.p; });
#elif SHAPE == 2  // the same to a plain function that moves it into the awaiter it returns
  r = co_await call_later_plain([named] { return *named.p; });
#elif SHAPE == 3  // any braced aggregate, not only a lambda
  r = co_await call_later(Aggregate{named});
#elif SHAPE == 4  // an aggregate temporary anywhere in the statement
  r = Aggregate{named}() + co_await call_later([] { return 1; });
#elif SHAPE == 5  // a temporary awaitable with a non-trivial member
  r = co_await StatefulAwaitable{};
#elif SHAPE == 6  // ?: of a class type in a statement with a co_await (in an arm, or anywhere)
  std::string s = cond ? co_await text('a') : co_await text('b');
  r = length(s);
#elif SHAPE == 7  // the callable named first
  auto f = [named] { return *named.p; };
  r = co_await call_later(std::move(f));
#elif SHAPE == 8  // state passed as an argument: the lambda has no captures
  r = co_await [](Probe p) -> Task<int> {
    co_await Yield{};
    co_return *p.p;
  }(named);
#elif SHAPE == 9  // if/else instead of ?:
  std::string s;
  if (cond) {
    s = co_await text('a');
  } else {
    s = co_await text('b');
  }
  r = length(s);
#elif SHAPE == 10  // a braced list ({a, b}: a std::initializer_list) in the statement
  r = co_await count_later({named, named});
#else
#error "build with -DSHAPE=1..10"
#endif
  std::printf("shape %d: %d\n", SHAPE, r);
}

}  // namespace

int main() {
  for (bool cond : {true, false}) {
    body(cond);
    while (!ready.empty()) {
      auto h = ready.front();
      ready.pop_front();
      h.resume();
    }
  }
  if (alive != 0) std::printf("%d Probe(s) destroyed twice or leaked\n", -alive);
  return alive == 0 ? 0 : 1;
}
