#include "weft/io/streams.h"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_format.h"
#include "weft/core/detail/spin_lock.h"
#include "weft/core/future.h"
#include "weft/core/task.h"
#include "weft/io/detail/byte_buffer.h"
#include "weft/io/detail/io_wait.h"
#include "weft/io/detail/stream_transport.h"
#include "weft/io/detail/wakeups.h"
#include "weft/sched/cancel_scope.h"
#include "weft/sched/spawn.h"

namespace weft {
namespace detail {
namespace {

// What one receive asks the socket for, at least.
constexpr std::size_t kReadChunk = 16 * 1024;

}  // namespace

// --- Reader -------------------------------------------------------------------
//
// Used by one read at a time (`busy_`); the acquire exchange that starts a
// read pairs with the release store that ended the previous one, so the
// buffer is handed over between tasks on different workers.
class ReaderState {
 public:
  ReaderState(std::shared_ptr<StreamTransport> t, std::size_t limit,
              std::optional<Duration> read_timeout)
      : t_(std::move(t)), limit_(limit), read_timeout_(read_timeout) {
    if (limit_ == 0) throw std::invalid_argument("StreamReader: limit must be positive");
    if (read_timeout_ && *read_timeout_ <= Duration::zero()) {
      throw std::invalid_argument("StreamReader: read_timeout must be positive");
    }
  }

  // Receives once into the buffer (EOF sets eof_). Raises a stored error,
  // or TimeoutError when a read limit ends the wait.
  Coro<void> fill() {
    if (error_) std::rethrow_exception(error_);
    std::span<char> tail = buf_.prepare(kReadChunk);
    std::size_t n;
    try {
      if (read_timeout_ || deadline_ != TimePoint::max()) {
        // Under the read timeout and the deadline, whichever ends first.
        // weft::timeout cancels the wait, and a cancelled receive consumed
        // nothing, so the TimeoutError loses no byte. Not sticky: it says
        // the peer was slow, not that the stream broke.
        Duration wait = read_timeout_.value_or(Duration::max());
        bool by_deadline = false;
        if (deadline_ != TimePoint::max()) {
          const TimePoint now = get_running_loop().time();
          if (deadline_ <= now) throw TimeoutError("StreamReader: the read deadline has passed");
          if (deadline_ - now <= wait) {
            wait = deadline_ - now;
            by_deadline = true;
          }
        }
        try {
          n = co_await timeout(wait, t_->recv_into(tail));
        } catch (const TimeoutError&) {
          throw_timeout(by_deadline);
        }
      } else {
        n = co_await t_->recv_into(tail);
      }
    } catch (const OSError&) {
      error_ = std::current_exception();
      throw;
    }
    // No suspension between the receive and here: a cancellation cannot
    // lose these bytes (the contract in streams.h).
    if (n == 0) {
      eof_ = true;
    } else {
      buf_.commit(n);
    }
  }

  [[noreturn]] void throw_timeout(bool by_deadline) const {
    if (by_deadline) throw TimeoutError("StreamReader: the read deadline passed");
    throw TimeoutError(absl::StrFormat(
        "StreamReader: nothing received for %d ms (read_timeout)",
        std::chrono::duration_cast<std::chrono::milliseconds>(*read_timeout_).count()));
  }

  // The one-read-at-a-time claim, taken by every read and by start_tls.
  class Guard {
   public:
    explicit Guard(ReaderState& s,
                   const char* busy_message =
                       "StreamReader: another read or start_tls is in progress on this stream")
        : s_(s) {
      if (s_.busy_.exchange(true, std::memory_order_acquire)) throw RuntimeError(busy_message);
    }
    ~Guard() { s_.busy_.store(false, std::memory_order_release); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    ReaderState& s_;
  };

