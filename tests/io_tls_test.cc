// TLS over streams: a CA and a server certificate are made at test time
// (OpenSSL API, EC P-256), then: verified connections, verification
// failures (untrusted CA, wrong host name), verification turned off, a
// server that survives a client that does not speak TLS, cancel-safety of
// reads, half-close with close_notify, what tls_info reports, and start_tls
// (STARTTLS upgrades: ordering, verification, refusals, cancellation).
// 127.0.0.1 only.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Watchdog;

// A hang guard, not a timing claim. Under TSan the instrumented OpenSSL takes
// 0.5-0.8 s to load the system CA store that a default client context reads.
constexpr std::chrono::seconds kLimit = testing::kSanitized ? 10s : 2s;

// --- Certificates -------------------------------------------------------------

struct Pki {
  std::string dir;
  std::string ca_cert, server_cert, server_key, other_ca_cert;
  // Signed by the same CA for another name (SNI), and for a client.
  std::string vhost_cert, vhost_key, client_cert, client_key;
};

void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  ASSERT_NE(e, nullptr) << "extension " << value;
  X509_add_ext(cert, e, -1);
  X509_EXTENSION_free(e);
}

X509* make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                const char* san = "IP:127.0.0.1,DNS:localhost", const char* eku = "serverAuth") {
  static long serial = 1;
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
  if (ca) {
    add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(x, &ctx, NID_subject_key_identifier, "hash");
  } else {
    add_ext(x, &ctx, NID_basic_constraints, "CA:FALSE");
    add_ext(x, &ctx, NID_subject_alt_name, san);
    add_ext(x, &ctx, NID_ext_key_usage, eku);
    add_ext(x, &ctx, NID_authority_key_identifier, "keyid");
  }
  X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256());
  return x;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  if (cert != nullptr) PEM_write_X509(f, cert);
  if (key != nullptr) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

const Pki& pki() {
  static Pki* p = [] {
    auto* p = new Pki;
    char tmpl[] = "/tmp/weft_io_tls_XXXXXX";
    p->dir = mkdtemp(tmpl);
    EVP_PKEY* ca_key = EVP_EC_gen("P-256");
    EVP_PKEY* server_key = EVP_EC_gen("P-256");
    EVP_PKEY* other_key = EVP_EC_gen("P-256");
    EVP_PKEY* vhost_key = EVP_EC_gen("P-256");
    X509* ca = make_cert(ca_key, "weft test CA", nullptr, nullptr, true);
    X509* server = make_cert(server_key, "weft test server", ca, ca_key, false);
    X509* other = make_cert(other_key, "unrelated CA", nullptr, nullptr, true);
    X509* vhost = make_cert(vhost_key, "weft test vhost", ca, ca_key, false, "DNS:vhost.test");
    EVP_PKEY* client_key = EVP_EC_gen("P-256");
    X509* client =
        make_cert(client_key, "weft test client", ca, ca_key, false, "DNS:client.test", "clientAuth");
    p->ca_cert = p->dir + "/ca.pem";
    p->server_cert = p->dir + "/server.pem";
    p->server_key = p->dir + "/server.key";
    p->other_ca_cert = p->dir + "/other_ca.pem";
    p->vhost_cert = p->dir + "/vhost.pem";
    p->vhost_key = p->dir + "/vhost.key";
    p->client_cert = p->dir + "/client.pem";
    p->client_key = p->dir + "/client.key";
    write_pem(p->ca_cert, ca, nullptr);
    write_pem(p->server_cert, server, nullptr);
    write_pem(p->server_key, nullptr, server_key);
    write_pem(p->other_ca_cert, other, nullptr);
    write_pem(p->vhost_cert, vhost, nullptr);
    write_pem(p->vhost_key, nullptr, vhost_key);
    write_pem(p->client_cert, client, nullptr);
    write_pem(p->client_key, nullptr, client_key);
    X509_free(client);
    EVP_PKEY_free(client_key);
    X509_free(vhost);
    EVP_PKEY_free(vhost_key);
    X509_free(ca);
    X509_free(server);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(other_key);
    return p;
  }();
  return *p;
}

class PkiCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    const Pki& p = pki();
    for (const auto& f :
         {p.ca_cert, p.server_cert, p.server_key, p.other_ca_cert, p.vhost_cert, p.vhost_key,
          p.client_cert, p.client_key}) {
      ::unlink(f.c_str());
    }
    ::rmdir(p.dir.c_str());
  }
};
const auto* const g_cleanup = ::testing::AddGlobalTestEnvironment(new PkiCleanup);

