#include "channel/slot_reclaim.h"

#include "channel/late_join.h"
#include "shm/futex.h"
#include "shm/ofd_lock.h"

namespace quiver::internal {

using channel::SlotState;

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

bool PublisherGoneNow(ChannelState& ch) {
  const uint32_t lifecycle = ch.header->publisher_lifecycle.load(std::memory_order_acquire);
  if (lifecycle == static_cast<uint32_t>(channel::PublisherLifecycle::kClosed)) return true;
  if (lifecycle != static_cast<uint32_t>(channel::PublisherLifecycle::kActive)) return false;
  std::lock_guard lock(ch.mu);
  if (ch.holds_publisher) return false;
  // The lock dies with the publisher's process, however it died.
  return !shm::IsByteLockedByOthers(ch.segment.fd(), shm::kPublisherLockByte);
}

std::optional<SlotState> TryAdoptGoneSlot(ChannelState& ch, uint32_t i) {
  if (i >= ch.max_subscribers) return std::nullopt;
  const auto state = static_cast<SlotState>(ch.slots[i].state.load(std::memory_order_acquire));
  if (state == SlotState::kFree) return std::nullopt;
  // Under the lock CreateSubscriber holds while it makes a slot ours: a subscriber of this
  // process (whose lock, being ours, would never look held) is never taken for a gone one.
  std::lock_guard lock(ch.mu);
  if ((ch.own_slots & (uint64_t{1} << i)) != 0) return std::nullopt;
  // The lock is held from the moment a subscriber claims the slot until after it has
  // marked it Closing: whatever point a subscriber died at, its lock went with it.
  if (!shm::TryLockByte(ch.segment.fd(), shm::kFirstSubscriberLockByte + i,
                        shm::LockKind::kExclusive)
           .ok()) {
    return std::nullopt;
  }
  // Read again under the lock: a slot freed meanwhile is not ours to clear.
  const auto now = static_cast<SlotState>(ch.slots[i].state.load(std::memory_order_acquire));
  if (now == SlotState::kFree) {
    shm::UnlockByte(ch.segment.fd(), shm::kFirstSubscriberLockByte + i);
    return std::nullopt;
  }
  // Ours from now on, for the other threads of this process too: the byte lock cannot tell
  // them apart (a second TryLockByte through the same fd succeeds), so without this mark a
  // publisher reclaiming closed slots could adopt the slot a joiner of this process is taking
  // over (ClaimGoneSlot), clear the joiner's bits and free its samples under it. FreeSlot or
  // the adopter drops the mark.
  ch.own_slots |= uint64_t{1} << i;
  return now;
}

Status ClearSlot(ChannelState& ch, uint32_t i, const std::vector<uint32_t>* in_flight) {
  channel::ChannelHeader& h = *ch.header;
  channel::SubscriberSlot& slot = ch.slots[i];
  const uint64_t bit = uint64_t{1} << i;
  h.active_mask.fetch_and(~bit, std::memory_order_seq_cst);
  if (in_flight == nullptr) {
    // Not the publisher: a publish that read active_mask before our store may still push
    // into this ring and set this bit. Once none is under way, none will again.
    QUIVER_RETURN_IF_ERROR(AwaitPublishBoundary(ch).status());
  }
  // Nobody else takes entries of this ring now (its subscriber is gone; the publisher's
  // drop-oldest takes an entry only by CAS from the front, which this store ends).
  slot.read_index.store(slot.write_index.load(kRelaxed), std::memory_order_release);
  auto clear = [&](uint32_t index) {
    if ((ch.descs[index].holders.load(kRelaxed) & bit) != 0) {
      ch.descs[index].holders.fetch_and(~bit, std::memory_order_acq_rel);
    }
  };
  if (in_flight != nullptr) {
    for (uint32_t index : *in_flight) clear(index);
  } else {
    for (uint32_t index = 0; index < ch.max_samples; ++index) clear(index);
  }
  // Clear the closing bit before freeing the slot, so a new owner of slot i is never
  // mistaken for the one that closed.
  h.closing_mask.fetch_and(~bit, std::memory_order_seq_cst);
  // A publisher waiting for room gets the space back now.
  if (h.publisher_waiting.load(std::memory_order_seq_cst) != 0) {
    h.space_word.fetch_add(1, std::memory_order_release);
    shm::FutexWake(&h.space_word, 1);
  }
  return Status::OK();
}

void FreeSlot(ChannelState& ch, uint32_t i) {
  ch.slots[i].state.store(static_cast<uint32_t>(SlotState::kFree), std::memory_order_release);
  std::lock_guard lock(ch.mu);
  ch.own_slots &= ~(uint64_t{1} << i);  // TryAdoptGoneSlot's mark
  shm::UnlockByte(ch.segment.fd(), shm::kFirstSubscriberLockByte + i);
}

}  // namespace quiver::internal