  std::shared_ptr<StreamTransport> t_;
  const std::size_t limit_;
  const std::optional<Duration> read_timeout_;
  // Set by the reading task between reads (StreamReader::set_read_deadline),
  // read by the reads: handed over like the buffer, by the busy_ claim.
  TimePoint deadline_ = TimePoint::max();
  ByteBuffer buf_;
  bool eof_ = false;
  std::exception_ptr error_;
  std::atomic<bool> busy_{false};
};

// --- Writer -------------------------------------------------------------------
class WriterState : public std::enable_shared_from_this<WriterState> {
 public:
  WriterState(std::shared_ptr<StreamTransport> t, std::size_t high, std::size_t low)
      : t_(std::move(t)) {
    set_limits(high, low);
  }

  void set_limits(std::size_t high, std::size_t low) {
    if (low > high) {
      throw std::invalid_argument(
          absl::StrFormat("write buffer limits: low (%d) > high (%d)", low, high));
    }
    detail::SpinLockHolder lock(&mu_);
    high_ = high;
    low_ = low;
  }

  void write(std::string_view data) {
    if (current_loop() == nullptr) {
      throw RuntimeError("StreamWriter::write must be called inside a weft runtime");
    }
    detail::SpinLockHolder lock(&mu_);
    if (closing_) throw RuntimeError("StreamWriter::write after close()");
    if (eof_) throw RuntimeError("StreamWriter::write after write_eof()");
    if (error_) std::rethrow_exception(error_);
    if (data.empty()) return;
    if (upgrading_) {
      // Sent over the new layer once the upgrade is done.
      held_.append(data);
      if (queued_locked() > high_) paused_ = true;
      return;
    }
    if (!flushing_ && buf_.empty()) {
      // Nothing queued: send at once, in the caller's step.
      try {
        FdWatch::Dir unused;
        if (std::optional<std::size_t> n = t_->try_send(data, &unused)) {
          data.remove_prefix(*n);
          if (data.empty()) return;
        }
      } catch (const OSError&) {
        Wakeups w;  // nothing is queued, so nobody waits in drain()
        fail_locked(std::current_exception(), w);
        throw;
      }
    }
    buf_.append(data);
    if (queued_locked() > high_) paused_ = true;
    start_flush_locked();
  }

  Coro<void> drain() {
    std::optional<Future<void>> f;
    {
      detail::SpinLockHolder lock(&mu_);
      if (error_) std::rethrow_exception(error_);
      if (paused_) {
        f.emplace();
        drain_waiters_.push_back(*f);
      }
    }
    if (!f) {
      co_await BudgetAwaiter();
      co_return;
    }
    co_await *f;
  }

  void write_eof() {
    Wakeups w;
    {
      detail::SpinLockHolder lock(&mu_);
      if (eof_ || closing_) return;
      eof_ = true;
      if (!flushing_ && !upgrading_) finish_locked(w);
    }
    w.run();
  }

  void close() {
    Wakeups w;
    {
      detail::SpinLockHolder lock(&mu_);
      if (closing_) return;
      closing_ = true;
      if (!flushing_ && !upgrading_) finish_locked(w);
    }
    w.run();
  }

  void abort() {
    Wakeups w;
    {
      detail::SpinLockHolder lock(&mu_);
      closing_ = true;
      buf_.clear();
      held_.clear();
      if (!error_) {
        fail_locked(std::make_exception_ptr(
                        ConnectionAbortedError(ECONNABORTED, "StreamWriter", "aborted")),
                    w);
      }
      const int fd = t_->socket().fd();
      linger l{1, 0};  // the final close resets the connection
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::shutdown(fd, SHUT_RDWR);
      mark_closed_locked(w);
    }
    w.run();
  }

  bool is_closing() const {
    detail::SpinLockHolder lock(&mu_);
    return closing_;
  }

  Coro<void> wait_closed() {
    std::optional<Future<void>> f;
    {
      detail::SpinLockHolder lock(&mu_);
      if (!closed_) {
        f.emplace();
        close_waiters_.push_back(*f);
      }
    }
    if (f) co_await *f;
  }

