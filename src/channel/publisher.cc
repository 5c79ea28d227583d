#include <algorithm>
#include <bit>
#include <cstring>
#include <thread>

#include "channel/channel_state.h"
#include "channel/late_join.h"
#include "channel/slot_reclaim.h"
#include "common/duration.h"
#include "shm/futex.h"
#include "shm/membarrier.h"
#include "shm/ofd_lock.h"
#include "shm/stream_copy.h"

namespace quiver {
namespace internal {

using channel::AlignUp;
using channel::DescState;
using channel::kSampleAlignment;
using channel::PublisherLifecycle;
using channel::SlotState;
using Clock = std::chrono::steady_clock;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr auto kLivenessInterval = std::chrono::milliseconds(20);

// Adds `n` to a counter only the publisher writes: readers in other processes see each
// value whole, and no locked read-modify-write is needed.
inline void Bump(std::atomic<uint64_t>& counter, uint64_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

template <typename F>
void ForEachBit(uint64_t mask, F&& f) {
  while (mask != 0) {
    f(static_cast<uint32_t>(std::countr_zero(mask)));
    mask &= mask - 1;
  }
}
}  // namespace

PublisherState::PublisherState(std::shared_ptr<ChannelState> ch, std::byte* bytes,
                               PublisherOptions opts)
    : channel(std::move(ch)),
      data(bytes),
      options(opts),
      extents_(channel->capacity, channel->max_samples),
      local_(channel->max_samples) {
  free_descs_.reserve(channel->max_samples);
  in_flight_.reserve(channel->max_samples);
  // Adopt what a previous (cleanly closed) publisher left in flight: published samples
  // that subscribers still queue or hold, each checked to lie inside the data area and to
  // overlap no other before it is trusted.
  const uint64_t capacity = channel->capacity;
  for (uint32_t i = channel->max_samples; i-- > 0;) {
    channel::SampleDesc& d = channel->descs[i];
    const uint64_t offset = d.offset.load(kRelaxed);
    const uint64_t span = d.span.load(kRelaxed);
    const uint64_t size = d.size.load(kRelaxed);
    const bool sane = offset % kSampleAlignment == 0 && span % kSampleAlignment == 0 && span > 0 &&
                      offset <= capacity && span <= capacity - offset && size > 0 && size <= span;
    if (d.state.load(std::memory_order_acquire) == static_cast<uint32_t>(DescState::kPublished) &&
        sane && extents_.MarkUsed(offset, span)) {
      local_[i] = {offset, span, true};
      in_flight_.push_back(i);
    } else {
      d.state.store(static_cast<uint32_t>(DescState::kFree), kRelaxed);
      free_descs_.push_back(i);
    }
  }
  std::sort(in_flight_.begin(), in_flight_.end(), [&](uint32_t a, uint32_t b) {
    return channel->descs[a].sequence.load(kRelaxed) < channel->descs[b].sequence.load(kRelaxed);
  });
  channel->header->samples_in_use.store(in_flight_.size(), kRelaxed);
  channel->header->bytes_in_use.store(channel->capacity - extents_.free_bytes(), kRelaxed);
}

PublisherState::~PublisherState() {
  ChannelState& ch = *channel;
  if (ch.segment.inherited()) return;  // the parent's publisher: a child leaves it alone
  ch.header->publisher_lifecycle.store(static_cast<uint32_t>(PublisherLifecycle::kClosed),
                                       std::memory_order_seq_cst);
  // Wake every sleeper so it sees the publisher is gone now, not at its next probe.
  ForEachBit(ValidSlots(ch.header->active_mask.load(std::memory_order_acquire)), [&](uint32_t i) {
    channel::SubscriberSlot& slot = ch.slots[i];
    slot.wake_word.fetch_add(1, std::memory_order_release);
    shm::FutexWake(&slot.wake_word, INT32_MAX);
    if (slot.notify_armed.exchange(0, std::memory_order_acq_rel) != 0) {
      notifier.Signal(
          std::string_view(slot.notify_name, strnlen(slot.notify_name, sizeof(slot.notify_name))));
    }
  });
  std::lock_guard lock(ch.mu);
  ch.holds_publisher = false;
  shm::UnlockByte(ch.segment.fd(), shm::kPublisherLockByte);
}

bool PublisherState::Freeable(uint32_t index) const {
  // Acquire: every subscriber's reads of these bytes happen before we hand them out again.
  return local_[index].published &&
         ValidSlots(channel->descs[index].holders.load(std::memory_order_acquire)) == 0;
}

void PublisherState::Record(uint32_t index, uint64_t offset, uint64_t size, uint64_t span) {
  local_[index] = {offset, span, false};
  channel::SampleDesc& d = channel->descs[index];
  d.offset.store(offset, kRelaxed);
  d.size.store(size, kRelaxed);
  d.span.store(span, kRelaxed);
}

void PublisherState::Free(uint32_t index) {
  channel::SampleDesc& d = channel->descs[index];
  const uint64_t span = local_[index].span;
  extents_.Free(local_[index].offset, span);
  local_[index] = {};
  d.state.store(static_cast<uint32_t>(DescState::kFree), kRelaxed);
  free_descs_.push_back(index);
  Bump(channel->header->samples_in_use, ~uint64_t{0});
  Bump(channel->header->bytes_in_use, -span);
}

bool PublisherState::Reclaim(bool all) {
  size_t front = 0;
  while (front < in_flight_.size() && Freeable(in_flight_[front])) Free(in_flight_[front++]);
  in_flight_.erase(in_flight_.begin(), in_flight_.begin() + static_cast<std::ptrdiff_t>(front));
  if (!all) return front > 0;
  const size_t before = in_flight_.size();
  std::erase_if(in_flight_, [&](uint32_t index) {
    if (!Freeable(index)) return false;
    Free(index);
    return true;
  });
  return front > 0 || in_flight_.size() != before;
}

std::optional<uint32_t> PublisherState::TryAllocate(size_t bytes) {
  ChannelState& ch = *channel;
  const uint64_t span = AlignUp(bytes, kSampleAlignment);
  Reclaim(false);
  if (free_descs_.empty()) Reclaim(true);
  if (free_descs_.empty()) return std::nullopt;
  std::optional<uint64_t> offset = extents_.Allocate(span);
  if (!offset && Reclaim(true)) offset = extents_.Allocate(span);
  if (!offset) return std::nullopt;
  const uint32_t index = free_descs_.back();
  free_descs_.pop_back();
  channel::SampleDesc& d = ch.descs[index];
  Record(index, *offset, bytes, span);
  d.holders.store(0, kRelaxed);
  d.state.store(static_cast<uint32_t>(DescState::kLoaned), kRelaxed);
  in_flight_.push_back(index);
  Bump(ch.header->samples_in_use, 1);
  Bump(ch.header->bytes_in_use, span);
  return index;
}

void PublisherState::Abandon(uint32_t index) {
  // Never published: nobody else has seen it, so its space is free at once.
  std::erase(in_flight_, index);
  Free(index);
}

void PublisherState::ReclaimSlot(uint32_t i) {
  // The publisher clears a slot between its own publishes: nothing to wait for, no error.
  (void)ClearSlot(*channel, i, &in_flight_);
  FreeSlot(*channel, i);
}

void PublisherState::ReclaimGoneSubscribers(bool probe) {
  ChannelState& ch = *channel;
  channel::ChannelHeader& h = *ch.header;
  // Slots whose subscribers closed: their lock is dropped right after the closing bit is set.
  ForEachBit(ValidSlots(h.closing_mask.load(std::memory_order_acquire)), [&](uint32_t i) {
    if (TryAdoptGoneSlot(ch, i)) ReclaimSlot(i);
  });
  if (!probe) return;
  last_liveness_check = CoarseClock::now();
  // Every slot in use whose lock nobody holds: its subscriber died, wherever it was (joining,
  // receiving, closing). A slot still Active is a death; a Closing one closed cleanly.
  for (uint32_t i = 0; i < ch.max_subscribers; ++i) {
    const std::optional<SlotState> gone = TryAdoptGoneSlot(ch, i);
    if (!gone) continue;
    ReclaimSlot(i);
    if (*gone == SlotState::kActive) h.reclaimed_subscribers.fetch_add(1, kRelaxed);
  }
}

bool PublisherState::DropOldest() {
  ChannelState& ch = *channel;
  channel::ChannelHeader& h = *ch.header;
  for (uint32_t index : in_flight_) {
    channel::SampleDesc& d = ch.descs[index];
    if (!local_[index].published) continue;
    bool dropped = false;
    ForEachBit(ValidSlots(d.holders.load(std::memory_order_acquire)), [&](uint32_t i) {
      channel::SubscriberSlot& slot = ch.slots[i];
      // Take the entry only if it is still at the front of the ring. The CAS races the
      // subscriber's own CAS: exactly one of us gets it, so a sample the subscriber has
      // taken is never recycled under it.
      uint64_t r = slot.read_index.load(std::memory_order_acquire);
      if (r == slot.write_index.load(kRelaxed)) return;
      if (channel::RingIndex(ch.ring(i)[r % ch.max_samples].load(kRelaxed)) != index) return;
      if (!slot.read_index.compare_exchange_strong(r, r + 1, std::memory_order_acq_rel)) return;
      d.holders.fetch_and(~(uint64_t{1} << i), std::memory_order_acq_rel);
      Bump(slot.missed, 1);
      Bump(h.dropped, 1);
      dropped = true;
    });
    if (dropped) return true;
  }
  return false;
}

bool PublisherState::OnlyOwnLoansInFlight() const {
  for (uint32_t index : in_flight_) {
    if (local_[index].published) return false;
  }
  return true;
}

int PublisherState::EvictStalled(std::chrono::nanoseconds waited) {
  ChannelState& ch = *channel;
  channel::ChannelHeader& h = *ch.header;
  const auto oldest = std::find_if(in_flight_.begin(), in_flight_.end(),
                                   [&](uint32_t index) { return local_[index].published; });
  if (oldest == in_flight_.end()) return 0;
  const uint64_t stalled = ValidSlots(ch.descs[*oldest].holders.load(std::memory_order_acquire) &
                                      h.active_mask.load(std::memory_order_acquire));
  const auto waited_ms = static_cast<uint32_t>(std::clamp<int64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(), 1, UINT32_MAX));
  int evicted = 0;
  ForEachBit(stalled, [&](uint32_t i) {
    channel::SubscriberSlot& slot = ch.slots[i];
    const uint64_t bit = uint64_t{1} << i;
    // Say why first, then leave: its next receive finds the reason, never an empty ring.
    slot.evicted_after_ms.store(waited_ms, std::memory_order_release);
    h.active_mask.fetch_and(~bit, std::memory_order_seq_cst);
    // Drop what it has not received, entry by entry from the front with the same CAS its
    // own receive uses: a sample it takes meanwhile is its own, and stays valid.
    for (;;) {
      uint64_t r = slot.read_index.load(std::memory_order_acquire);
      if (r == slot.write_index.load(kRelaxed)) break;
      const uint32_t index = channel::RingIndex(ch.ring(i)[r % ch.max_samples].load(kRelaxed));
      if (!slot.read_index.compare_exchange_strong(r, r + 1, std::memory_order_acq_rel)) continue;
      if (index < ch.max_samples)
        ch.descs[index].holders.fetch_and(~bit, std::memory_order_acq_rel);
      Bump(slot.missed, 1);
      Bump(h.dropped, 1);
    }
    h.evicted_subscribers.fetch_add(1, kRelaxed);
    // Wake it, so one that merely sleeps learns at once.
    slot.wake_word.fetch_add(1, std::memory_order_release);
    shm::FutexWake(&slot.wake_word, INT32_MAX);
    ++evicted;
  });
  return evicted;
}

void PublisherState::MarkPublished(uint32_t index) {
  local_[index].published = true;
  channel->descs[index].state.store(static_cast<uint32_t>(DescState::kPublished), kRelaxed);
}

}  // namespace internal

