// Futures to complete once a lock is released: the stream and server states
// collect them under their locks and complete them after (completing wakes
// tasks, which may come straight back for the lock on another worker).
#pragma once

#include <exception>
#include <vector>

#include "weft/core/future.h"

namespace weft::detail {

struct Wakeups {
  std::vector<Future<void>> ok;
  std::vector<Future<void>> failed;
  std::exception_ptr error;
  void run() {
    for (auto& f : ok) f.try_set_result();
    for (auto& f : failed) f.try_set_exception(error);
  }
};

}  // namespace weft::detail
