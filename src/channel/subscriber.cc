#include <sched.h>

#include <cstdio>
#include <cstring>

#include "channel/channel_state.h"
#include "shm/cpu.h"
#include "shm/futex.h"
#include "shm/ofd_lock.h"

namespace quiver {
namespace internal {

using channel::SlotState;
using Clock = std::chrono::steady_clock;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr auto kPublisherProbeInterval = std::chrono::milliseconds(20);
}  // namespace

SubscriberState::~SubscriberState() {
  ChannelState& ch = *channel;
  channel::SubscriberSlot& s = ch.slots[slot];
  s.notify_name[0] = '\0';
  // Hand the slot to the publisher for reclaim (it drains whatever is still queued); only
  // then drop the lock, so the slot is never both free-looking and still referenced.
  s.state.store(static_cast<uint32_t>(SlotState::kClosing), std::memory_order_release);
  channel::ChannelHeader& h = *ch.header;
  h.closing_mask.fetch_or(bit, std::memory_order_seq_cst);
  if (h.publisher_waiting.load(std::memory_order_seq_cst) != 0) {
    h.space_word.fetch_add(1, std::memory_order_release);
    shm::FutexWake(&h.space_word, 1);
  }
  std::lock_guard lock(ch.mu);
  ch.own_slots &= ~bit;
  shm::UnlockByte(ch.segment.fd(), shm::kFirstSubscriberLockByte + slot);
}

bool SubscriberState::RingEmpty() const {
  const channel::SubscriberSlot& s = channel->slots[slot];
  return s.read_index.load(std::memory_order_acquire) ==
         s.write_index.load(std::memory_order_acquire);
}

Result<std::optional<Sample>> SubscriberState::Take(const std::shared_ptr<SubscriberState>& self) {
  ChannelState& ch = *channel;
  channel::SubscriberSlot& s = ch.slots[slot];
  for (;;) {
    uint64_t r = s.read_index.load(std::memory_order_acquire);
    // Acquire pairs with the publisher's release of write_index: the descriptor and the
    // sample's bytes are visible once the index is.
    if (r == s.write_index.load(std::memory_order_acquire)) return std::optional<Sample>();
    const uint32_t index = ch.ring(slot)[r % ch.max_samples].load(kRelaxed);
    // The publisher may take the same entry (drop-oldest); whoever wins the CAS owns it.
    if (!s.read_index.compare_exchange_weak(r, r + 1, std::memory_order_acq_rel)) continue;
    if (index >= ch.max_samples) {
      return Status(ErrorCode::kShmCorruption, "ring of channel '" + ch.name +
                                                   "' names descriptor " + std::to_string(index) +
                                                   " of " + std::to_string(ch.max_samples));
    }
    const channel::SampleDesc& d = ch.descs[index];
    const uint64_t offset = d.offset.load(kRelaxed);
    const uint64_t size = d.size.load(kRelaxed);
    if (offset % channel::kSampleAlignment != 0 || offset > ch.capacity ||
        size > ch.capacity - offset) {
      Release(index);
      return Status(ErrorCode::kShmCorruption, "sample [" + std::to_string(offset) + ", +" +
                                                   std::to_string(size) +
                                                   ") lies outside channel '" + ch.name + "' (" +
                                                   std::to_string(ch.capacity) + " bytes)");
    }
    s.received.store(s.received.load(kRelaxed) + 1, kRelaxed);
    s.received_bytes.store(s.received_bytes.load(kRelaxed) + size, kRelaxed);
    return std::optional<Sample>(
        Sample(self, index, data + offset, size, d.sequence.load(kRelaxed)));
  }
}

bool SubscriberState::PublisherGoneCheap() {
  const uint32_t lifecycle = channel->header->publisher_lifecycle.load(std::memory_order_acquire);
  if (lifecycle == static_cast<uint32_t>(channel::PublisherLifecycle::kClosed)) return true;
  if (++empty_polls % 256 != 0) return false;
  return PublisherGone();
}

bool SubscriberState::PublisherGone() {
  ChannelState& ch = *channel;
  const uint32_t lifecycle = ch.header->publisher_lifecycle.load(std::memory_order_acquire);
  if (lifecycle == static_cast<uint32_t>(channel::PublisherLifecycle::kClosed)) return true;
  if (lifecycle != static_cast<uint32_t>(channel::PublisherLifecycle::kActive)) return false;
  const Clock::time_point now = Clock::now();
  if (now - last_publisher_check < kPublisherProbeInterval) return false;
  last_publisher_check = now;
  std::lock_guard lock(ch.mu);
  if (ch.holds_publisher) return false;
  // The lock dies with the publisher's process, however it died.
  return !shm::IsByteLockedByOthers(ch.segment.fd(), shm::kPublisherLockByte);
}

void SubscriberState::Release(uint32_t desc) {
  channel::ChannelHeader& h = *channel->header;
  // seq_cst RMW then seq_cst load, against the publisher's store of publisher_waiting and
  // re-check of holders: one of the two always sees the other.
  channel->descs[desc].holders.fetch_and(~bit, std::memory_order_seq_cst);
  if (h.publisher_waiting.load(std::memory_order_seq_cst) != 0) {
    h.space_word.fetch_add(1, std::memory_order_release);
    shm::FutexWake(&h.space_word, 1);
  }
}

}  // namespace internal

