#include "weft/io/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "weft/io/detail/child_reaper.h"
#include "weft/io/detail/io_wait.h"
#include "weft/io/detail/stream_transport.h"
#include "weft/io/errors.h"
#include "weft/io/reactor.h"
#include "weft/sched/spawn.h"

extern char** environ;

namespace weft {
namespace {

using detail::FdWatch;

// A pipe end in the stream layer: read(2) / write(2) instead of recv/send.
class PipeTransport final : public detail::StreamTransport {
 public:
  using StreamTransport::StreamTransport;

 protected:
  Coro<std::size_t> raw_recv_into(std::span<char> buf) override {
    co_await detail::BudgetAwaiter();
    for (;;) {
      const int fd = socket_.fd();
      if (fd < 0) throw OSError(EBADF, "read", "the pipe is closed");
      const std::uint64_t seq = socket_.watch().seq(FdWatch::kRead);
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n >= 0) co_return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno("read");
      co_await socket_.watch().wait(FdWatch::kRead, seq);
    }
  }

  std::optional<std::size_t> raw_try_send(std::string_view data,
                                          FdWatch::Dir* wait_for) override {
    *wait_for = FdWatch::kWrite;
    for (;;) {
      const int fd = socket_.fd();
      if (fd < 0) throw OSError(EBADF, "write", "the pipe is closed");
      ssize_t n = ::write(fd, data.data(), data.size());  // SIGPIPE is ignored: EPIPE
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
      throw_os_error(errno, "write");
    }
  }

  // A pipe has one direction: ending it is closing it (the child sees EOF).
  // Called by the writer under its lock, when no flush runs.
  void raw_shutdown(int) noexcept override { socket_.close(); }
};

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int status_to_returncode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return status;
}

// Pipe ends, closed unless released.
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd = std::exchange(o.fd, -1);
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(std::exchange(fd, -1));
  }
  int release() { return std::exchange(fd, -1); }
};

std::pair<Fd, Fd> make_pipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe2");
  return {Fd(p[0]), Fd(p[1])};
}

}  // namespace

struct Process::State {
  pid_t pid = -1;
  int pidfd = -1;  // -1 if pidfd_open is not available
  absl::Mutex mu;
  std::optional<int> returncode ABSL_GUARDED_BY(mu);

  // The last reference: a child still running is handed to the reaper
  // thread, so that it does not stay a zombie once it exits.
  ~State() {
    if (pid > 0 && !try_reap()) {
      detail::reap_when_exited(pid, pidfd);
    } else if (pidfd >= 0) {
      ::close(pidfd);
    }
  }

  // Reaps the child if it exited; true once the return code is known.
  bool try_reap() {
    absl::MutexLock lock(&mu);
    if (returncode) return true;
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      returncode = status_to_returncode(status);
      return true;
    }
    if (r < 0 && errno == ECHILD) {
      returncode = 255;  // reaped by somebody else; the status is lost
      return true;
    }
    return false;
  }
};

Process::~Process() = default;

pid_t Process::pid() const noexcept { return s_ ? s_->pid : -1; }

std::optional<int> Process::returncode() const {
  absl::MutexLock lock(&s_->mu);
  return s_->returncode;
}

Coro<int> Process::wait() {
  std::shared_ptr<State> s = s_;
  while (!s->try_reap()) {
    if (s->pidfd >= 0) {
      co_await wait_readable(s->pidfd);  // readable once the child exited
    } else {
      co_await sleep(std::chrono::milliseconds(5));  // no pidfd: poll
    }
  }
  absl::MutexLock lock(&s->mu);
  co_return *s->returncode;
}

namespace {
Coro<std::string> read_all(StreamReader r) {
  if (!r.valid()) co_return std::string();
  co_return co_await r.read();
}
Coro<void> feed(StreamWriter w, std::string input) {
  if (!w.valid()) co_return;
  try {
    if (!input.empty()) {
      w.write(input);
      co_await w.drain();
    }
  } catch (const BrokenPipeError&) {
    // The child stopped reading: like Python's communicate, ignore it.
  }
  w.close();
}
}  // namespace

Coro<std::pair<std::string, std::string>> Process::communicate(std::string input) {
  auto out = create_task(read_all(stdout_));
  auto err = create_task(read_all(stderr_));
  co_await feed(stdin_, std::move(input));
  std::string o = co_await out;
  std::string e = co_await err;
  co_await wait();
  co_return std::pair<std::string, std::string>(std::move(o), std::move(e));
}