TlsContext trusting_client() {
  TlsContext c = TlsContext::client();
  c.load_verify_locations(pki().ca_cert);
  return c;
}

TlsContext server_context() { return TlsContext::server(pki().server_cert, pki().server_key); }

testing::ErrorLog g_sni_log;

Coro<void> echo_bytes(StreamReader r, StreamWriter w) {
  for (;;) {
    std::string data = co_await r.read(64 * 1024);
    if (data.empty()) break;
    w.write(data);
    co_await w.drain();
  }
  w.close();
  co_await w.wait_closed();
}

Coro<Server> tls_server(ConnectionHandler h = echo_bytes) {
  ServerOptions o;
  o.open_streams = tls_server_opener(server_context());
  co_return co_await start_server(std::move(h), "127.0.0.1", 0, std::move(o));
}

// --- Tests --------------------------------------------------------------------

WEFT_CO_TEST(IoTls, VerifiedEcho) {
  Watchdog wd(kLimit + 1s);
  Server server = co_await tls_server();
  auto [r, w] = co_await open_tls_connection("127.0.0.1", server.port(), trusting_client());
  w.write("hello over tls\n");
  co_await w.drain();
  EXPECT_EQ(co_await r.readline(), "hello over tls\n");
  // A large payload, concurrently written and read.
  std::string big(testing::scaled(1 << 20, 4), 'T');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 23);
  auto writer = create_task([](StreamWriter w, const std::string& data) -> Coro<void> {
    for (std::size_t off = 0; off < data.size(); off += 10000) {
      w.write(std::string_view(data).substr(off, 10000));
      co_await w.drain();
    }
  }(w, big));
  std::string back = co_await r.readexactly(big.size());
  co_await writer;
  EXPECT_TRUE(back == big);
  w.close();
  co_await w.wait_closed();
  EXPECT_EQ(co_await r.read(), "");
}

WEFT_CO_TEST(IoTls, HostNameFromTheCertificate) {
  Watchdog wd(kLimit);
  Server server = co_await tls_server();
  auto [r, w] = co_await open_tls_connection("127.0.0.1", server.port(), trusting_client(), {},
                                             "localhost");
  w.write("x\n");
  EXPECT_EQ(co_await r.readline(), "x\n");
}

WEFT_CO_TEST(IoTls, UntrustedCertificateFails) {
  Watchdog wd(kLimit);
  Server server = co_await tls_server();
  TlsContext other = TlsContext::client();
  other.load_verify_locations(pki().other_ca_cert);
  auto e = co_await testing::raises<CertificateVerifyError>(
      open_tls_connection("127.0.0.1", server.port(), other));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_NE(std::string(e->what()).find("certificate verify failed"), std::string::npos)
      << e->what();
  // The system store does not know our CA either.
  EXPECT_TRUE((co_await testing::raises<CertificateVerifyError>(
                   open_tls_connection("127.0.0.1", server.port(), TlsContext::client())))
                  .has_value());
}

