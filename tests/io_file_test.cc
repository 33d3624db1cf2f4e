// weft::File, read_file, write_file: modes and flags, the position, reads
// and writes across chunk boundaries, errors naming the call and the path,
// and the cancel-safety contract: a cancelled call that had not started
// does nothing (the pool held by another call), a cancelled write that was
// running waits for its system call and reports what it wrote, close()
// waits for a call still running (a FIFO holds the call in the kernel).
// Every file is made under /tmp and removed.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <semaphore>
#include <string>

#include "gtest/gtest.h"
#include "tests/io_testing.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Watchdog;

// A mkstemp file holding `content`, removed by the destructor.
class TempFile {
 public:
  explicit TempFile(std::string_view content = {}) {
    char path[] = "/tmp/weft_io_file_XXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(fd);
    path_ = path;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A FIFO in a fresh /tmp directory, with its read end open (non-blocking),
// so that a File can open the write end without waiting. A write to it
// blocks in the kernel until the test drains the read end.
class Fifo {
 public:
  Fifo() {
    char dir[] = "/tmp/weft_io_fifo_XXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/fifo";
    EXPECT_EQ(mkfifo(path_.c_str(), 0600), 0);
    read_fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(read_fd_, 0);
  }
  ~Fifo() {
    ::close(read_fd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  Fifo(const Fifo&) = delete;
  Fifo& operator=(const Fifo&) = delete;
  const std::string& path() const { return path_; }

  // Bytes waiting in the pipe.
  int queued() const {
    int n = 0;
    ioctl(read_fd_, FIONREAD, &n);
    return n;
  }
  // Reads what is there; "" if nothing.
  std::string drain() const {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(read_fd_, buf, sizeof buf);
      if (n <= 0) return out;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  std::string dir_, path_;
  int read_fd_ = -1;
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return s;
}

// Runs `body` on a runtime with `workers` loops and `pool_threads` to_thread
// threads. The runtime may report, as it stops, a pool job that had
// delivered its outcome but not yet counted itself finished (see
// AddressesAndResolution in io_socket_test.cc); any other report fails.
void run_file_test(Coro<void> body, std::uint32_t workers = 2, int pool_threads = 0) {
  testing::ErrorLog log;
  RuntimeOptions o = testing::logged_options(log, workers);
  o.to_thread_threads = pool_threads;
  run(std::move(body), std::move(o));
  for (const std::string& m : log.messages()) {
    EXPECT_NE(m.find("to_thread call(s) still running"), std::string::npos) << m;
  }
}

// --- Reading, writing, the position ---------------------------------------------------

Coro<void> modes_and_position() {
  Watchdog wd(3s);
  TempFile t("hello world");
  {
    File f = co_await File::open(t.path());  // "r"
    EXPECT_TRUE(f.is_open());
    EXPECT_EQ(f.path(), t.path());
    EXPECT_EQ(co_await f.read(5), "hello");
    EXPECT_EQ(f.tell(), 5u);
    EXPECT_EQ(co_await f.read(100), " world");  // fewer only at the end
    EXPECT_EQ(co_await f.read(10), "");
    EXPECT_EQ(f.tell(), 11u);
    f.seek(6);
    EXPECT_EQ(co_await f.read_all(), "world");
    EXPECT_EQ(co_await f.read_at(0, 5), "hello");  // positional: the position stays
    EXPECT_EQ(co_await f.read_at(20, 5), "");
    EXPECT_EQ(f.tell(), 11u);
    EXPECT_EQ(co_await f.size(), 11u);
    co_await f.close();
    EXPECT_FALSE(f.is_open());
    co_await f.close();  // idempotent
  }
  {
    File f = co_await File::open(t.path(), "r+b");
    co_await f.write_at(6, "WORLD");
    EXPECT_EQ(f.tell(), 0u);
    co_await f.write("HE");
    EXPECT_EQ(f.tell(), 2u);
    EXPECT_EQ(co_await f.read_all(), "llo WORLD");
    co_await f.sync();
    co_await f.close();
  }
  EXPECT_EQ(co_await read_file(t.path()), "HEllo WORLD");
  {
    File f = co_await File::open(t.path(), "a+");
    co_await f.write("!\n");  // at the end, whatever the position
    EXPECT_EQ(f.tell(), 0u);
    EXPECT_EQ(co_await f.read_all(), "HEllo WORLD!\n");
    EXPECT_TRUE((co_await testing::raises<std::logic_error>(f.write_at(0, "x"))).has_value());
  }
  {
    File f = co_await File::open(t.path(), "w");  // truncates
    EXPECT_EQ(co_await f.size(), 0u);
    co_await f.write("new");
  }  // the destructor closes
  EXPECT_EQ(co_await read_file(t.path()), "new");
  // "x" creates, or fails if the file exists.
  const std::string fresh = t.path() + ".x";
  {
    File f = co_await File::open(fresh, "x");
    co_await f.write("created");
  }
  auto exists = co_await testing::raises<OSError>(File::open(fresh, "x"));
  WEFT_CO_ASSERT_TRUE(exists.has_value());
  EXPECT_EQ(exists->code(), EEXIST);
  ::unlink(fresh.c_str());
  // Flags: create without truncating, with permissions.
  {
    File f = co_await File::open(fresh, O_RDWR | O_CREAT, 0600);
    co_await f.write("0123456789");
  }
  {
    File f = co_await File::open(fresh, O_RDWR | O_CREAT, 0600);
    co_await f.write("ab");
  }
  EXPECT_EQ(co_await read_file(fresh), "ab23456789");
  struct stat st {};
  EXPECT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ::unlink(fresh.c_str());
}

TEST(IoFile, ModesAndThePosition) { run_file_test(modes_and_position()); }

Coro<void> large_transfers() {
  Watchdog wd(testing::kSanitized ? 20s : 5s);
  TempFile t;
  // Crosses chunk boundaries, with a tail.
  const std::string data = pattern(3 * kFileChunk + 12345);
  File f = co_await File::open(t.path(), "w+");
  std::size_t written = 0;
  co_await f.write(data, &written);
  EXPECT_EQ(written, data.size());
  EXPECT_EQ(f.tell(), data.size());
  EXPECT_EQ(co_await f.size(), data.size());
  EXPECT_TRUE(co_await f.read_at(kFileChunk - 10, kFileChunk + 20) ==
              data.substr(kFileChunk - 10, kFileChunk + 20));
  f.seek(0);
  EXPECT_TRUE(co_await f.read(2 * kFileChunk + 1) == data.substr(0, 2 * kFileChunk + 1));
  EXPECT_TRUE(co_await f.read_all() == data.substr(2 * kFileChunk + 1));
  co_await f.write_at(data.size() - 5, "TAIL!!", &written);  // extends the file
  EXPECT_EQ(written, 6u);
  EXPECT_EQ(co_await f.size(), data.size() + 1);
  co_await f.close();
  co_await write_file(t.path(), data);  // truncates, then writes
  EXPECT_TRUE(co_await read_file(t.path()) == data);
}

TEST(IoFile, LargeTransfersCrossChunks) { run_file_test(large_transfers()); }

// --- Errors ---------------------------------------------------------------------------

Coro<void> errors() {
  Watchdog wd(3s);
  auto e = co_await testing::raises<OSError>(File::open("/nonexistent/weft-file"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), ENOENT);
  EXPECT_EQ(e->call(), "open");
  EXPECT_NE(std::string(e->what()).find("/nonexistent/weft-file"), std::string::npos) << e->what();
  e = co_await testing::raises<OSError>(read_file("/nonexistent/weft-file"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), ENOENT);
  // A directory opens, then cannot be read.
  e = co_await testing::raises<OSError>(read_file("/tmp"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), EISDIR);
  EXPECT_EQ(e->call(), "pread");
  EXPECT_NE(std::string(e->what()).find("/tmp"), std::string::npos) << e->what();

  for (std::string_view bad : {"", "q", "rw", "r++", "rbb", "rt", "+"}) {
    try {
      (void)File::open("/tmp/unused", bad);
      ADD_FAILURE() << "mode \"" << bad << "\" accepted";
    } catch (const std::invalid_argument& ex) {
      EXPECT_NE(std::string(ex.what()).find("invalid mode"), std::string::npos) << ex.what();
    }
  }

  TempFile t("data");
  {
    File f = co_await File::open(t.path(), "r");
    std::size_t written = 99;
    e = co_await testing::raises<OSError>(f.write("x", &written));
    WEFT_CO_ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->code(), EBADF);
    EXPECT_EQ(e->call(), "pwrite");
    EXPECT_NE(std::string(e->what()).find(t.path()), std::string::npos) << e->what();
    EXPECT_EQ(written, 0u);
    EXPECT_EQ(f.tell(), 0u);
  }
  {
    File f = co_await File::open(t.path(), "a");
    e = co_await testing::raises<OSError>(f.read(1));
    WEFT_CO_ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->code(), EBADF);
    EXPECT_EQ(e->call(), "pread");
    co_await f.close();
    // A closed File names the call and the path.
    e = co_await testing::raises<OSError>(f.read(1));
    WEFT_CO_ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->code(), EBADF);
    EXPECT_EQ(e->call(), "File::read");
    EXPECT_NE(std::string(e->what()).find(t.path()), std::string::npos) << e->what();
    EXPECT_EQ((co_await testing::raises<OSError>(f.size()))->call(), "File::size");
    EXPECT_EQ((co_await testing::raises<OSError>(f.write("x")))->call(), "File::write");
  }
  // A device that is always full: the error, and how much was written.
  {
    File f = co_await File::open("/dev/full", "w");
    std::size_t written = 99;
    e = co_await testing::raises<OSError>(f.write("some bytes", &written));
    WEFT_CO_ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->code(), ENOSPC);
    EXPECT_NE(std::string(e->what()).find("pwrite (/dev/full)"), std::string::npos) << e->what();
    EXPECT_EQ(written, 0u);
  }
  e = co_await testing::raises<OSError>(write_file("/dev/full", "x"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), ENOSPC);
}

TEST(IoFile, ErrorsNameTheCallAndThePath) { run_file_test(errors()); }

// --- Cancel safety --------------------------------------------------------------------

// Keeps the only to_thread thread busy until released (also on early exit).
class PoolBlocker {
 public:
  PoolBlocker() = default;
  ~PoolBlocker() { release(); }
  PoolBlocker(const PoolBlocker&) = delete;
  PoolBlocker& operator=(const PoolBlocker&) = delete;

