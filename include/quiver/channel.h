// Named publish/subscribe channels in shared memory: one publisher, up to 64 subscribers,
// variable-size samples loaned from pre-mapped memory and read in place by every subscriber.
//
// Channel, Publisher and Subscriber are thread-compatible: one thread at a time per object.
// Samples may be released (destroyed) from any thread.
//
//   auto channel = quiver::Channel::Create("frames", {.capacity = 64 << 20});
//   auto publisher = channel->CreatePublisher();
//   auto sample = publisher->Loan(3840);            // writable, in shared memory
//   std::memcpy(sample->data().data(), pcm, 3840);
//   publisher->Publish(std::move(*sample));          // visible to subscribers now
//
//   auto subscriber = quiver::Channel::Open("frames")->CreateSubscriber();
//   auto received = subscriber->Receive(std::chrono::seconds(1));  // read-only view
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/status.h"

namespace quiver {

namespace internal {
struct ChannelState;
struct PublisherState;
struct SubscriberState;
}  // namespace internal

/// What a channel can be: Channel::Create checks ChannelOptions against these.
inline constexpr size_t kMaxCapacity = size_t{1} << 40;  ///< 1 TiB of sample data
inline constexpr uint32_t kMaxSubscribers = 64;          ///< one bit each in a sample's mask
inline constexpr uint32_t kMaxSamples = 1u << 20;        ///< in flight at once

/// What a publisher does when the channel has no room for a new loan.
enum class OverflowPolicy : uint32_t {
  kBlock = 0,       ///< Wait until subscribers release samples: nothing is ever lost.
  kDropOldest = 1,  ///< Recycle the oldest samples no subscriber holds; lagging subscribers
                    ///< skip them and can see how many they missed.
};

/// "block" or "drop-oldest": the one spelling of pipeline files, options and Python.
std::string_view OverflowPolicyName(OverflowPolicy policy);
/// The policy of a name OverflowPolicyName gives; kInvalidArgument naming both otherwise.
Result<OverflowPolicy> ParseOverflowPolicy(std::string_view name);

/// OK if [offset, offset + size) lies inside [0, capacity), computed without overflow;
/// kHandleOutOfRange otherwise (also for size 0). The bounds rule of Channel::DataRange.
Status CheckDataRange(uint64_t offset, uint64_t size, uint64_t capacity);

/// Where the channel's shared memory lives.
enum class Backing : uint32_t {
  kNamed = 0,  ///< /dev/shm/quiver-<uid>/<name> (Channel::NamedPath): any process of this
               ///< user can Open() it; other users can neither open nor list it.
  kMemfd = 1,  ///< An anonymous memfd reached only through its fd (see Channel::FromFd).
};

struct ChannelOptions {
  /// Bytes of sample data. The largest possible loan is exactly this.
  size_t capacity = size_t{64} << 20;
  /// Samples that may be in flight (loaned, queued or held) at once.
  uint32_t max_samples = 256;
  /// Subscriber slots, 1 to 64.
  uint32_t max_subscribers = 16;
  OverflowPolicy overflow = OverflowPolicy::kBlock;
  Backing backing = Backing::kNamed;
  /// Bytes reserved for type descriptors (e.g. serialized Arrow schemas), stored once per
  /// channel rather than per sample.
  size_t type_registry_bytes = size_t{64} << 10;
  /// A first type descriptor (version 1), or empty for an untyped channel.
  std::string type_descriptor;
  /// The slow-consumer policy of a `block` channel (off by default: nothing is ever lost).
  /// When a publisher has waited this long for room, the subscribers holding the oldest
  /// sample are evicted: they leave the channel, what they had not received yet is dropped
  /// (counted in their `missed`), and their next receive fails with kEvicted. Samples they
  /// hold stay valid until they release them. A subscriber that is stopped (SIGSTOP, a
  /// debugger, a hung interpreter) then stalls the channel for at most this long. More
  /// than 0, at most kMaxStallTimeout.
  std::optional<std::chrono::milliseconds> stall_timeout;
};

/// The longest stall policy a channel takes: a day.
inline constexpr std::chrono::milliseconds kMaxStallTimeout{86'400'000};

/// A stall timeout given in seconds (pipeline files, Python), rounded to milliseconds (at
/// least 1). kInvalidArgument unless 0 < seconds <= kMaxStallTimeout.
Result<std::chrono::milliseconds> StallTimeoutFromSeconds(double seconds);

struct PublisherOptions {
  /// How long Loan() waits for space under kBlock; nullopt waits as long as it takes.
  std::optional<std::chrono::nanoseconds> loan_timeout;
};

struct SubscriberOptions {
  /// How long Receive() busy-polls before it sleeps on a futex.
  std::chrono::nanoseconds spin = std::chrono::microseconds(20);
  /// false: receive what is published from now on. true: first the channel's backlog, the
  /// samples it still keeps for other subscribers (queued or held), oldest first, then on
  /// without a gap. A channel keeps a sample only until every subscriber released it, so
  /// the backlog is the longest run of consecutive samples, ending just before the first
  /// new one, that someone still holds; it may be empty. Under kBlock nothing is skipped
  /// between the backlog and what follows; the backlog's samples count as received.
  bool from_oldest = false;
  /// For a named channel whose publisher died: once every sample it published was
  /// received, receives follow a publisher restarted under the same name (Channel::Create
  /// replaces a channel whose publisher died), so a long-lived consumer survives a
  /// producer's crash and restart without code. The death is still reported once
  /// (kPeerGone); later receives wait for the restart within their timeout. A publisher
  /// that closed cleanly ends the stream as before.
  bool follow_restarts = true;
};

/// Counters of one subscriber slot, readable by any process attached to the channel.
struct SubscriberStats {
  uint32_t slot = 0;
  uint64_t received = 0;
  uint64_t received_bytes = 0;
  uint64_t missed = 0;  ///< samples dropped before this subscriber received them
  uint64_t queued = 0;  ///< published but not yet received (the lag)
  uint64_t held = 0;    ///< received and not yet released (Samples it keeps alive)
  bool alive = false;   ///< its process still holds the slot's liveness lock
  /// Not 0 once the stall policy evicted it: how long the publisher had waited for room.
  std::chrono::milliseconds evicted_after{0};
};

/// A snapshot of a channel's counters and fill level.
struct ChannelStats {
  std::string name;
  size_t capacity = 0;
  size_t bytes_in_use = 0;
  uint32_t samples_in_use = 0;
  uint32_t max_samples = 0;
  uint32_t max_subscribers = 0;
  OverflowPolicy overflow = OverflowPolicy::kBlock;
  bool publisher_alive = false;
  uint64_t published = 0;
  uint64_t published_bytes = 0;
  uint64_t dropped = 0;                ///< sample deliveries dropped under kDropOldest
  uint64_t publisher_stalls = 0;       ///< times a loan had to wait for space
  uint64_t reclaimed_subscribers = 0;  ///< dead subscribers whose samples were reclaimed
  uint64_t evicted_subscribers = 0;    ///< subscribers the stall policy evicted
  /// The stall policy (ChannelOptions::stall_timeout), if the channel has one.
  std::optional<std::chrono::milliseconds> stall_timeout;
  /// How long the publisher has been waiting for room right now (0: it is not waiting).
  std::chrono::milliseconds publisher_waiting{0};
  std::vector<SubscriberStats> subscribers;