WEFT_CO_TEST(IoTls, WrongHostNameFails) {
  Watchdog wd(kLimit);
  Server server = co_await tls_server();
  auto e = co_await testing::raises<CertificateVerifyError>(open_tls_connection(
      "127.0.0.1", server.port(), trusting_client(), {}, "wrong.example"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->verify_result(), X509_V_ERR_HOSTNAME_MISMATCH);
}

WEFT_CO_TEST(IoTls, VerificationCanBeTurnedOff) {
  Watchdog wd(kLimit);
  Server server = co_await tls_server();
  TlsContext c = TlsContext::client();
  c.set_verify(false);
  auto [r, w] = co_await open_tls_connection("127.0.0.1", server.port(), c, {}, "wrong.example");
  w.write("unverified\n");
  EXPECT_EQ(co_await r.readline(), "unverified\n");
}

WEFT_CO_TEST(IoTls, ServerSurvivesANonTlsClient) {
  Watchdog wd(kLimit);
  Server server = co_await tls_server();
  {
    Socket plain = co_await create_connection("127.0.0.1", server.port());
    co_await plain.sendall("GET / HTTP/1.1\r\n\r\n");
    // The handshake fails and the server drops the connection quietly.
    std::string rest;
    for (;;) {
      try {
        std::string part = co_await plain.recv(4096);
        if (part.empty()) break;
        rest += part;
      } catch (const ConnectionError&) {
        break;
      }
    }
  }
  auto [r, w] = co_await open_tls_connection("127.0.0.1", server.port(), trusting_client());
  w.write("still here\n");
  EXPECT_EQ(co_await r.readline(), "still here\n");
}

WEFT_CO_TEST(IoTls, ServerDropsAClientThatNeverFinishesItsHandshake) {
  Watchdog wd(kLimit + 2s);
  ServerOptions o;
  o.open_streams = tls_server_opener(server_context(), 100ms);
  Server server = co_await start_server(echo_bytes, "127.0.0.1", 0, std::move(o));
  Socket silent = co_await create_connection("127.0.0.1", server.port());
  EXPECT_TRUE(co_await testing::wait_until([&] { return server.active_connections() == 1; }));
  // Dropped after the timeout: the client sees the end of the stream.
  std::string got;
  try {
    got = co_await silent.recv(100);
  } catch (const ConnectionError&) {
  }
  EXPECT_EQ(got, "");
  EXPECT_TRUE(co_await testing::wait_until([&] { return server.active_connections() == 0; }));
  // Others are still served.
  auto [r, w] = co_await open_tls_connection("127.0.0.1", server.port(), trusting_client());
  w.write("after\n");
  EXPECT_EQ(co_await r.readline(), "after\n");
  EXPECT_THROW(tls_server_opener(server_context(), 0s), std::invalid_argument);
  EXPECT_THROW(tls_server_opener(trusting_client()), std::invalid_argument);
}

WEFT_CO_TEST(IoTls, CancelledReadConsumesNothing) {
  Watchdog wd(kLimit);
  Server server = co_await tls_server();
  auto [r, w] = co_await open_tls_connection("127.0.0.1", server.port(), trusting_client());
  auto t = create_task(r.readexactly(10));
  w.write("01234");
  co_await w.drain();
  co_await sleep(5ms);
  t.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(t)).has_value());
  w.write("56789");
  EXPECT_EQ(co_await r.readexactly(10), "0123456789");
}

WEFT_CO_TEST(IoTls, HalfCloseWithCloseNotify) {
  Watchdog wd(kLimit);
  Server server = co_await tls_server([](StreamReader r, StreamWriter w) -> Coro<void> {
    std::string all = co_await r.read();  // until the client's close_notify
    w.write("received " + std::to_string(all.size()));
    w.close();
    co_await w.wait_closed();
  });
  auto [r, w] = co_await open_tls_connection("127.0.0.1", server.port(), trusting_client());
  w.write(std::string(50000, 'h'));
  w.write_eof();
  EXPECT_EQ(co_await r.read(), "received 50000");
}

WEFT_CO_TEST(IoTls, ContextErrors) {
  EXPECT_THROW(TlsContext::server("/nonexistent/cert.pem", "/nonexistent/key.pem"), TlsError);
  TlsContext c = TlsContext::client();
  EXPECT_THROW(c.load_verify_locations("/nonexistent/ca.pem"), TlsError);
  auto [a, b] = Socket::pair();
  EXPECT_TRUE((co_await testing::raises<std::invalid_argument>(
                   tls_server_stream(std::move(a), TlsContext::client())))
                  .has_value());
  // A verifying client needs a name to verify against.
  auto [x, y] = Socket::pair();
  auto e = co_await testing::raises<std::invalid_argument>(
      tls_client_stream(std::move(x), trusting_client(), ""));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_NE(std::string(e->what()).find("server_hostname"), std::string::npos) << e->what();
}

