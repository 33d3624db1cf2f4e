#include "weft/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <stop_token>
#include <utility>

#include "absl/strings/str_format.h"
#include "weft/io/errors.h"
#include "weft/sched/to_thread.h"

namespace weft {
namespace {

// Pages touched by prefetch between two looks at its stop token (1 MiB of
// 4 KiB pages).
constexpr std::size_t kPagesPerStopCheck = 256;

std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

// What open() maps on the pool; unmapped when dropped, also when a
// cancelled open() discards it.
struct Mapping {
  std::shared_ptr<const void> address;
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
    void* p = mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw OSError(e, "mmap", path);
    }
    m.address = std::shared_ptr<const void>(
        p, [size = m.size](const void* q) { munmap(const_cast<void*>(q), size); });
  }
  ::close(fd);  // the mapping keeps the file
  return m;
}

// The page-aligned range covering [p, p + len), for madvise.
std::pair<void*, std::size_t> page_range(const char* p, std::size_t len) {
  const auto base = reinterpret_cast<std::uintptr_t>(p) & ~(page_size() - 1);
  return {reinterpret_cast<void*>(base), reinterpret_cast<std::uintptr_t>(p) + len - base};
}

// `mapping` keeps the pages mapped while this runs, even if the caller was
// cancelled and dropped its MappedFile.
void touch_blocking(std::stop_token stop, std::shared_ptr<const void> mapping, const char* p,
                    std::size_t len) {
  if (len == 0) return;
  const std::size_t page = page_size();
  // The kernel starts reading the whole range ahead at once.
  auto [base, span] = page_range(p, len);
  madvise(base, span, MADV_WILLNEED);
  volatile char sink = 0;
  for (std::size_t off = 0, n = 0; off < len; off += page, ++n) {
    if (n % kPagesPerStopCheck == 0 && stop.stop_requested()) return;
    sink = sink + p[off];
  }
  sink = sink + p[len - 1];
}

int madvise_advice(MappedFile::Advice advice) {
  switch (advice) {
    case MappedFile::Advice::kNormal:
      return MADV_NORMAL;
    case MappedFile::Advice::kSequential:
      return MADV_SEQUENTIAL;
    case MappedFile::Advice::kRandom:
      return MADV_RANDOM;
    case MappedFile::Advice::kWillNeed:
      return MADV_WILLNEED;
    case MappedFile::Advice::kDontNeed:
      return MADV_DONTNEED;
  }
  throw std::invalid_argument(
      absl::StrFormat("MappedFile::advise: unknown advice %d", static_cast<int>(advice)));
}

}  // namespace

MappedFile::MappedFile(MappedFile&& o) noexcept
    : mapping_(std::move(o.mapping_)),
      size_(std::exchange(o.size_, 0)),
      open_(std::exchange(o.open_, false)),
      path_(std::move(o.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    mapping_ = std::move(o.mapping_);
    size_ = std::exchange(o.size_, 0);
    open_ = std::exchange(o.open_, false);
    path_ = std::move(o.path_);
  }
  return *this;
}

Coro<MappedFile> MappedFile::open(std::string path) {
  Mapping m = co_await to_thread(map_blocking, path);
  MappedFile f;
  f.mapping_ = std::move(m.address);
  f.size_ = m.size;
  f.open_ = true;
  f.path_ = std::move(path);
  co_return f;
}

void MappedFile::check_offset(const char* call, std::size_t offset) const {
  if (offset > size_) {
    throw std::out_of_range(absl::StrFormat(
        "MappedFile::%s: offset %d is past the end of %s (size %d)", call, offset, path_, size_));
  }
}

std::string_view MappedFile::view(std::size_t offset, std::size_t length) const {
  check_offset("view", offset);
  return data().substr(offset, length);
}

void MappedFile::advise(Advice advice, std::size_t offset, std::size_t length) const {
  check_offset("advise", offset);
  const int how = madvise_advice(advice);
  length = std::min(length, size_ - offset);
  if (length == 0) return;
  auto [base, span] = page_range(data().data() + offset, length);
  if (madvise(base, span, how) != 0) throw OSError(errno, "madvise", path_);
}

Coro<void> MappedFile::prefetch(std::size_t offset, std::size_t length) const {
  check_offset("prefetch", offset);
  length = std::min(length, size_ - offset);
  co_await to_thread(touch_blocking, mapping_, data().data() + offset, length);
}

Coro<std::string> MappedFile::read(std::size_t offset, std::size_t length) const {
  co_await prefetch(offset, length);
  co_return std::string(view(offset, length));
}

}  // namespace weft
