// The pipeline's stages (pipeline.h) against in-process sinks: every chunk
// arrives once, in order, whole; the in-flight bound holds; a reader or a
// compressor failing midway, a sink that resets and a cancelled caller end
// the pipeline with whole frames only and no compression left on the pool.
#include "examples/pipeline/pipeline.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing.h"
#include "weft/weft.h"

namespace weft_examples::pipeline {
namespace {

using namespace std::chrono_literals;
using weft::testing::raises;

// Chunk i: `size` bytes that differ from chunk to chunk and compress well.
std::string make_chunk(std::size_t i, std::size_t size) {
  std::string s(size, '\0');
  std::uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
  for (char& c : s) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    c = "etaoinshrdlucmfw"[x >> 60];
  }
  return s;
}

std::vector<std::string> make_input(std::size_t chunks) {
  std::vector<std::string> v;
  for (std::size_t i = 0; i < chunks; ++i) v.push_back(make_chunk(i, 1000 + (i * 7919) % 30000));
  return v;
}

// Reads the input's chunks one by one; throws `error` instead of chunk
// `fail_at` (never when fail_at is past the end).
ReadChunk memory_reader(const std::vector<std::string>& input, std::size_t fail_at = SIZE_MAX) {
  auto next = std::make_shared<std::size_t>(0);
  return [&input, next, fail_at]() -> weft::Coro<std::string> {
    const std::size_t i = (*next)++;
    if (i == fail_at) throw std::runtime_error("disk on fire");
    co_return i < input.size() ? input[i] : std::string();
  };
}

// What a sink received, and how the test's sink behaves.
struct SinkLog {
  std::string bytes;
  std::size_t reset_after = 0;     // 0: read to the end
  weft::Duration pause{0};         // between reads: a slow sink
  weft::Future<void> ended;
};

weft::Coro<void> sink_connection(weft::StreamReader r, weft::StreamWriter w,
                                 std::shared_ptr<SinkLog> log) {
  try {
    for (;;) {
      if (log->reset_after != 0 && log->bytes.size() >= log->reset_after) {
        w.abort();
        break;
      }
      std::string data = co_await r.read(16 * 1024);
      if (data.empty()) break;
      log->bytes += data;
      if (log->pause.count() > 0) co_await weft::sleep(log->pause);
    }
    w.close();
  } catch (const weft::ConnectionError&) {
  }
  log->ended.try_set_result();
}

struct Sink {
  weft::Server server;
  std::shared_ptr<SinkLog> log;
};

weft::Coro<Sink> start_sink(std::shared_ptr<SinkLog> log) {
  auto handler = [log](weft::StreamReader r, weft::StreamWriter w) {
    return sink_connection(std::move(r), std::move(w), log);
  };
  weft::Server server = co_await weft::start_server(handler, "127.0.0.1", 0);
  co_return Sink{std::move(server), std::move(log)};
}

weft::Coro<weft::StreamWriter> connect(const Sink& sink) {
  auto [r, w] = co_await weft::open_connection("127.0.0.1", sink.server.port());
  co_return w;
}

// The frames in `bytes`, which must hold whole frames only.
std::vector<std::string> decode(const std::string& bytes) {
  FrameParser parser;
  parser.feed(bytes);
  std::vector<std::string> out;
  while (std::optional<Frame> f = parser.next()) out.push_back(decompress_frame(*f));
  EXPECT_EQ(parser.pending(), 0u) << "the sink received part of a frame";
  return out;
}

// Compression that takes a while, in an order unlike the chunks', and counts
// the calls running now.
struct SlowCompress {
  std::shared_ptr<std::atomic<int>> running = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  int fail_at = -1;

