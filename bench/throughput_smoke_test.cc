// Keeps the throughput harness honest: every workload runs with small sizes
// and its RESULTS are checked (counters, fib, sleeps), never its timings; and
// the harness binary keeps its command-line and output contract
// (shared/perf/README.md).
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "weft/bench/workloads.h"

namespace weft::bench {
namespace {

using std::chrono::milliseconds;

RuntimeOptions with_workers(std::uint32_t n) {
  RuntimeOptions o;
  o.workers = n;
  return o;
}

class WorkloadsTest : public ::testing::TestWithParam<std::uint32_t> {
 protected:
  Runtime rt_{with_workers(GetParam())};
};

TEST_P(WorkloadsTest, SpawnLocalCountsEveryTaskOnEveryRun) {
  for (int run = 0; run < 3; ++run) {  // the harness reuses one runtime
    SpawnLocalResult r = spawn_local(rt_, 3000);
    EXPECT_EQ(r.tasks, 3000u);
    EXPECT_EQ(r.counter, 3000u);
    EXPECT_GT(r.seconds, 0);
  }
}

TEST_P(WorkloadsTest, SpawnRemoteRunsEverySubmittedTask) {
  for (int run = 0; run < 2; ++run) {
    SpawnRemoteResult r = spawn_remote(rt_, 3000);
    EXPECT_EQ(r.ran, 3000u);
    EXPECT_GT(r.seconds, 0);
  }
  SpawnRemoteResult one = spawn_remote(rt_, 1);
  EXPECT_EQ(one.ran, 1u);
}

TEST_P(WorkloadsTest, FibComputesTheValueAndCountsTheTasks) {
  FibResult r = fib(rt_, 15);
  EXPECT_EQ(r.value, 610u);
  EXPECT_EQ(r.tasks, 1973u);  // 2 * fib(16) - 1
  FibResult leaf = fib(rt_, 1);
  EXPECT_EQ(leaf.value, 1u);
  EXPECT_EQ(leaf.tasks, 1u);
}

TEST(Fib, ExpectedValuesMatchTheReadme) {
  EXPECT_EQ(expected_fib_value(27), 196418u);
  EXPECT_EQ(expected_fib_tasks(27), 635621u);
  EXPECT_EQ(expected_fib_value(0), 0u);
  EXPECT_EQ(expected_fib_tasks(0), 1u);
}

TEST_P(WorkloadsTest, PingPongPassesTheCounterEveryRoundTrip) {
  PingPongResult r = ping_pong(rt_, 2000);
  EXPECT_EQ(r.round_trips, 2000u);
  EXPECT_EQ(r.counter, 4000u);
}

TEST_P(WorkloadsTest, YieldManyCountsEveryYield) {
  YieldManyResult r = yield_many(rt_, 20, 100);
  EXPECT_EQ(r.yields, 2000u);
}

TEST_P(WorkloadsTest, TimersWakeEverySleeperNeverEarly) {
  TimersResult r = timers(rt_, 2000, milliseconds(20));
  EXPECT_EQ(r.woke, 2000u);
  EXPECT_EQ(r.early, 0u);
  EXPECT_GT(r.max_sleep, milliseconds(19));
  // Every sleeper was joined, so the run lasted at least the longest sleep.
  EXPECT_GE(r.seconds, std::chrono::duration<double>(r.max_sleep).count());
  EXPECT_GT(r.cpu_seconds, 0);
}

TEST_P(WorkloadsTest, TimeoutsNeverFireAndAreAllCancelled) {
  for (auto fn : {timeouts_ready, timeouts_armed}) {
    TimeoutsResult r = fn(rt_, 5000);
    EXPECT_EQ(r.completed, 5000u);
    EXPECT_EQ(r.fired, 0u);
    EXPECT_EQ(r.not_cancelled, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, WorkloadsTest, ::testing::Values(1u, 2u, 4u),
                         [](const auto& info) { return std::to_string(info.param) + "_workers"; });

TEST(TimerSleepDuration, IsTheReadmeFormula) {
  constexpr Duration k100ms = milliseconds(100);
  EXPECT_EQ(timer_sleep_duration(0, 100'000, k100ms), Duration(0));
  EXPECT_EQ(timer_sleep_duration(1, 100'000, k100ms), std::chrono::microseconds(7919));
  EXPECT_EQ(timer_sleep_duration(13, 100'000, k100ms), std::chrono::microseconds(2947));
  // 7919 is prime: the durations are a permutation of the n slots.
  std::set<Duration::rep> seen;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    seen.insert(timer_sleep_duration(i, 1000, k100ms).count());
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(*seen.rbegin(), Duration(k100ms).count() * 999 / 1000);
}

// --- The binary's contract ---------------------------------------------------------

struct Outcome {
  int status = -1;
  std::string out;  // stdout only; stderr goes to the test log
};

Outcome run_harness(const std::string& args) {
  // Tests run in the runfiles tree of this workspace.
  const std::string cmd = "bench/throughput " + args;
  Outcome o;
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return o;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) o.out += buf;
  int raw = pclose(p);
  o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return o;
}

TEST(Harness, PrintsOneContractLinePerFigure) {
  Outcome o = run_harness("--workers=2 --scale=0.002 W1 ping_pong w3");
  ASSERT_EQ(o.status, 0) << o.out;
  const std::regex line(R"(weft (\w+) (\w+) ([0-9]+(\.[0-9]+)?) (\S+))");
  std::istringstream in(o.out);
  std::vector<std::string> figures;
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, line)) << "not a contract line: " << l;
    figures.push_back(m[1].str() + " " + m[2].str() + " " + m[5].str());
  }
  EXPECT_EQ(figures, (std::vector<std::string>{
                         "spawn_local best tasks/s", "spawn_local median tasks/s",
                         "ping_pong ns_per_rtt ns", "fib n n", "fib tasks tasks",
                         "fib wall_ms ms", "fib ns_per_task ns"}));
}

TEST(Harness, RejectsUnknownWorkloads) {
  Outcome o = run_harness("--scale=0.002 W1 no_such_workload");
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.out, "");  // rejected before anything ran
  EXPECT_EQ(run_harness("W10").status, 2);
  EXPECT_EQ(run_harness("--workers=0").status, 2);
  EXPECT_EQ(run_harness("--scale=2").status, 2);
}

TEST(Harness, RefusesWhatItCannotRunYet) {
  for (const char* args : {"echo-server 1", "http-server 1", "W7", "offload", "W8", "http_hello"}) {
    Outcome o = run_harness(args);
    EXPECT_EQ(o.status, 2) << args;
    EXPECT_EQ(o.out, "") << args;
  }
}

}  // namespace
}  // namespace weft::bench