  std::size_t buffered() const {
    detail::SpinLockHolder lock(&mu_);
    return queued_locked();
  }

  // upgrade_stream, step 1. From the call on, writes are held back
  // (upgrading_); then it waits until everything written before the call is
  // sent. Raises the connection's error, or RuntimeError after close() /
  // write_eof() or during another upgrade. If it raises (a cancellation
  // too), the upgrade is abandoned: the held writes go out as usual.
  Coro<void> begin_upgrade() {
    {
      detail::SpinLockHolder lock(&mu_);
      if (error_) std::rethrow_exception(error_);
      if (closing_) throw RuntimeError("start_tls: the writer is closed");
      if (eof_) throw RuntimeError("start_tls: the writer is half-closed (write_eof)");
      if (upgrading_) throw RuntimeError("start_tls: the stream is already being upgraded");
      upgrading_ = true;
    }
    try {
      for (;;) {
        Future<void> sent;
        {
          detail::SpinLockHolder lock(&mu_);
          if (error_) std::rethrow_exception(error_);
          if (!flushing_ && buf_.empty()) co_return;
          idle_waiters_.push_back(sent);
        }
        co_await sent;  // finish_locked (sent) or fail_locked (the error)
      }
    } catch (...) {
      end_upgrade(nullptr, nullptr);  // the lock was released by the unwinding
      throw;
    }
  }

  // Step 2: installs `layer` (if any) and resumes sending, through it: the
  // held writes go out, and a close() or write_eof() that came meanwhile
  // takes effect. With `error` instead, the upgrade failed: the queue is
  // dropped and every later call raises it. The caller holds the reader's
  // claim, so the reader does not use the transport meanwhile either.
  void end_upgrade(std::unique_ptr<StreamLayer> layer, std::exception_ptr error) {
    Wakeups w;
    {
      detail::SpinLockHolder lock(&mu_);
      upgrading_ = false;
      if (layer) t_->set_layer(std::move(layer));
      if (error) {
        if (!error_) fail_locked(std::move(error), w);
      } else if (!error_ && !held_.empty()) {
        // Behind whatever plain data is still queued (an abandoned upgrade).
        buf_.append(held_.view());
        held_.clear();
        start_flush_locked();
      } else if (!flushing_) {
        finish_locked(w);
      }
    }
    w.run();
  }

  // The transport's layer, or null. Under mu_ because end_upgrade sets
  // it; once set it never changes.
  StreamLayer* layer() const {
    detail::SpinLockHolder lock(&mu_);
    return t_->layer();
  }

  std::shared_ptr<StreamTransport> t_;

 private:
  enum class Step { kMore, kWait, kDone };

  // The flusher: one per writer at a time (flushing_), started by write()
  // when data stays queued, ending when the queue is empty or failed.
  // Held by the flusher's frame. If the frame goes without the body having
  // finished (the task was cancelled before it first ran, or abandoned at
  // runtime teardown), it releases the writer's flushing_ claim and fails
  // the queue, so that drain() and wait_closed() callers are not left
  // waiting on a flush that will never happen.
  struct FlushLease {
    std::shared_ptr<WriterState> w;
    bool finished = false;
    explicit FlushLease(std::shared_ptr<WriterState> ws) : w(std::move(ws)) {}
    FlushLease(FlushLease&& o) noexcept : w(std::move(o.w)), finished(o.finished) {}
    ~FlushLease() {
      if (!w || finished) return;
      Wakeups wk;
      {
        detail::SpinLockHolder lock(&w->mu_);
        w->flushing_ = false;
        if (!w->error_) {
          w->fail_locked(std::make_exception_ptr(ConnectionAbortedError(
                             ECONNABORTED, "StreamWriter", "the flush was cancelled")),
                         wk);
        }
      }
      wk.run();
    }
  };

