// A child process of the bench (a server mode of the harness binary, or wrk)
// whose stdout the bench reads, and which is always stopped and reaped.
//
// Design: posix_spawn (no fork of a process that may have worker and oneTBB
// threads), with stdin from /dev/null, stdout into a pipe read by the
// parent, stderr shared with the parent (the child's progress lines land in
// the bench's stderr). SIGPIPE, SIGINT and SIGTERM are reset to their default
// action and the signal mask is cleared in the child (weft ignores SIGPIPE in
// the parent). Every read has a deadline (poll), every wait for the child a
// bounded number of steps.
//
// Ownership: the object owns the process. stop() (also called by the
// destructor, on every path, including exceptions) sends SIGTERM, waits up to
// a grace period for the child to exit, then SIGKILLs it, and always reaps it
// with waitpid: no zombie and no stray process outlives the object. (If the
// bench itself is killed, the servers it started exit by themselves after
// their max_s, and wrk after its -d.)
//
// Thread safety: none; one thread uses a ChildProcess.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace weft::bench {

class ChildProcess {
 public:
  using Duration = std::chrono::steady_clock::duration;

  ChildProcess() = default;
  // Starts argv[0] (a path: PATH is not searched; see find_in_path) with
  // argv. std::invalid_argument for an empty argv; std::runtime_error with
  // the reason if it cannot be started.
  static ChildProcess spawn(const std::vector<std::string>& argv);

  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { stop(); }

  bool running() const noexcept { return pid_ > 0 && !status_; }
  pid_t pid() const noexcept { return pid_; }

  // The next line of the child's stdout, without its '\n'.
  // std::runtime_error if the child closes its stdout (e.g. exits) first or
  // no full line arrives within `timeout`.
  std::string read_line(Duration timeout);
  // Everything the child writes on stdout until it closes it (normally: until
  // it exits). std::runtime_error if that takes longer than `timeout`.
  std::string read_to_eof(Duration timeout);
  // Waits up to `timeout` for the child to exit and reaps it; its wait status
  // (as waitpid's), or nullopt if it is still running.
  std::optional<int> wait_for_exit(Duration timeout);
  // Stops the child: SIGTERM, up to `grace` to exit, then SIGKILL; reaps it.
  // Returns its wait status (also when it had already exited; -1 for an
  // object with no child). Idempotent; never throws.
  int stop(Duration grace = std::chrono::seconds(2)) noexcept;

 private:
  void close_stdout() noexcept;
  // Reads what is available within `deadline` into buffered_; false at EOF.
  bool fill(std::chrono::steady_clock::time_point deadline, const char* what);

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffered_;        // read from stdout, not yet returned
  std::optional<int> status_;   // the wait status once reaped
  std::string name_;            // argv[0], for messages
};

// The path of `program` in $PATH, or "" if it is not there (or not
// executable). A name containing '/' is returned as is if it is executable.
std::string find_in_path(const std::string& program);

// "exited with status 3", "killed by signal 9 (Killed)", ...
std::string describe_wait_status(int status);

}  // namespace weft::bench
