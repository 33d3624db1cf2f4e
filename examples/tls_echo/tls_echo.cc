// A TLS echo server and its client, on weft streams and OpenSSL.
//
//   tls_echo server [--port=0] [--workers=0] [--max-seconds=60]
//       Makes its own PKI at start-up: a CA and a server certificate for
//       "localhost" and 127.0.0.1 signed by it (EC P-256, valid for a day),
//       written to a fresh directory under /tmp (the key readable by the
//       owner only). Prints "CA <path of the CA certificate>" (what clients
//       must trust) and "LISTEN <port>" on stdout, then echoes every byte
//       back over TLS on 127.0.0.1. Stops gracefully on SIGINT or SIGTERM
//       (or after --max-seconds): stops accepting, gives open connections a
//       second to finish, then cancels them, removes its PKI directory and
//       exits 0.
//   tls_echo client --port=N --ca=FILE [--server-name=localhost]
//                   [--connections=8] [--messages=100] [--size=64]
//       Opens the connections at once to 127.0.0.1, verifying the server's
//       certificate against the CA in FILE (without --ca: the system's CAs)
//       and its name against --server-name (sent as SNI too). Each
//       connection sends its messages one by one and checks every echo.
//       Prints "OK <n> messages" and exits 0, or exits 1 on the first
//       mismatch or error (a certificate that does not verify included).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "examples/example_support.h"
#include "weft/weft.h"

namespace {

using namespace std::chrono_literals;

// --- The server's PKI ---------------------------------------------------------
// The approach of tests/io_tls_test.cc: OpenSSL's API, no openssl(1) needed.

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

Key make_key() {
  Key k(EVP_EC_gen("P-256"));
  if (!k) throw std::runtime_error("EVP_EC_gen failed");
  return k;
}

void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (e == nullptr) throw std::runtime_error(std::string("bad certificate extension ") + value);
  X509_add_ext(cert, e, -1);
  X509_EXTENSION_free(e);
}

