#include "weft/io/errors.h"

#include <netdb.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace weft {
namespace {

std::string os_message(int code, std::string_view call, std::string_view detail) {
  char buf[128];
  // GNU strerror_r returns the message (maybe not in buf).
  const char* text = strerror_r(code, buf, sizeof buf);
  if (detail.empty()) return absl::StrFormat("%s: %s [errno %d]", call, text, code);
  return absl::StrFormat("%s (%s): %s [errno %d]", call, detail, text, code);
}

}  // namespace

OSError::OSError(int code, std::string_view call)
    : Error(os_message(code, call, {})), code_(code), call_(call) {}

OSError::OSError(int code, std::string_view call, std::string_view detail)
    : Error(os_message(code, call, detail)), code_(code), call_(call) {}

OSError::OSError(int code, std::string_view call, Message message)
    : Error(std::move(message.text)), code_(code), call_(call) {}

GaiError::GaiError(int eai_code, std::string_view host)
    : OSError(eai_code, "getaddrinfo",
              Message{absl::StrFormat("getaddrinfo(%s): %s [EAI %d]", host,
                                      gai_strerror(eai_code), eai_code)}) {}

std::exception_ptr make_os_error(int code, std::string_view call) {
  switch (code) {
    case EPIPE:
    case ESHUTDOWN:
      return std::make_exception_ptr(BrokenPipeError(code, call));
    case ECONNABORTED:
      return std::make_exception_ptr(ConnectionAbortedError(code, call));
    case ECONNREFUSED:
      return std::make_exception_ptr(ConnectionRefusedError(code, call));
    case ECONNRESET:
      return std::make_exception_ptr(ConnectionResetError(code, call));
    default:
      return std::make_exception_ptr(OSError(code, call));
  }
}

void throw_os_error(int code, std::string_view call) {
  std::rethrow_exception(make_os_error(code, call));
}

void throw_errno(std::string_view call) { throw_os_error(errno, call); }

IncompleteReadError::IncompleteReadError(std::string partial,
                                         std::optional<std::size_t> expected)
    : Error(expected ? absl::StrFormat("%d bytes read on a total of %d expected bytes",
                                       partial.size(), *expected)
                     : absl::StrFormat("%d bytes read before the end of the stream, "
                                       "separator not found",
                                       partial.size())),
      partial_(std::move(partial)),
      expected_(expected) {}

}  // namespace weft
