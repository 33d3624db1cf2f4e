// close_gracefully (example_support.h): the open connections get their grace,
// and the grace step never outlives the call, also when the call is cancelled.
#include <chrono>
#include <string>

#include "examples/example_support.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace weft_examples {
namespace {

using namespace std::chrono_literals;

// Holds its connection until the client leaves or the server cancels it.
weft::Coro<void> hold(weft::StreamReader r, weft::StreamWriter w) { (void)co_await r.read(); }

weft::Coro<bool> accepted(weft::Server& server) {
  for (int i = 0; i < 5000 && server.active_connections() == 0; ++i) co_await weft::sleep(1ms);
  co_return server.active_connections() == 1;
}

WEFT_CO_TEST(CloseGracefully, ClosesTheConnectionsLeftAfterTheGrace) {
  weft::Server server = co_await weft::start_server(hold, "127.0.0.1", 0);
  auto [r, w] = co_await weft::open_connection("127.0.0.1", server.port());
  WEFT_CO_ASSERT_TRUE(co_await accepted(server));
  co_await close_gracefully(server, 20ms);
  EXPECT_EQ(server.active_connections(), 0u);
  EXPECT_EQ(co_await r.read(), "") << "the held connection was not closed";
}

// Cancelled before the grace ran out, it leaves nothing behind that closes
// the clients later (or touches the server, which may be gone by then).
WEFT_CO_TEST(CloseGracefully, CancelledWhileWaitingLeavesNoGraceStepBehind) {
  weft::Server server = co_await weft::start_server(hold, "127.0.0.1", 0);
  auto [r, w] = co_await weft::open_connection("127.0.0.1", server.port());
  WEFT_CO_ASSERT_TRUE(co_await accepted(server));
  weft::Task<void> closing = weft::create_task(close_gracefully(server, 50ms));
  co_await weft::sleep(10ms);
  EXPECT_FALSE(closing.done()) << "close_gracefully returned with a connection open";
  closing.cancel();
  EXPECT_TRUE((co_await weft::testing::raises<weft::CancelledError>(closing)).has_value());
  // Past the grace the connection is still open: no grace step ran.
  auto still_open = co_await weft::testing::raises<weft::TimeoutError>(weft::timeout(150ms, r.read()));
  EXPECT_TRUE(still_open.has_value()) << "a cancelled close_gracefully closed the clients later";
  EXPECT_EQ(server.active_connections(), 1u);
}

}  // namespace
}  // namespace weft_examples