// ---- LoanedSample -----------------------------------------------------------------------

LoanedSample::LoanedSample(std::shared_ptr<internal::PublisherState> owner, uint32_t desc,
                           std::byte* data, size_t size)
    : owner_(std::move(owner)), desc_(desc), data_(data), size_(size) {}

LoanedSample::LoanedSample(LoanedSample&& o) noexcept
    : owner_(std::move(o.owner_)), desc_(o.desc_), data_(o.data_), size_(o.size_) {}

LoanedSample& LoanedSample::operator=(LoanedSample&& o) noexcept {
  if (this != &o) {
    if (owner_) owner_->Abandon(desc_);
    owner_ = std::move(o.owner_);
    desc_ = o.desc_;
    data_ = o.data_;
    size_ = o.size_;
  }
  return *this;
}

LoanedSample::~LoanedSample() {
  if (owner_ && !owner_->channel->segment.inherited()) owner_->Abandon(desc_);
}

// ---- Publisher --------------------------------------------------------------------------

Publisher::Publisher(std::shared_ptr<internal::PublisherState> state) : state_(std::move(state)) {}
Publisher::Publisher(Publisher&&) noexcept = default;
Publisher& Publisher::operator=(Publisher&&) noexcept = default;
Publisher::~Publisher() = default;

