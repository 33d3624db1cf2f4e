// A CPU/IO pipeline on weft: read chunks, compress each on the to_thread
// pool, write them in order to a TCP sink. The example's program
// (pipeline_main.cc) and the bench's W10 (bench/workloads.cc) both run
// run_pipeline; only their sources and sinks differ.
//
//   read (1 task) --Queue<Task<Frame>>, maxsize in_flight--> write (1 task) --> sink
//                      each item: the task compressing one chunk on the pool
//
// Order and backpressure come from one bounded queue. The reader reads a
// chunk, starts its compression (a task that awaits to_thread_joined) and
// puts that task into the queue; the writer takes the tasks in queue order,
// awaits each and writes its frame. The queue is full when `in_flight`
// chunks wait, and then the reader waits: at most in_flight + 2 chunks are
// alive (in_flight queued, one the writer is writing, one the reader is
// handing over), whatever the input's size.
//
// Cancellation and failure: the stages are children of one task group. A
// stage that throws (a read error, a compression error, a sink that resets)
// cancels the others and run_pipeline raises the ExceptionGroup; a cancelled
// caller (Ctrl-C in the program) cancels them too. Either way no compression
// is left running (to_thread_joined), and the writer closes the sink
// gracefully: a frame is queued on the stream whole or not at all (two
// synchronous writes, no await between them), so the sink receives a prefix
// of whole frames.
//
// Wire format, one frame per chunk: compressed size (u32, little endian),
// raw size (u32, little endian), then the zlib stream of the chunk.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "weft/weft.h"

namespace weft_examples::pipeline {

inline constexpr std::size_t kFrameHeaderSize = 8;
// The largest chunk (and raw size a frame may claim): 64 MiB.
inline constexpr std::size_t kMaxChunkSize = std::size_t{64} << 20;

// One chunk, compressed, as it goes on the wire: the header, then the zlib
// stream (one buffer, so that a frame is written with one call).
struct Frame {
  std::uint32_t raw_size = 0;
  std::string bytes;

  std::string_view payload() const noexcept {
    return std::string_view(bytes).substr(kFrameHeaderSize);
  }
};

// zlib's compress2 at `level` (0-9). std::runtime_error naming zlib's error.
Frame compress_chunk(std::string_view raw, int level);
// Inflates a frame; std::runtime_error if the payload is not a zlib stream
// of exactly raw_size bytes.
std::string decompress_frame(const Frame& frame);

// Cuts a byte stream into frames: feed() what arrived, then next() until it
// returns nullopt. std::runtime_error for a header that claims more than
// kMaxChunkSize raw bytes or a payload larger than zlib's bound for it.
class FrameParser {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  std::optional<Frame> next();
  // Bytes of an incomplete frame held back.
  std::size_t pending() const noexcept { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  std::size_t start_ = 0;
};

// The next chunk of the input, or "" at its end.
using ReadChunk = std::function<weft::Coro<std::string>()>;
// Compresses one chunk; runs on a pool thread.
using CompressChunk = std::function<Frame(std::string raw)>;

// What the stages did so far. Each counter is written by one stage's task
// (read: the reader; written: the writer) and read by anyone for display,
// so relaxed atomics: no other data is published through them. The reader's
// max_in_flight never exceeds in_flight + 2 even so: its put() of the
// previous chunk got its slot from a get() of the writer (ordered by the
// queue's lock) that came after the writer's counts of every frame before.
struct Progress {
  std::atomic<std::uint64_t> chunks_read{0};
  std::atomic<std::uint64_t> bytes_read{0};
  std::atomic<std::uint64_t> chunks_written{0};
  std::atomic<std::uint64_t> raw_bytes_written{0};  // the input those frames hold
  std::atomic<std::uint64_t> bytes_written{0};      // frames, headers included
  // The most chunks alive at once (read and not yet written).
  std::atomic<std::uint64_t> max_in_flight{0};

  std::uint64_t in_flight() const noexcept {
    return chunks_read.load(std::memory_order_relaxed) -
           chunks_written.load(std::memory_order_relaxed);
  }
};

struct PipelineOptions {
  // Chunks waiting in the queue between the stages, >= 1.
  std::size_t in_flight = 8;
  // Default: compress_chunk at zlib's default level 6.
  CompressChunk compress;
};

// Reads `read` to its end, compresses every chunk on the pool and writes the
// frames in order to `sink`, then closes it (also on failure or
// cancellation, after the frames already queued). std::invalid_argument for
// in_flight 0.
weft::Coro<void> run_pipeline(ReadChunk read, weft::StreamWriter sink, PipelineOptions options,
                              Progress& progress);

// A ReadChunk over `file` (from its position) in chunks of `chunk_size`
// bytes; the file must outlive the pipeline.
ReadChunk file_chunks(weft::File& file, std::size_t chunk_size);

// The message of the first failure in `group` that is not a cancellation,
// looking through nested groups ("" if there is none).
std::string first_failure(const weft::ExceptionGroup& group);

}  // namespace weft_examples::pipeline
