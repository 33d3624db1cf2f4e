// ByteBuffer: a contiguous FIFO of bytes for the stream layer: append at the
// tail, consume at the head, read straight into the tail without zeroing it.
//
// Invariants: 0 <= begin_ <= end_ <= cap_; the live bytes are
// [begin_, end_). An empty buffer resets begin_ = end_ = 0 and, if it grew
// past kKeepCapacity, frees its storage (idle connections keep no large
// buffers). Not thread-safe: its owner serialises access.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace weft::detail {

class ByteBuffer {
 public:
  static constexpr std::size_t kKeepCapacity = 256 * 1024;

  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  std::string_view view() const noexcept {
    return std::string_view(data_.get() + begin_, end_ - begin_);
  }

  // Free space at the tail, at least `min` bytes (moving or growing).
  std::span<char> prepare(std::size_t min) {
    if (cap_ - end_ < min) {
      const std::size_t live = size();
      if (begin_ > 0 && cap_ - live >= min && live <= cap_ / 2) {
        std::memmove(data_.get(), data_.get() + begin_, live);
      } else {
        std::size_t cap = std::max({cap_ * 2, live + min, std::size_t{4096}});
        std::unique_ptr<char[]> d(new char[cap]);
        if (live > 0) std::memcpy(d.get(), data_.get() + begin_, live);
        data_ = std::move(d);
        cap_ = cap;
      }
      begin_ = 0;
      end_ = live;
    }
    return std::span<char>(data_.get() + end_, cap_ - end_);
  }
  // Marks `n` bytes written into the span prepare() returned.
  void commit(std::size_t n) noexcept { end_ += n; }

  void append(std::string_view s) {
    if (s.empty()) return;
    std::memcpy(prepare(s.size()).data(), s.data(), s.size());
    commit(s.size());
  }
  void consume(std::size_t n) noexcept {
    begin_ += std::min(n, size());
    if (begin_ == end_) reset();
  }
  std::string take(std::size_t n) {
    n = std::min(n, size());
    std::string out(data_.get() + begin_, n);
    consume(n);
    return out;
  }
  void clear() noexcept {
    begin_ = end_;
    reset();
  }

 private:
  void reset() noexcept {
    begin_ = end_ = 0;
    if (cap_ > kKeepCapacity) {
      data_.reset();
      cap_ = 0;
    }
  }

  std::unique_ptr<char[]> data_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t cap_ = 0;
};

}  // namespace weft::detail
