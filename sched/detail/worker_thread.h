// The worker running on this thread, for the files of sched/ that make up a
// worker (loop.cc, detail/worker.cc, detail/park.cc).
#pragma once

namespace weft::detail {

class Worker;

// Set by Worker::run for as long as the worker runs on this thread;
// null on every other thread. Unlike detail::current_loop(), nothing else
// sets it. constinit: no dynamic initialization, so reading it from another
// file costs no TLS wrapper call.
extern constinit thread_local Worker* t_worker;

}  // namespace weft::detail