  static Coro<void> flush_loop(FlushLease lease) {
    WriterState* self = lease.w.get();
    FdWatch& watch = self->t_->socket().watch();
    std::exception_ptr err;
    try {
      for (;;) {
        const std::uint64_t seq[2] = {watch.seq(FdWatch::kRead), watch.seq(FdWatch::kWrite)};
        FdWatch::Dir dir = FdWatch::kWrite;
        const Step step = self->flush_some(&dir);
        if (step == Step::kDone) {
          lease.finished = true;
          co_return;
        }
        if (step == Step::kWait) {
          co_await watch.wait(dir, seq[dir]);
        } else {
          co_await BudgetAwaiter();
        }
      }
    } catch (const CancelledError&) {
      err = std::make_exception_ptr(ConnectionAbortedError(
          ECONNABORTED, "StreamWriter", "the flush was cancelled (runtime shutdown?)"));
    } catch (...) {
      err = std::current_exception();
    }
    lease.finished = true;
    Wakeups w;
    {
      detail::SpinLockHolder lock(&self->mu_);
      self->flushing_ = false;
      if (!self->error_) self->fail_locked(err, w);
    }
    w.run();
  }

  Step flush_some(FdWatch::Dir* wait_for) {
    Wakeups w;
    Step step;
    {
      detail::SpinLockHolder lock(&mu_);
      if (error_ || buf_.empty()) {
        flushing_ = false;
        if (!error_) finish_locked(w);
        step = Step::kDone;
      } else {
        try {
          if (std::optional<std::size_t> n = t_->try_send(buf_.view(), wait_for)) {
            buf_.consume(*n);
            if (paused_ && queued_locked() <= low_) {
              paused_ = false;
              w.ok.swap(drain_waiters_);
            }
            step = Step::kMore;
          } else {
            step = Step::kWait;
          }
        } catch (const OSError&) {
          fail_locked(std::current_exception(), w);
          flushing_ = false;
          step = Step::kDone;
        }
      }
    }
    w.run();
    return step;
  }

  void start_flush_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (flushing_) return;
    create_task(flush_loop(FlushLease(shared_from_this())));
    flushing_ = true;
  }

  std::size_t queued_locked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return buf_.size() + held_.size();
  }

  // The queue is empty and no flush runs: wake begin_upgrade and drainers,
  // then do the shutdowns that close()/write_eof() asked for (during an
  // upgrade, the held writes and the shutdowns wait for end_upgrade).
  void finish_locked(Wakeups& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& f : idle_waiters_) w.ok.push_back(std::move(f));
    idle_waiters_.clear();
    if (queued_locked() <= low_) {
      paused_ = false;
      for (auto& f : drain_waiters_) w.ok.push_back(std::move(f));
      drain_waiters_.clear();
    }
    if (upgrading_) return;
    if (eof_ && !shut_wr_ && !closing_) {
      t_->shutdown_write();  // ENOTCONN etc. change nothing for the caller
      shut_wr_ = true;
    }
    if (closing_ && !closed_) {
      t_->shutdown_both();
      mark_closed_locked(w);
    }
  }

