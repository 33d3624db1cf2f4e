// MappedFile: mapping, prefetching and reading ranges off the loop, errors.
#include <fcntl.h>
#include <unistd.h>

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

}  // namespace
}  // namespace weft