  CompressChunk fn() const {
    return [running = running, calls = calls, fail_at = fail_at](std::string raw) {
      const int i = calls->fetch_add(1);
      running->fetch_add(1);
      struct Leaving {
        std::atomic<int>& running;
        ~Leaving() { running.fetch_sub(1); }
      } leaving{*running};
      std::this_thread::sleep_for(std::chrono::microseconds((i * 7 % 5) * 400));
      if (i == fail_at) throw std::runtime_error("zlib ran out of patience");
      return compress_chunk(raw, 1);
    };
  }
};

// --- frames --------------------------------------------------------------------------------

TEST(Frame, RoundTripsAndParsesAcrossArbitrarySplits) {
  std::string stream;
  std::vector<std::string> chunks = {"", "x", make_chunk(1, 1 << 16), make_chunk(2, 12345)};
  for (const std::string& c : chunks) stream += compress_chunk(c, 6).bytes;
  FrameParser parser;
  std::vector<std::string> out;
  for (char c : stream) {  // one byte at a time
    parser.feed(std::string_view(&c, 1));
    while (std::optional<Frame> f = parser.next()) out.push_back(decompress_frame(*f));
  }
  EXPECT_EQ(out, chunks);
  EXPECT_EQ(parser.pending(), 0u);
}

TEST(Frame, BadFramesAreErrorsThatSaySo) {
  Frame f = compress_chunk(make_chunk(3, 5000), 6);
  Frame wrong_size = f;
  wrong_size.bytes[4] = static_cast<char>(wrong_size.bytes[4] + 1);  // claims 5001 bytes
  wrong_size.raw_size = 5001;
  try {
    decompress_frame(wrong_size);
    ADD_FAILURE() << "a frame that inflates to fewer bytes than it claims was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("5001"), std::string::npos) << e.what();
  }
  Frame corrupt = f;
  corrupt.bytes[kFrameHeaderSize + 2] ^= 0x5a;
  EXPECT_THROW(decompress_frame(corrupt), std::runtime_error);

  FrameParser huge;
  huge.feed(std::string("\x10\x00\x00\x00\x00\x00\x00\x7f", 8));  // 2 GiB raw
  try {
    huge.next();
    ADD_FAILURE() << "a frame claiming 2 GiB was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a pipeline stream"), std::string::npos) << e.what();
  }
}

// --- the pipeline --------------------------------------------------------------------------

WEFT_CO_TEST(Pipeline, EveryChunkArrivesOnceInOrderWithinTheInFlightBound) {
  const std::vector<std::string> input = make_input(weft::testing::kSanitized ? 40 : 150);
  auto log = std::make_shared<SinkLog>();
  log->pause = 200us;  // slower than the compressors: the reader must wait
  Sink sink = co_await start_sink(log);
  weft::StreamWriter writer = co_await connect(sink);
  Progress progress;
  PipelineOptions options;
  options.in_flight = 3;
  SlowCompress compress;
  options.compress = compress.fn();
  co_await run_pipeline(memory_reader(input), std::move(writer), options, progress);
  co_await log->ended;
  EXPECT_EQ(decode(log->bytes), input);
  EXPECT_EQ(progress.chunks_read.load(), input.size());
  EXPECT_EQ(progress.chunks_written.load(), input.size());
  EXPECT_EQ(progress.bytes_written.load(), log->bytes.size());
  EXPECT_LE(progress.max_in_flight.load(), options.in_flight + 2);
  EXPECT_GE(progress.max_in_flight.load(), 2u) << "the stages never overlapped";
  EXPECT_EQ(compress.running->load(), 0);
  sink.server.close();
  co_await sink.server.wait_closed();
}

WEFT_CO_TEST(Pipeline, AReaderThatFailsMidwayEndsItWithWholeFramesOnly) {
  const std::vector<std::string> input = make_input(30);
  auto log = std::make_shared<SinkLog>();
  Sink sink = co_await start_sink(log);
  weft::StreamWriter writer = co_await connect(sink);
  Progress progress;
  PipelineOptions options;
  options.in_flight = 4;
  SlowCompress compress;
  options.compress = compress.fn();
  auto failed = co_await raises<weft::ExceptionGroup>(
      run_pipeline(memory_reader(input, 12), std::move(writer), options, progress));
  WEFT_CO_ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(first_failure(*failed), "reading the input: disk on fire");
  EXPECT_EQ(compress.running->load(), 0) << "a compression outlived the pipeline";
  co_await log->ended;  // the writer closed the stream after its last frame
  const std::vector<std::string> got = decode(log->bytes);
  EXPECT_LE(got.size(), 12u);
  EXPECT_EQ(got.size(), progress.chunks_written.load());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], input[i]) << "chunk " << i;
  sink.server.close();
  co_await sink.server.wait_closed();
}

