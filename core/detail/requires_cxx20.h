// The language check every public weft header includes first, before any standard header:
// below C++20, <coroutine> and <concepts> fail with dozens of errors that do not say what is
// wrong. This stops the compilation with one error that names the fix instead.
#pragma once

#if !defined(__cplusplus) || __cplusplus < 202002L
#error "weft needs C++20: build with -std=c++20 (Bazel: --cxxopt=-std=c++20)"
// #error does not stop the compiler, and the standard headers included next would bury the
// message under their own errors; a missing include is fatal, so nothing follows it.
#include "weft: compilation stopped, see the error above"
#endif
