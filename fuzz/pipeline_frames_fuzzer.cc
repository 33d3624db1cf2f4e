// libFuzzer target: the pipeline example's frame parser and inflater
// (examples/pipeline/pipeline.h) on any bytes, as a sink receives them.
//
// Byte 0 seeds the splits (the sizes of the pieces fed to the parser); the
// rest is the stream. Checked, independently of the parser's code:
//  - the frames are the same whatever the splits (the stream fed whole gives
//    the same frames and the same pending count);
//  - the frames tile the stream: frame k's bytes are the stream's bytes from
//    where frame k-1 ended, and its header's sizes are those bytes' sizes;
//  - what is left pending is exactly the stream's tail after the last frame;
//  - a frame either inflates to exactly its raw size or raises
//    std::runtime_error; an error from the parser is std::runtime_error too;
//  - anything that inflates recompresses into a frame that inflates back to
//    the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "examples/pipeline/pipeline.h"

namespace {

namespace pl = weft_examples::pipeline;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "pipeline_frames_fuzzer: %s\n", what);
  std::abort();
}

std::uint32_t u32_at(std::string_view s, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(s[at + i])} << (8 * i);
  return v;
}

struct Parsed {
  std::vector<std::string> frames;
  std::size_t pending = 0;
  bool error = false;
};

// Feeds `stream` in pieces whose sizes come from `seed` (0: whole).
Parsed parse(std::string_view stream, std::uint8_t seed) {
  pl::FrameParser parser;
  Parsed p;
  std::uint32_t x = seed;
  std::size_t at = 0;
  try {
    while (at < stream.size()) {
      std::size_t n = stream.size() - at;
      if (seed != 0) {
        x = x * 1103515245u + 12345u;
        n = std::min<std::size_t>(n, 1 + (x >> 16) % 23);
      }
      parser.feed(stream.substr(at, n));
      at += n;
      while (std::optional<pl::Frame> f = parser.next()) p.frames.push_back(f->bytes);
    }
  } catch (const std::runtime_error&) {
    p.error = true;
  }
  p.pending = parser.pending();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t seed = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Parsed split = parse(stream, seed);
  const Parsed whole = parse(stream, 0);
  if (split.frames != whole.frames || split.error != whole.error) {
    fail("the splits changed the frames");
  }
  if (!split.error && split.pending != whole.pending) fail("the splits changed what is pending");

  std::size_t at = 0;
  for (const std::string& f : whole.frames) {
    if (stream.substr(at, f.size()) != f) fail("a frame is not the stream's next bytes");
    if (f.size() < pl::kFrameHeaderSize ||
        u32_at(f, 0) != f.size() - pl::kFrameHeaderSize) {
      fail("a frame's size is not its header's");
    }
    at += f.size();
  }
  if (!whole.error && whole.pending != stream.size() - at) fail("pending is not the tail");

  for (const std::string& bytes : whole.frames) {
    pl::Frame frame;
    frame.raw_size = u32_at(bytes, 4);
    frame.bytes = bytes;
    std::string raw;
    try {
      raw = pl::decompress_frame(frame);
    } catch (const std::runtime_error&) {
      continue;
    }
    if (raw.size() != frame.raw_size) fail("inflated to a size other than the header's");
    if (pl::decompress_frame(pl::compress_chunk(raw, 1)) != raw) fail("no round trip");
  }
  return 0;
}