  void mark_closed_locked(Wakeups& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closed_) return;
    closed_ = true;
    for (auto& f : close_waiters_) w.ok.push_back(std::move(f));
    close_waiters_.clear();
  }

  void fail_locked(std::exception_ptr e, Wakeups& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    error_ = std::move(e);
    buf_.clear();
    held_.clear();
    paused_ = false;
    w.error = error_;
    for (auto& f : drain_waiters_) w.failed.push_back(std::move(f));
    drain_waiters_.clear();
    for (auto& f : idle_waiters_) w.failed.push_back(std::move(f));
    idle_waiters_.clear();
    if (closing_) mark_closed_locked(w);
  }

  mutable detail::SpinLock mu_;
  ByteBuffer buf_ ABSL_GUARDED_BY(mu_);
  std::size_t high_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t low_ ABSL_GUARDED_BY(mu_) = 0;
  // Went above high_ and has not come down to low_ yet: drain() waits.
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  // A flusher task is running (or about to).
  bool flushing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;  // close() or abort() called
  bool eof_ ABSL_GUARDED_BY(mu_) = false;      // write_eof() called
  bool shut_wr_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;   // the closing finished
  // Between begin_upgrade and end_upgrade: writes go to held_; once buf_
  // is sent, nothing is sent and no flusher runs.
  bool upgrading_ ABSL_GUARDED_BY(mu_) = false;
  ByteBuffer held_ ABSL_GUARDED_BY(mu_);
  std::exception_ptr error_ ABSL_GUARDED_BY(mu_);
  std::vector<Future<void>> drain_waiters_ ABSL_GUARDED_BY(mu_);
  // begin_upgrade callers waiting for the queue to empty.
  std::vector<Future<void>> idle_waiters_ ABSL_GUARDED_BY(mu_);
  std::vector<Future<void>> close_waiters_ ABSL_GUARDED_BY(mu_);
};

struct StreamAccess {
  static StreamReader reader(std::shared_ptr<ReaderState> s) { return StreamReader(std::move(s)); }
  static StreamWriter writer(std::shared_ptr<WriterState> s) { return StreamWriter(std::move(s)); }
  static const std::shared_ptr<ReaderState>& state(const StreamReader& r) { return r.s_; }
  static const std::shared_ptr<WriterState>& state(const StreamWriter& w) { return w.s_; }
};

namespace {
// Takes a failed upgrade's connection down: shut down, so the peer sees the
// end at once, and the error recorded on both sides (the descriptor closes
// with the last handle, as always).
void fail_upgrade(ReaderState& r, WriterState& w, std::exception_ptr error) {
  ::shutdown(r.t_->socket().fd(), SHUT_RDWR);
  r.error_ = error;
  w.end_upgrade(nullptr, std::move(error));
}
}  // namespace

Coro<void> upgrade_stream(StreamReader& reader, StreamWriter& writer,
                          std::unique_ptr<StreamLayer> layer) {
  if (!reader.valid() || !writer.valid()) throw std::invalid_argument("start_tls: no stream");
  std::shared_ptr<ReaderState> r = StreamAccess::state(reader);
  std::shared_ptr<WriterState> w = StreamAccess::state(writer);
  if (r->t_ != w->t_) {
    throw std::invalid_argument("start_tls: the reader and the writer are not one stream");
  }
  ReaderState::Guard guard(*r, "start_tls: a read is in progress on this stream");
  if (r->t_->layer() != nullptr) throw RuntimeError("start_tls: the stream already has TLS");
  if (r->error_) std::rethrow_exception(r->error_);
  if (!r->buf_.empty()) {
    // They came before the upgrade, in the clear: handing them to the
    // application as if they came over TLS is the STARTTLS injection
    // (docs/io.md, "start_tls").
    throw RuntimeError(absl::StrFormat(
        "start_tls: %d bytes received before the upgrade have not been read", r->buf_.size()));
  }
  co_await w->begin_upgrade();  // a cancellation here changed nothing
  try {
    co_await layer->start(r->t_->socket());
  } catch (const CancelledError&) {
    fail_upgrade(*r, *w,
                 std::make_exception_ptr(ConnectionAbortedError(
                     ECONNABORTED, "start_tls", "the TLS handshake was cancelled")));
    throw;
  } catch (...) {
    fail_upgrade(*r, *w, std::current_exception());
    throw;
  }
  w->end_upgrade(std::move(layer), nullptr);
}

StreamLayer* stream_layer(const StreamWriter& writer) {
  if (!writer.valid()) throw std::invalid_argument("StreamWriter: no stream");
  return StreamAccess::state(writer)->layer();
}

}  // namespace detail

// --- StreamReader ---------------------------------------------------------------

