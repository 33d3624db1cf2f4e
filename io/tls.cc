#include "weft/io/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "weft/io/detail/io_wait.h"
#include "weft/io/detail/stream_transport.h"
#include "weft/io/errors.h"

namespace weft {
namespace {

using detail::FdWatch;

// OpenSSL's error queue (this thread's) as text; clears it.
std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

[[noreturn]] void throw_tls(std::string_view what) {
  throw TlsError(absl::StrFormat("%s: %s", what, ssl_errors()));
}

std::shared_ptr<SSL_CTX> new_ctx(const SSL_METHOD* method) {
  SSL_CTX* raw = SSL_CTX_new(method);
  if (raw == nullptr) throw_tls("SSL_CTX_new");
  std::shared_ptr<SSL_CTX> ctx(raw, SSL_CTX_free);
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  // The writer retries with its queue's head, which may have moved, and
  // takes partial writes.
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  SSL_CTX_set_options(raw, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
  return ctx;
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// What an SSL_* call that returned `rc` wants.
enum class Want { kDone, kRead, kWrite, kEof };

class TlsTransport final : public detail::StreamTransport {
 public:
  TlsTransport(Socket s, const TlsContext& ctx) : StreamTransport(std::move(s)), ctx_(ctx) {
    ssl_ = SSL_new(ctx.native_handle());
    if (ssl_ == nullptr) throw_tls("SSL_new");
    if (SSL_set_fd(ssl_, socket_.fd()) != 1) {
      SSL_free(ssl_);
      throw_tls("SSL_set_fd");
    }
  }
  ~TlsTransport() override { SSL_free(ssl_); }

  void set_client(const std::string& hostname) {
    absl::MutexLock lock(&mu_);
    SSL_set_connect_state(ssl_);
    if (hostname.empty()) return;
    if (SocketAddress::parse_ip(hostname, 0)) {
      X509_VERIFY_PARAM* p = SSL_get0_param(ssl_);
      if (X509_VERIFY_PARAM_set1_ip_asc(p, hostname.c_str()) != 1) throw_tls("set1_ip_asc");
    } else {
      if (SSL_set_tlsext_host_name(ssl_, hostname.c_str()) != 1) throw_tls("SNI");
      if (SSL_set1_host(ssl_, hostname.c_str()) != 1) throw_tls("SSL_set1_host");
    }
  }
  void set_server() {
    absl::MutexLock lock(&mu_);
    SSL_set_accept_state(ssl_);
  }

  Coro<void> handshake() {
    FdWatch& watch = socket_.watch();
    for (;;) {
      const std::uint64_t seq[2] = {watch.seq(FdWatch::kRead), watch.seq(FdWatch::kWrite)};
      Want want;
      {
        absl::MutexLock lock(&mu_);
        ERR_clear_error();
        int rc = SSL_do_handshake(ssl_);
        want = rc == 1 ? Want::kDone : classify(rc, "TLS handshake", /*handshake=*/true);
      }
      if (want == Want::kDone) co_return;
      if (want == Want::kEof) {
        throw ConnectionResetError(ECONNRESET, "TLS handshake", "the peer closed the connection");
      }
      const FdWatch::Dir d = want == Want::kRead ? FdWatch::kRead : FdWatch::kWrite;
      co_await watch.wait(d, seq[d]);
    }
  }

  Coro<std::size_t> recv_into(std::span<char> buf) override {
    co_await detail::BudgetAwaiter();
    FdWatch& watch = socket_.watch();
    for (;;) {
      const std::uint64_t seq[2] = {watch.seq(FdWatch::kRead), watch.seq(FdWatch::kWrite)};
      Want want;
      std::size_t n = 0;
      {
        absl::MutexLock lock(&mu_);
        ERR_clear_error();
        int rc = SSL_read_ex(ssl_, buf.data(), buf.size(), &n);
        want = rc == 1 ? Want::kDone : classify(rc, "TLS read", false);
      }
      if (want == Want::kDone) co_return n;
      if (want == Want::kEof) co_return 0;
      const FdWatch::Dir d = want == Want::kRead ? FdWatch::kRead : FdWatch::kWrite;
      co_await watch.wait(d, seq[d]);
    }
  }

  std::optional<std::size_t> try_send(std::string_view data, FdWatch::Dir* wait_for) override {
    if (data.empty()) return 0;
    absl::MutexLock lock(&mu_);
    ERR_clear_error();
    std::size_t n = 0;
    int rc = SSL_write_ex(ssl_, data.data(), data.size(), &n);
    if (rc == 1) return n;
    switch (classify(rc, "TLS write", false)) {
      case Want::kRead:
        *wait_for = FdWatch::kRead;
        return std::nullopt;
      case Want::kWrite:
        *wait_for = FdWatch::kWrite;
        return std::nullopt;
      default:
        throw BrokenPipeError(EPIPE, "TLS write", "the connection was closed");
    }
  }

  void shutdown_write() noexcept override {
    send_close_notify();
    ::shutdown(socket_.fd(), SHUT_WR);
  }
  void shutdown_both() noexcept override {
    send_close_notify();
    ::shutdown(socket_.fd(), SHUT_RDWR);
  }

 private:
  void send_close_notify() noexcept {
    absl::MutexLock lock(&mu_);
    ERR_clear_error();
    // Non-blocking and best effort: it goes out if the socket takes it.
    if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
    ERR_clear_error();
  }

  Want classify(int rc, const char* what, bool handshake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int err = SSL_get_error(ssl_, rc);
    switch (err) {
      case SSL_ERROR_WANT_READ:
        return Want::kRead;
      case SSL_ERROR_WANT_WRITE:
        return Want::kWrite;
      case SSL_ERROR_ZERO_RETURN:
        return Want::kEof;
      case SSL_ERROR_SYSCALL: {
        const int e = errno;
        if (ERR_peek_error() == 0 && (e == 0 || would_block(e))) {
          return e == 0 ? Want::kEof : Want::kRead;
        }
        if (ERR_peek_error() == 0) throw_os_error(e, what);
        throw_tls(what);
      }
      default: {
        if (handshake) {
          const long v = SSL_get_verify_result(ssl_);
          if (v != X509_V_OK) {
            ERR_clear_error();
            throw CertificateVerifyError(
                absl::StrFormat("%s: certificate verify failed: %s", what,
                                X509_verify_cert_error_string(v)),
                v);
          }
        }
        throw TlsError(absl::StrFormat("%s: %s (SSL error %d, rc %d, errno %d)", what,
                                       ssl_errors(), err, rc, errno));
      }
    }
  }

  TlsContext ctx_;  // keeps the SSL_CTX alive
  absl::Mutex mu_;
  SSL* ssl_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace

TlsContext TlsContext::client() {
  auto ctx = new_ctx(TLS_client_method());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) throw_tls("set_default_verify_paths");
  return TlsContext(std::move(ctx), /*server=*/false);
}

TlsContext TlsContext::server(const std::string& cert_chain_file, const std::string& key_file) {
  TlsContext c(new_ctx(TLS_server_method()), /*server=*/true);
  SSL_CTX_set_verify(c.native_handle(), SSL_VERIFY_NONE, nullptr);
  c.load_cert_chain(cert_chain_file, key_file);
  return c;
}

void TlsContext::load_verify_locations(const std::string& cafile) {
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx_.get(), cafile.c_str(), nullptr) != 1) {
    throw_tls("load_verify_locations(" + cafile + ")");
  }
}

void TlsContext::set_verify(bool on) {
  int mode = SSL_VERIFY_NONE;
  if (on) mode = server_ ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
  SSL_CTX_set_verify(ctx_.get(), mode, nullptr);
}

void TlsContext::load_cert_chain(const std::string& cert_chain_file, const std::string& key_file) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx_.get(), cert_chain_file.c_str()) != 1) {
    throw_tls("load certificate chain " + cert_chain_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx_.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw_tls("load private key " + key_file);
  }
  if (SSL_CTX_check_private_key(ctx_.get()) != 1) throw_tls("the key does not match");
}