WEFT_CO_TEST(IoTls, InfoNamesVersionCipherSniAndPeer) {
  Watchdog wd(kLimit);
  Future<std::string> server_saw;
  // Handlers with captures are named first (docs/pitfalls.md, g++ 12).
  ConnectionHandler handler = [server_saw](StreamReader r, StreamWriter w) -> Coro<void> {
    std::optional<TlsInfo> i = tls_info(w);
    server_saw.set_result(i ? i->server_name : "no TLS");
    co_await echo_bytes(r, w);
  };
  Server server = co_await tls_server(std::move(handler));
  auto [r, w] = co_await open_tls_connection("127.0.0.1", server.port(), trusting_client(), {},
                                             "localhost");
  std::optional<TlsInfo> info = tls_info(w);
  WEFT_CO_ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->version == "TLSv1.3" || info->version == "TLSv1.2") << info->version;
  EXPECT_FALSE(info->cipher.empty());
  EXPECT_EQ(info->server_name, "localhost");
  EXPECT_NE(info->peer_subject.find("weft test server"), std::string::npos) << info->peer_subject;
  EXPECT_EQ(co_await server_saw, "localhost");
  w.write("x\n");
  EXPECT_EQ(co_await r.readline(), "x\n");
  w.close();
  co_await w.wait_closed();
  auto [pr, pw] = co_await open_connection("127.0.0.1", server.port());
  EXPECT_FALSE(tls_info(pw).has_value());
}

WEFT_CO_TEST_WITH(IoTls, ServerPicksItsCertificateByTheNameAsked,
                  testing::logged_options(g_sni_log)) {
  Watchdog wd(kLimit + 1s);
  TlsContext vhost = TlsContext::server(pki().vhost_cert, pki().vhost_key);
  TlsContext server = server_context();
  server.set_sni_callback([vhost](std::string_view name) -> std::optional<TlsContext> {
    if (name == "vhost.test") return vhost;
    if (name == "broken.test") throw std::runtime_error("no certificate for broken.test");
    return std::nullopt;
  });
  ServerOptions o;
  o.open_streams = tls_server_opener(server);
  Server s = co_await start_server(echo_bytes, "127.0.0.1", 0, std::move(o));
  // Each name gets its certificate, verified against that name.
  for (const char* name : {"vhost.test", "localhost"}) {
    auto [r, w] = co_await open_tls_connection("127.0.0.1", s.port(), trusting_client(), {}, name);
    std::optional<TlsInfo> info = tls_info(w);
    WEFT_CO_ASSERT_TRUE(info.has_value());
    EXPECT_NE(info->peer_subject.find(std::string(name) == "localhost" ? "weft test server"
                                                                        : "weft test vhost"),
              std::string::npos)
        << name << ": " << info->peer_subject;
    w.write("hi\n");
    EXPECT_EQ(co_await r.readline(), "hi\n");
    w.close();
    co_await w.wait_closed();
  }
  // A callback that throws fails that handshake, reports why, and the
  // server goes on.
  // The log is process-wide: count from here (--gtest_repeat).
  const std::size_t logged = g_sni_log.size();
  const int reported = g_sni_log.count({"SNI callback", "no certificate for broken.test"});
  TlsContext unverified = TlsContext::client();
  unverified.set_verify(false);
  EXPECT_TRUE((co_await testing::raises<TlsError>(open_tls_connection(
                   "127.0.0.1", s.port(), unverified, {}, "broken.test")))
                  .has_value());
  EXPECT_TRUE(co_await testing::wait_until([&] { return g_sni_log.size() == logged + 1; }));
  EXPECT_EQ(g_sni_log.count({"SNI callback", "no certificate for broken.test"}), reported + 1)
      << g_sni_log.dump();
  auto [r, w] = co_await open_tls_connection("127.0.0.1", s.port(), trusting_client());
  w.write("still\n");
  EXPECT_EQ(co_await r.readline(), "still\n");
  EXPECT_THROW(TlsContext::client().set_sni_callback(
                   [](std::string_view) -> std::optional<TlsContext> { return std::nullopt; }),
               std::invalid_argument);
}

WEFT_CO_TEST(IoTls, MutualTlsRequiresAndVerifiesTheClientCertificate) {
  Watchdog wd(kLimit + 1s);
  TlsContext server = server_context();
  server.load_verify_locations(pki().ca_cert);
  server.set_verify(true);
  Future<std::string> client_seen;
  ConnectionHandler handler = [client_seen](StreamReader r, StreamWriter w) -> Coro<void> {
    std::optional<TlsInfo> i = tls_info(w);
    client_seen.try_set_result(i ? i->peer_subject : "no TLS");
    co_await echo_bytes(r, w);
  };
  ServerOptions o;
  o.open_streams = tls_server_opener(server);
  Server s = co_await start_server(std::move(handler), "127.0.0.1", 0, std::move(o));
  // A client with a certificate from the trusted CA is served.
  TlsContext with_cert = trusting_client();
  with_cert.load_cert_chain(pki().client_cert, pki().client_key);
  {
    auto [r, w] = co_await open_tls_connection("127.0.0.1", s.port(), with_cert);
    w.write("mutual\n");
    EXPECT_EQ(co_await r.readline(), "mutual\n");
    EXPECT_NE((co_await client_seen).find("weft test client"), std::string::npos);
    w.close();
    co_await w.wait_closed();
  }
  // One without is refused. With TLS 1.3 the client may finish its side of
  // the handshake first and learn of the refusal at its first read.
  bool refused = false;
  try {
    auto [r, w] = co_await open_tls_connection("127.0.0.1", s.port(), trusting_client());
    w.write("anonymous\n");
    refused = (co_await r.read(100)).empty();
  } catch (const TlsError&) {
    refused = true;
  } catch (const OSError&) {
    refused = true;
  }
  EXPECT_TRUE(refused);
}

