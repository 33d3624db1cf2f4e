#include "weft/io/server.h"

#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/future.h"
#include "weft/core/task.h"
#include "weft/io/detail/wakeups.h"
#include "weft/sched/cancel_scope.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace detail {

// The one way to make a Server handle from its state.
struct ServerAccess {
  static Server server(std::shared_ptr<ServerState> s) { return Server(std::move(s)); }
};

}  // namespace detail

namespace detail {

// Shared by the Server handle, the accept tasks (one per listener) and the
// connection tasks. `mu_` guards the bookkeeping; each listener is used only
// by its accept task once started (which closes it when it stops).
class ServerState : public std::enable_shared_from_this<ServerState> {
 public:
  ServerState(ConnectionHandler handler, std::vector<Socket> listeners, ServerOptions options)
      : handler_(std::move(handler)), options_(std::move(options)), listeners_(std::move(listeners)) {
    for (const Socket& l : listeners_) addresses_.push_back(l.local_address());
  }

  void start() {
    detail::SpinLockHolder lock(&mu_);
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
      accept_tasks_.push_back(create_task(accept_loop(AcceptLease(shared_from_this(), i))));
      ++accept_loops_running_;
    }
  }

  void close() {
    std::vector<Task<void>> tasks;
    Wakeups w;
    {
      detail::SpinLockHolder lock(&mu_);
      if (closing_) return;
      closing_ = true;
      tasks = accept_tasks_;
      w.ok.swap(forever_waiters_);
      maybe_closed_locked(w);
    }
    for (auto& t : tasks) t.cancel("server closed");
    w.run();
  }

  void close_clients() {
    std::vector<Task<void>> tasks;
    {
      detail::SpinLockHolder lock(&mu_);
      for (auto& [id, t] : connections_) tasks.push_back(t);
    }
    for (auto& t : tasks) t.cancel("server closing its clients");
  }

  bool is_serving() const {
    detail::SpinLockHolder lock(&mu_);
    return !closing_;
  }

  Coro<void> wait_closed() {
    std::optional<Future<void>> f;
    {
      detail::SpinLockHolder lock(&mu_);
      if (!fully_closed_locked()) {
        f.emplace();
        closed_waiters_.push_back(*f);
      }
    }
    if (f) co_await *f;
  }

  Coro<void> serve_forever() {
    std::optional<Future<void>> f;
    {
      detail::SpinLockHolder lock(&mu_);
      if (!closing_) {
        f.emplace();
        forever_waiters_.push_back(*f);
      }
    }
    if (!f) co_return;
    try {
      co_await *f;
    } catch (const CancelledError&) {
      close();
      throw;
    }
  }

  std::size_t active() const {
    detail::SpinLockHolder lock(&mu_);
    return connections_.size();
  }
  std::uint64_t accepted() const {
    detail::SpinLockHolder lock(&mu_);
    return accepted_;
  }

  const std::vector<SocketAddress>& addresses() const { return addresses_; }

 private:
  static bool transient_accept_error(int err) {
    switch (err) {
      case ECONNABORTED:
      case EPROTO:
      case EPERM:
      case ENETDOWN:
      case ENOPROTOOPT:
      case EHOSTDOWN:
      case ENONET:
      case EHOSTUNREACH:
      case EOPNOTSUPP:
      case ENETUNREACH:
      case EINTR:
        return true;
      default:
        return false;
    }
  }
  static bool resource_accept_error(int err) {
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
  }

  // Closes its listener and reports to the state when the accept task's
  // frame goes: a coroutine parameter, so that this happens even if the task
  // is cancelled before it ever runs (its body, and any local, never starts).
  struct AcceptLease {
    std::shared_ptr<ServerState> s;
    std::size_t i;
    AcceptLease(std::shared_ptr<ServerState> st, std::size_t index) : s(std::move(st)), i(index) {}
    AcceptLease(AcceptLease&&) noexcept = default;
    ~AcceptLease() {
      if (s) s->accept_loop_done(i);
    }
  };