Coro<std::string> StreamReader::read(std::ptrdiff_t n) {
  std::shared_ptr<detail::ReaderState> keep = s_;
  detail::ReaderState& s = *keep;
  detail::ReaderState::Guard guard(s);
  if (n == 0) co_return std::string();
  if (n < 0) {
    while (!s.eof_) co_await s.fill();
    co_return s.buf_.take(s.buf_.size());
  }
  if (s.buf_.empty() && !s.eof_) co_await s.fill();
  co_return s.buf_.take(static_cast<std::size_t>(n));
}

Coro<std::string> StreamReader::readexactly(std::size_t n) {
  std::shared_ptr<detail::ReaderState> keep = s_;
  detail::ReaderState& s = *keep;
  detail::ReaderState::Guard guard(s);
  while (s.buf_.size() < n) {
    if (s.eof_) throw IncompleteReadError(s.buf_.take(s.buf_.size()), n);
    co_await s.fill();
  }
  co_return s.buf_.take(n);
}

namespace {

// One search of readuntil's loop (asyncio's, 3.13 with a tuple of
// separators) over the buffered bytes `v`, from *offset: the end of the
// separator match that ends first (the shortest separator wins a tie), or
// nullopt, *offset then being where the next search starts: no match can
// begin before it that has not been seen whole already. `seps` is sorted by
// length. LimitOverrunError if the match starts past the limit, or if none
// can start within it.
std::optional<std::size_t> find_separator(std::string_view v,
                                          std::span<const std::string_view> seps,
                                          std::size_t* offset, std::size_t limit) {
  if (v.size() < seps.front().size()) return std::nullopt;
  std::size_t end = std::string_view::npos;
  std::size_t start = 0;
  for (std::string_view sep : seps) {
    const std::size_t pos = v.find(sep, *offset);
    if (pos != std::string_view::npos && pos + sep.size() < end) {
      end = pos + sep.size();
      start = pos;
    }
  }
  if (end != std::string_view::npos) {
    if (start > limit) {
      throw LimitOverrunError("separator is found, but chunk is longer than limit", start);
    }
    return end;
  }
  const std::size_t longest = seps.back().size();
  *offset = v.size() + 1 > longest ? v.size() + 1 - longest : 0;
  if (*offset > limit) {
    throw LimitOverrunError("separator is not found, and chunk exceed the limit", *offset);
  }
  return std::nullopt;
}

}  // namespace

namespace {
// What readuntil looks for, owned by its frame. Two fit inline: the one
// separator of readuntil(sep), or http_hello's two head ends.
using Separators = absl::InlinedVector<std::string, 2>;

// readuntil's loop, for one separator or several. Checks and sorts them when
// awaited (asyncio raises then, not at the call).
Coro<std::string> read_until(std::shared_ptr<detail::ReaderState> keep, Separators separators) {
  if (separators.empty()) throw std::invalid_argument("readuntil: no separator");
  // Sorted by length, stably (asyncio's sorted(key=len)); an insertion
  // sort, since there are a few.
  absl::InlinedVector<std::string_view, 2> seps;
  for (const std::string& sep : separators) {
    if (sep.empty()) throw std::invalid_argument("readuntil: empty separator");
    auto at = seps.end();
    while (at != seps.begin() && (at - 1)->size() > sep.size()) --at;
    seps.insert(at, sep);
  }
  detail::ReaderState& s = *keep;
  detail::ReaderState::Guard guard(s);
  std::size_t offset = 0;  // where the next search starts
  for (;;) {
    if (std::optional<std::size_t> end = find_separator(s.buf_.view(), seps, &offset, s.limit_)) {
      co_return s.buf_.take(*end);
    }
    if (s.eof_) throw IncompleteReadError(s.buf_.take(s.buf_.size()), std::nullopt);
    co_await s.fill();
  }
}
}  // namespace

Coro<std::string> StreamReader::readuntil(std::string separator) {
  Separators one;
  one.push_back(std::move(separator));
  return read_until(s_, std::move(one));
}