Result<LoanedSample> Publisher::Loan(size_t bytes) { return LoanImpl(bytes, true); }
Result<LoanedSample> Publisher::TryLoan(size_t bytes) { return LoanImpl(bytes, false); }
Result<LoanedSample> Publisher::Loan(size_t bytes, LoanWait wait) {
  return LoanImpl(bytes, wait == LoanWait::kForRoom);
}

Result<LoanedSample> Publisher::LoanImpl(size_t bytes, bool wait) {
  internal::PublisherState& p = *state_;
  internal::ChannelState& ch = *p.channel;
  channel::ChannelHeader& h = *ch.header;
  QUIVER_RETURN_IF_ERROR(internal::CheckNotInherited(ch, "this publisher"));
  if (bytes == 0) return Status::InvalidArgument("a loan must be at least 1 byte");
  if (bytes > ch.capacity) {
    return Status::CapacityExceeded("loan of " + std::to_string(bytes) +
                                    " bytes exceeds the capacity of channel '" + ch.name + "' (" +
                                    std::to_string(ch.capacity) + " bytes)");
  }
  // Dead subscribers are looked for every kLivenessInterval even while there is room, so
  // their samples come back (and the counters say so) before anyone has to wait for them.
  // The coarse clock costs no hardware counter read: this is the path of every loan.
  const bool probe = h.active_mask.load(internal::kRelaxed) != 0 &&
                     CoarseClock::now() - p.last_liveness_check >= internal::kLivenessInterval;
  if (probe || h.closing_mask.load(internal::kRelaxed) != 0) p.ReclaimGoneSubscribers(probe);
  if (auto index = p.TryAllocate(bytes)) {
    return LoanedSample(state_, *index, p.LoanData(*index), bytes);
  }

  using internal::Clock;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      p.options.loan_timeout ? start + *p.options.loan_timeout : Clock::time_point::max();
  bool counted_stall = false;
  // A wait for room lasts across loans that time out and are retried at once (Python
  // waits in slices, to see Ctrl-C): the stall policy and `quiver ls` count from its start.
  const Clock::time_point stalled_since =
      p.stalled_since && start - p.last_wait_end < std::chrono::seconds(1) ? *p.stalled_since
                                                                           : start;
  struct WaitMark {  // says how long the publisher has waited (ls, top, stats)
    internal::PublisherState& p;
    bool set = false;
    bool got_room = false;
    void Set(Clock::time_point since) {
      if (set) return;
      set = true;
      p.stalled_since = since;
      p.channel->header->waiting_since_ns.store(
          std::chrono::duration_cast<std::chrono::nanoseconds>(since.time_since_epoch()).count(),
          internal::kRelaxed);
    }
    ~WaitMark() {
      if (!set) return;
      p.channel->header->waiting_since_ns.store(0, internal::kRelaxed);
      p.last_wait_end = Clock::now();
      if (got_room) p.stalled_since.reset();
    }
  } wait_mark{p};
  auto loaned = [&](uint32_t index) {
    wait_mark.got_room = true;
    return LoanedSample(state_, index, p.LoanData(index), bytes);
  };
  for (;;) {
    const bool probe = CoarseClock::now() - p.last_liveness_check >= internal::kLivenessInterval;
    p.ReclaimGoneSubscribers(probe);
    if (ch.overflow == OverflowPolicy::kDropOldest) {
      while (p.DropOldest()) {
        if (auto index = p.TryAllocate(bytes)) {
          return loaned(*index);
        }
      }
    }
    if (auto index = p.TryAllocate(bytes)) {
      return loaned(*index);
    }
    if (p.OnlyOwnLoansInFlight()) {
      return Status::ChannelFull(
          "channel '" + ch.name + "' has no room for " + std::to_string(bytes) +
          " bytes and all of it is held by this publisher's own unpublished loans; "
          "publish or drop them first");
    }
    if (!wait) {
      return Status::ChannelFull("channel '" + ch.name + "' has no room for " +
                                 std::to_string(bytes) + " bytes now");
    }
    if (!counted_stall) {
      internal::Bump(h.publisher_stalls, 1);
      counted_stall = true;
    }
    wait_mark.Set(stalled_since);
    const Clock::time_point now = Clock::now();
    // The stall policy: whoever kept the channel full this long is evicted, then we retry.
    if (ch.overflow == OverflowPolicy::kBlock && ch.stall_timeout.count() > 0 &&
        now - stalled_since >= ch.stall_timeout && p.EvictStalled(now - stalled_since) > 0) {
      continue;
    }
    if (now >= deadline) {
      return Status::Timeout("no room in channel '" + ch.name + "' for " + std::to_string(bytes) +
                             " bytes within " + FormatDuration(*p.options.loan_timeout) +
                             " (the loan timeout)");
    }
    // Sleep until a subscriber releases something. Announce the wait, then re-check, so a
    // release between the check and the sleep is never missed (it bumps space_word).
    const uint32_t seen = h.space_word.load(std::memory_order_acquire);
    h.publisher_waiting.store(1, std::memory_order_seq_cst);
    if (auto index = p.TryAllocate(bytes)) {
      h.publisher_waiting.store(0, internal::kRelaxed);
      return loaned(*index);
    }
    auto slice = std::chrono::nanoseconds(internal::kLivenessInterval);
    if (deadline != Clock::time_point::max()) {
      slice = std::min(slice, std::chrono::nanoseconds(deadline - now));
    }
    if (ch.stall_timeout.count() > 0 && now - stalled_since < ch.stall_timeout) {
      slice = std::min(slice, std::chrono::nanoseconds(stalled_since + ch.stall_timeout - now));
    }
    shm::FutexWait(&h.space_word, seen, slice);
    h.publisher_waiting.store(0, internal::kRelaxed);
  }
}

