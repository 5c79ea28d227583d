// W2 image (docs/benchmarks.md): one RGBA image from a producer process to a consumer
// process, by
//   json-base64-stdio  {"width","height","format","data": base64} as one JSON line over a pipe
//                      (the way such pipelines are often built today), parsed with nlohmann::json,
//                      decoded with Arrow's base64;
//   quiver             PublishImageFrame(pixels): one copy of the producer's buffer into a loan;
//   quiver-loan        the producer writes the pixels into the loan (LoanImageFrame), and
//                      publishes that: nothing is copied;
// and, in the producer, memcpy of the same bytes into a warm buffer: the copy limit.
//
// Time: from "the pixels are ready" (in the producer's buffer, or in the loan) until the
// consumer holds a view of them with width, height and format checked. The consumer then
// checksums every pixel (outside the timed span) and the producer compares the checksum with
// its own: a wrong image fails the run.
//
//   w2_image_peer [--sizes 1920x1080,...] [--reps N] [--warmup N] [--transports a,b,...]
//
// Prints one JSON line per transport and size: {"transport", "width", "height", "bytes",
// "samples_us": [...], "cpu_s": {"producer": P, "consumer": C}} (one sample per image; user +
// system CPU seconds of each process summed over the timed images; memcpy: producer only).
// Errors go to stderr with exit status 1.
//
// CPU: deltas of each process's CPU clock (CLOCK_PROCESS_CPUTIME_ID, user + system) over its
// part of moving an image. The producer: from t0 until the consumer's reply came back (its wait
// costs nothing), building and freeing the JSON included; for quiver-loan also the loan
// (LoanImageFrame), not writing the pixels into it, as filling the buffer is not counted for
// the others. The consumer: from waiting for the image until it holds the checked view, then
// releasing it (freeing the decoded pixels, handing the sample back), not its checksum, which is
// outside the time as well; it sends its share with each reply. memcpy: the copy alone, in the
// producer. Starting the consumer and creating the channel are outside.
#include <arrow/util/base64.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_clock.h"
#include "quiver/channel.h"
#include "quiver/frame.h"
#include "run_id.h"

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void Fail(const std::string& message) { throw std::runtime_error(message); }

// This process's CPU summed over the spans between Start() and Stop().
class CpuMeter {
 public:
  void Start() { start_ = quiver::bench::CpuSeconds(); }
  void Stop() { used_ += quiver::bench::CpuSeconds() - start_; }
  double used() const { return used_; }

 private:
  double start_ = 0, used_ = 0;
};

void Check(const quiver::Status& status, const char* what) {
  if (!status.ok()) Fail(std::string(what) + ": " + status.ToString());
}

template <typename T>
T Take(quiver::Result<T> result, const char* what) {
  if (!result.ok()) Fail(std::string(what) + ": " + result.status().ToString());
  return std::move(*result);
}

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Fail(std::string("write: ") + std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

// False on a clean end of file before the first byte.
bool ReadAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < size) {
    const ssize_t n = read(fd, p + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Fail(std::string("read: ") + std::strerror(errno));
    if (n == 0) {
      if (got == 0) return false;
      Fail("read: the other process closed the pipe mid-message");
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

// The pattern of image `n`: every 8-byte word differs, and so does every image.
void Fill(std::byte* data, size_t size, uint64_t n) {
  uint64_t word = 0x9e3779b97f4a7c15ULL * (n + 1);
  size_t i = 0;
  for (; i + 8 <= size; i += 8, word += 0x2545f4914f6cdd1dULL) std::memcpy(data + i, &word, 8);
  for (; i < size; ++i) data[i] = static_cast<std::byte>(n);
}

uint64_t Checksum(const std::byte* data, size_t size) {
  uint64_t sum = 0, word = 0;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::memcpy(&word, data + i, 8);
    sum = (sum ^ word) * 0x100000001b3ULL + (sum >> 29);
  }
  for (; i < size; ++i) sum = sum * 31 + static_cast<uint64_t>(data[i]);
  return sum;
}

struct Reply {
  int64_t done_ns;
  uint64_t checksum;
  double cpu_s;  // the consumer's CPU seconds for this image
};

// What one transport measured for one size: a time per timed image, and the CPU of each
// process summed over those images.
struct Measured {
  std::vector<double> samples_us;
  double producer_cpu_s = 0, consumer_cpu_s = 0;

  void Add(int64_t t0, int64_t done_ns, double producer_cpu, double consumer_cpu) {
    samples_us.push_back(static_cast<double>(done_ns - t0) / 1e3);
    producer_cpu_s += producer_cpu;
    consumer_cpu_s += consumer_cpu;
  }
};

struct Image {
  uint32_t width;
  uint32_t height;
  size_t bytes() const { return size_t{width} * height * 4; }
};

class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }
  // Waits for the child's exit: its status (0 is success).
  int Wait() {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_;
};

struct Pipe {
  int rx = -1, tx = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) Fail(std::string("pipe2: ") + std::strerror(errno));
    rx = fds[0];
    tx = fds[1];
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    CloseRx();
    CloseTx();
  }
  void CloseRx() {
    if (rx >= 0) close(rx);
    rx = -1;
  }
  void CloseTx() {
    if (tx >= 0) close(tx);
    tx = -1;
  }
};