// ---- Sample -----------------------------------------------------------------------------

Sample::Sample(std::shared_ptr<internal::SubscriberState> owner, uint32_t desc,
               const std::byte* data, size_t size, uint64_t sequence)
    : owner_(std::move(owner)), desc_(desc), data_(data), size_(size), sequence_(sequence) {}

Sample::Sample(Sample&& o) noexcept
    : owner_(std::move(o.owner_)),
      desc_(o.desc_),
      data_(o.data_),
      size_(o.size_),
      sequence_(o.sequence_) {}

Sample& Sample::operator=(Sample&& o) noexcept {
  if (this != &o) {
    Release();
    owner_ = std::move(o.owner_);
    desc_ = o.desc_;
    data_ = o.data_;
    size_ = o.size_;
    sequence_ = o.sequence_;
  }
  return *this;
}

Sample::~Sample() { Release(); }

uint64_t Sample::offset() const { return owner_ ? static_cast<uint64_t>(data_ - owner_->data) : 0; }

void Sample::Release() {
  if (owner_) {
    owner_->Release(desc_);
    owner_.reset();
  }
}

// ---- Subscriber -------------------------------------------------------------------------

Subscriber::Subscriber(std::shared_ptr<internal::SubscriberState> state)
    : state_(std::move(state)) {}
Subscriber::Subscriber(Subscriber&&) noexcept = default;
Subscriber& Subscriber::operator=(Subscriber&&) noexcept = default;
Subscriber::~Subscriber() = default;

Result<std::optional<Sample>> Subscriber::TryReceive() {
  internal::SubscriberState& s = *state_;
  QUIVER_ASSIGN_OR_RETURN(std::optional<Sample> sample, s.Take(state_));
  if (sample) return sample;
  if (s.notify) {
    // Arm the fd, then look again: a sample published before the arm is found here, one
    // published after it signals the fd.
    s.notify->Drain();
    s.channel->slots[s.slot].notify_armed.store(1, std::memory_order_seq_cst);
    QUIVER_ASSIGN_OR_RETURN(sample, s.Take(state_));
    if (sample) return sample;
  }
  if (s.PublisherGoneCheap() && s.RingEmpty()) {
    return Status(ErrorCode::kPeerGone, "the publisher of channel '" + s.channel->name +
                                            "' is gone and every sample was received");
  }
  return std::optional<Sample>();
}

Result<Sample> Subscriber::Receive(std::chrono::nanoseconds timeout) {
  internal::SubscriberState& s = *state_;
  internal::ChannelState& ch = *s.channel;
  channel::SubscriberSlot& slot = ch.slots[s.slot];
  using internal::Clock;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + timeout;
  const Clock::time_point spin_until = start + std::min(timeout, s.options.spin);

  for (uint32_t round = 1;; ++round) {
    QUIVER_ASSIGN_OR_RETURN(std::optional<Sample> sample, s.Take(state_));
    if (sample) return std::move(*sample);
    if (Clock::now() >= spin_until) break;
    for (int i = 0; i < 8; ++i) shm::CpuRelax();  // ~0.2 us between looks
    // A publisher sharing our CPU cannot publish while we spin; let it run every ~3 us.
    // With nobody else runnable here, this returns at once.
    if (round % 16 == 0) sched_yield();
  }
  for (;;) {
    if (s.PublisherGone() && s.RingEmpty()) {
      return Status(ErrorCode::kPeerGone, "the publisher of channel '" + ch.name +
                                              "' is gone and every sample was received");
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      return Status(ErrorCode::kTimeout, "no sample on channel '" + ch.name + "' within " +
                                             std::to_string(timeout.count() / 1000) + " us");
    }
    const uint32_t seen = slot.wake_word.load(std::memory_order_acquire);
    slot.sleeping.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (s.RingEmpty()) {
      const auto slice =
          std::min<std::chrono::nanoseconds>(deadline - now, internal::kPublisherProbeInterval);
      shm::FutexWait(&slot.wake_word, seen, slice);
    }
    slot.sleeping.store(0, std::memory_order_relaxed);
    QUIVER_ASSIGN_OR_RETURN(std::optional<Sample> sample, s.Take(state_));
    if (sample) return std::move(*sample);
  }
}

