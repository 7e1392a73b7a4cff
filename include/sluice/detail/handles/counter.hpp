// sluice/detail/handles/counter.hpp - the shared allocation of one channel: the flavor
// plus who still holds it. Handle counting and disconnection live here only.
//
// One word counts every handle (`refs_`), so that a handle reads who else
// holds the channel in one load: the last of a pair of handles, or a last
// sender with no weak sender about, leaves with one read-modify-write fewer
// (a locked instruction: a fifth of the time of making, using and dropping a
// small channel; measured, lifecycle row).
//   bits 32..63  strong senders (copies and permits' senders included)
//   bits  2..31  weak senders
//   bit   1      the last sender, while it disconnects the sending side
//   bit   0      the receiver (unique, so one bit)
//
// A receiver that goes before its senders may leave its bit set and say so
// in the flavor's own word instead, in the one read-modify-write it makes
// there anyway (the quiet leave of the bounded and unbounded flavors,
// flavors/array.hpp): the hold then passes to the last other handle, which
// frees the channel.
//
// Invariants:
// - The allocation lives while the word is not zero and no quiet leave
//   stands for it; whoever takes it to zero frees it. A handle that reads
//   its own unit alone frees it without a read-modify-write: a new handle is
//   made only from one that holds. So does one that reads its unit and the
//   receiver's, after the receiver left quietly.
// - A quiet leave happens only while the sending side is not disconnected
//   (it marks the flavor's tail word from an unmarked one), so it is over
//   before the last sender disconnects: a handle that reads its unit and
//   the receiver's alone (no sender but possibly itself left, the sending
//   side disconnected) knows for good whether the receiver left quietly.
// - The sender count never rises from zero: upgrade() adds a sender only to a
//   non-zero count (compare-exchange), so a disconnected sending side stays
//   disconnected.
// - The last sender disconnects the sending side exactly once, holding the
//   allocation while it does: with no weak sender about, nothing can add a
//   sender, so it disconnects first and then lets go of its unit; with weak
//   senders, one of which may be upgrading, it trades its unit for the
//   disconnecting bit in one compare-exchange (which fails if a sender came)
//   and lets go of the bit after. The receiver leaving disconnects the
//   receiving side (which also destroys the messages still queued) exactly
//   once.
// - A weak sender keeps the memory, never the channel open.
// - `receiving` names the receiving thread while a receiving operation runs, when
//   SLUICE_CHECK_RECEIVER asks for the check (see receive_guard).
#pragma once

#include <sluice/config.hpp>
#include <sluice/detail/memory/asymmetric_fence.hpp>
#include <sluice/detail/memory/over_aligned.hpp>
#include <sluice/detail/waiting/waiter.hpp>

#include <cstdio>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

namespace sluice::detail {

template <class Channel>
class counter {
 public:
  template <class... Args>
  explicit counter(Args&&... args) : chan_(std::forward<Args>(args)...) {
    // Once per process (then one load): lets every send take the light
    // fence of the waiting protocol (asymmetric_fence.hpp).
    init_asymmetric_fence();
  }

  // The allocator's fast path, not memalign (memory/over_aligned.hpp),
  // when a flavor's padded fields make the counter over-aligned.
  // Unsized deletes: a new-expression whose constructor throws frees with
  // them (GCC found no match among sized ones and freed nothing).
  static void* operator new(std::size_t bytes) { return ::operator new(bytes); }
  static void operator delete(void* p) noexcept { ::operator delete(p); }
  static void* operator new(std::size_t bytes, std::align_val_t align) {
    return allocate_over_aligned(bytes, align);
  }
  static void operator delete(void* p, std::align_val_t) noexcept { free_over_aligned(p); }

  [[nodiscard]] Channel& chan() noexcept { return chan_; }
  [[nodiscard]] const Channel& chan() const noexcept { return chan_; }

  // GCC 12 may follow, after inlining, a handle's visit() into the branch of
  // a flavor the handle does not hold, and warn that the count there lies
  // outside the allocation (of the smaller flavor); that branch never runs.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Warray-bounds"
#endif

