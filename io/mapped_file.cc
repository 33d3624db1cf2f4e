#include "weft/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <utility>

#include "absl/strings/str_format.h"
#include "weft/io/errors.h"
#include "weft/sched/to_thread.h"

namespace weft {
namespace {

struct Mapping {
  void* data = nullptr;
  std::size_t size = 0;
};

Mapping map_blocking(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw OSError(errno, "open", path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw OSError(e, "fstat", path);
  }
  Mapping m;
  m.size = static_cast<std::size_t>(st.st_size);
  if (m.size > 0) {
    m.data = mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m.data == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw OSError(e, "mmap", path);
    }
  }
  ::close(fd);  // the mapping keeps the file
  return m;
}

void touch_blocking(const char* p, std::size_t len) {
  if (len == 0) return;
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  // Align down for madvise; the kernel starts reading ahead at once.
  auto base = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
  madvise(reinterpret_cast<void*>(base), reinterpret_cast<std::uintptr_t>(p) + len - base,
          MADV_WILLNEED);
  volatile char sink = 0;
  for (std::size_t off = 0; off < len; off += page) sink = sink + p[off];
  sink = sink + p[len - 1];
}

}  // namespace

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      open_(std::exchange(o.open_, false)),
      path_(std::move(o.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    open_ = std::exchange(o.open_, false);
    path_ = std::move(o.path_);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(data_, size_);
}

Coro<MappedFile> MappedFile::open(std::string path) {
  Mapping m = co_await to_thread(map_blocking, path);
  MappedFile f;
  f.data_ = m.data;
  f.size_ = m.size;
  f.open_ = true;
  f.path_ = std::move(path);
  co_return f;
}

Coro<void> MappedFile::prefetch(std::size_t offset, std::size_t length) const {
  if (offset > size_) {
    throw std::out_of_range(
        absl::StrFormat("MappedFile::prefetch: offset %d past the end (%d)", offset, size_));
  }
  length = std::min(length, size_ - offset);
  const char* p = static_cast<const char*>(data_) + offset;
  co_await to_thread(touch_blocking, p, length);
}

Coro<std::string> MappedFile::read(std::size_t offset, std::size_t length) const {
  co_await prefetch(offset, length);
  co_return std::string(data().substr(offset, length));
}

}  // namespace weft