// A CA certificate (self-signed) when issuer is null, else a server
// certificate for localhost and 127.0.0.1 signed by the issuer.
Cert make_cert(EVP_PKEY* key, const char* common_name, X509* issuer, EVP_PKEY* issuer_key,
               long serial) {
  Cert x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 24 * 3600);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509_set_issuer_name(x.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
  if (issuer == nullptr) {
    add_ext(x.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(x.get(), &ctx, NID_subject_key_identifier, "hash");
  } else {
    add_ext(x.get(), &ctx, NID_basic_constraints, "CA:FALSE");
    add_ext(x.get(), &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    add_ext(x.get(), &ctx, NID_ext_key_usage, "serverAuth");
    add_ext(x.get(), &ctx, NID_authority_key_identifier, "keyid");
  }
  if (X509_sign(x.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    throw std::runtime_error("X509_sign failed");
  }
  return x;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  const bool ok = cert != nullptr
                      ? PEM_write_X509(f, cert) == 1
                      : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (std::fclose(f) != 0 || !ok) throw std::runtime_error("cannot write " + path);
}

// The files of a fresh CA and server certificate; removed by the destructor.
class ServerPki {
 public:
  ServerPki() {
    char tmpl[] = "/tmp/weft_tls_echo_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    ca_cert_ = dir_ + "/ca.pem";
    server_cert_ = dir_ + "/server.pem";
    server_key_ = dir_ + "/server.key";
    Key ca_key = make_key();
    Key server_key = make_key();
    Cert ca = make_cert(ca_key.get(), "weft tls_echo CA", nullptr, nullptr, 1);
    Cert server = make_cert(server_key.get(), "localhost", ca.get(), ca_key.get(), 2);
    write_pem(ca_cert_, ca.get(), nullptr);
    write_pem(server_cert_, server.get(), nullptr);
    const mode_t old_mask = umask(077);  // the key: owner only
    write_pem(server_key_, nullptr, server_key.get());
    umask(old_mask);
  }
  ~ServerPki() {
    for (const std::string& f : {ca_cert_, server_cert_, server_key_}) ::unlink(f.c_str());
    ::rmdir(dir_.c_str());
  }
  ServerPki(const ServerPki&) = delete;
  ServerPki& operator=(const ServerPki&) = delete;

  const std::string& ca_cert() const { return ca_cert_; }
  const std::string& server_cert() const { return server_cert_; }
  const std::string& server_key() const { return server_key_; }

 private:
  std::string dir_, ca_cert_, server_cert_, server_key_;
};

// --- server -------------------------------------------------------------------

weft::Coro<void> handle_echo(weft::StreamReader r, weft::StreamWriter w) {
  try {
    for (;;) {
      std::string data = co_await r.read(64 * 1024);
      if (data.empty()) break;  // the client's close_notify (or a plain EOF)
      w.write(data);
      co_await w.drain();  // backpressure: never queue more than the high-water mark
    }
  } catch (const weft::ConnectionError&) {
    // The client reset the connection or stopped reading: its way to leave.
  } catch (const weft::TlsError&) {
    // The client broke the TLS session off (a truncated record, an alert).
  }
  w.close();  // sends close_notify, then shuts the connection down
  co_await w.wait_closed();
}

weft::Coro<void> forward_signal(weft::Future<int> stop) {
  int sig = co_await weft::wait_signal(SIGINT, SIGTERM);
  stop.try_set_result(sig);
}

weft::Coro<int> run_server(std::uint16_t port, long max_seconds) {
  ServerPki pki;
  weft::ServerOptions options;
  options.open_streams =
      weft::tls_server_opener(weft::TlsContext::server(pki.server_cert(), pki.server_key()));
  weft::Server server = co_await weft::start_server(handle_echo, "127.0.0.1", port, options);
  std::printf("CA %s\nLISTEN %u\n", pki.ca_cert().c_str(), server.port());
  std::fflush(stdout);

  weft::Future<int> stop;  // the signal number, or 0 for the time limit
  auto signals = weft::create_task(forward_signal(stop));
  weft::TimerHandle limit =
      weft::call_later(std::chrono::seconds(max_seconds), [stop] { stop.try_set_result(0); });
  const int why = co_await stop;
  signals.cancel();
  limit.cancel();

  // Graceful shutdown: no new connections; a second for the open ones.
  co_await weft_examples::close_gracefully(server, 1s);
  std::fprintf(stderr, "tls_echo server: stopped by %s after %llu connections\n",
               why ? strsignal(why) : "the time limit",
               static_cast<unsigned long long>(server.accepted_connections()));
  co_return 0;
}

// --- client -------------------------------------------------------------------

weft::Coro<long> client_connection(std::uint16_t port, weft::TlsContext context,
                                   std::string server_name, long messages, long size, int id) {
  auto [r, w] = co_await weft::open_tls_connection("127.0.0.1", port, std::move(context), {},
                                                   std::move(server_name));
  long ok = 0;
  for (long m = 0; m < messages; ++m) {
    std::string msg(static_cast<std::size_t>(size), '\0');
    for (long i = 0; i < size; ++i) msg[i] = static_cast<char>('a' + (id * 7 + m + i) % 26);
    w.write(msg);
    co_await w.drain();
    if (co_await r.readexactly(msg.size()) != msg) {
      throw std::runtime_error("echo mismatch on connection " + std::to_string(id));
    }
    ++ok;
  }
  w.close();
  co_await w.wait_closed();
  co_return ok;
}

weft::Coro<int> run_client(std::uint16_t port, std::string ca_file, std::string server_name,
                           long connections, long messages, long size) {
  weft::TlsContext context = weft::TlsContext::client();  // verifies by default
  if (!ca_file.empty()) context.load_verify_locations(ca_file);
  std::vector<weft::Task<long>> tasks;
  for (long c = 0; c < connections; ++c) {
    tasks.push_back(weft::create_task(
        client_connection(port, context, server_name, messages, size, static_cast<int>(c))));
  }
  co_return co_await weft_examples::join_clients(std::move(tasks), "tls_echo client", "messages");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s server|client [--flags]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  try {
    const weft_examples::Flags f(argc, argv, 2);
    weft::RuntimeOptions options;
    options.workers = static_cast<std::uint32_t>(f.number("workers", 0));
    if (mode == "server") {
      return weft::run(
          run_server(static_cast<std::uint16_t>(f.number("port", 0)), f.number("max-seconds", 60)),
          std::move(options));
    }
    if (mode == "client") {
      return weft::run(
          run_client(static_cast<std::uint16_t>(f.number("port", 0)), f.text("ca", std::string()),
                     f.text("server-name", std::string("localhost")), f.number("connections", 8),
                     f.number("messages", 100), f.number("size", 64)),
          std::move(options));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  std::fprintf(stderr, "unknown mode '%s'\n", mode.c_str());
  return 2;
}
