#include "weft/core/errors.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <typeinfo>

#include "absl/strings/str_format.h"

namespace weft {

ExceptionGroup::ExceptionGroup(std::string message,
                               std::vector<std::exception_ptr> exceptions)
    : Error(absl::StrFormat("%s (%d sub-exception%s)", message,
                            exceptions.size(), exceptions.size() == 1 ? "" : "s")),
      message_(std::move(message)),
      exceptions_(std::move(exceptions)) {}

namespace detail {
std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}
}  // namespace detail

namespace {
// The dynamic type of the exception being handled, demangled
// ("weft::TimeoutError", "std::system_error", "int").
std::string current_exception_type() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  return type == nullptr ? "unknown exception" : detail::type_name(*type);
}

std::string type_and_text(const char* text) {
  std::string type = current_exception_type();
  if (text == nullptr || *text == '\0') return type;
  return absl::StrFormat("%s: %s", type, text);
}
}  // namespace

std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const BaseException& b) {
    return type_and_text(b.what());
  } catch (const std::exception& s) {
    return type_and_text(s.what());
  } catch (...) {
    return current_exception_type() + " (not derived from std::exception)";
  }
}

}  // namespace weft