Coro<std::pair<StreamReader, StreamWriter>> tls_client_stream(Socket socket, TlsContext context,
                                                              std::string server_hostname,
                                                              StreamOptions options) {
  if (context.is_server()) throw std::invalid_argument("tls_client_stream: a server context");
  auto t = std::make_shared<TlsTransport>(std::move(socket), context);
  t->set_client(server_hostname);
  co_await t->handshake();  // on failure or cancellation `t` closes the socket
  co_return detail::make_stream(std::move(t), options);
}

Coro<std::pair<StreamReader, StreamWriter>> open_tls_connection(
    std::string host, std::uint16_t port, TlsContext context, StreamOptions options,
    std::optional<std::string> server_hostname) {
  ConnectOptions c;
  c.timeout = options.connect_timeout;
  Socket s = co_await create_connection(host, port, c);
  co_return co_await tls_client_stream(std::move(s), std::move(context),
                                       server_hostname.value_or(host), options);
}

Coro<std::pair<StreamReader, StreamWriter>> tls_server_stream(Socket socket, TlsContext context,
                                                              StreamOptions options) {
  if (!context.is_server()) throw std::invalid_argument("tls_server_stream: a client context");
  auto t = std::make_shared<TlsTransport>(std::move(socket), context);
  t->set_server();
  co_await t->handshake();
  co_return detail::make_stream(std::move(t), options);
}

StreamOpener tls_server_opener(TlsContext context) {
  return [context](Socket s, const StreamOptions& o) {
    return tls_server_stream(std::move(s), context, o);
  };
}

}  // namespace weft
