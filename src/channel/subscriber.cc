#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "channel/channel_state.h"
#include "channel/late_join.h"
#include "channel/slot_reclaim.h"
#include "common/duration.h"
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
  if (ch.segment.inherited()) return;  // the parent's slot: a child leaves it alone
  channel::SubscriberSlot& s = ch.slots[slot];
  s.notify_name[0] = '\0';
  // Backlog samples never delivered: give them back now rather than at the reclaim.
  for (size_t i = backlog_next; i < backlog.size(); ++i) Release(backlog[i]);
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

bool SubscriberState::NothingQueued() const {
  const channel::SubscriberSlot& s = channel->slots[slot];
  // >=: a receive may take an entry (by its tag) just before the publisher advances
  // write_index past it.
  return backlog_next == backlog.size() && s.read_index.load(std::memory_order_acquire) >=
                                               s.write_index.load(std::memory_order_acquire);
}

Status SubscriberState::Evicted() const {
  const ChannelState& ch = *channel;
  const uint32_t evicted_ms = ch.slots[slot].evicted_after_ms.load(kRelaxed);
  if (evicted_ms == 0) return Status::OK();
  return Status::Evicted("this subscriber of channel '" + ch.name +
                         "' was evicted by the channel's stall policy: the publisher had waited " +
                         FormatDuration(std::chrono::milliseconds(evicted_ms)) +
                         " for room it kept (stall_timeout " + FormatDuration(ch.stall_timeout) +
                         "), and the samples it had not received were dropped. Samples it holds "
                         "stay valid; create a new subscriber to receive again");
}

Result<std::optional<Sample>> SubscriberState::Take(const std::shared_ptr<SubscriberState>& self) {
  ChannelState& ch = *channel;
  channel::SubscriberSlot& s = ch.slots[slot];
  if (backlog_next < backlog.size()) return Deliver(self, backlog[backlog_next++]);
  for (;;) {
    uint64_t r = s.read_index.load(std::memory_order_acquire);
    // The entry at r, tagged with its position (channel::RingEntry), says by itself whether
    // it was written: write_index is not read here. Acquire pairs with the publisher's
    // release of the entry: the descriptor and the sample's bytes are visible with it.
    const uint64_t entry = ch.ring(slot)[r % ch.max_samples].load(std::memory_order_acquire);
    if (!channel::RingEntryIsAt(entry, r)) {
      // An evicted subscriber's ring is empty and stays so: the reason is looked for only
      // here, off the path of a sample.
      QUIVER_RETURN_IF_ERROR(Evicted());
      return std::optional<Sample>();
    }
    const uint32_t index = channel::RingIndex(entry);
    // The publisher may take the same entry (drop-oldest); whoever wins the CAS owns it.
    if (!s.read_index.compare_exchange_weak(r, r + 1, std::memory_order_acq_rel)) continue;
    if (index >= ch.max_samples) {
      return Status::ShmCorruption("ring of channel '" + ch.name + "' names descriptor " +
                                   std::to_string(index) + " of " + std::to_string(ch.max_samples));
    }
    return Deliver(self, index);
  }
}

Result<std::optional<Sample>> SubscriberState::Deliver(const std::shared_ptr<SubscriberState>& self,
                                                       uint32_t index) {
  ChannelState& ch = *channel;
  channel::SubscriberSlot& s = ch.slots[slot];
  const channel::SampleDesc& d = ch.descs[index];
  const uint64_t offset = d.offset.load(kRelaxed);
  const uint64_t size = d.size.load(kRelaxed);
  if (offset % channel::kSampleAlignment != 0 || offset > ch.capacity ||
      size > ch.capacity - offset) {
    Release(index);
    return Status::ShmCorruption("sample [" + std::to_string(offset) + ", +" +
                                 std::to_string(size) + ") lies outside channel '" + ch.name +
                                 "' (" + std::to_string(ch.capacity) + " bytes)");
  }
  s.received.store(s.received.load(kRelaxed) + 1, kRelaxed);
  s.received_bytes.store(s.received_bytes.load(kRelaxed) + size, kRelaxed);
  return std::optional<Sample>(Sample(self, index, data + offset, size, d.sequence.load(kRelaxed)));
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
  return PublisherGoneNow(ch);
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
    if (!owner_->channel->segment.inherited()) owner_->Release(desc_);
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
  QUIVER_RETURN_IF_ERROR(internal::CheckNotInherited(*s.channel, "this subscriber"));
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
  if (s.PublisherGoneCheap() && s.NothingQueued()) {
    QUIVER_RETURN_IF_ERROR(Gone(internal::Clock::now()));
    return TryReceive();  // the restarted publisher's channel
  }
  return std::optional<Sample>();
}

bool Subscriber::awaiting_restart() const { return state_->told_death; }

uint32_t Subscriber::restarts_followed() const { return state_->restarts_followed; }

