#include "weft/io/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "absl/strings/str_format.h"
#include "weft/core/errors.h"
#include "weft/core/future.h"
#include "weft/io/errors.h"
#include "weft/sched/cancel_scope.h"
#include "weft/sched/to_thread.h"

namespace weft {
namespace detail {

// A File's descriptor, shared by the File and the pool calls running on it;
// whoever lets go last closes it (file.h, "Descriptor lifetime").
struct FileState {
  FileState(int descriptor, std::string file_path) noexcept
      : fd(descriptor), path(std::move(file_path)) {}
  FileState(const FileState&) = delete;
  FileState& operator=(const FileState&) = delete;
  ~FileState();

  // Takes the descriptor back (the destructor then closes nothing).
  int release() noexcept { return std::exchange(fd, -1); }

  // Set before the state is shared; changed only by release(), which only
  // a sole owner calls.
  int fd;
  const std::string path;
  // Set by File::close() before it lets go; completed with close(2)'s
  // outcome by the destructor. Only the destructor reads it, after every
  // other owner let go: the acq_rel decrement of the shared_ptr count
  // orders File::close()'s write before the read.
  std::optional<Future<void>> closed;
};

FileState::~FileState() {
  if (fd < 0) return;
  // Not retried on EINTR: Linux frees the descriptor whatever close returns.
  const int rc = ::close(fd);
  const int error = errno;
  if (!closed) return;
  if (rc == 0) {
    closed->try_set_result();
    return;
  }
  try {
    throw OSError(error, "close", path);
  } catch (...) {
    closed->try_set_exception(std::current_exception());
  }
}

}  // namespace detail

namespace {

using detail::FileState;

// --- Blocking calls (on the pool) -----------------------------------------------------

std::shared_ptr<FileState> open_blocking(const std::string& path, int flags, mode_t permissions) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, permissions);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw OSError(errno, "open", path);
  return std::make_shared<FileState>(fd, path);
}

// One pread of up to n bytes at `offset`, retried on EINTR; 0 at the end.
std::size_t pread_once(const FileState& s, char* buf, std::size_t n, std::uint64_t offset) {
  for (;;) {
    const ssize_t got = ::pread(s.fd, buf, n, static_cast<off_t>(offset));
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno != EINTR) throw OSError(errno, "pread", s.path);
  }
}

// Appends to `out` up to n bytes read at `offset` + out.size(); returns how
// many (0 at the end of the file).
std::size_t pread_append(const FileState& s, std::string& out, std::size_t n,
                         std::uint64_t offset) {
  const std::size_t have = out.size();
  out.resize(have + n);
  std::size_t got = 0;
  try {
    got = pread_once(s, out.data() + have, n, offset + have);
  } catch (...) {
    out.resize(have);
    throw;
  }
  out.resize(have + got);
  return got;
}

// Up to n bytes at `offset`, fewer only at the end of the file (or when
// stopped: the caller is gone then).
std::string read_blocking(std::stop_token stop, const FileState& s, std::uint64_t offset,
                          std::size_t n) {
  std::string out;
  while (out.size() < n && !stop.stop_requested()) {
    if (pread_append(s, out, std::min(n - out.size(), kFileChunk), offset) == 0) break;
  }
  return out;
}

// From `offset` to the end of the file.
std::string read_to_end_blocking(std::stop_token stop, const FileState& s, std::uint64_t offset) {
  std::string out;
  struct stat st {};
  // The size is only a hint: the file may grow or shrink meanwhile.
  if (::fstat(s.fd, &st) == 0 && static_cast<std::uint64_t>(st.st_size) > offset) {
    out.reserve(static_cast<std::size_t>(static_cast<std::uint64_t>(st.st_size) - offset));
  }
  while (!stop.stop_requested()) {
    if (pread_append(s, out, kFileChunk, offset) == 0) break;
  }
  return out;
}

// Writes `data` at `offset` (pwrite) or, when `offset` is nullopt, at the
// end of the file (write(2) on an O_APPEND descriptor), chunk by chunk until
// all is written or `stop` is requested. `done` counts the bytes written,
// also when it throws.
void write_blocking(std::stop_token stop, const FileState& s, std::optional<std::uint64_t> offset,
                    std::string_view data, std::size_t& done) {
  while (done < data.size() && !stop.stop_requested()) {
    const std::size_t n = std::min(kFileChunk, data.size() - done);
    const ssize_t put =
        offset ? ::pwrite(s.fd, data.data() + done, n, static_cast<off_t>(*offset + done))
               : ::write(s.fd, data.data() + done, n);
    if (put < 0) {
      if (errno == EINTR) continue;
      throw OSError(errno, offset ? "pwrite" : "write", s.path);
    }
    done += static_cast<std::size_t>(put);
  }
}

// A write joined to the pool: `done` (in the caller's frame, which the join
// keeps alive until the call returned) is final when this returns or throws.
Coro<void> write_joined(std::shared_ptr<FileState> s, std::optional<std::uint64_t> offset,
                        std::string_view data, std::size_t& done) {
  auto call = [&s, offset, data, &done](std::stop_token stop) {
    write_blocking(std::move(stop), *s, offset, data, done);
  };
  co_await to_thread_joined(std::move(call));
}

