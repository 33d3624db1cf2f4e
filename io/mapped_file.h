// MappedFile: a read-only memory map of a file, with helpers that keep page
// faults (disk reads) off the loops.
//
//   weft::MappedFile f = co_await weft::MappedFile::open("/data/index.bin");
//   co_await f.prefetch(0, f.size());           // faults happen on to_thread
//   std::string_view all = f.data();            // now cheap to touch
//
// Touching a mapped page that is not resident blocks the thread on a disk
// read: fine on the to_thread pool, not on a loop. open() runs
// open/fstat/mmap on the pool; prefetch() asks the kernel to read a range
// ahead (MADV_WILLNEED) and touches each page on the pool, so that the loop
// finds it resident afterwards (unless memory pressure evicts it again:
// prefetch is a performance hint, not a lock; use mlock for guarantees).
// read() copies a range out after prefetching it.
//
// Thread safety: a MappedFile is immutable once open; any thread may read
// it. Move-only; the mapping ends when it is destroyed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "weft/core/coro.h"

namespace weft {

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // Maps the whole file read-only (an empty file maps to an empty view).
  // OSError (ENOENT, EACCES...) naming the call and the path.
  [[nodiscard]] static Coro<MappedFile> open(std::string path);

  bool valid() const noexcept { return data_ != nullptr || open_; }
  std::size_t size() const noexcept { return size_; }
  std::string_view data() const noexcept {
    return std::string_view(static_cast<const char*>(data_), size_);
  }
  const std::string& path() const noexcept { return path_; }

  // Makes [offset, offset + length) resident (clamped to the file) without
  // blocking the loop. std::out_of_range if offset > size().
  [[nodiscard]] Coro<void> prefetch(std::size_t offset, std::size_t length) const;
  // Copies [offset, offset + length) (clamped) out, after prefetching it.
  [[nodiscard]] Coro<std::string> read(std::size_t offset, std::size_t length) const;

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
  bool open_ = false;
  std::string path_;
};

}  // namespace weft
