#include "weft/core/errors.h"

#include "absl/strings/str_format.h"

namespace weft {

ExceptionGroup::ExceptionGroup(std::string message,
                               std::vector<std::exception_ptr> exceptions)
    : Error(absl::StrFormat("%s (%d sub-exception%s)", message,
                            exceptions.size(), exceptions.size() == 1 ? "" : "s")),
      message_(std::move(message)),
      exceptions_(std::move(exceptions)) {}

std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError& c) {
    return absl::StrFormat("CancelledError(%s)", c.message());
  } catch (const BaseException& b) {
    return absl::StrFormat("BaseException(%s)", b.what());
  } catch (const std::exception& s) {
    return s.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace weft
