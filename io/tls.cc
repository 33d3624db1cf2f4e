#include "weft/io/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "weft/io/detail/io_wait.h"
#include "weft/io/detail/stream_transport.h"
#include "weft/io/errors.h"
#include "weft/sched/cancel_scope.h"

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

// TLS on a stream (detail::StreamLayer). The SSL object is used by the
// reader's task and, through try_send, by the writer under its lock; they
// may run on two workers at once, so every SSL call holds `mu_`. Waits for
// readiness happen outside it.
class TlsLayer final : public detail::StreamLayer {
 public:
  explicit TlsLayer(const TlsContext& ctx) : ctx_(ctx) {
    ssl_ = SSL_new(ctx.native_handle());
    if (ssl_ == nullptr) throw_tls("SSL_new");
  }
  ~TlsLayer() override { SSL_free(ssl_); }

  // The client side: `hostname` is sent as SNI and verified (an IP address
  // as one). Without a name, only a context that does not verify will do.
  void set_client(const std::string& hostname) {
    absl::MutexLock lock(&mu_);
    SSL_set_connect_state(ssl_);
    if (hostname.empty()) {
      if (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) {
        throw std::invalid_argument(
            "TLS client: a server_hostname is needed to verify the server's certificate "
            "(or turn verification off with TlsContext::set_verify(false))");
      }
      return;
    }
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

  // The handshake.
  Coro<void> start(Socket& s) override {
    {
      absl::MutexLock lock(&mu_);
      if (SSL_set_fd(ssl_, s.fd()) != 1) throw_tls("SSL_set_fd");
    }
    FdWatch& watch = s.watch();
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

  Coro<std::size_t> recv_into(Socket& s, std::span<char> buf) override {
    co_await detail::BudgetAwaiter();
    FdWatch& watch = s.watch();
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

  std::optional<std::size_t> try_send(Socket&, std::string_view data,
                                      FdWatch::Dir* wait_for) override {
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

  // close_notify: non-blocking and best effort, it goes out if the socket
  // takes it.
  void before_shutdown(Socket&) noexcept override {
    absl::MutexLock lock(&mu_);
    ERR_clear_error();
    if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
    ERR_clear_error();
  }

  TlsInfo info() const {
    absl::MutexLock lock(&mu_);
    TlsInfo i;
    i.version = SSL_get_version(ssl_);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl_)) i.cipher = SSL_CIPHER_get_name(c);
    if (const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) {
      i.server_name = name;
    }
    if (X509* peer = SSL_get1_peer_certificate(ssl_)) {
      char buf[512];
      if (X509_NAME_oneline(X509_get_subject_name(peer), buf, sizeof buf) != nullptr) {
        i.peer_subject = buf;
      }
      X509_free(peer);
    }
    return i;
  }

 private:
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
  mutable absl::Mutex mu_;
  SSL* ssl_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// A client or server layer for `context`.
std::unique_ptr<TlsLayer> make_layer(const TlsContext& context, bool server,
                                     const std::string& server_hostname, const char* who) {
  if (context.is_server() != server) {
    throw std::invalid_argument(
        absl::StrFormat("%s: a %s context", who, context.is_server() ? "server" : "client"));
  }
  auto layer = std::make_unique<TlsLayer>(context);
  if (server) {
    layer->set_server();
  } else {
    layer->set_client(server_hostname);
  }
  return layer;
}

// A stream over `socket` whose TLS handshake is done. On failure or
// cancellation the socket closes with the transport.
Coro<std::pair<StreamReader, StreamWriter>> tls_stream(Socket socket,
                                                        std::unique_ptr<TlsLayer> layer,
                                                        StreamOptions options) {
  auto t = std::make_shared<detail::StreamTransport>(std::move(socket));
  co_await layer->start(t->socket());
  t->set_layer(std::move(layer));
  co_return detail::make_stream(std::move(t), options);
}

}  // namespace

// --- SNI -------------------------------------------------------------------------

namespace {

// The SNI callback is owned by its SSL_CTX (ex_data freed with it), so it
// lives exactly as long as any connection that may call it.
void free_sni_callback(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<TlsContext::SniCallback*>(ptr);
}

int sni_ex_index() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_sni_callback);
  return index;
}

int on_server_name(SSL* ssl, int* alert, void* arg) {
  const auto& select = *static_cast<const TlsContext::SniCallback*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  try {
    std::optional<TlsContext> chosen = select(name != nullptr ? name : "");
    if (!chosen) return SSL_TLSEXT_ERR_OK;
    if (!chosen->is_server()) throw std::invalid_argument("it returned a client context");
    if (SSL_set_SSL_CTX(ssl, chosen->native_handle()) == nullptr) throw_tls("SSL_set_SSL_CTX");
    return SSL_TLSEXT_ERR_OK;
  } catch (...) {
    detail::report_error(absl::StrFormat("TLS server: the SNI callback failed for \"%s\": %s",
                                         name != nullptr ? name : "",
                                         describe_exception(std::current_exception())));
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
}

}  // namespace

void TlsContext::set_sni_callback(SniCallback select) {
  if (!server_) throw std::invalid_argument("set_sni_callback: a client context");
  if (!select) throw std::invalid_argument("set_sni_callback: an empty callback");
  const int index = sni_ex_index();
  if (index < 0) throw_tls("SSL_CTX_get_ex_new_index");
  auto* owned = new SniCallback(std::move(select));
  delete static_cast<SniCallback*>(SSL_CTX_get_ex_data(ctx_.get(), index));
  if (SSL_CTX_set_ex_data(ctx_.get(), index, owned) != 1) {
    delete owned;
    throw_tls("SSL_CTX_set_ex_data");
  }
  SSL_CTX_set_tlsext_servername_callback(ctx_.get(), on_server_name);
  SSL_CTX_set_tlsext_servername_arg(ctx_.get(), owned);
}

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
  auto layer = make_layer(context, /*server=*/false, server_hostname, "tls_client_stream");
  co_return co_await tls_stream(std::move(socket), std::move(layer), options);
}

