// The command/result workflow in one process: Handlers, Client, Worker, WorkerPool, Streams
// and HandleResolver over socketpairs and real channels.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "quiver/control.h"

namespace quiver::control {
namespace {

using namespace std::chrono_literals;

std::string UniqueName(const char* stem) {
  return std::string("wf-") + stem + "-" + NewMsgId().substr(0, 8);
}

std::pair<int, int> SocketPair() {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {fds[0], fds[1]};
}

// A worker serving `handlers` on its own thread, and a client commanding it.
struct Harness {
  explicit Harness(Handlers handlers, std::string name = "w1") {
    auto [a, b] = SocketPair();
    thread = std::thread([this, h = std::move(handlers), fd = b] {
      WorkerOptions options;
      options.log = [this](std::string_view line) {
        std::lock_guard lock(mu);
        logs.emplace_back(line);
      };
      served = Worker(h, options).ServeFd(fd);
    });
    auto c = Client::FromFd(a, std::move(name));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    client = std::move(c).value();
  }
  ~Harness() {
    client.reset();  // closes the connection: the worker's loop ends
    thread.join();
  }
  std::unique_ptr<Client> client;
  std::thread thread;
  Status served;
  std::mutex mu;
  std::vector<std::string> logs;
};

Result<Envelope> Echo(const Envelope& command) {
  return MakeEnvelope("RES_EVIDENCE", command.payload);
}

TEST(HandlersTest, ApplicationsRegisterTheirOwnCommandsAndTheBuiltinsStayReserved) {
  Handlers handlers;
  EXPECT_TRUE(handlers.Add("CMD_EXTRACT_EVIDENCE", Echo).ok());
  EXPECT_TRUE(handlers.Add("CMD_PROCESS_PDF", Echo).ok());
  EXPECT_TRUE(handlers.Add(kCmdProcess, Echo).ok());
  for (std::string_view bad : {"CMD_EXTRACT_EVIDENCE", "RES_EVIDENCE", "CMD_AUTH", "CMD_SHUTDOWN",
                               "cmd_lower", "CMD_", "EXTRACT", ""}) {
    Status st = handlers.Add(bad, Echo);
    EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_FALSE(st.message().empty());
  }
  EXPECT_EQ(handlers.Add("CMD_EMPTY", Handler()).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(handlers.types(),
            (std::vector<std::string>{"CMD_EXTRACT_EVIDENCE", "CMD_PROCESS", "CMD_PROCESS_PDF"}));
  EXPECT_NE(handlers.Find("CMD_PROCESS_PDF"), nullptr);
  EXPECT_EQ(handlers.Find("CMD_OTHER"), nullptr);
}

TEST(ControlWorkersEnvTest, FormatAndParseAgreeAndBadValuesAreNamed) {
  const std::vector<WorkerFd> workers = {{"ocr-1", {5, 6}}, {"ocr_2", {17, 17}}};
  const std::string text = FormatControlWorkers(workers);
  EXPECT_EQ(text, "ocr-1=5:6,ocr_2=17");
  auto parsed = ParseControlWorkers(text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, workers);
  EXPECT_TRUE(ParseControlWorkers("")->empty());
  for (std::string_view bad : {"a", "=3", "a=", "a=-1", "a=3x", "a=3,a=4", "a b=3", "a=3,,b=4",
                               "a=3:", "a=:4", "a=3:4:5", "a=3:-4"}) {
    auto r = ParseControlWorkers(bad);
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(*ParseControlFds("7:9"), (ControlFds{7, 9}));
  EXPECT_EQ(FormatControlFds({4, 4}), "4");
  EXPECT_EQ(ParseControlFds("stdio").status().code(), ErrorCode::kInvalidArgument);
}

TEST(WorkflowTest, ApplicationCommandsAreAnsweredAndMatchedByMsgId) {
  Handlers handlers;
  ASSERT_TRUE(handlers.Add("CMD_EXTRACT_EVIDENCE", Echo).ok());
  Harness h(std::move(handlers));
  // Several in flight at once, awaited out of order.
  std::vector<PendingCall> calls;
  for (int page = 0; page < 20; ++page) {
    auto call = h.client->Send(
        MakeEnvelope("CMD_EXTRACT_EVIDENCE", {{"file_path", "a.pdf"}, {"page", page}}));
    ASSERT_TRUE(call.ok()) << call.status().ToString();
    calls.push_back(*call);
  }
  for (int page = 19; page >= 0; --page) {
    auto result = calls[page].Wait(5s);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->type, "RES_EVIDENCE");
    EXPECT_EQ(result->msg_id, calls[page].msg_id());
    EXPECT_EQ(result->payload["page"], page);
  }
  EXPECT_EQ(h.client->in_flight(), 0u);
  EXPECT_EQ(calls[0].worker(), "w1");
}

TEST(WorkflowTest, UnknownCommandIsAClearErrorNamingTheKnownOnes) {
  Handlers handlers;
  ASSERT_TRUE(handlers.Add("CMD_EXTRACT_EVIDENCE", Echo).ok());
  Harness h(std::move(handlers));
  auto result = h.client->Call(MakeEnvelope("CMD_PROCESS_PDF"), 5s);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().ToString().find("UNKNOWN_TYPE"), std::string::npos)
      << result.status().ToString();
  EXPECT_NE(result.status().message().find("CMD_EXTRACT_EVIDENCE"), std::string::npos);
  // A response sent as a command is refused by the client itself.
  EXPECT_EQ(h.client->Send(MakeEnvelope(kResOk)).status().code(), ErrorCode::kInvalidArgument);
}

TEST(WorkflowTest, HandlerErrorsComeBackAsTheirChain) {
  Handlers handlers;
  ASSERT_TRUE(handlers
                  .Add("CMD_FAIL",
                       [](const Envelope&) -> Result<Envelope> {
                         return Status::NotFound("page 9 does not exist")
                             .Wrap(ErrorCode::kInvalidArgument, "cannot extract evidence");
                       })
                  .ok());
  ASSERT_TRUE(
      handlers
          .Add("CMD_THROW",
               [](const Envelope&) -> Result<Envelope> { throw std::runtime_error("boom"); })
          .ok());
  Harness h(std::move(handlers));
  auto failed = h.client->Call(MakeEnvelope("CMD_FAIL"), 5s);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), ErrorCode::kInvalidArgument);
  ASSERT_NE(failed.status().cause(), nullptr);
  EXPECT_EQ(failed.status().cause()->code(), ErrorCode::kNotFound);
  auto thrown = h.client->Call(MakeEnvelope("CMD_THROW"), 5s);
  ASSERT_FALSE(thrown.ok());
  EXPECT_NE(thrown.status().message().find("boom"), std::string::npos);
}

