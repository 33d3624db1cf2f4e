// WEFT_DCHECK(cond): asserts an invariant that the surrounding code states
// in its comments (queue positions, state transitions, counters, ownership).
// On in debug builds (no NDEBUG) and in every AddressSanitizer or
// ThreadSanitizer build, whatever the optimization; compiled out otherwise
// (`-c opt`), where `cond` is not evaluated but must still compile. A failed
// check prints the condition and its place and aborts: a broken invariant
// of the scheduler is not something a program can recover from.
#pragma once

#include <cstdio>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEFT_DCHECK_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WEFT_DCHECK_SANITIZED 1
#endif
#endif

#if !defined(NDEBUG) || defined(WEFT_DCHECK_SANITIZED)
#define WEFT_DCHECK_IS_ON 1
#else
#define WEFT_DCHECK_IS_ON 0
#endif

namespace weft::detail {

[[noreturn]] inline void dcheck_failed(const char* cond, const char* file, int line) noexcept {
  std::fprintf(stderr, "weft: invariant violated at %s:%d: %s\n", file, line, cond);
  std::fflush(stderr);
  std::abort();
}

}  // namespace weft::detail

#if WEFT_DCHECK_IS_ON
#define WEFT_DCHECK(cond) \
  (__builtin_expect(static_cast<bool>(cond), 1) ? (void)0 : ::weft::detail::dcheck_failed(#cond, __FILE__, __LINE__))
#else
#define WEFT_DCHECK(cond) ((void)sizeof(static_cast<bool>(cond)))
#endif
