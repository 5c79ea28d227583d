#include "channel/late_join.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "channel/slot_reclaim.h"
#include "shm/cpu.h"
#include "shm/membarrier.h"

namespace quiver::internal {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr auto kBoundaryWait = std::chrono::seconds(1);

// Sets `sub`'s bit in descriptor `desc`, if some other subscriber still holds it and it is
// still the sample of `sequence`.
bool Claim(SubscriberState& sub, uint32_t desc, uint64_t sequence) {
  channel::SampleDesc& d = sub.channel->descs[desc];
  uint64_t holders = d.holders.load(kRelaxed);
  do {
    // 0: everyone released it and it is the publisher's to free; our bit: it was published
    // after we joined (it is in our ring).
    if ((holders & sub.channel->slot_bits) == 0 || (holders & sub.bit) != 0) return false;
  } while (!d.holders.compare_exchange_weak(holders, holders | sub.bit, std::memory_order_acq_rel,
                                            kRelaxed));
  if (d.sequence.load(kRelaxed) == sequence &&
      d.state.load(kRelaxed) == static_cast<uint32_t>(channel::DescState::kPublished)) {
    return true;
  }
  sub.Release(desc);  // reused since we looked (a sample dropped from our ring, drop-oldest)
  return false;
}

}  // namespace

Result<uint64_t> AwaitPublishBoundary(ChannelState& ch) {
  channel::ChannelHeader& h = *ch.header;
  // The caller's write (its active bit, set or cleared) came first. A publisher that orders
  // its publish_state store before its active_mask load with a compiler barrier relies on us
  // for the full barrier between our two steps (see Publisher::Publish).
  if (h.publish_barrier.load(std::memory_order_seq_cst) != 0) {
    Status fenced = shm::HeavyBarrier();
    if (!fenced.ok()) {
      return Status::IoError("membarrier(2), which the publisher of channel '" + ch.name +
                             "' uses but this process cannot: " + fenced.message());
    }
  }
  const Clock::time_point start = Clock::now();
  Clock::time_point last_probe = start;
  for (uint32_t round = 1;; ++round) {
    const uint64_t state = h.publish_state.load(std::memory_order_seq_cst);
    if (state % 2 == 0) return state;
    const Clock::time_point now = Clock::now();
    // A publisher killed mid-publish never finishes, but it never publishes again either.
    if (now - last_probe >= std::chrono::milliseconds(20)) {
      last_probe = now;
      if (PublisherGoneNow(ch)) return state;
    }
    if (now - start >= kBoundaryWait) {
      return Status::Timeout("the publisher of channel '" + ch.name +
                             "' did not finish a publish within 1 s (is it stopped?)");
    }
    if (round % 64 == 0) {
      sched_yield();
    } else {
      shm::CpuRelax();
    }
  }
}

// The backlog, claimed without stopping anyone. Three facts make it sound:
//  - After our active bit is set and publish_state is seen even, every later publish
//    delivers to us, and every earlier one is complete: the samples without our bit are a
//    fixed set that can only shrink (as their holders release them).
//  - A sample whose holders mask is not 0 cannot be freed; setting our bit in it (CAS, never
//    from 0) keeps it for us. Once the bit is ours its descriptor cannot be reused, so its
//    sequence, read again, says whether it is still the sample we looked at.
//  - A scan of the descriptors is no snapshot: a sample can be released by everyone before
//    we reach it. Claiming from the newest down and stopping at the first failure leaves a
//    run of consecutive sequences that ends right where our ring begins.
Status ClaimBacklog(SubscriberState& sub) {
  ChannelState& ch = *sub.channel;
  // Our fetch_or of active_mask (seq_cst) came first; after a publish boundary, every
  // publish delivers to us.
  Result<uint64_t> boundary_state = AwaitPublishBoundary(ch);
  if (!boundary_state.ok()) {
    const Status& why = boundary_state.status();
    if (why.code() == ErrorCode::kIoError) {
      return Status::IoError("from_oldest needs what the publisher of channel '" + ch.name +
                             "' relies on: " + why.message());
    }
    return Status(why.code(),
                  why.message() + "; the backlog cannot be claimed while a publish is under way");
  }
  const uint64_t state = *boundary_state;
  // Every sample from `join` on is delivered through our ring.
  const uint64_t join = (state + 1) / 2;
  uint64_t boundary = join;
  channel::SubscriberSlot& s = ch.slots[sub.slot];
  const uint64_t r = s.read_index.load(std::memory_order_acquire);
  if (r != s.write_index.load(std::memory_order_acquire)) {
    // Some publish before `join` already had our bit: the ring starts there.
    const uint32_t front = channel::RingIndex(ch.ring(sub.slot)[r % ch.max_samples].load(kRelaxed));
    if (front < ch.max_samples)
      boundary = std::min(boundary, ch.descs[front].sequence.load(kRelaxed));
  }
  if (boundary == 0) return Status::OK();

  struct Candidate {
    uint64_t sequence;
    uint32_t desc;
  };
  std::vector<Candidate> candidates;
  for (uint32_t i = 0; i < ch.max_samples; ++i) {
    const channel::SampleDesc& d = ch.descs[i];
    // Acquire pairs with the publisher's release of holders: its sequence and state show.
    // Bits past the last slot are nobody's (a scribble): they hold nothing.
    const uint64_t holders = d.holders.load(std::memory_order_acquire) & ch.slot_bits;
    if (holders == 0 || (holders & sub.bit) != 0) continue;
    if (d.state.load(kRelaxed) != static_cast<uint32_t>(channel::DescState::kPublished)) continue;
    const uint64_t sequence = d.sequence.load(kRelaxed);
    if (sequence < boundary) candidates.push_back({sequence, i});
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.sequence > b.sequence; });
  uint64_t expected = boundary - 1;
  // A publisher killed inside the publish of `join - 1` may not have got as far as that
  // sample's mask: nothing follows it, so the run may start below it.
  if (state % 2 == 1 && boundary == join &&
      (candidates.empty() || candidates.front().sequence != expected)) {
    if (expected-- == 0) return Status::OK();
  }
  for (const Candidate& c : candidates) {
    if (c.sequence > expected) continue;  // a stale second look at one we have
    if (c.sequence < expected || !Claim(sub, c.desc, c.sequence)) break;
    sub.backlog.push_back(c.desc);
    if (expected-- == 0) break;
  }
  std::reverse(sub.backlog.begin(), sub.backlog.end());
  return Status::OK();
}

}  // namespace quiver::internal
