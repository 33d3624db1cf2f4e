// Subprocesses: pipes as streams, communicate, exit codes and signals,
// stderr redirection, cwd and environment, spawn errors, cancellation of
// wait, no zombies from dropped processes. Uses /bin/sh, cat, sleep, true.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/io/detail/child_reaper.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Watchdog;

SubprocessOptions piped() {
  SubprocessOptions o;
  o.stdin_mode = Stdio::kPipe;
  o.stdout_mode = Stdio::kPipe;
  o.stderr_mode = Stdio::kPipe;
  return o;
}

WEFT_CO_TEST(IoSubprocess, CatThroughPipes) {
  Watchdog wd(3s);
  Process p = create_subprocess_exec("cat", {}, piped());
  EXPECT_GT(p.pid(), 0);
  p.stdin_pipe().write("line one\nline two\n");
  co_await p.stdin_pipe().drain();
  EXPECT_EQ(co_await p.stdout_pipe().readline(), "line one\n");
  EXPECT_EQ(co_await p.stdout_pipe().readline(), "line two\n");
  p.stdin_pipe().close();  // cat sees EOF and exits
  EXPECT_EQ(co_await p.stdout_pipe().read(), "");
  EXPECT_EQ(co_await p.wait(), 0);
  EXPECT_EQ(p.returncode(), 0);
}

WEFT_CO_TEST(IoSubprocess, CommunicateLargeInput) {
  Watchdog wd(3s);
  Process p = create_subprocess_exec("cat", {}, piped());
  // More than a pipe buffer each way: needs concurrent writing and reading.
  std::string input(testing::scaled(1 << 20, 4), 'c');
  auto [out, err] = co_await p.communicate(input);
  EXPECT_EQ(out.size(), input.size());
  EXPECT_EQ(err, "");
  EXPECT_EQ(p.returncode(), 0);
}

WEFT_CO_TEST(IoSubprocess, ExitCodesAndStderr) {
  Watchdog wd(3s);
  SubprocessOptions o;
  o.stdout_mode = Stdio::kPipe;
  o.stderr_mode = Stdio::kPipe;
  Process p = create_subprocess_shell("echo out; echo err >&2; exit 3", o);
  auto [out, err] = co_await p.communicate();
  EXPECT_EQ(out, "out\n");
  EXPECT_EQ(err, "err\n");
  EXPECT_EQ(p.returncode(), 3);

  o.stderr_mode = Stdio::kStdout;
  Process merged = create_subprocess_shell("echo a; echo b >&2", o);
  auto [both, none] = co_await merged.communicate();
  EXPECT_EQ(both, "a\nb\n");
  EXPECT_EQ(none, "");
}

WEFT_CO_TEST(IoSubprocess, KillAndTerminate) {
  Watchdog wd(3s);
  Process p = create_subprocess_exec("sleep", {"10"});
  p.kill();
  EXPECT_EQ(co_await p.wait(), -SIGKILL);
  p.kill();  // already reaped: no-op
  Process q = create_subprocess_exec("sleep", {"10"});
  q.terminate();
  EXPECT_EQ(co_await q.wait(), -SIGTERM);  // SIGTERM was reset to default in the child
}

WEFT_CO_TEST(IoSubprocess, ChildDoesNotInheritIgnoredSigpipe) {
  Watchdog wd(3s);
  SubprocessOptions o;
  o.stdout_mode = Stdio::kPipe;
  // `yes` writes until its reader is gone; with SIGPIPE at default it dies.
  Process p = create_subprocess_exec("yes", {}, o);
  std::string first = co_await p.stdout_pipe().readline();
  EXPECT_EQ(first, "y\n");
  p.stdout_pipe() = StreamReader();  // drop our read end
  EXPECT_EQ(co_await p.wait(), -SIGPIPE);
}

WEFT_CO_TEST(IoSubprocess, CwdAndEnvironment) {
  Watchdog wd(3s);
  SubprocessOptions o;
  o.stdout_mode = Stdio::kPipe;
  o.cwd = "/";
  o.env = std::vector<std::string>{"WEFT_TEST_VAR=forty-two", "PATH=/usr/bin:/bin"};
  Process p = create_subprocess_shell("pwd; echo $WEFT_TEST_VAR", o);
  auto [out, err] = co_await p.communicate();
  EXPECT_EQ(out, "/\nforty-two\n");
}

WEFT_CO_TEST(IoSubprocess, SpawnErrors) {
  try {
    (void)create_subprocess_exec("/nonexistent/weft-no-such-program", {});
    ADD_FAILURE() << "no exception";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), ENOENT);
  }
  co_return;
}

WEFT_CO_TEST(IoSubprocess, CancelledWaitLeavesTheChildRunning) {
  Watchdog wd(3s);
  Process p = create_subprocess_exec("sleep", {"10"});
  auto w = create_task(p.wait());
  co_await sleep(5ms);
  w.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(w)).has_value());
  EXPECT_FALSE(p.returncode().has_value());
  EXPECT_EQ(::kill(p.pid(), 0), 0);  // still there
  p.kill();
  EXPECT_EQ(co_await p.wait(), -SIGKILL);
}

// What /proc says of `pid`: its state letter ('Z' for a zombie), or 0 once
// it is gone (reaped).
char proc_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  const std::size_t paren = line.rfind(')');  // the command name may hold spaces
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
}

WEFT_CO_TEST(IoSubprocess, ADroppedProcessIsReapedWhenItExits) {
  Watchdog wd(5s);
  pid_t pid;
  {
    SubprocessOptions o;
    o.stdin_mode = Stdio::kPipe;
    // Exits when its stdin closes, which happens as the Process goes: it is
    // still running when the Process is destroyed.
    Process p = create_subprocess_exec("sh", {"-c", "read line; exit 3"}, o);
    pid = p.pid();
    EXPECT_NE(proc_state(pid), 0);
  }
  EXPECT_TRUE(co_await testing::wait_until([&] { return proc_state(pid) == 0; }, 4s))
      << "child " << pid << " is in state " << proc_state(pid) << " (Z: a zombie)";
  EXPECT_TRUE(co_await testing::wait_until([] { return detail::abandoned_children() == 0; }));
  // A dropped child that already exited is reaped at once.
  {
    Process p = create_subprocess_exec("true", {});
    pid = p.pid();
    EXPECT_TRUE(co_await testing::wait_until([&] { return proc_state(pid) == 'Z'; }));
  }
  EXPECT_EQ(proc_state(pid), 0);
}

}  // namespace
}  // namespace weft