  /// The counters as one JSON object, the one shape of `quiver ls --json`, the Flight
  /// gateway's `stats` action and Python's Channel.stats(): {"state": "live", "name": ...,
  /// "capacity": ..., "overflow": "block", ..., "subscribers": [...]}.
  std::string ToJson() const;
};

/// The processes that hold a channel (Channel::Holders).
struct ChannelHolders {
  pid_t publisher = 0;  ///< the process holding the publisher's lock; 0 if none was seen
  /// Subscriber slot -> the process holding its lock, for every slot held.
  std::map<uint32_t, pid_t> subscribers;
  std::vector<pid_t> processes;  ///< every process with the channel open, sorted
};

/// Whether a typed loan (LoanTensor, LoanImageFrame, LoanAudioFrame) waits for room when
/// there is none: kForRoom waits as Publisher::Loan, kNo returns kChannelFull at once as
/// Publisher::TryLoan (a binding tries first, and waits only when it must).
enum class LoanWait : uint8_t { kForRoom, kNo };

class Channel;
class Publisher;
class Subscriber;

/// Where a published sample is in its channel: its sequence number and its bytes
/// [offset, offset + size) of the data area.
struct PublishedSample {
  uint64_t sequence = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  bool operator==(const PublishedSample&) const = default;
};

/// A writable sample loaned from the channel. Publish it, or drop it to give the space back.
/// Move-only. Its bytes are 64-byte aligned and not zeroed.
class LoanedSample {
 public:
  LoanedSample(LoanedSample&&) noexcept;
  LoanedSample& operator=(LoanedSample&&) noexcept;
  LoanedSample(const LoanedSample&) = delete;
  LoanedSample& operator=(const LoanedSample&) = delete;
  ~LoanedSample();

