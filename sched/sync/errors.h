// The errors raised by weft's synchronization primitives, mirroring asyncio's
// (asyncio.QueueEmpty, QueueFull, QueueShutDown, BrokenBarrierError).
//
// Where asyncio raises ValueError (a negative Semaphore value, a
// BoundedSemaphore released too many times, Queue.task_done() called too
// many times, a Barrier of fewer than one party), weft throws
// std::invalid_argument, as it does for every bad argument; where asyncio
// raises RuntimeError (releasing an unlocked Lock, Condition.wait/notify
// without the lock), weft throws weft::RuntimeError.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <string>

#include "weft/core/errors.h"

namespace weft {

// get_nowait() on an empty queue.
class QueueEmpty : public Error {
 public:
  explicit QueueEmpty(const std::string& what = "the queue is empty") : Error(what) {}
};

// put_nowait() on a full queue.
class QueueFull : public Error {
 public:
  explicit QueueFull(const std::string& what = "the queue is full") : Error(what) {}
};

// A put on a queue that was shut down, or a get on one that was shut down and
// is empty (Python 3.13 asyncio.QueueShutDown).
class QueueShutDown : public Error {
 public:
  explicit QueueShutDown(const std::string& what = "the queue was shut down") : Error(what) {}
};

// Barrier::wait() on a barrier that was aborted, or that was reset or
// aborted while the caller waited in it. Like asyncio's, it is a RuntimeError.
class BrokenBarrierError : public RuntimeError {
 public:
  explicit BrokenBarrierError(const std::string& what = "the barrier is broken")
      : RuntimeError(what) {}
};

}  // namespace weft
