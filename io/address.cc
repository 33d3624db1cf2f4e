#include "weft/io/address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "absl/strings/str_format.h"
#include "weft/io/errors.h"
#include "weft/sched/to_thread.h"

namespace weft {

SocketAddress::SocketAddress() noexcept : storage_{}, len_(0) { storage_.ss_family = AF_UNSPEC; }

SocketAddress::SocketAddress(const sockaddr* addr, socklen_t len) : storage_{}, len_(len) {
  if (len > sizeof storage_) throw std::invalid_argument("SocketAddress: sockaddr too large");
  std::memcpy(&storage_, addr, len);
  if (len < sizeof(sa_family_t)) storage_.ss_family = AF_UNSPEC;
}

SocketAddress SocketAddress::ipv4(std::string_view host, std::uint16_t port) {
  SocketAddress a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.storage_);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), &in->sin_addr) != 1) {
    throw std::invalid_argument(absl::StrFormat("not a numeric IPv4 address: '%s'", host));
  }
  a.len_ = sizeof(sockaddr_in);
  return a;
}

SocketAddress SocketAddress::ipv6(std::string_view host, std::uint16_t port) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  SocketAddress a;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  std::string h(host);
  if (auto pct = h.find('%'); pct != std::string::npos) {
    std::string scope = h.substr(pct + 1);
    h.resize(pct);
    unsigned idx = if_nametoindex(scope.c_str());
    if (idx == 0) {
      char* end = nullptr;
      unsigned long v = std::strtoul(scope.c_str(), &end, 10);
      if (end == scope.c_str() || *end != '\0') {
        throw std::invalid_argument(absl::StrFormat("unknown IPv6 scope: '%s'", scope));
      }
      idx = static_cast<unsigned>(v);
    }
    in6->sin6_scope_id = idx;
  }
  if (inet_pton(AF_INET6, h.c_str(), &in6->sin6_addr) != 1) {
    throw std::invalid_argument(absl::StrFormat("not a numeric IPv6 address: '%s'", host));
  }
  a.len_ = sizeof(sockaddr_in6);
  return a;
}

std::optional<SocketAddress> SocketAddress::parse_ip(std::string_view host, std::uint16_t port) {
  try {
    if (host.find(':') != std::string_view::npos) return ipv6(host, port);
    return ipv4(host, port);
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

SocketAddress SocketAddress::unix_path(std::string_view path) {
  SocketAddress a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
  un->sun_family = AF_UNIX;
  const bool abstract = !path.empty() && path.front() == '@';
  // A filesystem path needs its terminating NUL; an abstract name does not.
  if (path.size() + (abstract ? 0 : 1) > sizeof un->sun_path) {
    throw std::invalid_argument(absl::StrFormat("Unix socket path too long: '%s'", path));
  }
  std::memcpy(un->sun_path, path.data(), path.size());
  if (abstract) un->sun_path[0] = '\0';
  a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                  (abstract ? 0 : 1));
  return a;
}

std::string SocketAddress::host() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
    return buf;
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof buf);
    return buf;
  }
  return "";
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::string SocketAddress::path() const {
  if (family() != AF_UNIX) return "";
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
  const std::size_t off = offsetof(sockaddr_un, sun_path);
  if (len_ <= off) return "";
  std::size_t n = len_ - off;
  if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, n - 1);
  return std::string(un->sun_path, strnlen(un->sun_path, n));
}

std::string SocketAddress::to_string() const {
  switch (family()) {
    case AF_INET:
      return absl::StrFormat("%s:%d", host(), port());
    case AF_INET6:
      return absl::StrFormat("[%s]:%d", host(), port());
    case AF_UNIX: {
      std::string p = path();
      return p.empty() ? "unix:(unnamed)" : "unix:" + p;
    }
    default:
      return absl::StrFormat("(family %d)", family());
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

namespace {

std::vector<SocketAddress> blocking_getaddrinfo(const std::string& host, std::uint16_t port,
                                                int family, int socktype, int flags) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_flags = flags | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc == EAI_SYSTEM) throw_errno("getaddrinfo");
  if (rc != 0) throw GaiError(rc, host);
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, freeaddrinfo);
  std::vector<SocketAddress> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    SocketAddress a(ai->ai_addr, ai->ai_addrlen);
    bool dup = false;
    for (const auto& b : out) dup = dup || b == a;
    if (!dup) out.push_back(a);
  }
  return out;
}

}  // namespace

Coro<std::vector<SocketAddress>> resolve(std::string host, std::uint16_t port, int family,
                                         int socktype, int flags) {
  if (auto a = SocketAddress::parse_ip(host, port)) {
    if (family == AF_UNSPEC || family == a->family()) co_return std::vector<SocketAddress>{*a};
  }
  co_return co_await to_thread(blocking_getaddrinfo, std::move(host), port, family, socktype,
                               flags);
}

}  // namespace weft
