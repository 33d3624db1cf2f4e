#include "weft/bench/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace weft::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int err) { return std::string(std::strerror(err)); }

// posix_spawn's attributes and file actions, destroyed on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

int remaining_ms(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  // Rounded up, so that a wait never ends just before the deadline.
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

}  // namespace

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0].empty()) {
    throw std::invalid_argument("ChildProcess::spawn: no program to run");
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 for " + argv[0] + ": " + errno_text(errno));
  }
  ChildProcess child;
  child.name_ = argv[0];
  child.stdout_fd_ = pipe_fds[0];  // closed by child's destructor on every path below
  const int write_end = pipe_fds[1];

  SpawnSetup setup;
  // In the child: stdin from /dev/null; the pipe's write end becomes fd 1
  // (dup2 clears close-on-exec on the copy; both pipe ends themselves are
  // close-on-exec and vanish at exec).
  posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, write_end, 1);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&setup.attr, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int err = posix_spawn(&pid, argv[0].c_str(), &setup.actions, &setup.attr, args.data(),
                              environ);
  close(write_end);  // the parent keeps only the read end: EOF once the child's copy closes
  if (err != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + errno_text(err));
  child.pid_ = pid;
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      stdout_fd_(std::exchange(o.stdout_fd_, -1)),
      buffered_(std::move(o.buffered_)),
      status_(std::exchange(o.status_, std::nullopt)),
      name_(std::move(o.name_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    stop();
    pid_ = std::exchange(o.pid_, -1);
    stdout_fd_ = std::exchange(o.stdout_fd_, -1);
    buffered_ = std::move(o.buffered_);
    status_ = std::exchange(o.status_, std::nullopt);
    name_ = std::move(o.name_);
  }
  return *this;
}

void ChildProcess::close_stdout() noexcept {
  if (stdout_fd_ >= 0) close(stdout_fd_);
  stdout_fd_ = -1;
}

bool ChildProcess::fill(Clock::time_point deadline, const char* what) {
  if (stdout_fd_ < 0) return false;
  for (;;) {
    pollfd p{stdout_fd_, POLLIN, 0};
    const int n = poll(&p, 1, remaining_ms(deadline));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(name_ + ": poll: " + errno_text(errno));
    }
    if (n == 0) throw std::runtime_error(name_ + ": timed out waiting for " + what);
    char buf[4096];
    const ssize_t got = read(stdout_fd_, buf, sizeof buf);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw std::runtime_error(name_ + ": reading its stdout: " + errno_text(errno));
    }
    if (got == 0) {
      close_stdout();
      return false;
    }
    buffered_.append(buf, static_cast<std::size_t>(got));
    return true;
  }
}

std::string ChildProcess::read_line(Duration timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const std::size_t nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    if (!fill(deadline, "a line on its stdout")) {
      throw std::runtime_error(name_ + ": closed its stdout (exited?) before printing a line" +
                               (buffered_.empty() ? "" : "; it printed: " + buffered_));
    }
  }
}

std::string ChildProcess::read_to_eof(Duration timeout) {
  const auto deadline = Clock::now() + timeout;
  while (fill(deadline, "it to finish")) {
  }
  return std::exchange(buffered_, std::string());
}

std::optional<int> ChildProcess::wait_for_exit(Duration timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      return status_;
    }
    if (r < 0 && errno != EINTR) {
      // ECHILD: somebody else reaped it; nothing left to wait for.
      status_ = -1;
      return status_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int ChildProcess::stop(Duration grace) noexcept {
  close_stdout();
  if (pid_ <= 0) return -1;
  if (!status_) {
    kill(pid_, SIGTERM);
    if (!wait_for_exit(grace)) {
      kill(pid_, SIGKILL);
      // SIGKILL cannot be caught: the blocking wait ends.
      int status = 0;
      pid_t r;
      do {
        r = waitpid(pid_, &status, 0);
      } while (r < 0 && errno == EINTR);
      status_ = r == pid_ ? status : -1;
    }
  }
  return *status_;
}

std::string find_in_path(const std::string& program) {
  if (program.empty()) return "";
  if (program.find('/') != std::string::npos) {
    return access(program.c_str(), X_OK) == 0 ? program : "";
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

std::string describe_wait_status(int status) {
  if (status == -1) return "status unknown";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "wait status " + std::to_string(status);
}

}  // namespace weft::bench
