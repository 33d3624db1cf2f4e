// MappedFile: mapping, prefetching and reading ranges off the loop, views,
// advice, bounds and errors, and a mapping that outlives a cancelled
// prefetch's caller.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

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

std::string write_temp(const std::string& content) {
  char path[] = "/tmp/weft_io_mapped_XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(fd);
  return path;
}

// Logged options: see AddressesAndResolution in io_socket_test.cc (the
// runtime may count a to_thread job as running just after it delivered).
testing::ErrorLog g_log;

WEFT_CO_TEST_WITH(IoMappedFile, MapPrefetchRead, testing::logged_options(g_log)) {
  Watchdog wd(3s);
  std::string content(3 * 4096 + 123, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('A' + i % 26);
  const std::string path = write_temp(content);
  MappedFile f = co_await MappedFile::open(path);
  EXPECT_TRUE(f.valid());
  EXPECT_EQ(f.size(), content.size());
  EXPECT_EQ(f.path(), path);
  co_await f.prefetch(0, f.size());
  EXPECT_TRUE(f.data() == content);
  EXPECT_EQ(co_await f.read(4090, 10), content.substr(4090, 10));
  EXPECT_EQ(co_await f.read(f.size() - 3, 100), content.substr(content.size() - 3));  // clamped
  EXPECT_TRUE((co_await testing::raises<std::out_of_range>(f.read(f.size() + 1, 1))).has_value());
  MappedFile moved = std::move(f);
  EXPECT_EQ(moved.size(), content.size());
  ::unlink(path.c_str());
}

WEFT_CO_TEST_WITH(IoMappedFile, EmptyFileAndErrors, testing::logged_options(g_log)) {
  const std::string path = write_temp("");
  MappedFile f = co_await MappedFile::open(path);
  EXPECT_TRUE(f.valid());
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(f.data(), "");
  EXPECT_EQ(co_await f.read(0, 10), "");
  ::unlink(path.c_str());
  auto e = co_await testing::raises<OSError>(MappedFile::open("/nonexistent/weft-file"));
  WEFT_CO_ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), ENOENT);
  EXPECT_NE(std::string(e->what()).find("/nonexistent/weft-file"), std::string::npos);
}

WEFT_CO_TEST_WITH(IoMappedFile, Views, testing::logged_options(g_log)) {
  const std::string content = "0123456789abcdef";
  const std::string path = write_temp(content);
  MappedFile f = co_await MappedFile::open(path);
  EXPECT_EQ(f.view(0, 4), "0123");
  EXPECT_EQ(f.view(10), "abcdef");                      // to the end
  EXPECT_EQ(f.view(14, 100), "ef");                     // clamped
  EXPECT_EQ(f.view(16, 1), "");                         // at the end: empty
  EXPECT_EQ(f.view(3, 2).data(), f.data().data() + 3);  // no copy
  try {
    (void)f.view(17, 1);
    ADD_FAILURE() << "view past the end";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("offset 17"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("size 16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("MappedFile::view"), std::string::npos) << e.what();
  }
  ::unlink(path.c_str());
  // An empty file has one empty view.
  const std::string empty_path = write_temp("");
  MappedFile empty = co_await MappedFile::open(empty_path);
  EXPECT_EQ(empty.view(0), "");
  EXPECT_THROW((void)empty.view(1, 0), std::out_of_range);
  ::unlink(empty_path.c_str());
}

WEFT_CO_TEST_WITH(IoMappedFile, Advise, testing::logged_options(g_log)) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::string content(4 * page + 100, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
  const std::string path = write_temp(content);
  MappedFile f = co_await MappedFile::open(path);
  using Advice = MappedFile::Advice;
  for (Advice a : {Advice::kNormal, Advice::kSequential, Advice::kRandom, Advice::kWillNeed,
                   Advice::kDontNeed}) {
    f.advise(a);                      // the whole file
    f.advise(a, page + 123, page);    // an unaligned range
    f.advise(a, f.size() - 1, 1000);  // clamped
    f.advise(a, f.size());            // empty: nothing to do
  }
  // kDontNeed dropped the pages; the next touch reads the file again.
  EXPECT_TRUE(f.data() == content);
  try {
    f.advise(Advice::kRandom, f.size() + 1, 1);
    ADD_FAILURE() << "advise past the end";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("MappedFile::advise"), std::string::npos) << e.what();
  }
  // The kernel refuses to drop locked pages: OSError naming madvise and the
  // path. (mlock through syscall(2): ASan's mlock is a no-op.)
  const void* first_page = f.data().data();
  WEFT_CO_ASSERT_EQ(syscall(SYS_mlock, first_page, page), 0);
  try {
    f.advise(Advice::kDontNeed, 0, page);
    ADD_FAILURE() << "madvise(MADV_DONTNEED) of a locked page succeeded";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), EINVAL);
    EXPECT_EQ(e.call(), "madvise");
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  syscall(SYS_munlock, first_page, page);
  // On an empty file every range is empty.
  const std::string empty_path = write_temp("");
  MappedFile empty = co_await MappedFile::open(empty_path);
  empty.advise(Advice::kWillNeed);
  ::unlink(empty_path.c_str());
  ::unlink(path.c_str());
}

// The pool call of a cancelled prefetch may still be touching pages when
// its caller destroys the MappedFile: the call's reference keeps them mapped
// (without it, this crashes whenever the cancellation lands mid-touch).
WEFT_CO_TEST_WITH(IoMappedFile, CancelledPrefetchKeepsTheMappingAlive,
                  testing::logged_options(g_log)) {
  Watchdog wd(5s);
  const std::string path = write_temp(std::string(16 << 20, 'm'));
  for (int i = 0; i < 3; ++i) {
    auto f = std::make_unique<MappedFile>(co_await MappedFile::open(path));
    f->advise(MappedFile::Advice::kDontNeed);  // so that prefetch has work to do
    auto t = create_task(f->prefetch(0, f->size()));
    co_await sleep(std::chrono::microseconds(200 * i));
    t.cancel();
    (void)co_await testing::raises<CancelledError>(t);
    f.reset();  // unmapped when the pool call lets go
  }
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace weft
