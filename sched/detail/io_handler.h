// What a loop's epoll instance reports to: the reactor in io/ registers file
// descriptors with `epoll_event.data.ptr` pointing at an IoHandler, and the
// loop calls on_io on its own thread when the descriptor is ready.
// A null data.ptr marks the loop's wake-up eventfd.
#pragma once

#include <cstdint>

namespace weft::detail {

class IoHandler {
 public:
  // Called on the loop's thread with the epoll event mask.
  virtual void on_io(std::uint32_t events) noexcept = 0;

 protected:
  ~IoHandler() = default;
};

}  // namespace weft::detail