  static Coro<void> accept_loop(AcceptLease lease) {
    ServerState* self = lease.s.get();
    const std::size_t i = lease.i;
    Socket& listener = self->listeners_[i];
    for (;;) {
      int resource_error = 0;
      try {
        auto [sock, peer] = co_await listener.accept();
        self->spawn_connection(std::move(sock), peer);
        continue;
      } catch (const OSError& e) {
        if (resource_accept_error(e.code())) {
          resource_error = e.code();
          report_error(absl::StrFormat(
              "server on %s: %s; pausing accepts for %d ms", self->addresses_[i].to_string(),
              e.what(),
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  self->options_.accept_retry_delay)
                  .count()));
        } else if (!transient_accept_error(e.code())) {
          if (self->is_serving()) {
            report_error(absl::StrFormat("server on %s stops accepting: %s",
                                         self->addresses_[i].to_string(), e.what()));
          }
          co_return;
        }
      }
      if (resource_error != 0) co_await sleep(self->options_.accept_retry_delay);
    }
  }

  // Reports the connection's end when its task's frame goes (see
  // AcceptLease).
  struct ConnectionLease {
    std::shared_ptr<ServerState> s;
    std::uint64_t id;
    ConnectionLease(std::shared_ptr<ServerState> st, std::uint64_t n) : s(std::move(st)), id(n) {}
    ConnectionLease(ConnectionLease&&) noexcept = default;
    ~ConnectionLease() {
      if (s) s->connection_done(id);
    }
  };

  static Coro<void> run_connection(ConnectionLease lease, Socket sock, SocketAddress peer) {
    ServerState* self = lease.s.get();
    std::pair<StreamReader, StreamWriter> streams;
    if (self->options_.open_streams) {
      try {
        streams = co_await self->options_.open_streams(std::move(sock), self->options_.stream);
      } catch (const OSError&) {
        co_return;  // e.g. a failed handshake or a client that left: its problem
      } catch (const TlsError&) {
        co_return;
      } catch (const TimeoutError&) {
        co_return;  // e.g. a TLS client that never finished its handshake
      }
    } else {
      streams = open_stream(std::move(sock), self->options_.stream);
    }
    try {
      co_await self->handler_(streams.first, streams.second);
    } catch (const CancelledError&) {
      throw;
    } catch (...) {
      report_error(absl::StrFormat("unhandled exception in the connection handler for %s: %s",
                                   peer.to_string(), describe_exception(std::current_exception())));
    }
  }

  void spawn_connection(Socket sock, const SocketAddress& peer) {
    if (options_.nodelay && peer.is_ip()) {
      try {
        sock.set_nodelay(true);
      } catch (const OSError&) {
        // The peer may already be gone; the handler will find out.
      }
    }
    detail::SpinLockHolder lock(&mu_);
    if (closing_) return;  // `sock` closes
    const std::uint64_t id = next_id_++;
    ++accepted_;
    // Under mu_, so that the task's exit (which takes mu_) cannot run before
    // it is recorded.
    connections_.emplace(
        id, create_task(run_connection(ConnectionLease(shared_from_this(), id), std::move(sock), peer)));
  }

  void connection_done(std::uint64_t id) {
    Wakeups w;
    Task<void> t;  // released outside the lock
    {
      detail::SpinLockHolder lock(&mu_);
      auto it = connections_.find(id);
      if (it != connections_.end()) {
        t = std::move(it->second);
        connections_.erase(it);
      }
      maybe_closed_locked(w);
    }
    w.run();
  }

  void accept_loop_done(std::size_t i) {
    listeners_[i].close();
    Wakeups w;
    {
      detail::SpinLockHolder lock(&mu_);
      --accept_loops_running_;
      if (!closing_ && accept_loops_running_ == 0) {
        // Every listener failed: the server no longer serves.
        closing_ = true;
        w.ok.swap(forever_waiters_);
      }
      maybe_closed_locked(w);
    }
    w.run();
  }

  bool fully_closed_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closing_ && accept_loops_running_ == 0 && connections_.empty();
  }
  void maybe_closed_locked(Wakeups& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!fully_closed_locked()) return;
    for (auto& f : closed_waiters_) w.ok.push_back(std::move(f));
    closed_waiters_.clear();
  }

  const ConnectionHandler handler_;
  const ServerOptions options_;
  std::vector<Socket> listeners_;
  std::vector<SocketAddress> addresses_;

  mutable detail::SpinLock mu_;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::size_t accept_loops_running_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Task<void>> accept_tasks_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::uint64_t, Task<void>> connections_ ABSL_GUARDED_BY(mu_);
  std::uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::uint64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Future<void>> closed_waiters_ ABSL_GUARDED_BY(mu_);
  std::vector<Future<void>> forever_waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace detail

Server& Server::operator=(Server&& o) noexcept {
  if (this != &o) {
    if (s_) s_->close();
    s_ = std::move(o.s_);
  }
  return *this;
}

Server::~Server() {
  if (s_) s_->close();
}

void Server::close() { s_->close(); }
void Server::close_clients() { s_->close_clients(); }
bool Server::is_serving() const { return s_->is_serving(); }
Coro<void> Server::wait_closed() {
  std::shared_ptr<detail::ServerState> keep = s_;
  co_await keep->wait_closed();
}
Coro<void> Server::serve_forever() {
  std::shared_ptr<detail::ServerState> keep = s_;
  co_await keep->serve_forever();
}
std::vector<SocketAddress> Server::addresses() const { return s_->addresses(); }
std::uint16_t Server::port() const {
  return s_->addresses().empty() ? 0 : s_->addresses().front().port();
}
std::size_t Server::active_connections() const { return s_->active(); }
std::uint64_t Server::accepted_connections() const { return s_->accepted(); }

Server serve(ConnectionHandler handler, std::vector<Socket> listeners, ServerOptions options) {
  if (!handler) throw std::invalid_argument("serve: empty handler");
  if (listeners.empty()) throw std::invalid_argument("serve: no listening socket");
  auto st = std::make_shared<detail::ServerState>(std::move(handler), std::move(listeners),
                                                  std::move(options));
  st->start();
  return detail::ServerAccess::server(std::move(st));
}

Coro<Server> start_server(ConnectionHandler handler, std::string host, std::uint16_t port,
                          ServerOptions options) {
  std::vector<Socket> ls;
  ls.push_back(co_await create_server(std::move(host), port, options.listen));
  co_return serve(std::move(handler), std::move(ls), std::move(options));
}

Coro<Server> start_unix_server(ConnectionHandler handler, std::string path,
                               ServerOptions options) {
  std::vector<Socket> ls;
  ls.push_back(create_unix_server(path, options.listen));
  co_return serve(std::move(handler), std::move(ls), std::move(options));
}

}  // namespace weft