TEST(WorkflowTest, ATimeoutLeavesTheCallPendingAndADeadWorkerFailsItNamingTheWorker) {
  std::atomic<bool> release{false};
  Handlers handlers;
  ASSERT_TRUE(handlers
                  .Add("CMD_SLOW",
                       [&](const Envelope&) -> Result<Envelope> {
                         while (!release) std::this_thread::sleep_for(1ms);
                         return MakeEnvelope(kResOk);
                       })
                  .ok());
  auto [a, b] = SocketPair();
  auto client = Client::FromFd(a, "slow-worker");
  ASSERT_TRUE(client.ok());
  std::thread worker([&, fd = b] { (void)Worker(handlers).ServeFd(fd); });
  auto call = (*client)->Send(MakeEnvelope("CMD_SLOW"));
  ASSERT_TRUE(call.ok());
  auto early = call->Wait(20ms);
  EXPECT_EQ(early.status().code(), ErrorCode::kTimeout);
  EXPECT_NE(early.status().message().find("slow-worker"), std::string::npos);
  EXPECT_FALSE(call->done());
  // The worker's end goes away with the command in flight.
  ::shutdown(b, SHUT_RDWR);
  auto gone = call->Wait(5s);
  ASSERT_EQ(gone.status().code(), ErrorCode::kPeerGone) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find("slow-worker"), std::string::npos);
  EXPECT_NE(gone.status().message().find("CMD_SLOW"), std::string::npos);
  EXPECT_FALSE((*client)->connected());
  EXPECT_EQ((*client)->Send(MakeEnvelope("CMD_SLOW")).status().code(), ErrorCode::kPeerGone);
  release = true;
  worker.join();
}