void Process::send_signal(int sig) {
  if (returncode()) return;
  int rc = s_->pidfd >= 0 ? static_cast<int>(::syscall(SYS_pidfd_send_signal, s_->pidfd, sig,
                                                       nullptr, 0))
                          : ::kill(s_->pid, sig);
  if (rc != 0 && errno != ESRCH) throw_errno("kill");
}
void Process::terminate() { send_signal(SIGTERM); }
void Process::kill() { send_signal(SIGKILL); }

Process create_subprocess_exec(std::string program, std::vector<std::string> args,
                               SubprocessOptions options) {
  if (options.stdin_mode == Stdio::kStdout || options.stdout_mode == Stdio::kStdout) {
    throw std::invalid_argument("Stdio::kStdout is only for stderr");
  }
  Fd child_in, child_out, child_err, parent_in, parent_out, parent_err, devnull;
  auto need_null = [&] {
    if (devnull.fd < 0) {
      devnull = Fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
      if (devnull.fd < 0) throw_errno("open(/dev/null)");
    }
    return devnull.fd;
  };
  if (options.stdin_mode == Stdio::kPipe) std::tie(child_in, parent_in) = make_pipe();
  if (options.stdout_mode == Stdio::kPipe) std::tie(parent_out, child_out) = make_pipe();
  if (options.stderr_mode == Stdio::kPipe) std::tie(parent_err, child_err) = make_pipe();

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  struct Cleanup {
    posix_spawn_file_actions_t* fa;
    posix_spawnattr_t* attr;
    ~Cleanup() {
      posix_spawn_file_actions_destroy(fa);
      posix_spawnattr_destroy(attr);
    }
  } cleanup{&fa, &attr};

  auto wire = [&](Stdio mode, int target, int pipe_end) {
    switch (mode) {
      case Stdio::kInherit:
        break;
      case Stdio::kPipe:
        posix_spawn_file_actions_adddup2(&fa, pipe_end, target);
        break;
      case Stdio::kDevNull:
        posix_spawn_file_actions_adddup2(&fa, need_null(), target);
        break;
      case Stdio::kStdout:
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, target);
        break;
    }
  };
  wire(options.stdin_mode, STDIN_FILENO, child_in.fd);
  wire(options.stdout_mode, STDOUT_FILENO, child_out.fd);
  wire(options.stderr_mode, STDERR_FILENO, child_err.fd);
  if (options.cwd) posix_spawn_file_actions_addchdir_np(&fa, options.cwd->c_str());

  // A clean signal state in the child: nothing blocked, every disposition
  // back to default (the parent ignores SIGPIPE).
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  argv.push_back(program.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env) {
    for (auto& e : *options.env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }

  pid_t pid = -1;
  // posix_spawnp returns once the child exec'd (glibc uses CLONE_VFORK and
  // reports exec errors), quickly enough to run on a loop.
  int rc = posix_spawnp(&pid, program.c_str(), &fa, &attr, argv.data(),
                        options.env ? envp.data() : environ);
  if (rc != 0) throw OSError(rc, "posix_spawnp", program);

  auto state = std::make_shared<Process::State>();
  state->pid = pid;
  state->pidfd = pidfd_open(pid);  // -1 (ENOSYS) means: poll in wait()
  Process p;
  p.s_ = state;
  // The child's ends close here (the child has its copies).
  child_in.reset();
  child_out.reset();
  child_err.reset();
  if (parent_in.fd >= 0) {
    auto t = std::make_shared<PipeTransport>(Socket::adopt(parent_in.release()));
    p.stdin_ = detail::make_stream(std::move(t), options.stream).second;
  }
  if (parent_out.fd >= 0) {
    auto t = std::make_shared<PipeTransport>(Socket::adopt(parent_out.release()));
    p.stdout_ = detail::make_stream(std::move(t), options.stream).first;
  }
  if (parent_err.fd >= 0) {
    auto t = std::make_shared<PipeTransport>(Socket::adopt(parent_err.release()));
    p.stderr_ = detail::make_stream(std::move(t), options.stream).first;
  }
  return p;
}

Process create_subprocess_shell(std::string command, SubprocessOptions options) {
  return create_subprocess_exec("/bin/sh", {"-c", std::move(command)}, std::move(options));
}

}  // namespace weft