Status Publisher::Publish(LoanedSample&& sample) {
  if (sample.owner_ != state_) {
    return Status::InvalidArgument("sample was not loaned by this publisher");
  }
  internal::PublisherState& p = *state_;
  internal::ChannelState& ch = *p.channel;
  QUIVER_RETURN_IF_ERROR(internal::CheckNotInherited(ch, "this publisher"));
  channel::ChannelHeader& h = *ch.header;
  const uint32_t index = sample.desc_;
  const size_t size = sample.size_;
  const uint64_t offset = static_cast<uint64_t>(sample.data_ - p.data);
  sample.owner_.reset();  // the sample is the channel's now

  channel::SampleDesc& d = ch.descs[index];
  const uint64_t sequence = internal::NextSequence(h);
  internal::BeginPublish(h, sequence, p.asymmetric_barrier);  // see channel/late_join.h
  // Bits past the last slot (a scribble) would index rings that do not exist.
  const uint64_t mask = p.ValidSlots(h.active_mask.load(std::memory_order_seq_cst));
  d.sequence.store(sequence, internal::kRelaxed);
  p.MarkPublished(index);
  // Release: a joining subscriber that reads this mask (to claim the sample) sees the
  // sequence and state above.
  d.holders.store(mask, std::memory_order_release);
  internal::ForEachBit(mask, [&](uint32_t i) {
    channel::SubscriberSlot& slot = ch.slots[i];
    const uint64_t w = slot.write_index.load(internal::kRelaxed);
    // The sample becomes visible to subscriber i only through this store (release: with the
    // descriptor and the bytes); a publisher that dies before it leaves nothing
    // half-written behind. write_index follows, for the sleep handshake and the counts.
    ch.ring(i)[w % ch.max_samples].store(channel::RingEntry(w, index), std::memory_order_release);
    slot.write_index.store(w + 1, std::memory_order_release);
  });
  internal::EndPublish(h, sequence);
  p.last_published = PublishedSample{sequence, offset, size};
  internal::Bump(h.published, 1);
  internal::Bump(h.published_bytes, size);
  if (mask == 0) p.Reclaim(false);

  // Pairs with the fence in a subscriber that sets `sleeping` and then re-checks its ring:
  // either it sees the new entry, or we see it sleeping and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  internal::ForEachBit(mask, [&](uint32_t i) {
    channel::SubscriberSlot& slot = ch.slots[i];
    if (slot.sleeping.load(internal::kRelaxed) != 0 &&
        slot.sleeping.exchange(0, std::memory_order_acq_rel) != 0) {
      slot.wake_word.fetch_add(1, std::memory_order_release);
      shm::FutexWake(&slot.wake_word, 1);
    }
    if (slot.notify_armed.load(internal::kRelaxed) != 0 &&
        slot.notify_armed.exchange(0, std::memory_order_acq_rel) != 0) {
      p.notifier.Signal(
          std::string_view(slot.notify_name, strnlen(slot.notify_name, sizeof(slot.notify_name))));
    }
  });
  return Status::OK();
}