  std::span<std::byte> data() const { return {data_, size_}; }
  size_t size() const { return size_; }

 private:
  friend class Publisher;
  LoanedSample(std::shared_ptr<internal::PublisherState> owner, uint32_t desc, std::byte* data,
               size_t size);

  std::shared_ptr<internal::PublisherState> owner_;
  uint32_t desc_ = 0;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

/// A received sample: a read-only view of shared memory that stays valid while this object
/// lives. Dropping it releases the sample back to the publisher. Move-only.
class Sample {
 public:
  Sample(Sample&&) noexcept;
  Sample& operator=(Sample&&) noexcept;
  Sample(const Sample&) = delete;
  Sample& operator=(const Sample&) = delete;
  ~Sample();

  std::span<const std::byte> data() const { return {data_, size_}; }
  size_t size() const { return size_; }
  /// The publisher's sequence number of this sample (0, 1, 2, ...); gaps mean drops.
  uint64_t sequence() const { return sequence_; }
  /// Where the sample starts in the channel's data area: the `offset` of a control-plane
  /// shm_handle naming it.
  uint64_t offset() const;

 private:
  friend class Subscriber;
  friend struct internal::SubscriberState;
  Sample(std::shared_ptr<internal::SubscriberState> owner, uint32_t desc, const std::byte* data,
         size_t size, uint64_t sequence);
  void Release();

  std::shared_ptr<internal::SubscriberState> owner_;
  uint32_t desc_ = 0;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  uint64_t sequence_ = 0;
};

/// The one writer of a channel.
class Publisher {
 public:
  Publisher(Publisher&&) noexcept;
  Publisher& operator=(Publisher&&) noexcept;
  ~Publisher();

  /// Loans `bytes` (1 to the channel's capacity) of writable shared memory. Under kBlock it
  /// waits for space (up to PublisherOptions::loan_timeout: then kTimeout); a loan larger
  /// than the capacity is kCapacityExceeded.
  Result<LoanedSample> Loan(size_t bytes);
  /// Like Loan, but returns kChannelFull instead of waiting.
  Result<LoanedSample> TryLoan(size_t bytes);
  /// Loan (kForRoom) or TryLoan (kNo), for the typed loans that take a LoanWait.
  Result<LoanedSample> Loan(size_t bytes, LoanWait wait);
  /// Makes the sample visible to every subscriber attached now (a release store: its bytes
  /// are visible before it is). Never waits.
  Status Publish(LoanedSample&& sample);
  /// Loans, copies `bytes` in and publishes.
  Status PublishCopy(std::span<const std::byte> bytes);

  /// Number of subscribers samples are currently delivered to.
  uint32_t subscriber_count() const;
  /// Waits until at least `count` subscribers are attached, so that none of them misses the
  /// first sample: the rendezvous of a producer that must not start before its readers.
  /// kTimeout (naming how many came) after `timeout`. Looks every few hundred microseconds
  /// to every few milliseconds; not for a hot path. In rendezvous.cc.
  Status WaitForSubscribers(uint32_t count, std::chrono::nanoseconds timeout);
  /// How many subscribers this publisher should wait for: under `quiver run`, the number of
  /// the pipeline's nodes that subscribe to its channel (kPipelineSubscribersEnv), so that
  /// a producer need not repeat it from the pipeline file; elsewhere 1. In rendezvous.cc.
  uint32_t expected_subscribers() const;

  /// Makes `descriptor` the channel's newest type version and returns its number; returns
  /// the newest version unchanged if it already holds exactly these bytes. Versions are
  /// kept forever (samples name theirs). kCapacityExceeded when the registry is full.
  Result<uint32_t> RegisterType(std::string_view descriptor);

  /// The channel this publisher writes to.
  Channel channel() const;
  /// The sample this publisher published last (what a safe shm_handle names). kNotFound
  /// before its first publish.
  Result<PublishedSample> last_published() const;

 private:
  friend class Channel;
  explicit Publisher(std::shared_ptr<internal::PublisherState> state);
  Result<LoanedSample> LoanImpl(size_t bytes, bool wait);

  std::shared_ptr<internal::PublisherState> state_;
};

/// One reader of a channel. Receives every sample published after it attached, in order.
class Subscriber {
 public:
  Subscriber(Subscriber&&) noexcept;
  Subscriber& operator=(Subscriber&&) noexcept;
  ~Subscriber();