// Starts a consumer: this program again, `--consume ARGS...`, with the data pipe (if any) as
// its stdin and the reply pipe as its stdout. It must exec: this process has threads (Arrow's
// allocator starts one), and a forked child that allocated could find a lock held forever.
pid_t StartConsumer(Pipe& data, Pipe& reply, const std::vector<std::string>& consume_args) {
  std::vector<std::string> args = {"w2_image_peer", "--consume"};
  args.insert(args.end(), consume_args.begin(), consume_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) Fail(std::string("fork: ") + std::strerror(errno));
  if (pid > 0) return pid;
  // Only async-signal-safe calls until exec.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  if ((data.rx >= 0 && dup2(data.rx, STDIN_FILENO) < 0) || dup2(reply.tx, STDOUT_FILENO) < 0) {
    _exit(126);
  }
  execv("/proc/self/exe", argv.data());
  _exit(127);
}

// ---- json-base64-stdio ----------------------------------------------------------------------

void JsonConsumer(int data_rx, int reply_tx) {
  const char ready = 'R';
  WriteAll(reply_tx, &ready, 1);
  FILE* in = fdopen(data_rx, "r");
  if (in == nullptr) Fail("fdopen");
  std::string line;
  std::vector<char> chunk(1 << 20);
  for (;;) {
    CpuMeter cpu;
    cpu.Start();
    line.clear();
    bool eof = false;
    while (line.empty() || line.back() != '\n') {
      if (std::fgets(chunk.data(), static_cast<int>(chunk.size()), in) == nullptr) {
        eof = true;
        break;
      }
      line.append(chunk.data());
    }
    if (eof && line.empty()) return;
    Reply reply{};
    {
      const nlohmann::json doc = nlohmann::json::parse(line);
      const auto width = doc.at("width").get<uint32_t>();
      const auto height = doc.at("height").get<uint32_t>();
      if (doc.at("format").get<std::string>() != "rgba8") Fail("unexpected format");
      auto pixels = arrow::util::base64_decode(doc.at("data").get_ref<const std::string&>());
      if (!pixels.ok()) Fail("base64: " + pixels.status().ToString());
      if (pixels->size() != size_t{width} * height * 4) Fail("image size does not match");
      reply.done_ns = NowNs();
      cpu.Stop();
      reply.checksum = Checksum(reinterpret_cast<const std::byte*>(pixels->data()), pixels->size());
      cpu.Start();
    }  // the document and the pixels are freed: part of receiving an image
    cpu.Stop();
    reply.cpu_s = cpu.used();
    WriteAll(reply_tx, &reply, sizeof(reply));
  }
}

Measured RunJson(const Image& image, int reps, int warmup) {
  Pipe data, reply;
  Child child(StartConsumer(data, reply, {"json"}));
  data.CloseRx();
  reply.CloseTx();
  char ready = 0;
  if (!ReadAll(reply.rx, &ready, 1)) Fail("the JSON consumer did not start");
  std::vector<std::byte> pixels(image.bytes());
  Measured measured;
  for (int n = 0; n < warmup + reps; ++n) {
    Fill(pixels.data(), pixels.size(), static_cast<uint64_t>(n));
    const uint64_t expected = Checksum(pixels.data(), pixels.size());
    CpuMeter cpu;
    cpu.Start();
    const int64_t t0 = NowNs();
    {
      nlohmann::json doc = {
          {"width", image.width},
          {"height", image.height},
          {"format", "rgba8"},
          {"data", arrow::util::base64_encode(std::string_view(
                       reinterpret_cast<const char*>(pixels.data()), pixels.size()))}};
      std::string line = doc.dump();
      line.push_back('\n');
      WriteAll(data.tx, line.data(), line.size());
    }  // the document and the line are freed: part of sending an image
    Reply r{};
    if (!ReadAll(reply.rx, &r, sizeof(r))) Fail("the JSON consumer died");
    cpu.Stop();
    if (r.checksum != expected) Fail("json-base64-stdio: the consumer's checksum is wrong");
    if (n >= warmup) measured.Add(t0, r.done_ns, cpu.used(), r.cpu_s);
  }
  data.CloseTx();
  if (child.Wait() != 0) Fail("the JSON consumer failed");
  return measured;
}