// What `quiver run` connects a core and a worker with: two pipes.
TEST(WorkflowTest, APairOfPipesCarriesTheWorkflowAndItsEnd) {
  int to_worker[2], to_core[2];
  ASSERT_EQ(pipe2(to_worker, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(to_core, O_CLOEXEC), 0);
  Handlers handlers;
  ASSERT_TRUE(handlers.Add("CMD_EXTRACT_EVIDENCE", Echo).ok());
  Status served = Status::Timeout("not yet");
  std::thread worker([&] { served = Worker(handlers).ServeFds({to_worker[0], to_core[1]}); });
  auto client = Client::FromFds({to_core[0], to_worker[1]}, "piped");
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  std::vector<PendingCall> calls;
  for (int page = 0; page < 50; ++page) {
    calls.push_back(*(*client)->Send(MakeEnvelope("CMD_EXTRACT_EVIDENCE", {{"page", page}})));
  }
  for (int page = 49; page >= 0; --page) {
    auto r = calls[page].Wait(5s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->payload["page"], page);
  }
  client->reset();  // closes the core's ends: the worker reads the end and returns
  worker.join();
  EXPECT_TRUE(served.ok()) << served.ToString();
}

TEST(WorkflowTest, AWorkerGoneOnPipesFailsTheCallAndWritesRaiseNoSigpipe) {
  int to_worker[2], to_core[2];
  ASSERT_EQ(pipe2(to_worker, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(to_core, O_CLOEXEC), 0);
  auto client = Client::FromFds({to_core[0], to_worker[1]}, "gone");
  ASSERT_TRUE(client.ok());
  close(to_worker[0]);  // the worker's ends go away
  close(to_core[1]);
  // SIGPIPE's default action would kill this test process.
  auto sent = (*client)->Send(MakeEnvelope("CMD_ANY"));
  EXPECT_EQ(sent.status().code(), ErrorCode::kPeerGone) << sent.status().ToString();
  EXPECT_FALSE((*client)->connected());
}

TEST(WorkflowTest, ShutdownEndsTheWorkerLoop) {
  auto [a, b] = SocketPair();
  Status served = Status::Timeout("not yet");
  std::thread worker([&, fd = b] { served = Worker(Handlers()).ServeFd(fd); });
  auto client = Client::FromFd(a);
  ASSERT_TRUE(client.ok());
  auto ok = (*client)->Call(MakeEnvelope(kCmdShutdown), 5s);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->type, kResOk);
  worker.join();
  EXPECT_TRUE(served.ok()) << served.ToString();
}

TEST(WorkflowTest, WorkerRefusesWhatIsNotASocketAndAnUnsetEnvironment) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(Worker(Handlers()).ServeFd(p[0]).code(), ErrorCode::kInvalidArgument);
  close(p[0]);
  close(p[1]);
  unsetenv(kControlEnv);
  EXPECT_EQ(Worker(Handlers()).ServeFromEnvironment().code(), ErrorCode::kNotFound);
  setenv(kControlEnv, "12abc", 1);
  EXPECT_EQ(Worker(Handlers()).ServeFromEnvironment().code(), ErrorCode::kInvalidArgument);
  unsetenv(kControlEnv);
  unsetenv(kControlWorkersEnv);
  EXPECT_EQ(WorkerPool::FromEnvironment().status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(Client::ForWorker("ocr").status().code(), ErrorCode::kNotFound);
  auto [a, b] = SocketPair();
  setenv(kControlWorkersEnv, ("ocr=" + std::to_string(a)).c_str(), 1);
  auto other = Client::ForWorker("pdf");
  EXPECT_EQ(other.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(other.status().message().find("ocr"), std::string::npos);
  auto ocr = Client::ForWorker("ocr");
  EXPECT_TRUE(ocr.ok()) << ocr.status().ToString();
  EXPECT_EQ((*ocr)->worker(), "ocr");
  unsetenv(kControlWorkersEnv);
  close(b);
}

// A pool of workers, one of which dies with commands in flight: they are retried elsewhere.
TEST(WorkerPoolTest, ADeadWorkersCommandsAreRetriedOnAnotherExactlyOnce) {
  std::mutex mu;
  std::map<int, int> answered;  // page -> times
  std::atomic<int> doomed_calls{0};
  auto make_handlers = [&](bool doomed, int fd) {
    Handlers handlers;
    EXPECT_TRUE(handlers
                    .Add("CMD_PAGE",
                         [&, doomed, fd](const Envelope& c) -> Result<Envelope> {
                           if (doomed && ++doomed_calls == 3) {
                             ::shutdown(fd, SHUT_RDWR);  // dies before it answers
                             return Status::IoError("gone");
                           }
                           std::lock_guard lock(mu);
                           ++answered[c.payload["page"].get<int>()];
                           return MakeEnvelope(kResOk, c.payload);
                         })
                    .ok());
    return handlers;
  };
  WorkerPool pool(Dispatch::kRoundRobin);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    auto [a, b] = SocketPair();
    threads.emplace_back([h = make_handlers(i == 1, b), fd = b] { (void)Worker(h).ServeFd(fd); });
    auto client = Client::FromFd(a, "w" + std::to_string(i));
    ASSERT_TRUE(client.ok());
    pool.Add(std::move(client).value());
  }
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int page = t; page < 40; page += 4) {
        auto r = pool.Call(MakeEnvelope("CMD_PAGE", {{"page", page}}), {.timeout = 10s});
        if (!r.ok() || r->payload["page"] != page) ++failures;
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(answered.size(), 40u);
  for (const auto& [page, times] : answered) EXPECT_EQ(times, 1) << page;
  EXPECT_EQ(pool.live_workers(), 2u);
  EXPECT_EQ(pool.load().count("w1"), 0u);
  pool.~WorkerPool();
  new (&pool) WorkerPool();
  for (auto& t : threads) t.join();
}

TEST(WorkerPoolTest, WithNoWorkerLeftTheCallFailsNamingEveryWorkerTried) {
  WorkerPool pool(Dispatch::kLeastLoaded);
  auto none = pool.Call(MakeEnvelope("CMD_PAGE"), {.timeout = 1s});
  EXPECT_EQ(none.status().code(), ErrorCode::kPeerGone);
  std::vector<int> worker_ends;
  for (int i = 0; i < 2; ++i) {
    auto [a, b] = SocketPair();
    worker_ends.push_back(b);
    pool.Add(std::move(Client::FromFd(a, "dead" + std::to_string(i))).value());
  }
  // Both workers read the command and die without answering.
  std::vector<std::thread> dying;
  for (int fd : worker_ends) {
    dying.emplace_back([fd] {
      char buf[4096];
      (void)!read(fd, buf, sizeof buf);
      close(fd);
    });
  }
  auto r = pool.Call(MakeEnvelope("CMD_PAGE"), {.timeout = 5s, .retries = 5});
  for (auto& t : dying) t.join();
  ASSERT_EQ(r.status().code(), ErrorCode::kPeerGone);
  const std::string text = r.status().ToString();
  EXPECT_NE(text.find("dead0"), std::string::npos) << text;
  EXPECT_NE(text.find("dead1"), std::string::npos) << text;
  EXPECT_EQ(pool.live_workers(), 0u);
}

// CMD_STREAM_START makes a channel; results published there resolve to the very sample.
TEST(StreamsTest, StreamStartNegotiatesAChannelAndHandlesResolveToTheSample) {
  Streams streams;
  const std::string stream = UniqueName("evidence");
  Handlers handlers;
  ASSERT_TRUE(handlers.Add(kCmdStreamStart, streams.handler()).ok());
  ASSERT_TRUE(
      handlers
          .Add("CMD_RENDER",
               [&](const Envelope& c) -> Result<Envelope> {
                 QUIVER_ASSIGN_OR_RETURN(Publisher * pub, streams.Find(stream));
                 std::string bytes(c.payload["n"].get<size_t>(), 'e');
                 return PublishResult(*pub, std::as_bytes(std::span(bytes)), {{"n", bytes.size()}});
               })
          .ok());
  Harness h(std::move(handlers));
  auto started = h.client->Call(
      MakeEnvelope(
          kCmdStreamStart,
          {{"stream", stream}, {"capacity", 1 << 20}, {"max_samples", 16}, {"overflow", "block"}}),
      5s);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_EQ(started->payload["segment_id"], stream);
  auto again = h.client->Call(MakeEnvelope(kCmdStreamStart, {{"stream", stream}}), 5s);
  EXPECT_EQ(again.status().code(), ErrorCode::kAlreadyExists);
  for (auto bad : {nlohmann::json{{"capacity", 5}}, nlohmann::json{{"stream", 5}},
                   nlohmann::json{{"stream", UniqueName("x")}, {"overflow", "maybe"}},
                   nlohmann::json{{"stream", UniqueName("x")}, {"capacity", -1}},
                   nlohmann::json{{"stream", UniqueName("x")}, {"schema", {{{"name", "a"}}}}}}) {
    auto refused = h.client->Call(MakeEnvelope(kCmdStreamStart, bad), 5s);
    EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidArgument) << bad.dump();
  }

  auto channel = Channel::Open(stream);
  ASSERT_TRUE(channel.ok());
  EXPECT_EQ(channel->generation(), started->payload["generation"].get<uint64_t>());
  HandleResolver resolver;
  ASSERT_TRUE(resolver.Watch(*channel).ok());
  ASSERT_TRUE(resolver.Watch(*channel).ok());  // again: a no-op

  std::vector<Envelope> results;
  for (size_t n : {100, 2000, 30}) {
    auto r = h.client->Call(MakeEnvelope("CMD_RENDER", {{"n", n}}), 5s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->type, kResDataReady);
    ASSERT_TRUE(r->shm_handle && r->shm_handle->sequence && r->shm_handle->generation);
    results.push_back(*r);
  }
  // Resolved out of order; each is the sample of its own size, held while it lives.
  for (int i : {2, 0, 1}) {
    const ShmHandle& handle = *results[i].shm_handle;
    auto sample = resolver.Resolve(handle);
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    EXPECT_EQ(sample->size(), results[i].payload["n"].get<size_t>());
    EXPECT_EQ(sample->sequence(), *handle.sequence);
    EXPECT_EQ(static_cast<char>(sample->data()[0]), 'e');
    // Resolving the same handle again: the sample was handed out already.
    EXPECT_EQ(resolver.Resolve(handle).status().code(), ErrorCode::kStaleHandle);
  }
}