Status Publisher::PublishCopy(std::span<const std::byte> bytes) {
  QUIVER_ASSIGN_OR_RETURN(LoanedSample sample, Loan(bytes.size()));
  shm::CopyToShared(sample.data().data(), bytes.data(), bytes.size());
  return Publish(std::move(sample));
}

Result<uint32_t> Publisher::RegisterType(std::string_view descriptor) {
  internal::ChannelState& ch = *state_->channel;
  const uint32_t count = ch.registry->count.load(std::memory_order_acquire);
  if (count > 0) {
    Result<std::string_view> newest = Channel(state_->channel).TypeDescriptor(count);
    if (newest.ok() && *newest == descriptor) return count;
  }
  return internal::AppendType(ch.registry, ch.registry_bytes, ch.registry_capacity, descriptor);
}

Channel Publisher::channel() const { return Channel(state_->channel); }

Result<PublishedSample> Publisher::last_published() const {
  if (!state_->last_published) {
    return Status::NotFound("this publisher of channel '" + state_->channel->name +
                            "' has published nothing yet");
  }
  return *state_->last_published;
}

uint32_t Publisher::subscriber_count() const {
  return static_cast<uint32_t>(
      std::popcount(state_->channel->header->active_mask.load(std::memory_order_relaxed)));
}