WEFT_CO_TEST(Pipeline, ACompressionThatFailsMidwayNamesTheChunk) {
  const std::vector<std::string> input = make_input(30);
  auto log = std::make_shared<SinkLog>();
  Sink sink = co_await start_sink(log);
  weft::StreamWriter writer = co_await connect(sink);
  Progress progress;
  PipelineOptions options;
  options.in_flight = 4;
  SlowCompress compress;
  compress.fail_at = 7;
  options.compress = compress.fn();
  auto failed = co_await raises<weft::ExceptionGroup>(
      run_pipeline(memory_reader(input), std::move(writer), options, progress));
  WEFT_CO_ASSERT_TRUE(failed.has_value());
  // Calls start in chunk order on the pool, so call 7 compresses chunk 7
  // only with one pool thread; with more, any chunk may be the 8th call.
  EXPECT_NE(first_failure(*failed).find("zlib ran out of patience"), std::string::npos)
      << first_failure(*failed);
  EXPECT_EQ(first_failure(*failed).rfind("compressing chunk ", 0), 0u) << first_failure(*failed);
  EXPECT_EQ(compress.running->load(), 0) << "a compression outlived the pipeline";
  co_await log->ended;
  const std::vector<std::string> got = decode(log->bytes);
  EXPECT_LT(got.size(), input.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], input[i]) << "chunk " << i;
  sink.server.close();
  co_await sink.server.wait_closed();
}

WEFT_CO_TEST(Pipeline, ASinkThatResetsFailsTheWriterWithTheSinksName) {
  const std::vector<std::string> input = make_input(weft::testing::kSanitized ? 120 : 200);
  auto log = std::make_shared<SinkLog>();
  log->reset_after = 20'000;
  Sink sink = co_await start_sink(log);
  weft::StreamWriter writer = co_await connect(sink);
  Progress progress;
  PipelineOptions options;
  options.compress = [](std::string raw) { return compress_chunk(raw, 0); };  // stored: big frames
  auto failed = co_await raises<weft::ExceptionGroup>(
      run_pipeline(memory_reader(input), std::move(writer), options, progress));
  WEFT_CO_ASSERT_TRUE(failed.has_value());
  const std::string why = first_failure(*failed);
  EXPECT_EQ(why.rfind("writing to the sink 127.0.0.1:", 0), 0u) << why;
  EXPECT_LT(progress.chunks_written.load(), input.size());
  sink.server.close();
  co_await sink.server.wait_closed();
}

WEFT_CO_TEST(Pipeline, ACancelledPipelineClosesTheSinkAfterWholeFrames) {
  const std::vector<std::string> input = make_input(200);
  auto log = std::make_shared<SinkLog>();
  log->pause = 1ms;
  Sink sink = co_await start_sink(log);
  weft::StreamWriter writer = co_await connect(sink);
  Progress progress;
  PipelineOptions options;
  options.in_flight = 4;
  SlowCompress compress;
  options.compress = compress.fn();
  weft::Task<void> running = weft::create_task(
      run_pipeline(memory_reader(input), std::move(writer), options, progress));
  while (progress.chunks_written.load() < 5) co_await weft::sleep(1ms);
  running.cancel("Ctrl-C");
  auto cancelled = co_await raises<weft::CancelledError>(running);
  WEFT_CO_ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(cancelled->message(), "Ctrl-C");
  EXPECT_EQ(compress.running->load(), 0) << "a compression outlived the pipeline";
  co_await log->ended;
  const std::vector<std::string> got = decode(log->bytes);
  EXPECT_EQ(got.size(), progress.chunks_written.load()) << "a written frame did not arrive";
  EXPECT_LT(got.size(), input.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], input[i]) << "chunk " << i;
  sink.server.close();
  co_await sink.server.wait_closed();
}

WEFT_CO_TEST(Pipeline, InFlightZeroIsRejected) {
  auto log = std::make_shared<SinkLog>();
  Sink sink = co_await start_sink(log);
  weft::StreamWriter writer = co_await connect(sink);
  Progress progress;
  PipelineOptions options;
  options.in_flight = 0;
  std::vector<std::string> input;
  auto e = co_await raises<std::invalid_argument>(
      run_pipeline(memory_reader(input), std::move(writer), options, progress));
  EXPECT_TRUE(e.has_value());
  sink.server.close();
  sink.server.close_clients();
  co_await sink.server.wait_closed();
}

}  // namespace
}  // namespace weft_examples::pipeline
