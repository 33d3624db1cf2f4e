// ChildReaper: reaps the children of Process objects that were destroyed
// before their child exited, so that no child is left a zombie (asyncio's
// child watcher does the same for dropped processes).
//
// One thread for the whole program, started by the first abandoned child
// and never stopped: it blocks in poll(2) on the abandoned children's
// pidfds (and an eventfd that announces new ones), reaps each with waitid
// as it exits and closes its pidfd. Children without a pidfd (kernels
// before 5.3) are checked with WNOHANG every 100 ms. A thread rather than
// a task: an abandoned child may outlive every runtime.
#pragma once

#include <sys/types.h>

namespace weft::detail {

// Reaps `pid` once it exits; takes ownership of `pidfd` (or -1). Any thread.
void reap_when_exited(pid_t pid, int pidfd);

// Children handed over and not reaped yet (for tests).
int abandoned_children();

}  // namespace weft::detail