// ---- quiver, quiver-loan --------------------------------------------------------------------

std::string g_channel_path;  // removed if we are interrupted

void RemoveChannelFile(int) {
  if (!g_channel_path.empty()) unlink(g_channel_path.c_str());
  _exit(130);
}

void QuiverConsumer(const std::string& name, int reply_tx) {
  auto ch = Take(quiver::Channel::Open(name), "Channel::Open");
  quiver::SubscriberOptions sub_options;
  sub_options.spin = std::chrono::nanoseconds(0);  // blocking receive: a futex wait
  auto subscriber = Take(ch.CreateSubscriber(sub_options), "CreateSubscriber");
  const char ready = 'R';
  WriteAll(reply_tx, &ready, 1);
  for (;;) {
    CpuMeter cpu;
    cpu.Start();
    auto sample = subscriber.Receive(std::chrono::seconds(30));
    if (!sample.ok()) {
      if (sample.status().code() == quiver::ErrorCode::kPeerGone) return;  // done
      Fail("Receive: " + sample.status().ToString());
    }
    auto frame = Take(quiver::ReadImageFrame(std::make_shared<quiver::Sample>(std::move(*sample))),
                      "ReadImageFrame");
    Reply r{};
    r.done_ns = NowNs();
    if (frame.info.format != quiver::PixelFormat::kRgba8) Fail("unexpected format");
    cpu.Stop();
    r.checksum = Checksum(frame.data.data(), frame.data.size());
    cpu.Start();
    frame = {};  // release the sample before replying: the producer may need the space
    cpu.Stop();
    r.cpu_s = cpu.used();
    WriteAll(reply_tx, &r, sizeof(r));
  }
}

Measured RunQuiver(const Image& image, int reps, int warmup, bool loan) {
  const std::string name =
      "w2-" + quiver::bench::RunId() + "-" + std::to_string(image.width) + (loan ? "-l" : "-c");
  g_channel_path = quiver::Channel::NamedPath(name);
  quiver::ChannelOptions options;
  options.capacity = std::max<size_t>(size_t{16} << 20, 4 * (image.bytes() + 4096));
  options.max_samples = 16;
  auto channel = Take(quiver::Channel::Create(name, options), "Channel::Create");
  quiver::Publisher publisher = Take(channel.CreatePublisher(), "CreatePublisher");
  Pipe data, reply;
  Child child(StartConsumer(data, reply, {"quiver", name}));
  reply.CloseTx();
  char ready = 0;
  if (!ReadAll(reply.rx, &ready, 1)) Fail("the quiver consumer did not start");
  const quiver::ImageFrameInfo info{.width = image.width, .height = image.height};
  std::vector<std::byte> pixels(loan ? 0 : image.bytes());
  Measured measured;
  for (int n = 0; n < warmup + reps; ++n) {
    uint64_t expected = 0;
    int64_t t0 = 0;
    CpuMeter cpu;
    if (loan) {
      cpu.Start();
      auto frame = Take(quiver::LoanImageFrame(publisher, info), "LoanImageFrame");
      cpu.Stop();
      Fill(frame.data().data(), frame.data().size(), static_cast<uint64_t>(n));
      expected = Checksum(frame.data().data(), frame.data().size());
      cpu.Start();
      t0 = NowNs();
      Check(quiver::PublishImageFrame(publisher, std::move(frame)), "PublishImageFrame");
    } else {
      Fill(pixels.data(), pixels.size(), static_cast<uint64_t>(n));
      expected = Checksum(pixels.data(), pixels.size());
      cpu.Start();
      t0 = NowNs();
      Check(quiver::PublishImageFrame(publisher, info, pixels), "PublishImageFrame(copy)");
    }
    Reply r{};
    if (!ReadAll(reply.rx, &r, sizeof(r))) Fail("the quiver consumer died");
    cpu.Stop();
    if (r.checksum != expected) Fail("quiver: the consumer's checksum is wrong");
    if (n >= warmup) measured.Add(t0, r.done_ns, cpu.used(), r.cpu_s);
  }
  // Closing the publisher ends the consumer's loop (kPeerGone once it has read everything).
  { quiver::Publisher closing = std::move(publisher); }
  if (child.Wait() != 0) Fail("the quiver consumer failed");
  return measured;
}