Result<int> Subscriber::NotifyFd() {
  internal::SubscriberState& s = *state_;
  if (!s.notify) {
    channel::SubscriberSlot& slot = s.channel->slots[s.slot];
    char name[48];
    std::snprintf(name, sizeof(name), "quiver.%016llx.%u.%u",
                  static_cast<unsigned long long>(s.channel->nonce), s.slot,
                  slot.generation.load(std::memory_order_relaxed));
    QUIVER_ASSIGN_OR_RETURN(channel::NotifyReceiver receiver, channel::NotifyReceiver::Bind(name));
    std::memcpy(slot.notify_name, name, sizeof(slot.notify_name));
    s.notify.emplace(std::move(receiver));
    // Armed from the start, so the first sample after this call signals.
    slot.notify_armed.store(1, std::memory_order_seq_cst);
  }
  return s.notify->fd();
}

uint64_t Subscriber::missed() const {
  return state_->channel->slots[state_->slot].missed.load(std::memory_order_relaxed);
}

uint32_t Subscriber::slot() const { return state_->slot; }

Channel Subscriber::channel() const { return Channel(state_->channel); }

// ---- Channel::CreateSubscriber ----------------------------------------------------------

Result<Subscriber> Channel::CreateSubscriber(const SubscriberOptions& options) {
  internal::ChannelState& ch = *state_;
  QUIVER_ASSIGN_OR_RETURN(const std::byte* data, ch.DataReadOnly());
  for (uint32_t i = 0; i < ch.max_subscribers; ++i) {
    const uint64_t bit = uint64_t{1} << i;
    {
      std::lock_guard lock(ch.mu);
      if ((ch.own_slots & bit) != 0) continue;
      // Holding the slot's lock is owning the slot; the lock dies with this process.
      if (!shm::TryLockByte(ch.segment.fd(), shm::kFirstSubscriberLockByte + i,
                            shm::LockKind::kExclusive)
               .ok()) {
        continue;
      }
      channel::SubscriberSlot& slot = ch.slots[i];
      auto expected = static_cast<uint32_t>(channel::SlotState::kFree);
      // A slot still Active or Closing belongs to a subscriber that left and awaits the
      // publisher's reclaim; it is not ours to take.
      if (!slot.state.compare_exchange_strong(expected,
                                              static_cast<uint32_t>(channel::SlotState::kActive),
                                              std::memory_order_acq_rel)) {
        shm::UnlockByte(ch.segment.fd(), shm::kFirstSubscriberLockByte + i);
        continue;
      }
      ch.own_slots |= bit;
    }
    channel::SubscriberSlot& slot = ch.slots[i];
    slot.generation.fetch_add(1, std::memory_order_relaxed);
    slot.read_index.store(slot.write_index.load(std::memory_order_acquire),
                          std::memory_order_release);
    slot.sleeping.store(0, std::memory_order_relaxed);
    slot.notify_armed.store(0, std::memory_order_relaxed);
    slot.notify_name[0] = '\0';
    slot.missed.store(0, std::memory_order_relaxed);
    slot.received.store(0, std::memory_order_relaxed);
    slot.received_bytes.store(0, std::memory_order_relaxed);
    auto state = std::make_shared<internal::SubscriberState>();
    state->channel = state_;
    state->data = data;
    state->slot = i;
    state->bit = bit;
    state->options = options;
    // From here on the publisher delivers to us.
    ch.header->active_mask.fetch_or(bit, std::memory_order_seq_cst);
    return Subscriber(std::move(state));
  }
  return Status(ErrorCode::kBusy, "all " + std::to_string(ch.max_subscribers) +
                                      " subscriber slots of channel '" + ch.name + "' are taken");
}

}  // namespace quiver