// --- start_tls ------------------------------------------------------------------

// A STARTTLS server: "STARTTLS\n" in the clear, "220 go ahead\n", then TLS
// (start_tls's outcome goes to `upgraded`), then echo.
ConnectionHandler starttls_server(Future<std::string> upgraded) {
  return [upgraded](StreamReader r, StreamWriter w) -> Coro<void> {
    std::string line = co_await r.readline();
    if (line != "STARTTLS\n") {
      upgraded.set_result("unexpected " + line);
      co_return;
    }
    w.write("220 go ahead\n");
    std::string failure;
    try {
      co_await start_tls(r, w, server_context());
    } catch (const std::exception& e) {
      failure = std::string("failed: ") + e.what();
    }
    if (!failure.empty()) {
      // The stream stays failed: nothing more comes in the clear.
      EXPECT_TRUE((co_await testing::raises<std::exception>(r.read(100))).has_value());
      upgraded.set_result(failure);
      co_return;
    }
    std::optional<TlsInfo> i = tls_info(w);
    upgraded.set_result(i ? "tls " + i->server_name : "no TLS after start_tls");
    co_await echo_bytes(r, w);
  };
}

WEFT_CO_TEST(IoTls, StartTlsUpgradesAPlainConnection) {
  Watchdog wd(kLimit + 1s);
  Future<std::string> upgraded;
  Server server = co_await start_server(starttls_server(upgraded), "127.0.0.1", 0);
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  EXPECT_FALSE(tls_info(w).has_value());
  w.write("STARTTLS\n");
  EXPECT_EQ(co_await r.readline(), "220 go ahead\n");
  co_await start_tls(r, w, trusting_client(), "localhost");
  EXPECT_EQ(co_await upgraded, "tls localhost");
  std::optional<TlsInfo> info = tls_info(w);
  WEFT_CO_ASSERT_TRUE(info.has_value());
  EXPECT_NE(info->peer_subject.find("weft test server"), std::string::npos);
  // The same reader and writer now carry TLS, large writes included.
  std::string big(testing::scaled(1 << 20, 4), 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('A' + i % 26);
  w.write(big);
  EXPECT_TRUE(co_await r.readexactly(big.size()) == big);
  w.close();
  co_await w.wait_closed();
  EXPECT_EQ(co_await r.read(), "");
}

WEFT_CO_TEST(IoTls, StartTlsVerifiesTheServer) {
  Watchdog wd(kLimit);
  Future<std::string> upgraded;
  Server server = co_await start_server(starttls_server(upgraded), "127.0.0.1", 0);
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  w.write("STARTTLS\n");
  EXPECT_EQ(co_await r.readline(), "220 go ahead\n");
  auto e = co_await testing::raises<CertificateVerifyError>(
      start_tls(r, w, trusting_client(), "wrong.example"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->verify_result(), X509_V_ERR_HOSTNAME_MISMATCH);
  // The failed stream keeps failing with that error, both ways.
  EXPECT_TRUE((co_await testing::raises<CertificateVerifyError>(r.read(10))).has_value());
  EXPECT_THROW(w.write("x"), CertificateVerifyError);
  // The server's handshake failed too, and the connection is down.
  EXPECT_NE((co_await upgraded).find("failed"), std::string::npos);
}

WEFT_CO_TEST(IoTls, StartTlsRefusesAPeerThatStaysInTheClear) {
  Watchdog wd(kLimit);
  Future<std::string> upgraded;
  Server server = co_await start_server(starttls_server(upgraded), "127.0.0.1", 0);
  Socket c = co_await create_connection("127.0.0.1", server.port());
  co_await c.sendall("STARTTLS\n");
  std::string reply;
  while (reply.find('\n') == std::string::npos) reply += co_await c.recv(100);
  EXPECT_EQ(reply, "220 go ahead\n");
  co_await c.sendall("MAIL FROM:<a@b> in the clear\r\n");
  std::string outcome = co_await upgraded;
  EXPECT_NE(outcome.find("failed"), std::string::npos) << outcome;
}

// One worker, so that the task writing "during the handshake" runs only
// once start_tls has begun (it suspends first waiting for the plain reply
// to be sent).
WEFT_CO_TEST_WITH(IoTls, StartTlsSendsWhatWasQueuedInTheClearFirst, testing::test_options(1)) {
  Watchdog wd(kLimit + 4s);
  // The server answers STARTTLS with a large plain reply and upgrades at
  // once, while most of the reply is still queued (the client's receive
  // and the server's send buffers are small and the client does not read
  // yet); a write and a close() made after start_tls began go out over
  // TLS, after the handshake.
  constexpr std::size_t kReply = 1 << 20;
  Future<std::size_t> queued_at_upgrade;
  ConnectionHandler handler =
      [queued_at_upgrade](StreamReader r, StreamWriter w) -> Coro<void> {
        // A fixed, small send buffer (no autotuning), so the reply must queue.
        const int small = 4096;
        EXPECT_EQ(setsockopt(w.socket().fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
        EXPECT_EQ(co_await r.readline(), "STARTTLS\n");
        w.write(std::string(kReply, 'p'));
        w.write("\n");
        queued_at_upgrade.set_result(w.buffered());
        auto late = create_task([](StreamWriter w) -> Coro<void> {
          w.write("written during the handshake\n");
          w.close();  // takes effect after the upgrade and the held line
          co_return;
        }(w));
        co_await start_tls(r, w, server_context());
        co_await late;
        co_await w.wait_closed();
      };
  Server server = co_await start_server(std::move(handler), "127.0.0.1", 0);
  Socket s(AF_INET, SOCK_STREAM);
  s.set_option(SOL_SOCKET, SO_RCVBUF, 4096);
  co_await s.connect(SocketAddress::parse_ip("127.0.0.1", server.port()).value());
  auto [r, w] = open_stream(std::move(s));
  w.write("STARTTLS\n");
  EXPECT_GT(co_await queued_at_upgrade, 0u);
  std::string plain = co_await r.readexactly(kReply + 1);
  EXPECT_EQ(plain.find_first_not_of('p'), kReply);
  co_await start_tls(r, w, trusting_client(), "localhost");
  EXPECT_EQ(co_await r.readline(), "written during the handshake\n");
  EXPECT_EQ(co_await r.read(), "");  // then the close, over TLS (close_notify)
}

WEFT_CO_TEST(IoTls, StartTlsWhileEarlierDataIsSentFailsWithTheConnection) {
  Watchdog wd(kLimit + 4s);
  // The peer accepts, reads nothing, then resets the connection while
  // start_tls waits for the queue to drain: start_tls raises the
  // connection's error and the stream stays plain and failed.
  Socket listener = create_server(SocketAddress::ipv4("127.0.0.1", 0));
  Socket s(AF_INET, SOCK_STREAM);
  s.set_option(SOL_SOCKET, SO_SNDBUF, 4096);
  co_await s.connect(SocketAddress::ipv4("127.0.0.1", listener.local_address().port()));
  auto [peer, addr] = co_await listener.accept();
  auto [r, w] = open_stream(std::move(s));
  w.write(std::string(static_cast<std::size_t>(testing::scaled(16 << 20, 4)), 'q'));
  WEFT_CO_ASSERT_TRUE(w.buffered() > 0);
  auto up = create_task(start_tls(r, w, trusting_client(), "localhost"));
  co_await testing::yield_times(3);
  EXPECT_FALSE(up.done());
  peer.set_linger(0);
  peer.close();  // RST
  auto e = co_await testing::raises<OSError>(up);
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->code() == ECONNRESET || e->code() == EPIPE) << e->what();
  EXPECT_FALSE(tls_info(w).has_value());
  EXPECT_THROW(w.write("x"), OSError);
}

WEFT_CO_TEST(IoTls, StartTlsArgumentErrors) {
  Watchdog wd(kLimit);
  Server server = co_await start_server(echo_bytes, "127.0.0.1", 0);
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  auto [r2, w2] = co_await open_connection("127.0.0.1", server.port());
  // Not one stream.
  EXPECT_TRUE((co_await testing::raises<std::invalid_argument>(
                   start_tls(r, w2, trusting_client(), "localhost")))
                  .has_value());
  // No name to verify.
  EXPECT_TRUE(
      (co_await testing::raises<std::invalid_argument>(start_tls(r, w, trusting_client())))
          .has_value());
  // A read in progress.
  auto reading = create_task(r.read(10));
  co_await testing::yield_times(3);
  auto busy = co_await testing::raises<RuntimeError>(start_tls(r, w, trusting_client(), "x"));
  WEFT_CO_ASSERT_TRUE(busy.has_value());
  EXPECT_NE(std::string(busy->what()).find("read is in progress"), std::string::npos);
  // Bytes received and not read: refused, and still readable.
  w.write("unread");
  EXPECT_EQ(co_await reading, "unread");
  w.write("1234");
  EXPECT_EQ(co_await r.readexactly(2), "12");
  auto unread = co_await testing::raises<RuntimeError>(start_tls(r, w, trusting_client(), "x"));
  WEFT_CO_ASSERT_TRUE(unread.has_value());
  EXPECT_NE(std::string(unread->what()).find("2 bytes"), std::string::npos) << unread->what();
  EXPECT_EQ(co_await r.readexactly(2), "34");
  // A closed writer.
  w2.close();
  EXPECT_TRUE((co_await testing::raises<RuntimeError>(
                   start_tls(r2, w2, trusting_client(), "localhost")))
                  .has_value());
}

WEFT_CO_TEST(IoTls, StartTlsCancelledDuringTheHandshakeAbortsTheStream) {
  Watchdog wd(kLimit);
  // A server that takes STARTTLS and then never answers the handshake.
  Future<void> peer_saw_end;
  ConnectionHandler handler =
      [peer_saw_end](StreamReader r, StreamWriter w) -> Coro<void> {
        EXPECT_EQ(co_await r.readline(), "STARTTLS\n");
        w.write("220 go ahead\n");
        while (!(co_await r.read(4096)).empty()) {
        }
        peer_saw_end.set_result();
      };
  Server server = co_await start_server(std::move(handler), "127.0.0.1", 0);
  auto [r, w] = co_await open_connection("127.0.0.1", server.port());
  w.write("STARTTLS\n");
  EXPECT_EQ(co_await r.readline(), "220 go ahead\n");
  auto up = create_task(start_tls(r, w, trusting_client(), "localhost"));
  co_await sleep(20ms);
  EXPECT_FALSE(up.done());
  up.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(up)).has_value());
  // Shut down: the server sees the end; the streams fail.
  co_await peer_saw_end;
  EXPECT_TRUE((co_await testing::raises<ConnectionAbortedError>(r.read(1))).has_value());
  EXPECT_THROW(w.write("x"), ConnectionAbortedError);
}

WEFT_CO_TEST(IoTls, StartTlsCancelledWhileEarlierDataIsSentChangesNothing) {
  Watchdog wd(kLimit + 4s);
  Server server = co_await start_server(echo_bytes, "127.0.0.1", 0);
  Socket s(AF_INET, SOCK_STREAM);
  s.set_option(SOL_SOCKET, SO_SNDBUF, 4096);
  co_await s.connect(SocketAddress::parse_ip("127.0.0.1", server.port()).value());
  auto [r, w] = open_stream(std::move(s));
  // The echo server returns what it gets; nobody reads it yet, so the
  // client's queue stays full.
  const std::size_t kBig = static_cast<std::size_t>(testing::scaled(16 << 20, 4));
  w.write(std::string(kBig, 'q'));
  WEFT_CO_ASSERT_TRUE(w.buffered() > 0);
  auto up = create_task(start_tls(r, w, trusting_client(), "localhost"));
  co_await testing::yield_times(3);
  up.cancel();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(up)).has_value());
  // Still a plain stream: everything comes back, and more can be sent.
  w.write("end\n");
  std::string back = co_await r.readexactly(kBig + 4);
  EXPECT_EQ(back.find_first_not_of('q'), kBig);
  EXPECT_FALSE(tls_info(w).has_value());
}

}  // namespace
}  // namespace weft