TEST(StreamsTest, AStreamWithASchemaHasAnArrowPublisher) {
  Streams streams;
  const std::string typed = UniqueName("typed"), raw = UniqueName("raw");
  auto started = streams.Start(MakeEnvelope(
      kCmdStreamStart, {{"stream", typed},
                        {"capacity", 1 << 20},
                        {"schema", nlohmann::json::parse(R"([{"name":"id","type":"int64"}])")}}));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  ASSERT_TRUE(
      streams.Start(MakeEnvelope(kCmdStreamStart, {{"stream", raw}, {"capacity", 4096}})).ok());
  auto arrow = streams.FindArrow(typed);
  ASSERT_TRUE(arrow.ok()) << arrow.status().ToString();
  EXPECT_EQ(streams.FindArrow(raw).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(streams.Find(typed).ok());
  auto missing = streams.Find("wf-none");
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find(typed), std::string::npos);
}

class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = UniqueName("resolve");
    auto channel = Channel::Create(name_, {.capacity = 64 << 10, .max_samples = 8});
    ASSERT_TRUE(channel.ok()) << channel.status().ToString();
    channel_.emplace(std::move(channel).value());
    auto pub = channel_->CreatePublisher();
    ASSERT_TRUE(pub.ok());
    pub_.emplace(std::move(pub).value());
  }
  ShmHandle Publish(std::string_view text) {
    EXPECT_TRUE(pub_->PublishCopy(std::as_bytes(std::span(text))).ok());
    auto handle = HandleForLast(*pub_);
    EXPECT_TRUE(handle.ok());
    return *handle;
  }

  std::string name_;
  std::optional<Channel> channel_;
  std::optional<Publisher> pub_;
  HandleResolver resolver_;
};

