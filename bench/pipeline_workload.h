// W10 `pipeline` (bench/README.md): the pipeline example's stages
// (examples/pipeline/pipeline.h) on an input in memory, with a sink task on
// 127.0.0.1 that counts what it receives; the same definition as the Tokio
// peer's bench/peers/tokio/src/bin/tokio_pipeline.rs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "weft/weft.h"

namespace weft::bench {

inline constexpr std::size_t kPipelineInputBytes = std::size_t{64} << 20;
inline constexpr std::size_t kPipelineChunkBytes = 64 * 1024;
inline constexpr std::size_t kPipelineInFlight = 16;
inline constexpr int kPipelineLevel = 1;

// `bytes` bytes of the definition's LCG text: x = x * 6364136223846793005 +
// 1442695040888963407 from x = 1, each byte "etaoinshrdlucmfw"[x >> 60].
std::string pipeline_input(std::size_t bytes);

struct PipelineResult {
  std::uint64_t chunks = 0;
  std::uint64_t written_bytes = 0;     // frames, headers included, as the writer counted them
  std::uint64_t sink_bytes = 0;        // what the sink received (== written_bytes)
  std::uint64_t compressed_bytes = 0;  // the zlib streams alone
  std::uint64_t max_in_flight = 0;
  double seconds = 0;  // just before the reader starts to the sink's end of stream
};

// One run: reader (a copy of each chunk out of `input`), compression with
// zlib's compress2 at kPipelineLevel on the to_thread pool, in_flight chunks
// queued in order, the writer to a connected TCP stream, the sink task
// reading it in 64 KiB reads to the end. std::invalid_argument for an empty
// input, a chunk size of 0 or in_flight 0.
PipelineResult pipeline(Runtime& rt, const std::string& input, std::size_t chunk_bytes,
                        std::size_t in_flight);

}  // namespace weft::bench