Status Subscriber::Gone(std::chrono::steady_clock::time_point wait_until) {
  internal::SubscriberState& s = *state_;
  internal::ChannelState& ch = *s.channel;
  const bool closed = ch.header->publisher_lifecycle.load(std::memory_order_acquire) ==
                      static_cast<uint32_t>(channel::PublisherLifecycle::kClosed);
  if (closed) {
    return Status::PeerGone("the publisher of channel '" + ch.name +
                            "' closed and every sample was received");
  }
  const bool follows = s.options.follow_restarts && ch.segment.named();
  auto died = [&] {
    return Status::PeerGone("the publisher of channel '" + ch.name +
                            "' died and every sample it published was received" +
                            (follows
                                 ? "; receive again to wait for a publisher restarted under the "
                                   "same name (Channel::Create replaces the channel)"
                                 : ""));
  };
  if (!follows) return died();
  for (;;) {
    // A restart shows as another file under the name.
    struct stat mine {
    }, named{};
    if (::fstat(ch.segment.fd(), &mine) == 0 && ::stat(ch.segment.path().c_str(), &named) == 0 &&
        (mine.st_dev != named.st_dev || mine.st_ino != named.st_ino)) {
      Result<Channel> restarted = Channel::Open(ch.name);
      if (restarted.ok()) {
        // From its oldest: what it published before we got here and others still hold.
        SubscriberOptions options = s.options;
        options.from_oldest = true;
        QUIVER_ASSIGN_OR_RETURN(Subscriber next, restarted->CreateSubscriber(options));
        next.state_->restarts_followed = s.restarts_followed + 1;
        state_ = std::move(next.state_);  // samples of the old channel keep it alive
        return Status::OK();
      }
    }
    // The death is reported at once, the first time; after that, a receive waits for the
    // restart.
    if (!s.told_death) {
      s.told_death = true;
      return died();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= wait_until) return died();
    std::this_thread::sleep_for(
        std::min<std::chrono::nanoseconds>(wait_until - now, internal::kPublisherProbeInterval));
  }
}

Result<Sample> Subscriber::Receive(std::chrono::nanoseconds timeout) {
  internal::SubscriberState& s = *state_;
  internal::ChannelState& ch = *s.channel;
  QUIVER_RETURN_IF_ERROR(internal::CheckNotInherited(ch, "this subscriber"));
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
    if (s.PublisherGone() && s.NothingQueued()) {
      QUIVER_RETURN_IF_ERROR(Gone(deadline));
      return Receive(
          std::max<std::chrono::nanoseconds>(deadline - Clock::now(), std::chrono::nanoseconds(0)));
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      return Status::Timeout("no sample on channel '" + ch.name + "' within " +
                             FormatDuration(timeout));
    }
    const uint32_t seen = slot.wake_word.load(std::memory_order_acquire);
    slot.sleeping.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (s.NothingQueued()) {
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

namespace {

// Claims a free slot of `ch`: its lock, then its state Free -> Active. Returns the slot or
// nullopt if every slot is in use.
std::optional<uint32_t> ClaimFreeSlot(internal::ChannelState& ch) {
  for (uint32_t i = 0; i < ch.max_subscribers; ++i) {
    const uint64_t bit = uint64_t{1} << i;
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
    // A slot still Active or Closing with no lock held is a gone subscriber's: the second
    // pass takes it over (ClaimGoneSlot).
    if (!slot.state.compare_exchange_strong(expected,
                                            static_cast<uint32_t>(channel::SlotState::kActive),
                                            std::memory_order_acq_rel)) {
      shm::UnlockByte(ch.segment.fd(), shm::kFirstSubscriberLockByte + i);
      continue;
    }
    ch.own_slots |= bit;
    return i;
  }
  return std::nullopt;
}

// When no slot is free: takes over one whose subscriber died or closed and that nobody
// reclaimed yet (an idle publisher reclaims nothing), clearing it first, so reconnecting
// subscribers never run out of slots. nullopt if every slot is held by a live subscriber.
std::optional<uint32_t> ClaimGoneSlot(internal::ChannelState& ch) {
  for (uint32_t i = 0; i < ch.max_subscribers; ++i) {
    const std::optional<channel::SlotState> gone = internal::TryAdoptGoneSlot(ch, i);
    if (!gone) continue;
    if (!internal::ClearSlot(ch, i, nullptr).ok()) {
      // A stopped publisher mid-publish: leave the slot to it.
      std::lock_guard lock(ch.mu);
      ch.own_slots &= ~(uint64_t{1} << i);  // TryAdoptGoneSlot's mark
      shm::UnlockByte(ch.segment.fd(), shm::kFirstSubscriberLockByte + i);
      continue;
    }
    if (*gone == channel::SlotState::kActive) {
      ch.header->reclaimed_subscribers.fetch_add(1, std::memory_order_relaxed);
    }
    ch.slots[i].state.store(static_cast<uint32_t>(channel::SlotState::kActive),
                            std::memory_order_release);
    std::lock_guard lock(ch.mu);
    ch.own_slots |= uint64_t{1} << i;
    return i;
  }
  return std::nullopt;
}

}  // namespace

Result<Subscriber> Channel::CreateSubscriber(const SubscriberOptions& options) {
  internal::ChannelState& ch = *state_;
  QUIVER_RETURN_IF_ERROR(internal::CheckNotInherited(ch, "this handle"));
  QUIVER_ASSIGN_OR_RETURN(const std::byte* data, ch.DataReadOnly());
  std::optional<uint32_t> claimed = ClaimFreeSlot(ch);
  if (!claimed) claimed = ClaimGoneSlot(ch);
  if (claimed) {
    const uint32_t i = *claimed;
    const uint64_t bit = uint64_t{1} << i;
    channel::SubscriberSlot& slot = ch.slots[i];
    slot.generation.fetch_add(1, std::memory_order_relaxed);
    slot.read_index.store(slot.write_index.load(std::memory_order_acquire),
                          std::memory_order_release);
    slot.sleeping.store(0, std::memory_order_relaxed);
    slot.notify_armed.store(0, std::memory_order_relaxed);
    slot.notify_name[0] = '\0';
    slot.evicted_after_ms.store(0, std::memory_order_relaxed);
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
    if (options.from_oldest) QUIVER_RETURN_IF_ERROR(ClaimBacklog(*state));
    return Subscriber(std::move(state));
  }
  return Status::Busy("all " + std::to_string(ch.max_subscribers) +
                      " subscriber slots of channel '" + ch.name + "' are taken");
}

}  // namespace quiver