  Coro<void> start() {
    task_ = create_task(to_thread([this] {
      started_.store(true);
      gate_.acquire();
    }));
    EXPECT_TRUE(co_await testing::wait_until([this] { return started_.load(); }));
  }
  void release() {
    if (!released_.exchange(true)) gate_.release();
  }
  Coro<void> join() {
    release();
    co_await task_;
  }

 private:
  std::binary_semaphore gate_{0};
  std::atomic<bool> started_{false};
  std::atomic<bool> released_{false};
  Task<void> task_;
};

Coro<void> cancelled_before_start() {
  Watchdog wd(3s);
  TempFile t("original");
  File f = co_await File::open(t.path(), "r+");
  const std::string fresh = t.path() + ".never";
  PoolBlocker blocker;
  co_await blocker.start();
  // Each call waits for the pool; cancelled there, it completes at once,
  // without waiting for the pool, and did nothing.
  std::size_t written = 99;
  auto writer = create_task(f.write_at(0, "OVERWRITTEN", &written));
  auto reader = create_task(f.read(4));
  auto opener = create_task(File::open(t.path(), "w"));  // would truncate
  auto creator = create_task(File::open(fresh, "x"));
  co_await sleep(5ms);  // every call submitted to the busy pool
  for (AnyTask task : {AnyTask(writer), AnyTask(reader), AnyTask(opener), AnyTask(creator)}) {
    task.cancel();
  }
  EXPECT_TRUE((co_await testing::raises<CancelledError>(writer)).has_value());
  EXPECT_TRUE((co_await testing::raises<CancelledError>(reader)).has_value());
  EXPECT_TRUE((co_await testing::raises<CancelledError>(opener)).has_value());
  EXPECT_TRUE((co_await testing::raises<CancelledError>(creator)).has_value());
  EXPECT_EQ(written, 0u);
  EXPECT_EQ(f.tell(), 0u);  // the cancelled read consumed nothing
  co_await blocker.join();
  // The pool is free again: the abandoned calls never ran.
  EXPECT_EQ(co_await f.read(4), "orig");
  EXPECT_EQ(co_await read_file(t.path()), "original");
  EXPECT_NE(::access(fresh.c_str(), F_OK), 0);
  co_await f.close();
}

TEST(IoFile, CancelledBeforeTheCallStartsDoesNothing) {
  run_file_test(cancelled_before_start(), 1, 1);
}

// One worker: the test task and the writer share the File on one thread.
Coro<void> cancelled_running_write() {
  Watchdog wd(5s);
  Fifo fifo;
  File f = co_await File::open(fifo.path(), O_WRONLY | O_APPEND);
  const std::string data = pattern(4 * kFileChunk);
  std::size_t written = 99;
  bool cancelled = false;
  auto writer = create_task(
      [](File& f, std::string_view data, std::size_t& written, bool& cancelled) -> Coro<void> {
        try {
          co_await f.write(data, &written);
        } catch (const CancelledError&) {
          cancelled = true;
          throw;
        }
      }(f, data, written, cancelled));
  // Bytes in the pipe: the pool call is inside write(2), which blocks until
  // the test reads.
  EXPECT_TRUE(co_await testing::wait_until([&] { return fifo.queued() > 0; }));
  writer.cancel();
  co_await sleep(20ms);
  EXPECT_FALSE(writer.done()) << "the cancelled write did not wait for its system call";
  std::string got;
  while (!writer.done()) {
    got += fifo.drain();
    co_await sleep(1ms);
  }
  got += fifo.drain();
  EXPECT_TRUE((co_await testing::raises<CancelledError>(writer)).has_value());
  EXPECT_TRUE(cancelled);
  // It stopped at the end of the chunk it was writing and said so exactly.
  EXPECT_EQ(written, got.size());
  EXPECT_GT(written, 0u);
  EXPECT_LT(written, data.size());
  EXPECT_TRUE(got == data.substr(0, got.size()));
  co_await f.close();
}

TEST(IoFile, CancelledRunningWriteWaitsAndReportsWhatItWrote) {
  run_file_test(cancelled_running_write(), 1);
}

Coro<void> close_waits_for_running_call() {
  Watchdog wd(5s);
  Fifo fifo;
  File f = co_await File::open(fifo.path(), O_WRONLY | O_APPEND);
  const std::string data = pattern(256 * 1024);
  auto writer = create_task(f.write(data));
  EXPECT_TRUE(co_await testing::wait_until([&] { return fifo.queued() > 0; }));
  auto closer = create_task(f.close());
  co_await sleep(20ms);
  EXPECT_FALSE(f.is_open());
  EXPECT_FALSE(closer.done()) << "close() did not wait for the write using the descriptor";
  std::string got;
  while (!closer.done()) {
    got += fifo.drain();
    co_await sleep(1ms);
  }
  got += fifo.drain();
  co_await writer;  // completed, not disturbed by the close
  co_await closer;
  EXPECT_TRUE(got == data);
}

TEST(IoFile, CloseWaitsForACallStillRunning) { run_file_test(close_waits_for_running_call(), 1); }

}  // namespace
}  // namespace weft
