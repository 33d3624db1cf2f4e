// Subprocesses with pipes (asyncio.create_subprocess_exec / _shell).
//
//   weft::SubprocessOptions o;
//   o.stdin_mode = o.stdout_mode = weft::Stdio::kPipe;
//   weft::Process p = weft::create_subprocess_exec("cat", {}, o);
//   auto [out, err] = co_await p.communicate("hello");
//   int status = co_await p.wait();     // 0; -N if killed by signal N
//
// Design: posix_spawnp (safe in a multi-threaded process, unlike fork) with
// the child's signal mask emptied and every signal's disposition reset to
// default (weft ignores SIGPIPE in the parent; children must not inherit
// that). Pipe ends on the parent's side are non-blocking and close-on-exec,
// wrapped in the stream layer (StreamWriter for stdin, StreamReader for
// stdout / stderr), so the cancel-safety contract of weft/io/streams.h
// holds for them. Exit is awaited through a pidfd (pidfd_open) with
// wait_readable, then reaped with waitid; no SIGCHLD handler is installed.
//
// No zombies: wait() and communicate() reap the child; a Process destroyed
// before its child exits sends it nothing and hands it to a reaper thread
// (io/detail/child_reaper.h) that reaps it when it exits, as asyncio's child
// watcher does for a dropped process.
//
// Thread safety: a Process's methods may be called from any task; wait()
// may be awaited by several tasks at once.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "weft/core/coro.h"
#include "weft/io/streams.h"

namespace weft {

enum class Stdio {
  kInherit,  // the parent's descriptor
  kPipe,     // a pipe to the parent (Process::stdin_pipe() etc.)
  kDevNull,  // /dev/null
  kStdout,   // stderr only: the same as stdout (asyncio.subprocess.STDOUT)
};

struct SubprocessOptions {
  Stdio stdin_mode = Stdio::kInherit;
  Stdio stdout_mode = Stdio::kInherit;
  Stdio stderr_mode = Stdio::kInherit;
  // Working directory of the child (default: the parent's).
  std::optional<std::string> cwd;
  // The child's whole environment as "NAME=value" (default: the parent's).
  std::optional<std::vector<std::string>> env;
  // For the pipes' streams (reader limit, writer water marks).
  StreamOptions stream;
};

class Process {
 public:
  Process() = default;
  Process(Process&&) noexcept = default;
  Process& operator=(Process&&) noexcept = default;
  ~Process();

  pid_t pid() const noexcept;
  // The pipes (invalid handles unless the mode was kPipe).
  StreamWriter& stdin_pipe() noexcept { return stdin_; }
  StreamReader& stdout_pipe() noexcept { return stdout_; }
  StreamReader& stderr_pipe() noexcept { return stderr_; }

  // The exit status once known: the exit code, or -N if signal N killed it.
  std::optional<int> returncode() const;
  // Waits for the child to exit and returns returncode(). Cancelling the
  // wait leaves the child running.
  [[nodiscard]] Coro<int> wait();
  // Sends `input` to stdin (if piped) and closes it, reads stdout and
  // stderr (if piped) to their end, waits for the exit. Returns (stdout,
  // stderr); "" for a stream that is not piped.
  [[nodiscard]] Coro<std::pair<std::string, std::string>> communicate(std::string input = {});

  // Signals the child (no-op once it was reaped). OSError on failure.
  void send_signal(int sig);
  void terminate();  // SIGTERM
  void kill();       // SIGKILL

  struct State;

 private:
  friend Process create_subprocess_exec(std::string, std::vector<std::string>,
                                       SubprocessOptions);
  std::shared_ptr<State> s_;
  StreamWriter stdin_;
  StreamReader stdout_;
  StreamReader stderr_;
};

// Starts `program` (searched in PATH if it has no '/') with `args`
// (argv[1..]). OSError (ENOENT...) if it cannot be started. Synchronous
// (unlike asyncio's): posix_spawn returns as soon as the child exec'd, and a
// plain call lets callers pass braced lists, which g++ 12 rejects inside a
// co_await expression.
[[nodiscard]] Process create_subprocess_exec(std::string program, std::vector<std::string> args,
                                             SubprocessOptions options = {});
// Starts `command` with /bin/sh -c.
[[nodiscard]] Process create_subprocess_shell(std::string command, SubprocessOptions options = {});

}  // namespace weft