int flags_for_mode(std::string_view mode) {
  char kind = 0;
  bool plus = false;
  bool binary = false;
  bool valid = true;
  for (char c : mode) {
    switch (c) {
      case 'r':
      case 'w':
      case 'a':
      case 'x':
        valid = valid && kind == 0;
        kind = c;
        break;
      case '+':
        valid = valid && !plus;
        plus = true;
        break;
      case 'b':
        valid = valid && !binary;
        binary = true;
        break;
      default:
        valid = false;
    }
  }
  if (!valid || kind == 0) {
    throw std::invalid_argument(absl::StrFormat(
        "File::open: invalid mode \"%s\" (want one of r, w, a, x, with + and b at most once each)",
        mode));
  }
  int flags = plus ? O_RDWR : kind == 'r' ? O_RDONLY : O_WRONLY;
  if (kind == 'w') flags |= O_CREAT | O_TRUNC;
  if (kind == 'a') flags |= O_CREAT | O_APPEND;
  if (kind == 'x') flags |= O_CREAT | O_EXCL;
  return flags;
}

}  // namespace

// --- File -----------------------------------------------------------------------------

File::File() noexcept = default;
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File::File(std::shared_ptr<FileState> state, std::string path, bool append) noexcept
    : state_(std::move(state)), path_(std::move(path)), append_(append) {}

Coro<File> File::open(std::string path, std::string_view mode, mode_t permissions) {
  // Parsed now: `mode` need not outlive this call.
  return open(std::move(path), flags_for_mode(mode), permissions);
}

Coro<File> File::open(std::string path, int flags, mode_t permissions) {
  auto call = [&path, flags, permissions](std::stop_token) {
    return open_blocking(path, flags, permissions);
  };
  std::shared_ptr<FileState> state = co_await to_thread_joined(std::move(call));
  co_return File(std::move(state), std::move(path), (flags & O_APPEND) != 0);
}

std::shared_ptr<FileState> File::checked_state(const char* call) const {
  if (!state_) throw OSError(EBADF, call, path_);
  return state_;
}

Coro<std::string> File::read(std::size_t n) {
  auto call = [s = checked_state("File::read"), offset = position_, n](std::stop_token stop) {
    return read_blocking(std::move(stop), *s, offset, n);
  };
  std::string data = co_await to_thread_joined(std::move(call));
  position_ += data.size();
  co_return data;
}

Coro<std::string> File::read_at(std::uint64_t offset, std::size_t n) const {
  auto call = [s = checked_state("File::read_at"), offset, n](std::stop_token stop) {
    return read_blocking(std::move(stop), *s, offset, n);
  };
  co_return co_await to_thread_joined(std::move(call));
}

Coro<std::string> File::read_all() {
  auto call = [s = checked_state("File::read_all"), offset = position_](std::stop_token stop) {
    return read_to_end_blocking(std::move(stop), *s, offset);
  };
  std::string data = co_await to_thread_joined(std::move(call));
  position_ += data.size();
  co_return data;
}

Coro<void> File::write(std::string_view data, std::size_t* written) {
  if (written != nullptr) *written = 0;
  std::size_t done = 0;
  std::exception_ptr error;
  try {
    std::shared_ptr<FileState> s = checked_state("File::write");
    std::optional<std::uint64_t> offset;
    if (!append_) offset = position_;
    co_await write_joined(std::move(s), offset, data, done);
  } catch (...) {
    error = std::current_exception();
  }
  if (!append_) position_ += done;
  if (written != nullptr) *written = done;
  if (error) std::rethrow_exception(error);
}

Coro<void> File::write_at(std::uint64_t offset, std::string_view data, std::size_t* written) {
  if (written != nullptr) *written = 0;
  if (append_) {
    throw std::logic_error(absl::StrFormat(
        "File::write_at: %s is open for appending, where pwrite ignores the offset", path_));
  }
  std::size_t done = 0;
  std::exception_ptr error;
  try {
    std::shared_ptr<FileState> s = checked_state("File::write_at");
    co_await write_joined(std::move(s), offset, data, done);
  } catch (...) {
    error = std::current_exception();
  }
  if (written != nullptr) *written = done;
  if (error) std::rethrow_exception(error);
}

Coro<void> File::sync() {
  auto call = [s = checked_state("File::sync")](std::stop_token) {
    if (::fsync(s->fd) != 0) throw OSError(errno, "fsync", s->path);
  };
  co_await to_thread_joined(std::move(call));
}

Coro<std::uint64_t> File::size() const {
  auto call = [s = checked_state("File::size")](std::stop_token) {
    struct stat st {};
    if (::fstat(s->fd, &st) != 0) throw OSError(errno, "fstat", s->path);
    return static_cast<std::uint64_t>(st.st_size);
  };
  co_return co_await to_thread_joined(std::move(call));
}

Coro<void> File::close() {
  if (!state_) co_return;
  Future<void> closed;
  state_->closed = closed;
  // The last reference goes on the pool: this one, or that of a call still
  // running (another task's), which then closes the file when it returns.
  auto release = [s = std::move(state_)]() mutable { s.reset(); };
  co_await to_thread(std::move(release));
  co_await closed;
}

// --- Whole files ----------------------------------------------------------------------

Coro<std::string> read_file(std::string path) {
  auto call = [&path](std::stop_token stop) {
    std::shared_ptr<FileState> s = open_blocking(path, O_RDONLY, 0);
    return read_to_end_blocking(std::move(stop), *s, 0);
  };
  co_return co_await to_thread_joined(std::move(call));
}

Coro<void> write_file(std::string path, std::string_view data, mode_t permissions) {
  auto call = [&path, data, permissions](std::stop_token stop) {
    std::shared_ptr<FileState> s = open_blocking(path, O_WRONLY | O_CREAT | O_TRUNC, permissions);
    std::size_t done = 0;
    write_blocking(std::move(stop), *s, 0, data, done);
    if (::close(s->release()) != 0) throw OSError(errno, "close", path);
  };
  co_await to_thread_joined(std::move(call));
}

}  // namespace weft
