// MappedFile: a read-only memory map of a file, with helpers that keep page
// faults (disk reads) off the loops.
//
//   weft::MappedFile f = co_await weft::MappedFile::open("/data/index.bin");
//   f.advise(weft::MappedFile::Advice::kSequential);  // a hint for the kernel
//   co_await f.prefetch(0, f.size());                 // faults happen on to_thread
//   std::string_view header = f.view(0, 64);          // now cheap to touch
//
// Touching a mapped page that is not resident blocks the thread on a disk
// read: fine on the to_thread pool, not on a loop. open() runs
// open/fstat/mmap on the pool; prefetch() asks the kernel to read a range
// ahead (MADV_WILLNEED) and touches each page on the pool, so that the loop
// finds it resident afterwards (unless memory pressure evicts it again:
// prefetch is a performance hint, not a lock; use mlock for guarantees).
// read() copies a range out after prefetching it. data() and view() only
// compute addresses: touching the bytes they return is what may fault.
// advise() is madvise(2), called synchronously: the kernel only records the
// hint or starts I/O (kWillNeed) without waiting for it.
//
// Ranges are (offset, length): an offset past size() is std::out_of_range
// naming the offset and the size; the length is clamped to the end of the
// file.
//
// Lifetime: the mapping is reference counted. A pool call (open, prefetch)
// holds a reference while it runs, so a cancelled prefetch, whose pool call
// goes on for up to one batch of pages, never touches an unmapped page even
// if the MappedFile is destroyed at once; a cancelled open unmaps what it
// mapped. Views and data() are valid while the MappedFile (or a MappedFile
// moved from it) lives.
//
// Thread safety: a MappedFile is immutable once open; any thread may read
// it and call its const members. Move-only.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "weft/core/coro.h"

namespace weft {

class MappedFile {
 public:
  // madvise(2) advice (Python's mmap.MADV_*).
  enum class Advice {
    kNormal,      // MADV_NORMAL: no special treatment (the default)
    kSequential,  // MADV_SEQUENTIAL: read ahead aggressively, drop pages soon after
    kRandom,      // MADV_RANDOM: no read-ahead
    kWillNeed,    // MADV_WILLNEED: start reading the range in now
    kDontNeed,    // MADV_DONTNEED: drop the range's pages (re-read on the next touch)
  };

  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() = default;

  // Maps the whole file read-only (an empty file maps to an empty view).
  // OSError (ENOENT, EACCES...) naming the call and the path.
  [[nodiscard]] static Coro<MappedFile> open(std::string path);

  bool valid() const noexcept { return open_; }
  std::size_t size() const noexcept { return size_; }
  std::string_view data() const noexcept {
    return std::string_view(static_cast<const char*>(mapping_.get()), size_);
  }
  const std::string& path() const noexcept { return path_; }

  // The bytes of [offset, offset + length) (clamped), without copying.
  // std::out_of_range if offset > size().
  std::string_view view(std::size_t offset, std::size_t length = std::string_view::npos) const;

  // Gives the kernel `advice` for [offset, offset + length) (clamped; the
  // start is rounded down to its page). std::out_of_range if offset >
  // size(); OSError naming madvise and the path if the kernel refuses (e.g.
  // EINVAL for kDontNeed on locked pages). An empty range does nothing.
  void advise(Advice advice, std::size_t offset = 0,
              std::size_t length = std::string_view::npos) const;

  // Makes [offset, offset + length) resident (clamped to the file) without
  // blocking the loop. std::out_of_range if offset > size(). A cancelled
  // prefetch stops touching pages within a megabyte.
  [[nodiscard]] Coro<void> prefetch(std::size_t offset, std::size_t length) const;
  // Copies [offset, offset + length) (clamped) out, after prefetching it.
  [[nodiscard]] Coro<std::string> read(std::size_t offset, std::size_t length) const;

 private:
  // std::out_of_range naming `call` unless offset <= size().
  void check_offset(const char* call, std::size_t offset) const;

  // The mapping's address; munmaps when the last reference goes. Null for
  // an empty file.
  std::shared_ptr<const void> mapping_;
  std::size_t size_ = 0;
  bool open_ = false;
  std::string path_;
};

}  // namespace weft