  /// Waits up to `timeout` for the next sample: spins briefly, then sleeps on a futex.
  /// kTimeout if nothing came; kPeerGone once the publisher is gone and every sample it
  /// published to us has been received (for a publisher that died and is followed, see
  /// SubscriberOptions::follow_restarts: reported once, then waited for); kEvicted after
  /// the channel's stall policy evicted this subscriber.
  Result<Sample> Receive(std::chrono::nanoseconds timeout);
  /// Returns the next sample, or nullopt if none is queued. kPeerGone as for Receive.
  Result<std::optional<Sample>> TryReceive();

  /// True once this subscriber was told its publisher died and it now waits for a publisher
  /// restarted under the channel's name (SubscriberOptions::follow_restarts).
  bool awaiting_restart() const;
  /// How many restarted publishers this subscriber has followed (each one a new channel;
  /// sequences start again at 0).
  uint32_t restarts_followed() const;

  /// A file descriptor that becomes readable when samples may be queued, for the caller's
  /// own epoll/poll/asyncio loop. After it polls readable, call TryReceive until it returns
  /// nullopt. Owned by the subscriber.
  Result<int> NotifyFd();

  /// Samples dropped (kDropOldest) before this subscriber received them.
  uint64_t missed() const;
  /// This subscriber's slot index in the channel.
  uint32_t slot() const;

  /// The channel this subscriber reads from.
  Channel channel() const;

 private:
  friend class Channel;
  explicit Subscriber(std::shared_ptr<internal::SubscriberState> state);
  /// The publisher is gone and everything it published was received: kPeerGone, or (named
  /// channel, publisher died, following) moves to a restarted publisher's channel and
  /// returns OK. `wait_until`: how long to wait for a restart once the death was reported.
  Status Gone(std::chrono::steady_clock::time_point wait_until);

  std::shared_ptr<internal::SubscriberState> state_;
};

/// Set by `quiver run` for each node: "name=count,..." for the channels it publishes, each
/// with the number of the pipeline's nodes that subscribe to it
/// (Publisher::expected_subscribers).
inline constexpr char kPipelineSubscribersEnv[] = "QUIVER_SUBSCRIBERS";

/// A handle to a channel's shared memory. Copyable (handles share one attachment).
class Channel {
 public:
  /// Creates a channel. kAlreadyExists if a live channel of that name exists; a stale one
  /// (all its processes died) is replaced.
  static Result<Channel> Create(std::string_view name, const ChannelOptions& options = {});
  /// Attaches to an existing named channel. kNotFound if it does not exist. In a node of
  /// `quiver run` (QUIVER_CHANNELS set), a name that is not a named channel but one of the
  /// node's pipeline channels is attached as Attach does; another name's kNotFound lists the
  /// node's channels.
  static Result<Channel> Open(std::string_view name);
  /// Like Open, but waits up to `wait` for the channel to be created: the rendezvous of a
  /// consumer that may start before its producer. kTimeout if it did not appear by then;
  /// other errors (a bad name, a corrupt segment) at once. In rendezvous.cc.
  static Result<Channel> Open(std::string_view name, std::chrono::nanoseconds wait);
  /// Opens channel `name` if it exists, else creates it with `options`; a race with another
  /// process doing the same is settled (one creates, the other opens). `options` are not
  /// compared with an existing channel's, except its type: if `options.type_descriptor` is
  /// set, kSchemaMismatch unless the existing channel has had exactly that descriptor as
  /// one of its versions (an untyped channel never has). In rendezvous.cc.
  static Result<Channel> OpenOrCreate(std::string_view name, const ChannelOptions& options = {});
  /// Attaches to a channel whose segment fd this process holds (a memfd inherited from, or
  /// passed by, its creator). The fd stays the caller's.
  static Result<Channel> FromFd(int fd);

  /// Attaches to channel `name` as a pipeline node should: through the segment fd its
  /// supervisor handed down (environment QUIVER_CHANNELS="name=fd,name=fd,..."), else by
  /// name (Open). kInvalidArgument for a malformed QUIVER_CHANNELS.
  static Result<Channel> Attach(std::string_view name);