TEST_F(ResolverTest, HandleForLastNamesTheSampleJustPublished) {
  EXPECT_EQ(HandleForLast(*pub_).status().code(), ErrorCode::kNotFound);
  ShmHandle first = Publish("alpha");
  ShmHandle second = Publish("beta!");
  EXPECT_EQ(first.segment_id, name_);
  EXPECT_EQ(*first.sequence + 1, *second.sequence);
  EXPECT_EQ(*first.generation, channel_->generation());
  EXPECT_EQ(second.size, 5u);
}

TEST_F(ResolverTest, ASampleReleasedAndOverwrittenIsStaleNeverAnotherSamplesBytes) {
  ShmHandle before = Publish("published before the watch");
  ASSERT_TRUE(resolver_.Watch(*channel_).ok());
  EXPECT_EQ(resolver_.Resolve(before, 50ms).status().code(), ErrorCode::kStaleHandle);
  ShmHandle first = Publish("first");
  {
    auto held = resolver_.Resolve(first);
    ASSERT_TRUE(held.ok()) << held.status().ToString();
  }  // released: its bytes may be reused
  // Fill the channel many times over: the first sample's bytes are overwritten.
  ShmHandle last;
  for (int i = 0; i < 50; ++i) {
    last = Publish("overwrite " + std::to_string(i));
    resolver_.Forget(last);
  }
  auto stale = resolver_.Resolve(first);
  EXPECT_EQ(stale.status().code(), ErrorCode::kStaleHandle) << stale.status().ToString();
  // A handle reusing the first's offset with a new sequence: not that sample either.
  ShmHandle forged = first;
  forged.sequence = *last.sequence + 1;
  ShmHandle next = Publish("next");
  if (next.offset != forged.offset || next.size != forged.size) {
    EXPECT_EQ(resolver_.Resolve(forged).status().code(), ErrorCode::kHandleOutOfRange);
  }
  auto ok = resolver_.Resolve(next);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ok->data().data()), ok->size()), "next");
}