  // A new sender handle (copy). relaxed: the caller already holds a handle,
  // which keeps the count above zero, like std::shared_ptr's increment.
  void acquire_sender() noexcept {
    if (senders_of(refs_.fetch_add(sender_unit, std::memory_order_relaxed)) >= max_senders) {
      std::abort();
    }
  }

  // A sender handle goes away (see the invariants). acquire on every read
  // of the word and release on every decrement: the last sender must see
  // every other sender's writes before it disconnects, and whoever frees
  // must see everything the others did (their decrements form a release
  // sequence: every change of the word is a read-modify-write).
  void release_sender() noexcept {
    std::uint64_t v = refs_.load(std::memory_order_acquire);
    for (;;) {
      if (senders_of(v) > 1) {
        // Not the last one, unless others leave meanwhile: the exchange
        // then fails, and we look again.
        if (refs_.compare_exchange_weak(v, v - sender_unit, std::memory_order_release,
                                        std::memory_order_acquire)) {
          return;
        }
        continue;
      }
      if (weaks_of(v) == 0) {
        // The last sender for good: copies come from our handle, upgrades
        // from weak ones, and there is none. Our unit holds the allocation.
        chan_.disconnect_senders();
        release_units(sender_unit);
        return;
      }
      // A weak sender may upgrade now: trade our unit for the disconnecting
      // bit, unless it did.
      if (refs_.compare_exchange_weak(v, v - sender_unit + disconnecting_unit,
                                      std::memory_order_acq_rel, std::memory_order_acquire)) {
        chan_.disconnect_senders();
        release_units(disconnecting_unit);
        return;
      }
    }
  }

  // The receiver goes away. With every sender gone already (a count that
  // never rises from zero), the flavor may skip what only senders would see.
  // acquire: pairs with the senders' release decrements, so every send
  // happened before the receiver destroys what is queued.
  // With senders left, a flavor that can leaves quietly: then the receiver
  // touches nothing more, and the last other handle frees (release_units).
  void release_receiver() noexcept {
    const bool senders_gone = senders_of(refs_.load(std::memory_order_acquire)) == 0;
    if constexpr (requires { chan_.leave_quietly(); }) {
      if (!senders_gone && chan_.leave_quietly()) return;
    }
    chan_.disconnect_receivers(senders_gone);
    release_units(receiver_unit);
  }

  // A weak sender handle (downgrade, or a copy of one). relaxed: the caller
  // holds a handle that keeps the word above zero.
  void acquire_weak() noexcept {
    if (weaks_of(refs_.fetch_add(weak_unit, std::memory_order_relaxed)) >= max_weaks) {
      std::abort();
    }
  }
  void release_weak() noexcept { release_units(weak_unit); }

  // A strong sender made from a weak one: fails once every strong sender is
  // gone (the count never rises from zero), or when the receiver is gone or
  // closed. relaxed on success: the weak handle keeps the allocation, and the
  // channel's own state, not this count, orders the messages.
  [[nodiscard]] bool try_upgrade() noexcept {
    std::uint64_t v = refs_.load(std::memory_order_relaxed);
    do {
      if (senders_of(v) == 0) return false;
      if (senders_of(v) >= max_senders) std::abort();
    } while (!refs_.compare_exchange_weak(v, v + sender_unit, std::memory_order_relaxed,
                                          std::memory_order_relaxed));
    if (chan_.closed_for_senders()) {
      release_sender();  // the new sender may be the last one: disconnects
      return false;
    }
    return true;
  }