  /// The private directory (mode 0700) where this user's named channels live:
  /// /dev/shm/quiver-<uid>, or $QUIVER_SHM_DIR/quiver-<uid>. Made by the first Create and
  /// removed by the last channel out.
  static std::string NamedDirectory();
  /// The file of named channel `name`: NamedDirectory()/name.
  static std::string NamedPath(std::string_view name);
  /// Checks a channel name: 1 to 64 characters of [A-Za-z0-9._-], not starting with '.'.
  static Status ValidateName(std::string_view name);
  /// The names of this user's named channels, sorted (live and stale; see IsStale). Empty
  /// when there are none.
  static Result<std::vector<std::string>> ListNamed();
  /// True if named channel `name` is stale: it exists, and every process that had it open
  /// died. False for a live channel or none. Opens nothing; changes nothing.
  static Result<bool> IsStale(std::string_view name);
  /// Removes named channel `name` if it is stale, never a live one. True if it removed it.
  static Result<bool> RemoveIfStale(std::string_view name);
  /// For a process about to die of a signal (after which nothing of it runs): removes the
  /// names of the named channels that only this process still has open, so they do not
  /// stay behind as stale files. Async-signal-unsafe; call it from a handler that then exits.
  static void ReleaseNamesHeldOnlyByThisProcess();
  /// The version of the shared-memory layout this build reads and writes (processes of
  /// builds with another version refuse each other's channels).
  static uint32_t LayoutVersion();

  /// Becomes the channel's publisher. kBusy if a live publisher already exists.
  Result<Publisher> CreatePublisher(const PublisherOptions& options = {});
  /// Takes a free subscriber slot. kBusy if all slots are taken.
  Result<Subscriber> CreateSubscriber(const SubscriberOptions& options = {});

  const std::string& name() const;
  size_t capacity() const;
  OverflowPolicy overflow() const;
  /// The segment's fd, e.g. to hand a memfd channel to a child process.
  int fd() const;
  /// True for a named channel (Backing::kNamed, at NamedPath(name())), false for a memfd.
  bool named() const;
  /// Reads the shared counters (any process attached may call it).
  ChannelStats Stats() const;
  /// Which processes of this user hold the channel, from /proc: every process with its
  /// segment open, and which of them holds the publisher's and each subscriber slot's
  /// liveness lock. Scans every process's fds, so it is for tools (`quiver info`), not for
  /// hot paths; processes of other users are not looked at.
  ChannelHolders Holders() const;
  /// True if the channel's publisher died (it attached, and its process is gone without
  /// closing it): the channel takes no successor, Create makes a new one under its name.
  bool publisher_died() const;
  /// A random number drawn when the channel was created: a channel made anew under the same
  /// name (a restarted publisher's) has another. Safe handles carry it.
  uint64_t generation() const;

  /// Number of type descriptors registered (0 for an untyped channel); the newest is
  /// version type_versions().
  uint32_t type_versions() const;
  /// The bytes of type version `version` (1-based). A view into shared memory, valid while
  /// this channel handle lives. kNotFound for a version that does not exist.
  Result<std::string_view> TypeDescriptor(uint32_t version) const;

  /// Bytes [offset, offset + size) of the data area (where samples live), read-only: the
  /// range a control envelope's shm handle names, say. Valid while this channel handle (or
  /// a copy) lives. kHandleOutOfRange if the range is empty or leaves the data area (its
  /// size as validated against the segment's real size when the channel was attached).
  Result<std::span<const std::byte>> DataRange(uint64_t offset, uint64_t size) const;

 private:
  friend class Publisher;
  friend class Subscriber;
  explicit Channel(std::shared_ptr<internal::ChannelState> state);

  std::shared_ptr<internal::ChannelState> state_;
};

/// How much of a channel's recent past a Retainer keeps.
struct RetainOptions {
  uint32_t samples = 0;                  ///< the last N samples (0: no count limit)
  std::chrono::milliseconds max_age{0};  ///< those received in the last T (0: no age limit)
};

/// Keeps a channel's most recent samples held, so that a subscriber joining with
/// `from_oldest` (a Flight DoGet with `?from=oldest`) gets them even if it attached after
/// they were published and nobody else still holds them (iceoryx2's `history_size`). It is a
/// subscriber of its own (one slot) on a thread of its own that receives every sample at
/// once and drops the oldest beyond `samples` or `max_age`. It never holds the publisher
/// back: it keeps at most half of the channel's samples and half of its capacity, dropping
/// the oldest first. What it keeps costs that channel memory, nothing more. Thread-safe.
class Retainer {
 public:
  /// Subscribes now. kInvalidArgument if neither limit is set.
  static Result<std::unique_ptr<Retainer>> Start(Channel channel, RetainOptions options);
  Retainer(const Retainer&) = delete;
  Retainer& operator=(const Retainer&) = delete;
  /// Stops the thread and releases what it held.
  ~Retainer();
  /// How many samples it holds now.
  size_t held() const;

  struct Impl;  // channel/retainer.cc

 private:
  explicit Retainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver
