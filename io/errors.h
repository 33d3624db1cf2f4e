// The io layer's errors: OSError with errno, its Python-like subclasses, and
// the errors of streams (LimitOverrunError, IncompleteReadError).
//
// Every failing system call is reported as an OSError (or a subclass picked
// from errno, as Python does) whose `code()` is the errno value and whose
// message names the call: "recv: Connection reset by peer [errno 104]".
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "weft/core/errors.h"

namespace weft {

// A system call failed. `code()` is its errno (or, for GaiError, the EAI_*
// code of getaddrinfo).
class OSError : public Error {
 public:
  OSError(int code, std::string_view call);
  OSError(int code, std::string_view call, std::string_view detail);
  int code() const noexcept { return code_; }
  // The failing call, e.g. "connect".
  const std::string& call() const noexcept { return call_; }

 protected:
  struct Message {
    std::string text;
  };
  // With a ready-made message (for subclasses whose code is not an errno).
  OSError(int code, std::string_view call, Message message);

 private:
  int code_;
  std::string call_;
};

// Python's ConnectionError family.
class ConnectionError : public OSError {
 public:
  using OSError::OSError;
};
// EPIPE, ESHUTDOWN: writing to a connection the peer (or we) shut down.
class BrokenPipeError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
// ECONNABORTED.
class ConnectionAbortedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
// ECONNREFUSED.
class ConnectionRefusedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
// ECONNRESET.
class ConnectionResetError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
// getaddrinfo failed; code() is the EAI_* value, the message gai_strerror's.
class GaiError : public OSError {
 public:
  GaiError(int eai_code, std::string_view host);
};

// The OSError subclass Python would raise for `code`, as an exception_ptr.
std::exception_ptr make_os_error(int code, std::string_view call);
// Throws it.
[[noreturn]] void throw_os_error(int code, std::string_view call);
// Throws it for the current errno.
[[noreturn]] void throw_errno(std::string_view call);

// A TLS failure reported by OpenSSL (weft/io/tls.h); the message holds
// OpenSSL's error text and the operation ("TLS handshake: ...").
class TlsError : public Error {
 public:
  using Error::Error;
};
// The peer's certificate did not verify (untrusted, expired, wrong host
// name...). `verify_result()` is OpenSSL's X509_V_ERR_* code.
class CertificateVerifyError : public TlsError {
 public:
  CertificateVerifyError(std::string message, long verify_result)
      : TlsError(std::move(message)), verify_result_(verify_result) {}
  long verify_result() const noexcept { return verify_result_; }

 private:
  long verify_result_;
};

// A StreamReader's readuntil/readline found no separator within the limit.
// For readuntil the data stays buffered; `consumed()` is how many bytes were
// looked at (asyncio's LimitOverrunError.consumed).
class LimitOverrunError : public Error {
 public:
  LimitOverrunError(std::string message, std::size_t consumed)
      : Error(std::move(message)), consumed_(consumed) {}
  std::size_t consumed() const noexcept { return consumed_; }

 private:
  std::size_t consumed_;
};

// The stream ended before a readexactly / readuntil was satisfied. `partial()`
// holds what was read (and consumed) before the end; `expected()` the size
// asked for (nullopt for readuntil).
class IncompleteReadError : public Error {
 public:
  IncompleteReadError(std::string partial, std::optional<std::size_t> expected);
  const std::string& partial() const noexcept { return partial_; }
  std::optional<std::size_t> expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::optional<std::size_t> expected_;
};

}  // namespace weft