  // tokio's counts. relaxed: a snapshot, as shared_ptr::use_count().
  [[nodiscard]] std::size_t sender_count() const noexcept {
    return senders_of(refs_.load(std::memory_order_relaxed));
  }
  [[nodiscard]] std::size_t weak_count() const noexcept {
    return weaks_of(refs_.load(std::memory_order_relaxed));
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  // Marks the calling thread as receiving until the guard goes; a receive
  // by another thread meanwhile aborts with a message (with
  // SLUICE_CHECK_RECEIVER; a no-op otherwise). A receive re-entered on the
  // same thread (from a message's destructor) is allowed: each flavor
  // finishes with its slot's position before running the message's code.
  // The same layout in every build; only the check is compiled in or out.
  class receive_guard {
   public:
    explicit receive_guard(counter& c) noexcept : flag_(&c.receiving_) {
#if SLUICE_CHECK_RECEIVER
      const void* const self = current_thread_owner();
      // relaxed: the flag orders nothing; an overlap is what it reports.
      outer_ = flag_->exchange(self, std::memory_order_relaxed);
      if (outer_ != nullptr && outer_ != self) {
        std::fputs(
            "sluice: two threads used one receiver at once; a receiver's receiving "
            "operations are for one thread at a time (move it between threads, or guard it)\n",
            stderr);
        std::abort();
      }
#endif
    }
    ~receive_guard() {
#if SLUICE_CHECK_RECEIVER
      flag_->store(outer_, std::memory_order_relaxed);
#endif
    }
    receive_guard(const receive_guard&) = delete;
    receive_guard& operator=(const receive_guard&) = delete;

   private:
    [[maybe_unused]] std::atomic<const void*>* flag_;
    [[maybe_unused]] const void* outer_ = nullptr;  // the enclosing receive of this thread, if any
  };

 private:
  // The word's fields (see the header). The limits guard against a count
  // running into the next field (billions of leaked copies): abort first.
  static constexpr std::uint64_t receiver_unit = 1;
  static constexpr std::uint64_t disconnecting_unit = 2;
  static constexpr std::uint64_t weak_unit = 4;
  static constexpr std::uint64_t sender_unit = std::uint64_t{1} << 32;
  static constexpr std::size_t max_weaks = std::size_t{1} << 29;
  static constexpr std::size_t max_senders = std::size_t{1} << 31;
  static constexpr std::size_t senders_of(std::uint64_t v) noexcept {
    return static_cast<std::size_t>(v >> 32);
  }
  static constexpr std::size_t weaks_of(std::uint64_t v) noexcept {
    return static_cast<std::size_t>((v & 0xffff'ffffU) >> 2);
  }

  // Lets go of `unit`; frees the allocation if that was the last hold. A
  // word equal to our own unit means we are the last holder, and stay so
  // (see the invariants): no read-modify-write. So does our unit and the
  // receiver's, when the receiver left quietly: a sender's or weak sender's
  // unit then, and the sending side is disconnected (the last sender does
  // that before it lets go), so the answer cannot change; while the
  // receiver has not left, it frees when it goes (we leave it the word
  // holding its unit alone). A compare-exchange, not a subtraction: a
  // subtraction that left the receiver's unit alone could not tell whether
  // to free, and could not ask the flavor afterwards (a receiver still there
  // may have freed it).
  // acquire (the loads) and acq_rel (the exchange): whoever frees must see
  // everything the other holders did (see release_sender()).
  void release_units(std::uint64_t unit) noexcept {
    std::uint64_t v = refs_.load(std::memory_order_acquire);
    for (;;) {
      if (v == unit) break;
      if constexpr (requires { chan_.receiver_left(); }) {
        // (For the receiver's own unit this is the test above.)
        if (v == (unit | receiver_unit) && chan_.receiver_left()) break;
      }
      if (refs_.compare_exchange_weak(v, v - unit, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return;
      }
    }
    delete this;
  }

  // The channel comes first and lends its tail padding (no_unique_address):
  // its last, cold cache line (read-mostly fields) has room for the word,
  // which changes only when handles are created or dropped. In front, it
  // would take a padded cache line of its own.
  [[no_unique_address]] Channel chan_;
  std::atomic<std::uint64_t> refs_{sender_unit | receiver_unit};
  std::atomic<const void*> receiving_{nullptr};  // the receiving thread; see receive_guard
};

}  // namespace sluice::detail
