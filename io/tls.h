// TLS over streams, with OpenSSL (asyncio's ssl= arguments).
//
//   weft::TlsContext ctx = weft::TlsContext::client();      // verifies by default
//   auto [r, w] = co_await weft::open_tls_connection("example.org", 443, ctx);
//
//   weft::ServerOptions o;
//   o.open_streams = weft::tls_server_opener(
//       weft::TlsContext::server("cert.pem", "key.pem"));
//   weft::Server s = co_await weft::start_server(handler, "127.0.0.1", 8443, o);
//
// Verification is on by default for clients: the server's chain must lead
// to a trusted CA (the system store, or load_verify_locations) and its
// certificate must match the host name (or IP address) connected to.
// Failures raise CertificateVerifyError; other TLS failures TlsError
// (weft/io/errors.h); socket failures OSError as usual. TLS 1.2 or later.
//
// STARTTLS-style protocols (SMTP, IMAP, PostgreSQL) speak in the clear
// first and upgrade the open connection with start_tls (asyncio's
// StreamWriter.start_tls); the same reader and writer then carry TLS.
//
// Design: a TLS layer (detail::StreamLayer, under the stream's transport)
// drives a non-blocking SSL object on the socket. SSL_read / SSL_write /
// SSL_do_handshake run under a per-connection mutex (OpenSSL does not
// allow concurrent calls on one SSL object, and the reader and the writer
// may run on two workers);
// WANT_READ / WANT_WRITE wait on the socket's registration outside the lock.
// The cancel-safety contract of weft/io/streams.h holds unchanged (a read
// is cancellable only while SSL_read wants more input, which consumed no
// application data). A failed or cancelled handshake closes the socket.
// Peers that close without close_notify are treated as a clean end of
// stream (like Python's suppress_ragged_eofs). SIGPIPE is ignored (see
// weft/io/socket.h) since OpenSSL writes to the socket with write(2).
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/core/coro.h"
#include "weft/io/server.h"
#include "weft/io/socket.h"
#include "weft/io/streams.h"
#include "weft/sched/clock.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace weft {

// An OpenSSL SSL_CTX (shared by copies; immutable once connections use it).
class TlsContext {
 public:
  // A client context: peer verification on, system CA store, TLS >= 1.2.
  static TlsContext client();
  // A server context presenting `cert_chain_file` (PEM, leaf first) with
  // `key_file` (PEM). TlsError if they cannot be loaded or do not match.
  static TlsContext server(const std::string& cert_chain_file, const std::string& key_file);

  // Trusts the CA certificates in `cafile` (PEM).
  void load_verify_locations(const std::string& cafile);
  // Client: verify the server (default on). Server: require and verify a
  // client certificate (default off).
  void set_verify(bool on);
  // Presents this certificate chain (servers; or clients, for mutual TLS).
  void load_cert_chain(const std::string& cert_chain_file, const std::string& key_file);

  // Servers: chooses the certificate for each connection by the name the
  // client asked for (SNI; "" when it sent none), as Python's
  // SSLContext.sni_callback does. `select` returns the server context whose
  // certificate and key to present, or nullopt to keep this one's; the
  // other settings (protocol versions, client verification) stay this
  // context's. It runs during the handshake, on a worker, under the
  // connection's TLS lock: it must not block. If it throws (or returns a
  // client context) the handshake fails with an alert, and the exception
  // goes to the runtime's error handler. Set it before connections use the
  // context; std::invalid_argument on a client context.
  using SniCallback = std::function<std::optional<TlsContext>(std::string_view server_name)>;
  void set_sni_callback(SniCallback select);

  SSL_CTX* native_handle() const noexcept { return ctx_.get(); }
  bool is_server() const noexcept { return server_; }

 private:
  TlsContext(std::shared_ptr<SSL_CTX> ctx, bool server) : ctx_(std::move(ctx)), server_(server) {}
  std::shared_ptr<SSL_CTX> ctx_;
  bool server_ = false;
};

// Runs the client handshake on a connected socket and returns the streams.
// `server_hostname` is sent as SNI and checked against the certificate (an
// IP address is checked as one).
[[nodiscard]] Coro<std::pair<StreamReader, StreamWriter>> tls_client_stream(
    Socket socket, TlsContext context, std::string server_hostname, StreamOptions options = {});
// Connects over TCP, then as above (server_hostname defaults to `host`).
[[nodiscard]] Coro<std::pair<StreamReader, StreamWriter>> open_tls_connection(
    std::string host, std::uint16_t port, TlsContext context, StreamOptions options = {},
    std::optional<std::string> server_hostname = std::nullopt);
// Runs the server handshake on an accepted socket.
[[nodiscard]] Coro<std::pair<StreamReader, StreamWriter>> tls_server_stream(
    Socket socket, TlsContext context, StreamOptions options = {});
// For ServerOptions::open_streams: every connection does the server
// handshake with `context` before the handler runs. A client that has not
// finished its handshake within `handshake_timeout` is dropped (asyncio's
// ssl_handshake_timeout, 60 s by default), so clients that connect and
// never speak do not hold a connection each for ever.
StreamOpener tls_server_opener(TlsContext context,
                               Duration handshake_timeout = std::chrono::seconds(60));

// Upgrades an open plain stream to TLS in place (asyncio's
// StreamWriter.start_tls): `reader` and `writer` go on working, over TLS.
// A server context runs the server side of the handshake, a client context
// the client side, with `server_hostname` sent as SNI and verified (needed
// unless the context does not verify).
//  - Data written before the call is sent in the clear first (the call
//    waits for it); data written from the call on, by any task, is held and
//    sent over TLS after the handshake, and so is a close() or write_eof().
//  - Call it where the protocol has the peer wait (after "220 Ready to
//    start TLS" or its like). Bytes already received and not yet read are
//    refused, RuntimeError, rather than served as if they came over TLS
//    (they came in the clear: docs/io.md, "start_tls").
//  - RuntimeError also if a read is in progress, the writer is closed or
//    half-closed, or the stream has TLS already.
//  - Cancel safety: a call cancelled while it waits for earlier data to be
//    sent changes nothing; one that fails or is cancelled during the
//    handshake shuts the connection down, and every later read or write
//    raises that error (ConnectionAbortedError for a cancellation).
[[nodiscard]] Coro<void> start_tls(StreamReader& reader, StreamWriter& writer,
                                   TlsContext context, std::string server_hostname = {});

// What a TLS stream negotiated (asyncio's get_extra_info("ssl_object")).
struct TlsInfo {
  std::string version;       // "TLSv1.3"
  std::string cipher;        // "TLS_AES_256_GCM_SHA384"
  std::string server_name;   // the SNI name (sent by a client, received by a server)
  std::string peer_subject;  // the peer certificate's subject, "" without one
};
// The TLS parameters of `writer`'s stream; nullopt for a plain stream.
std::optional<TlsInfo> tls_info(const StreamWriter& writer);

}  // namespace weft