TEST_F(ResolverTest, HostileAndWrongHandlesAreRefusedWithTheirCodes) {
  ASSERT_TRUE(resolver_.Watch(*channel_).ok());
  ShmHandle good = Publish("payload");
  struct Case {
    const char* what;
    ShmHandle handle;
    ErrorCode code;
  };
  auto with = [&](auto change) {
    ShmHandle h = good;
    change(h);
    return h;
  };
  const Case cases[] = {
      {"no sequence", with([](ShmHandle& h) {
         h.sequence.reset();
         h.generation.reset();
       }),
       ErrorCode::kInvalidArgument},
      {"other generation", with([](ShmHandle& h) { *h.generation ^= 1; }), ErrorCode::kStaleHandle},
      {"unwatched channel", with([](ShmHandle& h) { h.segment_id = "wf-elsewhere"; }),
       ErrorCode::kNotFound},
      {"past the end", with([](ShmHandle& h) { h.offset = uint64_t{1} << 40; }),
       ErrorCode::kHandleOutOfRange},
      {"huge size", with([](ShmHandle& h) { h.size = ~uint64_t{0}; }),
       ErrorCode::kHandleOutOfRange},
      {"wrong size", with([](ShmHandle& h) { h.size += 1; }), ErrorCode::kHandleOutOfRange},
      {"wrong offset", with([](ShmHandle& h) { h.offset += 64; }), ErrorCode::kHandleOutOfRange},
  };
  for (const Case& c : cases) {
    auto r = resolver_.Resolve(c.handle, 50ms);
    EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status().ToString();
  }
  // The refusals took nothing: the good handle still resolves.
  EXPECT_TRUE(resolver_.Resolve(good).ok());
  // A sample not published yet: its publish may be under way, so it is waited for.
  ShmHandle future = good;
  *future.sequence += 5;
  EXPECT_EQ(resolver_.Resolve(future, 20ms).status().code(), ErrorCode::kTimeout);
  // Its publisher gone, a handle to a sample never published is stale.
  pub_.reset();
  EXPECT_EQ(resolver_.Resolve(future, 1s).status().code(), ErrorCode::kStaleHandle);
}

}  // namespace
}  // namespace quiver::control
