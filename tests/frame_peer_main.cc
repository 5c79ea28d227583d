// A C++ peer for cross-language frame tests (python/tests/test_frames.py), one line per frame:
//   frame_peer_main read CHANNEL COUNT
//     reads COUNT frames with the C++ frame API (ReadImageFrame / ReadAudioFrame): prints
//     "ready" once subscribed, then the line of each frame. A sample of another kind, or one
//     the readers refuse, prints its error and exits 1.
//   frame_peer_main write CHANNEL
//     publishes a fixed set of frames (LoanImageFrame / LoanAudioFrame) on an existing channel
//     and prints the line of each, in order.
// The lines:
//   "image width=W height=H format=RGBA8 stride=S crc=C"   (C: CRC-32 of the rows' pixels,
//                                                           padding excluded)
//   "audio sample_rate=R channels=N format=F32 frames=F crc=C"   (C: CRC-32 of the PCM)
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "quiver/channel.h"
#include "quiver/frame.h"
#include "quiver/sample_header.h"

namespace {

// CRC-32 (IEEE 802.3, zlib's crc32), continued from `crc`.
uint32_t Crc32(std::span<const std::byte> bytes, uint32_t crc = 0) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::byte b : bytes) crc = table[(crc ^ static_cast<uint8_t>(b)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::string ImageLine(const quiver::ImageFrameInfo& info, std::span<const std::byte> data) {
  const size_t row = size_t{info.width} * quiver::BytesPerPixel(info.format);
  uint32_t crc = 0;
  for (uint32_t y = 0; y < info.height; ++y) {
    crc = Crc32(data.subspan(size_t{y} * info.stride, row), crc);
  }
  return "image width=" + std::to_string(info.width) + " height=" + std::to_string(info.height) +
         " format=" + std::string(quiver::PixelFormatName(info.format)) +
         " stride=" + std::to_string(info.stride) + " crc=" + std::to_string(crc);
}

std::string AudioLine(const quiver::AudioFrameInfo& info, std::span<const std::byte> data) {
  return "audio sample_rate=" + std::to_string(info.sample_rate) +
         " channels=" + std::to_string(info.channels) +
         " format=" + std::string(quiver::SampleFormatName(info.format)) +
         " frames=" + std::to_string(info.frame_count) + " crc=" + std::to_string(Crc32(data));
}

void Print(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int Fail(const char* what, const quiver::Status& st) {
  std::printf("error %s: %s\n", what, st.ToString().c_str());
  return 1;
}

int Read(const std::string& name, int count) {
  auto channel = quiver::Channel::Open(name);
  if (!channel.ok()) return Fail("open", channel.status());
  auto subscriber = channel->CreateSubscriber();
  if (!subscriber.ok()) return Fail("subscribe", subscriber.status());
  std::printf("ready\n");
  std::fflush(stdout);
  for (int i = 0; i < count; ++i) {
    auto received = subscriber->Receive(std::chrono::seconds(30));
    if (!received.ok()) return Fail("receive", received.status());
    auto sample = std::make_shared<const quiver::Sample>(std::move(*received));
    const std::optional<quiver::PayloadKind> kind = quiver::PeekPayloadKind(sample->data());
    if (kind == quiver::PayloadKind::kImageFrame) {
      auto frame = quiver::ReadImageFrame(sample);
      if (!frame.ok()) return Fail("ReadImageFrame", frame.status());
      Print(ImageLine(frame->info, frame->data));
    } else if (kind == quiver::PayloadKind::kAudioFrame) {
      auto frame = quiver::ReadAudioFrame(sample);
      if (!frame.ok()) return Fail("ReadAudioFrame", frame.status());
      Print(AudioLine(frame->info, frame->data));
    } else {
      std::printf("error: sample %d is not a frame\n", i);
      return 1;
    }
  }
  return 0;
}

// Every byte differs from its neighbours and from the same byte of the other frames, padding
// included (the reader must skip it).
void Fill(std::span<std::byte> data, unsigned seed) {
  for (size_t k = 0; k < data.size(); ++k) data[k] = std::byte((k * 31 + seed * 7 + 1) & 0xff);
}

int Write(const std::string& name) {
  using quiver::PixelFormat;
  using quiver::SampleFormat;
  auto channel = quiver::Channel::Open(name);
  if (!channel.ok()) return Fail("open", channel.status());
  auto publisher = channel->CreatePublisher();
  if (!publisher.ok()) return Fail("publish", publisher.status());
  unsigned seed = 0;
  const quiver::ImageFrameInfo images[] = {
      {.width = 5, .height = 3, .format = PixelFormat::kRgb8, .stride = 17},  // padded rows
      {.width = 4, .height = 2, .format = PixelFormat::kGray16},              // tight
      // An odd stride is a valid GRAY16 frame that numpy cannot view as uint16 rows.
      {.width = 3, .height = 2, .format = PixelFormat::kGray16, .stride = 7},
      {.width = 2, .height = 2, .format = PixelFormat::kBgra8, .stride = 12},
  };
  for (const quiver::ImageFrameInfo& info : images) {
    auto loan = quiver::LoanImageFrame(*publisher, info);
    if (!loan.ok()) return Fail("LoanImageFrame", loan.status());
    Fill(loan->data(), ++seed);
    const std::string line = ImageLine(loan->info(), loan->data());  // as written, stride resolved
    if (auto st = quiver::PublishImageFrame(*publisher, std::move(*loan)); !st.ok()) {
      return Fail("PublishImageFrame", st);
    }
    Print(line);
  }
  const quiver::AudioFrameInfo sounds[] = {
      {.sample_rate = 16000, .channels = 2, .format = SampleFormat::kS16, .frame_count = 6},
      {.sample_rate = 8000, .channels = 1, .format = SampleFormat::kU8, .frame_count = 5},
      {.sample_rate = 96000, .channels = 3, .format = SampleFormat::kF64, .frame_count = 4},
  };
  for (const quiver::AudioFrameInfo& info : sounds) {
    auto loan = quiver::LoanAudioFrame(*publisher, info);
    if (!loan.ok()) return Fail("LoanAudioFrame", loan.status());
    Fill(loan->data(), ++seed);
    const std::string line = AudioLine(loan->info(), loan->data());
    if (auto st = quiver::PublishAudioFrame(*publisher, std::move(*loan)); !st.ok()) {
      return Fail("PublishAudioFrame", st);
    }
    Print(line);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "read" && argc == 4) return Read(argv[2], std::atoi(argv[3]));
  if (mode == "write" && argc == 3) return Write(argv[2]);
  std::fprintf(stderr, "usage: %s read CHANNEL COUNT | write CHANNEL\n", argv[0]);
  return 2;
}