Coro<std::pair<StreamReader, StreamWriter>> open_tls_connection(
    std::string host, std::uint16_t port, TlsContext context, StreamOptions options,
    std::optional<std::string> server_hostname) {
  auto layer =
      make_layer(context, /*server=*/false, server_hostname.value_or(host), "open_tls_connection");
  ConnectOptions c;
  c.timeout = options.connect_timeout;
  Socket s = co_await create_connection(host, port, c);
  co_return co_await tls_stream(std::move(s), std::move(layer), options);
}

Coro<std::pair<StreamReader, StreamWriter>> tls_server_stream(Socket socket, TlsContext context,
                                                              StreamOptions options) {
  auto layer = make_layer(context, /*server=*/true, "", "tls_server_stream");
  co_return co_await tls_stream(std::move(socket), std::move(layer), options);
}

Coro<void> start_tls(StreamReader& reader, StreamWriter& writer, TlsContext context,
                     std::string server_hostname) {
  auto layer = make_layer(context, context.is_server(), server_hostname, "start_tls");
  co_await detail::upgrade_stream(reader, writer, std::move(layer));
}

std::optional<TlsInfo> tls_info(const StreamWriter& writer) {
  const auto* layer = dynamic_cast<const TlsLayer*>(detail::stream_layer(writer));
  if (layer == nullptr) return std::nullopt;
  return layer->info();
}

namespace {
Coro<std::pair<StreamReader, StreamWriter>> server_handshake_within(Socket s, TlsContext context,
                                                                    StreamOptions options,
                                                                    Duration limit) {
  co_return co_await timeout(limit, tls_server_stream(std::move(s), std::move(context), options));
}
}  // namespace

StreamOpener tls_server_opener(TlsContext context, Duration handshake_timeout) {
  if (handshake_timeout <= Duration::zero()) {
    throw std::invalid_argument("tls_server_opener: handshake_timeout must be positive");
  }
  if (!context.is_server()) throw std::invalid_argument("tls_server_opener: a client context");
  return [context, handshake_timeout](Socket s, const StreamOptions& o) {
    return server_handshake_within(std::move(s), context, o, handshake_timeout);
  };
}

}  // namespace weft