// ---- memcpy -------------------------------------------------------------------------------

Measured RunMemcpy(const Image& image, int reps, int warmup) {
  std::vector<std::byte> src(image.bytes()), dst(image.bytes());
  Measured measured;
  for (int n = 0; n < warmup + reps; ++n) {
    Fill(src.data(), src.size(), static_cast<uint64_t>(n));
    CpuMeter cpu;
    cpu.Start();
    const int64_t t0 = NowNs();
    std::memcpy(dst.data(), src.data(), src.size());
    const int64_t t1 = NowNs();
    cpu.Stop();
    if (Checksum(dst.data(), dst.size()) != Checksum(src.data(), src.size())) Fail("memcpy");
    if (n >= warmup) measured.Add(t0, t1, cpu.used(), 0);
  }
  return measured;
}

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

Image ParseSize(const std::string& text) {
  unsigned w = 0, h = 0;
  char x = 0;
  std::stringstream in(text);
  if (!(in >> w >> x >> h) || x != 'x' || w == 0 || h == 0 || w > 16384 || h > 16384) {
    Fail("--sizes: '" + text + "' is not WIDTHxHEIGHT (1..16384 each)");
  }
  return {w, h};
}

void Usage(FILE* out) {
  std::fputs(
      "usage: w2_image_peer [--sizes WxH,...] [--reps N] [--warmup N] [--transports T,...]\n"
      "  W2 image: RGBA images from a producer to a consumer process.\n"
      "  --sizes       default 640x480,1920x1080,3840x2160\n"
      "  --reps        timed images per transport and size (default 30)\n"
      "  --warmup      untimed images first (default 3)\n"
      "  --transports  of memcpy,json-base64-stdio,quiver,quiver-loan (default: all)\n"
      "Prints one JSON line per transport and size with every sample in microseconds.\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> sizes = {"640x480", "1920x1080", "3840x2160"};
  std::vector<std::string> transports = {"memcpy", "json-base64-stdio", "quiver", "quiver-loan"};
  int reps = 30, warmup = 3;
  if (argc >= 3 && std::string(argv[1]) == "--consume") {  // started by StartConsumer
    try {
      const std::string kind = argv[2];
      if (kind == "json") {
        JsonConsumer(STDIN_FILENO, STDOUT_FILENO);
      } else if (kind == "quiver" && argc == 4) {
        QuiverConsumer(argv[3], STDOUT_FILENO);
      } else {
        Fail("bad --consume arguments");
      }
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "w2_image_peer consumer: %s\n", e.what());
      return 1;
    }
  }
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) Fail(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--help" || arg == "-h") {
        Usage(stdout);
        return 0;
      } else if (arg == "--sizes") {
        sizes = Split(value());
      } else if (arg == "--reps") {
        reps = std::stoi(value());
      } else if (arg == "--warmup") {
        warmup = std::stoi(value());
      } else if (arg == "--transports") {
        transports = Split(value());
      } else {
        Usage(stderr);
        Fail("unknown argument '" + arg + "'");
      }
    }
    if (reps < 1 || warmup < 0) Fail("--reps must be >= 1 and --warmup >= 0");
    signal(SIGINT, RemoveChannelFile);
    signal(SIGTERM, RemoveChannelFile);
    signal(SIGPIPE, SIG_IGN);
    for (const std::string& size : sizes) {
      const Image image = ParseSize(size);
      for (const std::string& transport : transports) {
        Measured measured;
        if (transport == "memcpy") {
          measured = RunMemcpy(image, reps, warmup);
        } else if (transport == "json-base64-stdio") {
          measured = RunJson(image, reps, warmup);
        } else if (transport == "quiver" || transport == "quiver-loan") {
          measured = RunQuiver(image, reps, warmup, transport == "quiver-loan");
        } else {
          Fail("unknown transport '" + transport + "'");
        }
        nlohmann::json cpu = {{"producer", measured.producer_cpu_s}};
        if (transport != "memcpy") {  // the copy has no other process
          cpu["consumer"] = measured.consumer_cpu_s;
        }
        const nlohmann::json line = {{"transport", transport},
                                     {"width", image.width},
                                     {"height", image.height},
                                     {"bytes", image.bytes()},
                                     {"samples_us", measured.samples_us},
                                     {"cpu_s", cpu}};
        std::printf("%s\n", line.dump().c_str());
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    if (!g_channel_path.empty()) unlink(g_channel_path.c_str());
    std::fprintf(stderr, "w2_image_peer: %s\n", e.what());
    return 1;
  }
  return 0;
}