// ---- Channel::CreatePublisher -----------------------------------------------------------

Result<Publisher> Channel::CreatePublisher(const PublisherOptions& options) {
  internal::ChannelState& ch = *state_;
  channel::ChannelHeader& h = *ch.header;
  QUIVER_RETURN_IF_ERROR(internal::CheckNotInherited(ch, "this handle"));
  {
    std::lock_guard lock(ch.mu);
    if (ch.holds_publisher) {
      return Status::Busy("channel '" + ch.name +
                          "' already has a publisher (this "
                          "process)");
    }
    Status locked =
        shm::TryLockByte(ch.segment.fd(), shm::kPublisherLockByte, shm::LockKind::kExclusive);
    if (!locked.ok()) {
      if (locked.code() == ErrorCode::kBusy) {
        return Status::Busy("channel '" + ch.name +
                            "' already has a publisher; a channel has exactly one");
      }
      return locked;
    }
    // A publisher that died may have been anywhere in a publish; its samples' reference
    // bits cannot be trusted, so its channel takes no successor. A cleanly closed one can.
    if (h.publisher_lifecycle.load(std::memory_order_acquire) ==
        static_cast<uint32_t>(channel::PublisherLifecycle::kActive)) {
      shm::UnlockByte(ch.segment.fd(), shm::kPublisherLockByte);
      return Status::PeerGone("the publisher of channel '" + ch.name +
                              "' died (a publisher that dies may leave a sample half-published, so "
                              "this channel takes no successor): Channel::Create('" +
                              ch.name +
                              "') makes a new one under the same name, and its subscribers follow "
                              "to it on their own");
    }
    ch.holds_publisher = true;
  }
  Result<std::byte*> data = ch.DataReadWrite();
  if (!data.ok()) {
    std::lock_guard lock(ch.mu);
    ch.holds_publisher = false;
    shm::UnlockByte(ch.segment.fd(), shm::kPublisherLockByte);
    return data.status();
  }
  auto state = std::make_shared<internal::PublisherState>(state_, *data, options);
  state->asymmetric_barrier = shm::RegisterForHeavyBarrier();
  // seq_cst, before any publish: a joiner that reads 0 here joined before this store, so
  // every one of our (seq_cst) active_mask loads sees its bit.
  h.publish_barrier.store(state->asymmetric_barrier ? 1 : 0, std::memory_order_seq_cst);
  state->ReclaimGoneSubscribers(true);
  h.publisher_epoch.fetch_add(1, std::memory_order_relaxed);
  h.publisher_lifecycle.store(static_cast<uint32_t>(channel::PublisherLifecycle::kActive),
                              std::memory_order_release);
  return Publisher(std::move(state));
}

}  // namespace quiver
