// SocketAddress (an IPv4, IPv6 or Unix-domain address) and name resolution.
//
// resolve() never blocks a loop: numeric hosts ("127.0.0.1", "::1") are
// parsed in place, anything else goes through getaddrinfo on the runtime's
// to_thread pool.
//
// Thread safety: SocketAddress is a value type.
#pragma once

#include "weft/core/detail/requires_cxx20.h"  // first: one clear error below C++20

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/coro.h"

namespace weft {

class SocketAddress {
 public:
  // AF_UNSPEC, size 0.
  SocketAddress() noexcept;
  // A copy of a sockaddr (e.g. from accept or getpeername). std::invalid_argument
  // if `len` is larger than sockaddr_storage.
  SocketAddress(const sockaddr* addr, socklen_t len);

  // Numeric IPv4 / IPv6 addresses; std::invalid_argument if `host` is not one.
  static SocketAddress ipv4(std::string_view host, std::uint16_t port);
  static SocketAddress ipv6(std::string_view host, std::uint16_t port);
  // Either family, if `host` is a numeric address (an IPv6 one may be in
  // brackets and carry a %scope); nullopt otherwise.
  static std::optional<SocketAddress> parse_ip(std::string_view host, std::uint16_t port);
  // A Unix-domain address. A path starting with '@' names an abstract socket
  // (Linux). std::invalid_argument if it does not fit in sun_path.
  static SocketAddress unix_path(std::string_view path);

  int family() const noexcept { return storage_.ss_family; }
  bool is_ip() const noexcept { return family() == AF_INET || family() == AF_INET6; }
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }
  // For filling by a system call: the capacity, then set_size(result).
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
  void set_size(socklen_t len) noexcept { len_ = len; }

  // The numeric host ("127.0.0.1", "::1"); "" for other families.
  std::string host() const;
  // The port (host order); 0 for other families.
  std::uint16_t port() const noexcept;
  // A Unix-domain path ("@name" for an abstract one); "" for other families.
  std::string path() const;
  // "127.0.0.1:80", "[::1]:80", "unix:/tmp/s", "unix:@name", "unix:(unnamed)".
  std::string to_string() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_;
};

// getaddrinfo's answers for (host, port): addresses in the resolver's order.
// `family` AF_UNSPEC / AF_INET / AF_INET6; `socktype` SOCK_STREAM or
// SOCK_DGRAM; `flags` AI_* (AI_PASSIVE for a server; an empty host then
// means every local address). Numeric hosts do not leave the loop.
// Throws GaiError (weft/io/errors.h) when the name does not resolve.
[[nodiscard]] Coro<std::vector<SocketAddress>> resolve(std::string host, std::uint16_t port,
                                                       int family = AF_UNSPEC,
                                                       int socktype = SOCK_STREAM,
                                                       int flags = 0);

}  // namespace weft
