// weft::File: reads and writes of files that never block a loop (asyncio has
// none; aiofiles and trio.open_file are the models).
//
//   weft::File log = co_await weft::File::open("/var/log/app.log", "a");
//   co_await log.write("started\n");
//   co_await log.close();
//   std::string config = co_await weft::read_file("/etc/app.conf");
//   co_await weft::write_file("/tmp/state.json", json);
//
// Design. Every system call that may wait for a disk (open, pread, pwrite,
// write, fstat, fsync, close) runs on the runtime's to_thread pool; the loop
// only awaits. Large transfers are split into calls of at most kFileChunk
// bytes, each looped until done (short reads and writes, EINTR).
//
// Modes are Python's (binary only): "r" read; "w" write, create, truncate;
// "a" append, create; "x" write, create, fail if it exists (EEXIST); a "+"
// adds the other direction ("r+" read and write, no create); a "b" is
// accepted and changes nothing. Any other mode is std::invalid_argument.
// Or pass open(2) flags (O_RDWR | O_CREAT...), for what the modes cannot
// say; O_CLOEXEC is always added. `permissions` apply to a created file
// (minus the umask).
//
// The position. A File keeps its own position (not the kernel's):
// read/read_all/write use pread/pwrite at it and move it when they return,
// and seek()/tell() set and get it. It starts at 0 in every mode. In append
// mode ("a", "a+", O_APPEND) write() goes to the end of the file with
// write(2) (atomically placed by the kernel) and leaves the position alone;
// write_at() is then std::logic_error (Linux's pwrite would ignore its
// offset). read, read_at, write (except in append mode) and write_at need a
// file that can seek (ESPIPE otherwise).
//
// Cancel-safety contract. Unlike a bare to_thread call, a File operation
// never leaves its system calls running behind a cancelled caller:
// cancelling it tells the pool call to stop (it looks between chunks) and
// waits, shielded from further cancellation, until the call has returned
// (or makes sure it never starts) before CancelledError propagates. So when
// an operation raised CancelledError, it is over, and:
//   open              opened nothing ("w" or O_TRUNC may have truncated or
//                     created the file)
//   read / read_all   consumed nothing: the position did not move
//   read_at / size    did nothing that matters
//   write / write_at  may have written a prefix of `data`, up to a chunk
//                     boundary: pass `written` to learn how long (it is set
//                     whenever the call returns or throws, also after an
//                     OSError such as ENOSPC). write() moved the position
//                     past that prefix.
//   sync              either did not start or finished fsync
//   close             closed the file anyway (its errors are lost)
// The wait is bounded by one chunk's system call for a regular file; a call
// blocked in the kernel (a FIFO nobody reads) holds the cancellation until
// it returns. The asyncio rule of docs/io.md applies on top: a task that
// returns with a cancellation pending drops its result, so record results
// inside the task.
//
// Descriptor lifetime. Each operation holds a reference on the descriptor
// while its pool call runs; it is closed when the File and every such call
// have let go. close() runs close(2) on the pool and reports its error (NFS
// reports write errors there); destroying an open File closes it at once on
// the destroying thread, ignoring errors (close(2) of a local file does not
// wait for the disk), as tokio's File does.
//
// Thread safety: like a std::string, a File is not synchronized. Any number
// of tasks may run positional calls (read_at, write_at, size, sync) on it
// at once, on any worker. The sequential calls (read, read_all, write,
// seek, tell) share the position: one at a time. close(), moving and
// destroying must not overlap other calls started on the File, except that
// a call still running keeps the descriptor open (close() then waits for
// it). Data passed as a string_view must stay valid until the call
// completes.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "weft/core/coro.h"

namespace weft {
namespace detail {
struct FileState;
}  // namespace detail

// The most a File's pool call reads or writes between two looks at its
// cancellation.
inline constexpr std::size_t kFileChunk = 1 << 20;

class File {
 public:
  // No file: is_open() is false.
  File() noexcept;
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  // Opens `path` with a Python mode ("r", "w+", "ab"...).
  // std::invalid_argument for a bad mode; OSError (ENOENT, EACCES, EEXIST,
  // EISDIR...) naming open and the path.
  [[nodiscard]] static Coro<File> open(std::string path, std::string_view mode = "r",
                                       mode_t permissions = 0666);
  // Opens `path` with open(2) flags (plus O_CLOEXEC).
  [[nodiscard]] static Coro<File> open(std::string path, int flags, mode_t permissions = 0666);

  bool is_open() const noexcept { return static_cast<bool>(state_); }
  const std::string& path() const noexcept { return path_; }
  // The position of the sequential calls.
  std::uint64_t tell() const noexcept { return position_; }
  void seek(std::uint64_t position) noexcept { position_ = position; }

  // Reads up to n bytes at the position and moves it past them; fewer only
  // at the end of the file ("" there).
  [[nodiscard]] Coro<std::string> read(std::size_t n);
  // Reads up to n bytes at `offset` (pread), fewer only at the end of the
  // file. The position does not move.
  [[nodiscard]] Coro<std::string> read_at(std::uint64_t offset, std::size_t n) const;
  // Reads from the position to the end of the file and moves the position
  // there.
  [[nodiscard]] Coro<std::string> read_all();
  // Writes all of `data` at the position (or, in append mode, at the end of
  // the file) and moves the position past it (not in append mode).
  [[nodiscard]] Coro<void> write(std::string_view data, std::size_t* written = nullptr);
  // Writes all of `data` at `offset` (pwrite, looped until everything is
  // written). The position does not move. std::logic_error in append mode.
  [[nodiscard]] Coro<void> write_at(std::uint64_t offset, std::string_view data,
                                    std::size_t* written = nullptr);
  // fsync(2): the data and metadata written so far reach the disk.
  [[nodiscard]] Coro<void> sync();
  // The file's size now (fstat).
  [[nodiscard]] Coro<std::uint64_t> size() const;
  // Closes the file once no call uses it any more, on the pool; OSError if
  // close(2) failed. Idempotent: a closed File does nothing.
  [[nodiscard]] Coro<void> close();

  // Every call above on a closed File is OSError (EBADF) naming it and the
  // path.

 private:
  File(std::shared_ptr<detail::FileState> state, std::string path, bool append) noexcept;
  // The descriptor's state, or OSError(EBADF) naming `call` if closed.
  std::shared_ptr<detail::FileState> checked_state(const char* call) const;

  std::shared_ptr<detail::FileState> state_;
  std::string path_;
  std::uint64_t position_ = 0;
  bool append_ = false;
};

// The whole file (open, read to the end, close; one pool call). A cancelled
// read_file is over when it raises, its descriptor closed.
[[nodiscard]] Coro<std::string> read_file(std::string path);
// Creates or truncates `path` and writes `data` to it (one pool call;
// close(2) errors reported). A cancelled write_file is over when it raises,
// its descriptor closed; the file then holds a prefix of `data` (possibly
// nothing): write to a temporary name and rename it for all-or-nothing.
[[nodiscard]] Coro<void> write_file(std::string path, std::string_view data,
                                    mode_t permissions = 0666);

}  // namespace weft
