#include "weft/bench/pipeline_workload.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "examples/pipeline/pipeline.h"

namespace weft::bench {
namespace {

namespace pl = weft_examples::pipeline;

// Counts the stream's bytes to its end; `done` gets the count.
Coro<void> count_to_end(StreamReader r, StreamWriter w, Future<std::uint64_t> done) {
  std::uint64_t n = 0;
  try {
    for (;;) {
      std::string data = co_await r.read(64 * 1024);
      if (data.empty()) break;
      n += data.size();
    }
    w.close();
    done.try_set_result(n);
  } catch (...) {
    done.try_set_exception(std::current_exception());
  }
}

Coro<PipelineResult> pipeline_main(const std::string& input, std::size_t chunk_bytes,
                                   std::size_t in_flight) {
  // Before timing: the sink listening, the writer connected.
  Future<std::uint64_t> received;
  auto handler = [received](StreamReader r, StreamWriter w) {
    return count_to_end(std::move(r), std::move(w), received);
  };
  Server server = co_await start_server(handler, "127.0.0.1", 0);
  auto [unused_reader, writer] = co_await open_connection("127.0.0.1", server.port());

  auto at = std::make_shared<std::size_t>(0);
  pl::ReadChunk read = [&input, at, chunk_bytes]() -> Coro<std::string> {
    const std::size_t n = std::min(chunk_bytes, input.size() - *at);
    std::string chunk(std::string_view(input).substr(*at, n));  // the stand-in for a read
    *at += n;
    co_return chunk;
  };
  pl::PipelineOptions options;
  options.in_flight = in_flight;
  options.compress = [](std::string raw) { return pl::compress_chunk(raw, kPipelineLevel); };
  pl::Progress progress;

  const auto t0 = std::chrono::steady_clock::now();
  co_await pl::run_pipeline(std::move(read), std::move(writer), std::move(options), progress);
  PipelineResult r;
  r.sink_bytes = co_await received;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.chunks = progress.chunks_written.load();
  r.written_bytes = progress.bytes_written.load();
  r.compressed_bytes = r.written_bytes - r.chunks * pl::kFrameHeaderSize;
  r.max_in_flight = progress.max_in_flight.load();
  server.close();
  co_await server.wait_closed();
  co_return r;
}

}  // namespace

std::string pipeline_input(std::size_t bytes) {
  std::string s(bytes, '\0');
  std::uint64_t x = 1;
  for (char& c : s) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    c = "etaoinshrdlucmfw"[x >> 60];
  }
  return s;
}

PipelineResult pipeline(Runtime& rt, const std::string& input, std::size_t chunk_bytes,
                        std::size_t in_flight) {
  if (input.empty()) throw std::invalid_argument("pipeline: empty input");
  if (chunk_bytes == 0 || chunk_bytes > pl::kMaxChunkSize) {
    throw std::invalid_argument("pipeline: chunk size out of range");
  }
  if (in_flight == 0) throw std::invalid_argument("pipeline: in_flight must be at least 1");
  return rt.run(pipeline_main(input, chunk_bytes, in_flight));
}

}  // namespace weft::bench