Coro<std::string> StreamReader::readuntil(std::span<const std::string_view> separators) {
  return read_until(s_, Separators(separators.begin(), separators.end()));
}

Coro<std::string> StreamReader::readline() {
  std::string line;
  std::exception_ptr overrun;
  try {
    line = co_await readuntil("\n");
  } catch (const IncompleteReadError& e) {
    line = e.partial();
  } catch (const LimitOverrunError& e) {
    // Discard the over-long line: through its "\n" if it was seen, else
    // everything buffered (asyncio's readline).
    detail::ReaderState& s = *s_;
    std::string_view v = s.buf_.view();
    if (v.size() > e.consumed() && v[e.consumed()] == '\n') {
      s.buf_.consume(e.consumed() + 1);
    } else {
      s.buf_.clear();
    }
    overrun = std::current_exception();
  }
  if (overrun) std::rethrow_exception(overrun);
  co_return line;
}

void StreamReader::set_read_deadline(TimePoint deadline) { s_->deadline_ = deadline; }
TimePoint StreamReader::read_deadline() const { return s_->deadline_; }

bool StreamReader::at_eof() const { return s_->eof_ && s_->buf_.empty(); }
std::size_t StreamReader::buffered() const { return s_->buf_.size(); }
std::size_t StreamReader::limit() const { return s_->limit_; }

// --- StreamWriter ---------------------------------------------------------------

void StreamWriter::write(std::string_view data) { s_->write(data); }
void StreamWriter::writelines(const std::vector<std::string>& lines) {
  for (const auto& l : lines) s_->write(l);
}
Coro<void> StreamWriter::drain() {
  std::shared_ptr<detail::WriterState> keep = s_;
  co_await keep->drain();
}
void StreamWriter::write_eof() { s_->write_eof(); }
void StreamWriter::close() { s_->close(); }
void StreamWriter::abort() { s_->abort(); }
bool StreamWriter::is_closing() const { return s_->is_closing(); }
Coro<void> StreamWriter::wait_closed() {
  std::shared_ptr<detail::WriterState> keep = s_;
  co_await keep->wait_closed();
}
std::size_t StreamWriter::buffered() const { return s_->buffered(); }
void StreamWriter::set_write_buffer_limits(std::size_t high, std::optional<std::size_t> low) {
  s_->set_limits(high, low.value_or(high / 4));
}
SocketAddress StreamWriter::peer_address() const { return s_->t_->socket().peer_address(); }
SocketAddress StreamWriter::local_address() const { return s_->t_->socket().local_address(); }
const Socket& StreamWriter::socket() const { return s_->t_->socket(); }

// --- Opening streams ------------------------------------------------------------

namespace detail {
std::pair<StreamReader, StreamWriter> make_stream(std::shared_ptr<StreamTransport> t,
                                                  const StreamOptions& options) {
  auto r = std::make_shared<ReaderState>(t, options.limit, options.read_timeout);
  auto w = std::make_shared<WriterState>(
      t, options.write_high_water,
      options.write_low_water.value_or(options.write_high_water / 4));
  return {StreamAccess::reader(std::move(r)), StreamAccess::writer(std::move(w))};
}
}  // namespace detail

std::pair<StreamReader, StreamWriter> open_stream(Socket socket, StreamOptions options) {
  if (!socket.valid()) throw std::invalid_argument("open_stream: invalid socket");
  return detail::make_stream(std::make_shared<detail::StreamTransport>(std::move(socket)),
                             options);
}

Coro<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, std::uint16_t port,
                                                            StreamOptions options) {
  ConnectOptions c;
  c.timeout = options.connect_timeout;
  Socket s = co_await create_connection(std::move(host), port, c);
  co_return open_stream(std::move(s), options);
}

Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection(std::string path,
                                                                 StreamOptions options) {
  Socket s = co_await create_unix_connection(std::move(path), options.connect_timeout);
  co_return open_stream(std::move(s), options);
}

}  // namespace weft
