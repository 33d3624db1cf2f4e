#include "examples/pipeline/pipeline.h"

#include <zlib.h>

#include <exception>
#include <stdexcept>
#include <utility>

#include "absl/strings/str_format.h"

namespace weft_examples::pipeline {
namespace {

void store_u32(char* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t load_u32(const char* in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return v;
}

// What a stage's failure says: the stage, then the error (its what(), or the
// type for anything else).
[[noreturn]] void rethrow_as(const std::string& stage) {
  try {
    throw;
  } catch (const weft::CancelledError&) {
    throw;  // not a failure: the group is shutting the stage down
  } catch (const std::exception& e) {
    throw std::runtime_error(absl::StrFormat("%s: %s", stage, e.what()));
  }
}

using FrameTasks = weft::Queue<weft::Task<Frame>>;

weft::Coro<Frame> compress_on_pool(const CompressChunk* compress, std::string raw,
                                   std::uint64_t index) {
  // Joined: a cancelled pipeline leaves no compression running on the pool.
  auto call = [compress](std::string r) { return (*compress)(std::move(r)); };
  try {
    co_return co_await weft::to_thread_joined(std::move(call), std::move(raw));
  } catch (...) {
    rethrow_as(absl::StrFormat("compressing chunk %d", index));
  }
}

weft::Coro<void> read_stage(ReadChunk read, const CompressChunk* compress, FrameTasks& queue,
                            weft::TaskGroup& tg, Progress& progress) {
  for (std::uint64_t index = 0;; ++index) {
    std::string raw;
    try {
      raw = co_await read();
    } catch (...) {
      rethrow_as("reading the input");
    }
    if (raw.empty()) break;
    if (raw.size() > kMaxChunkSize) {
      throw std::length_error(absl::StrFormat("reading the input: a %d-byte chunk (at most %d)",
                                              raw.size(), kMaxChunkSize));
    }
    // The reader is the only writer of these two and of max_in_flight.
    progress.bytes_read.fetch_add(raw.size(), std::memory_order_relaxed);
    progress.chunks_read.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t alive = progress.in_flight();
    if (alive > progress.max_in_flight.load(std::memory_order_relaxed)) {
      progress.max_in_flight.store(alive, std::memory_order_relaxed);
    }
    weft::Task<Frame> compressing = tg.create_task(compress_on_pool(compress, std::move(raw), index));
    co_await queue.put(std::move(compressing));  // waits while in_flight chunks wait
  }
  queue.shutdown();  // the writer takes what is queued, then stops
}

weft::Coro<void> write_stage(FrameTasks& queue, weft::StreamWriter sink, Progress& progress) {
  const std::string sink_name = sink.peer_address().to_string();
  for (;;) {
    std::optional<weft::Task<Frame>> next;
    try {
      next.emplace(co_await queue.get());
    } catch (const weft::QueueShutDown&) {
      break;  // the reader finished and everything queued was written
    }
    Frame frame = co_await *next;
    try {
      // One synchronous write: the frame is queued on the stream whole.
      sink.write(frame.bytes);
      progress.chunks_written.fetch_add(1, std::memory_order_relaxed);
      progress.raw_bytes_written.fetch_add(frame.raw_size, std::memory_order_relaxed);
      progress.bytes_written.fetch_add(frame.bytes.size(), std::memory_order_relaxed);
      co_await sink.drain();
    } catch (...) {
      rethrow_as("writing to the sink " + sink_name);
    }
  }
}

}  // namespace

Frame compress_chunk(std::string_view raw, int level) {
  if (raw.size() > kMaxChunkSize) {
    throw std::length_error(
        absl::StrFormat("compress_chunk: %d bytes (a chunk is at most %d)", raw.size(), kMaxChunkSize));
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  Frame frame;
  frame.raw_size = static_cast<std::uint32_t>(raw.size());
  // The header goes in front of the zlib stream, so the frame is one buffer.
  frame.bytes.resize(kFrameHeaderSize + size);
  const int rc = compress2(reinterpret_cast<Bytef*>(frame.bytes.data() + kFrameHeaderSize), &size,
                           reinterpret_cast<const Bytef*>(raw.data()),
                           static_cast<uLong>(raw.size()), level);
  if (rc != Z_OK) {
    throw std::runtime_error(absl::StrFormat("zlib compress2 (level %d): %s", level, zError(rc)));
  }
  frame.bytes.resize(kFrameHeaderSize + size);
  store_u32(frame.bytes.data(), static_cast<std::uint32_t>(size));
  store_u32(frame.bytes.data() + 4, frame.raw_size);
  return frame;
}

std::string decompress_frame(const Frame& frame) {
  const std::string_view payload = frame.payload();
  std::string raw(frame.raw_size, '\0');
  uLongf size = frame.raw_size;
  const int rc = uncompress(reinterpret_cast<Bytef*>(raw.data()), &size,
                            reinterpret_cast<const Bytef*>(payload.data()),
                            static_cast<uLong>(payload.size()));
  if (rc == Z_BUF_ERROR) {
    throw std::runtime_error(absl::StrFormat(
        "a frame inflates to more than the %d bytes its header claims", frame.raw_size));
  }
  if (rc != Z_OK) throw std::runtime_error(absl::StrFormat("zlib uncompress: %s", zError(rc)));
  if (size != frame.raw_size) {
    throw std::runtime_error(absl::StrFormat(
        "a frame inflates to %d bytes, its header claims %d", size, frame.raw_size));
  }
  return raw;
}

std::optional<Frame> FrameParser::next() {
  if (pending() < kFrameHeaderSize) return std::nullopt;
  const char* head = buffer_.data() + start_;
  const std::uint32_t size = load_u32(head);
  const std::uint32_t raw_size = load_u32(head + 4);
  if (raw_size > kMaxChunkSize) {
    throw std::runtime_error(absl::StrFormat(
        "not a pipeline stream: a frame claims %d raw bytes (at most %d)", raw_size, kMaxChunkSize));
  }
  if (size > compressBound(raw_size)) {
    throw std::runtime_error(absl::StrFormat(
        "not a pipeline stream: a frame claims a %d-byte payload for %d raw bytes", size, raw_size));
  }
  if (pending() < kFrameHeaderSize + size) return std::nullopt;
  Frame frame;
  frame.raw_size = raw_size;
  frame.bytes.assign(head, kFrameHeaderSize + size);
  start_ += kFrameHeaderSize + size;
  // Drop what was parsed once it is most of the buffer: amortised O(1) per byte.
  if (start_ * 2 > buffer_.size()) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  return frame;
}

weft::Coro<void> run_pipeline(ReadChunk read, weft::StreamWriter sink, PipelineOptions options,
                              Progress& progress) {
  if (options.in_flight == 0) throw std::invalid_argument("run_pipeline: in_flight must be at least 1");
  if (!options.compress) {
    options.compress = [](std::string raw) { return compress_chunk(raw, Z_DEFAULT_COMPRESSION); };
  }
  FrameTasks queue(options.in_flight);
  std::exception_ptr failure;
  try {
    auto stages = [&](weft::TaskGroup& tg) -> weft::Coro<void> {
      tg.create_task(read_stage(std::move(read), &options.compress, queue, tg, progress));
      tg.create_task(write_stage(queue, sink, progress));
      co_return;
    };
    co_await weft::task_group(stages);
  } catch (...) {
    failure = std::current_exception();
  }
  // Closing sends the frames already queued, whole, then ends the stream.
  sink.close();
  try {
    co_await sink.wait_closed();
  } catch (...) {
    if (!failure) failure = std::current_exception();
  }
  if (failure) std::rethrow_exception(failure);
}

ReadChunk file_chunks(weft::File& file, std::size_t chunk_size) {
  return [&file, chunk_size] { return file.read(chunk_size); };
}

std::string first_failure(const weft::ExceptionGroup& group) {
  for (const std::exception_ptr& e : group.exceptions()) {
    try {
      std::rethrow_exception(e);
    } catch (const weft::ExceptionGroup& inner) {
      if (std::string m = first_failure(inner); !m.empty()) return m;
    } catch (const weft::CancelledError&) {
    } catch (const std::exception& other) {
      return other.what();
    } catch (...) {
      return "an exception of an unknown type";
    }
  }
  return "";
}

}  // namespace weft_examples::pipeline
