// The pipeline example: compresses a file in chunks on weft's to_thread pool
// and sends the frames, in order, to a TCP sink (pipeline.h has the design).
// The sink and the inverse are modes of the same program.
//
//   pipeline compress --input=PATH [--output=PATH | --sink=HOST:PORT]
//                     [--chunk-size=1M] [--in-flight=8] [--level=6] [--workers=0]
//       Without --sink the sink is a task of this program on 127.0.0.1 that
//       stores what it receives in --output (or only counts it). A progress
//       line on stderr when stderr is a terminal; a summary line at the end;
//       "OK <chunks> chunks <bytes> bytes" on stdout.
//   pipeline sink [--port=0] [--output=PATH] [--max-seconds=60]
//                 [--close-after=BYTES] [--read-pause=DURATION]
//       Listens on 127.0.0.1, prints "LISTEN <port>", takes one connection and
//       stores its whole frames in --output; "OK <frames> frames <bytes>
//       bytes" on stdout at the end of the stream. --close-after resets the
//       connection after that many bytes and --read-pause waits between
//       reads: a sink that fails early, and a slow one.
//   pipeline decompress --input=PATH --output=PATH
//       Inflates what a sink stored back into the original bytes.
//
// Exit status: 0 done; 1 a failure (one line on stderr that names it); 2 a
// bad command line; 130 interrupted by SIGINT or SIGTERM (the sink then has
// a prefix of whole chunks, and the program says how many).
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "absl/strings/str_format.h"
#include "examples/example_support.h"
#include "examples/pipeline/pipeline.h"
#include "weft/weft.h"

namespace {

using namespace std::chrono_literals;
using weft_examples::Flags;
namespace pl = weft_examples::pipeline;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;  // 128 + SIGINT, as a shell reports it

// A command-line mistake: exit status 2.
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// --- flags -------------------------------------------------------------------------------

// "65536", "64K", "1M" (binary units).
std::size_t chunk_size_flag(const Flags& f) {
  const std::string text = f.text("chunk-size", "1M");
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  std::string_view unit(end, text.data() + text.size() - end);
  int shift = unit == "" ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
  if (ec != std::errc() || end == text.data() || shift < 0 || n > (std::uint64_t{1} << 40)) {
    throw UsageError("--chunk-size=" + text + ": expected a size in bytes (65536, 64K, 1M)");
  }
  n <<= shift;
  if (n == 0) throw UsageError("--chunk-size=" + text + ": a chunk must be at least 1 byte");
  if (n > pl::kMaxChunkSize) {
    throw UsageError("--chunk-size=" + text +
                     ": at most 64M (in-flight + 2 chunks and their compressed copies are held "
                     "in memory at once)");
  }
  return static_cast<std::size_t>(n);
}

long bounded_flag(const Flags& f, const std::string& name, long fallback, long lo, long hi) {
  long v = 0;
  try {
    v = f.number(name, fallback);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (v < lo || v > hi) {
    throw UsageError(absl::StrFormat("--%s=%d: want %d to %d", name, v, lo, hi));
  }
  return v;
}

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string text() const { return absl::StrFormat("%s:%d", host, port); }
};

Endpoint endpoint_flag(const std::string& text) {
  const auto colon = text.rfind(':');
  std::uint32_t port = 0;
  const char* p = text.data() + (colon == std::string::npos ? 0 : colon + 1);
  auto [end, ec] = std::from_chars(p, text.data() + text.size(), port);
  if (colon == std::string::npos || colon == 0 || ec != std::errc() ||
      end != text.data() + text.size() || port == 0 || port > 65535) {
    throw UsageError("--sink=" + text + ": expected HOST:PORT (e.g. 127.0.0.1:9000)");
  }
  return {text.substr(0, colon), static_cast<std::uint16_t>(port)};
}

// --- the sink ------------------------------------------------------------------------------

struct Received {
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;      // of the stream
  std::uint64_t raw_bytes = 0;  // of the input the frames hold
  bool closed_early = false;
};

struct SinkOptions {
  weft::File* output = nullptr;   // where whole frames go; none: count only
  std::uint64_t close_after = 0;  // 0: read to the end
  weft::Duration read_pause{0};
};

// Reads frames to the end of the stream and stores each whole one, so the
// output never holds part of a frame. std::runtime_error if the stream ends
// inside a frame.
weft::Coro<Received> receive_frames(weft::StreamReader reader, SinkOptions options) {
  pl::FrameParser parser;
  Received got;
  for (;;) {
    std::size_t want = 64 * 1024;
    if (options.close_after != 0) {
      if (got.bytes >= options.close_after) {
        got.closed_early = true;
        co_return got;
      }
      want = std::min<std::uint64_t>(want, options.close_after - got.bytes);
    }
    std::string data = co_await reader.read(static_cast<std::ptrdiff_t>(want));
    if (data.empty()) break;
    got.bytes += data.size();
    parser.feed(data);
    while (std::optional<pl::Frame> frame = parser.next()) {
      if (options.output != nullptr) co_await options.output->write(frame->bytes);
      ++got.frames;
      got.raw_bytes += frame->raw_size;
    }
    if (options.read_pause.count() > 0) co_await weft::sleep(options.read_pause);
  }
  if (parser.pending() != 0) {
    throw std::runtime_error(absl::StrFormat(
        "the stream ended inside a frame (%d bytes of it arrived)", parser.pending()));
  }
  co_return got;
}

// One connection of the sink: completes `done` with what it received.
weft::Coro<void> sink_connection(weft::StreamReader r, weft::StreamWriter w, SinkOptions options,
                                 weft::Future<Received> done) {
  try {
    Received got = co_await receive_frames(std::move(r), options);
    if (got.closed_early) {
      w.abort();  // a reset, as a crashing sink would leave it
    } else {
      w.close();
    }
    done.try_set_result(got);
  } catch (...) {
    w.abort();
    done.try_set_exception(std::current_exception());
  }
}

// A server for one connection of frames; `done` completes with what it
// received.
weft::Coro<weft::Server> start_sink(std::uint16_t port, SinkOptions options,
                                    weft::Future<Received> done) {
  auto handler = [options, done](weft::StreamReader r, weft::StreamWriter w) {
    return sink_connection(std::move(r), std::move(w), options, done);
  };
  co_return co_await weft::start_server(handler, "127.0.0.1", port);
}

// --- compress ----------------------------------------------------------------------------

struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

weft::Coro<void> stop_on_signal(int& stopped_by) {
  stopped_by = co_await weft::wait_signal(SIGINT, SIGTERM);
  throw Interrupted(strsignal(stopped_by));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string progress_line(const pl::Progress& p, std::chrono::steady_clock::time_point t0) {
  const double read_mb = p.bytes_read.load(std::memory_order_relaxed) / 1e6;
  const double done_mb = p.raw_bytes_written.load(std::memory_order_relaxed) / 1e6;
  const double s = std::max(seconds_since(t0), 1e-9);
  return absl::StrFormat("\r%.1f MB read, %.1f MB sent (%.1f MB/s), %d chunks in flight  ",
                         read_mb, done_mb, done_mb / s, p.in_flight());
}

weft::Coro<void> show_progress(const pl::Progress& p, std::chrono::steady_clock::time_point t0) {
  for (;;) {
    std::fputs(progress_line(p, t0).c_str(), stderr);
    co_await weft::sleep(200ms);
  }
}

weft::Coro<int> run_compress(Flags flags) {
  flags.only({"input", "output", "sink", "chunk-size", "in-flight", "level", "workers"});
  const std::string input_path = flags.text("input", "");
  if (input_path.empty()) throw UsageError("compress needs --input=PATH (the file to compress)");
  const std::string output_path = flags.text("output", "");
  const std::string sink_text = flags.text("sink", "");
  if (!output_path.empty() && !sink_text.empty()) {
    throw UsageError("--output is for the built-in sink; with --sink the sink stores the frames");
  }
  const std::size_t chunk_size = chunk_size_flag(flags);
  pl::PipelineOptions options;
  options.in_flight = static_cast<std::size_t>(bounded_flag(flags, "in-flight", 8, 1, 1024));
  const int level = static_cast<int>(bounded_flag(flags, "level", 6, 0, 9));
  options.compress = [level](std::string raw) { return pl::compress_chunk(raw, level); };

  // The input first: a missing file creates no output and opens no connection.
  weft::File input;
  try {
    input = co_await weft::File::open(input_path, "r");
    (void)co_await input.read_at(0, 1);  // a directory fails here, not half-way
  } catch (const std::exception& e) {
    throw std::runtime_error(absl::StrFormat("cannot read the input %s: %s", input_path, e.what()));
  }

  // The sink: another program's, or a task of this one.
  const bool builtin_sink = sink_text.empty();
  weft::File output;
  weft::Server sink_server;
  weft::Future<Received> sink_done;
  Endpoint sink;
  if (!builtin_sink) {
    sink = endpoint_flag(sink_text);
  } else {
    if (!output_path.empty()) output = co_await weft::File::open(output_path, "w");
    SinkOptions so;
    so.output = output.is_open() ? &output : nullptr;
    sink_server = co_await start_sink(0, so, sink_done);
    sink = {"127.0.0.1", sink_server.port()};
  }
  weft::StreamWriter writer;
  try {
    auto [reader, w] = co_await weft::open_connection(sink.host, sink.port);
    writer = std::move(w);
  } catch (const std::exception& e) {
    throw std::runtime_error(absl::StrFormat("cannot connect to the sink %s: %s", sink.text(), e.what()));
  }

  pl::Progress progress;
  const bool on_terminal = isatty(STDERR_FILENO) == 1;
  const auto t0 = std::chrono::steady_clock::now();
  int stopped_by = 0;
  std::string failure;
  try {
    auto body = [&](weft::TaskGroup& tg) -> weft::Coro<void> {
      weft::Task<void> watch = tg.create_task(stop_on_signal(stopped_by));
      std::optional<weft::Task<void>> shown;
      if (on_terminal) shown = tg.create_task(show_progress(progress, t0));
      co_await pl::run_pipeline(pl::file_chunks(input, chunk_size), writer, options, progress);
      watch.cancel();
      if (shown) shown->cancel();
    };
    co_await weft::task_group(body);
  } catch (const weft::ExceptionGroup& group) {
    // An Interrupted is how a signal stops the pipeline, not a failure.
    if (auto rest = group.split<Interrupted>().second) failure = pl::first_failure(*rest);
  }
  const double seconds = seconds_since(t0);
  if (on_terminal) std::fputs((progress_line(progress, t0) + "\n").c_str(), stderr);

  // The built-in sink stores what arrived (the writer ended the stream
  // after its last whole frame, in every case).
  Received stored;
  bool sink_failed = false;
  if (builtin_sink) {
    try {
      stored = co_await sink_done;
    } catch (const std::exception& e) {
      // The sink's own error (a full disk, say) is the cause; the writer's
      // (the reset the sink left behind) only follows from it.
      failure = absl::StrFormat("the sink failed: %s", e.what());
      sink_failed = true;
    }
    sink_server.close();
    co_await sink_server.wait_closed();
    if (output.is_open()) co_await output.close();
  }

  const std::uint64_t chunks = progress.chunks_written.load(std::memory_order_relaxed);
  const std::uint64_t raw = progress.raw_bytes_written.load(std::memory_order_relaxed);
  const std::uint64_t sent = progress.bytes_written.load(std::memory_order_relaxed);
  if (stopped_by != 0 && failure.empty()) {
    std::fprintf(stderr,
                 "pipeline: interrupted by %s: the sink has the first %llu whole chunks "
                 "(%.1f MB of the input)\n",
                 strsignal(stopped_by), static_cast<unsigned long long>(chunks), raw / 1e6);
    co_return kExitInterrupted;
  }
  if (sink_failed) {
    // What it stored before it failed is whole frames, but not counted here.
    std::fprintf(stderr, "pipeline: %s\n", failure.c_str());
    co_return kExitFailed;
  }
  if (!failure.empty()) {
    std::fprintf(stderr, "pipeline: %s (the sink has the first %llu whole chunks)\n",
                 failure.c_str(), static_cast<unsigned long long>(chunks));
    co_return kExitFailed;
  }
  if (builtin_sink && (stored.frames != chunks || stored.bytes != sent)) {
    std::fprintf(stderr, "pipeline: the sink stored %llu frames (%llu bytes) of %llu (%llu bytes)\n",
                 static_cast<unsigned long long>(stored.frames),
                 static_cast<unsigned long long>(stored.bytes),
                 static_cast<unsigned long long>(chunks), static_cast<unsigned long long>(sent));
    co_return kExitFailed;
  }
  std::fprintf(stderr,
               "pipeline: %llu chunks, %.1f MB -> %.1f MB (%.1f%%) in %.2f s, %.1f MB/s, at most "
               "%llu chunks in flight\n",
               static_cast<unsigned long long>(chunks), raw / 1e6, sent / 1e6,
               raw == 0 ? 0.0 : 100.0 * sent / raw, seconds, raw / 1e6 / seconds,
               static_cast<unsigned long long>(progress.max_in_flight.load()));
  std::printf("OK %llu chunks %llu bytes\n", static_cast<unsigned long long>(chunks),
              static_cast<unsigned long long>(raw));
  co_return 0;
}

// --- sink --------------------------------------------------------------------------------

weft::Coro<int> run_sink_mode(Flags flags) {
  flags.only({"port", "output", "max-seconds", "close-after", "read-pause", "workers"});
  const auto port = static_cast<std::uint16_t>(bounded_flag(flags, "port", 0, 0, 65535));
  const long max_seconds = bounded_flag(flags, "max-seconds", 60, 1, 86400);
  SinkOptions options;
  options.close_after = static_cast<std::uint64_t>(bounded_flag(flags, "close-after", 0, 0, 1L << 40));
  try {
    options.read_pause = flags.duration("read-pause", 0ns);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  weft::File output;
  if (const std::string path = flags.text("output", ""); !path.empty()) {
    output = co_await weft::File::open(path, "w");
    options.output = &output;
  }
  weft::Future<Received> done;
  weft::Server server = co_await start_sink(port, options, done);
  std::printf("LISTEN %u\n", server.port());
  std::fflush(stdout);

  std::optional<Received> got;
  std::string failure;
  try {
    got = co_await weft::wait_for(done, std::chrono::seconds(max_seconds));
  } catch (const weft::TimeoutError&) {
    failure = absl::StrFormat("no stream ended within %d s", max_seconds);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  server.close();
  server.close_clients();
  co_await server.wait_closed();
  if (output.is_open()) co_await output.close();
  if (!failure.empty()) {
    std::fprintf(stderr, "pipeline sink: %s\n", failure.c_str());
    co_return kExitFailed;
  }
  if (got->closed_early) {
    std::fprintf(stderr, "pipeline sink: reset the connection after %llu bytes (--close-after)\n",
                 static_cast<unsigned long long>(got->bytes));
  }
  std::printf("OK %llu frames %llu bytes\n", static_cast<unsigned long long>(got->frames),
              static_cast<unsigned long long>(got->raw_bytes));
  co_return 0;
}

// --- decompress --------------------------------------------------------------------------

weft::Coro<int> run_decompress(Flags flags) {
  flags.only({"input", "output", "workers"});
  const std::string input_path = flags.text("input", "");
  const std::string output_path = flags.text("output", "");
  if (input_path.empty() || output_path.empty()) {
    throw UsageError("decompress needs --input=PATH (frames a sink stored) and --output=PATH");
  }
  weft::File input;
  try {
    input = co_await weft::File::open(input_path, "r");
  } catch (const std::exception& e) {
    throw std::runtime_error(absl::StrFormat("cannot read the input %s: %s", input_path, e.what()));
  }
  // Written beside the output and renamed at the end: a failure leaves no
  // half-written output.
  const std::string partial = output_path + ".partial";
  weft::File output = co_await weft::File::open(partial, "w");
  pl::FrameParser parser;
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::string failure;
  try {
    for (;;) {
      std::string data = co_await input.read(1 << 20);
      if (data.empty()) break;
      parser.feed(data);
      while (std::optional<pl::Frame> frame = parser.next()) {
        std::string raw = co_await weft::to_thread(pl::decompress_frame, std::move(*frame));
        co_await output.write(raw);
        ++frames;
        bytes += raw.size();
      }
    }
    if (parser.pending() != 0) {
      throw std::runtime_error(absl::StrFormat("it ends inside a frame (%d bytes of it)",
                                               parser.pending()));
    }
    co_await output.close();
  } catch (const std::exception& e) {
    failure = absl::StrFormat("%s after %d whole frames: %s", input_path, frames, e.what());
  }
  if (!failure.empty()) {
    if (output.is_open()) co_await output.close();
    auto remove = [partial] {
      std::error_code ignored;
      std::filesystem::remove(partial, ignored);
    };
    co_await weft::to_thread(std::move(remove));
    std::fprintf(stderr, "pipeline decompress: %s\n", failure.c_str());
    co_return kExitFailed;
  }
  auto rename = [partial, output_path] {
    std::error_code ec;
    std::filesystem::rename(partial, output_path, ec);
    return ec;
  };
  if (std::error_code ec = co_await weft::to_thread(std::move(rename)); ec) {
    std::fprintf(stderr, "pipeline decompress: rename %s to %s: %s\n", partial.c_str(),
                 output_path.c_str(), ec.message().c_str());
    co_return kExitFailed;
  }
  std::printf("OK %llu frames %llu bytes\n", static_cast<unsigned long long>(frames),
              static_cast<unsigned long long>(bytes));
  co_return 0;
}

void usage(std::FILE* out, const char* argv0) {
  std::fprintf(out,
               "usage: %s compress --input=PATH [--output=PATH | --sink=HOST:PORT] "
               "[--chunk-size=1M] [--in-flight=8] [--level=6] [--workers=N]\n"
               "       %s sink [--port=0] [--output=PATH] [--max-seconds=60] "
               "[--close-after=BYTES] [--read-pause=DURATION]\n"
               "       %s decompress --input=PATH --output=PATH\n",
               argv0, argv0, argv0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr, argv[0]);
    return kExitUsage;
  }
  const std::string mode = argv[1];
  if (mode == "-h" || mode == "--help") {
    usage(stdout, argv[0]);
    return 0;
  }
  try {
    Flags flags(argc, argv, 2);
    weft::RuntimeOptions options;
    options.workers = static_cast<std::uint32_t>(bounded_flag(flags, "workers", 0, 0, 1024));
    if (mode == "compress") return weft::run(run_compress(std::move(flags)), std::move(options));
    if (mode == "sink") return weft::run(run_sink_mode(std::move(flags)), std::move(options));
    if (mode == "decompress") return weft::run(run_decompress(std::move(flags)), std::move(options));
    std::fprintf(stderr, "pipeline: unknown mode '%s' (want compress, sink or decompress)\n",
                 mode.c_str());
    return kExitUsage;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "pipeline: %s\n", e.what());
    return kExitUsage;
  } catch (const std::invalid_argument& e) {  // Flags: a malformed argument
    std::fprintf(stderr, "pipeline: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline: %s\n", e.what());
    return kExitFailed;
  }
}
