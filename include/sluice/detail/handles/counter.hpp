// sluice/detail/handles/counter.hpp - the shared allocation of one channel: the flavor
// plus who still holds it. Handle counting and disconnection live here only.
//
// Invariants:
// - `senders` counts live (strong) sender handles, copies included; the
//   receiver is unique, so its presence needs no count.
// - The last sender to leave disconnects the sending side exactly once; the
//   receiver leaving disconnects the receiving side (which also destroys the
//   messages still queued) exactly once.
// - `holders` keeps the allocation: one bit per side still present (the
//   sending side while `senders` > 0, the receiver) plus 4 per weak sender
//   handle. Whoever takes it to zero frees the allocation. A weak sender
//   keeps the memory, never the channel open.
// - `senders` never rises from zero: upgrade() increments it only from a
//   non-zero value (compare-exchange), so a disconnected sending side stays
//   disconnected.
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
    if (senders_.fetch_add(1, std::memory_order_relaxed) > max_senders) std::abort();
  }

  // A sender handle goes away. acq_rel: the last sender must see every other
  // sender's writes before it disconnects (and maybe frees).
  void release_sender() noexcept {
    if (senders_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      chan_.disconnect_senders();
      release_holder(sending_side);
    }
  }

  // The receiver goes away.
  void release_receiver() noexcept {
    chan_.disconnect_receivers();
    release_holder(receiving_side);
  }

  // A weak sender handle (downgrade, or a copy of one). relaxed: the caller
  // holds a handle that keeps `holders` above zero.
  void acquire_weak() noexcept {
    if (holders_.fetch_add(weak_unit, std::memory_order_relaxed) > max_holders) std::abort();
  }
  void release_weak() noexcept { release_holder(weak_unit); }

  // A strong sender made from a weak one: fails once every strong sender is
  // gone (the count never rises from zero), or when the receiver is gone or
  // closed. relaxed on success: the weak handle keeps the allocation, and the
  // channel's own state, not this count, orders the messages.
  [[nodiscard]] bool try_upgrade() noexcept {
    std::size_t n = senders_.load(std::memory_order_relaxed);
    do {
      if (n == 0) return false;
      if (n > max_senders) std::abort();
    } while (!senders_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed,
                                             std::memory_order_relaxed));
    if (chan_.closed_for_senders()) {
      release_sender();  // the new sender may be the last one: disconnects
      return false;
    }
    return true;
  }

  // tokio's counts. relaxed: a snapshot, as shared_ptr::use_count().
  [[nodiscard]] std::size_t sender_count() const noexcept {
    return senders_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t weak_count() const noexcept {
    return holders_.load(std::memory_order_relaxed) / weak_unit;
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
  // Guards against the count wrapping around (billions of leaked copies).
  static constexpr std::size_t max_senders = static_cast<std::size_t>(-1) / 2;

  static constexpr std::size_t sending_side = 1;
  static constexpr std::size_t receiving_side = 2;
  static constexpr std::size_t weak_unit = 4;
  static constexpr std::size_t max_holders = static_cast<std::size_t>(-1) / 2;

  void release_holder(std::size_t unit) noexcept {
    // acq_rel: whoever frees must see everything the other holders did.
    if (holders_.fetch_sub(unit, std::memory_order_acq_rel) == unit) delete this;
  }

  // The channel comes first and lends its tail padding (no_unique_address):
  // its last, cold cache line (read-mostly fields) has room for the two
  // counts, which change only when handles are created or dropped. In front,
  // they would take a padded cache line of their own.
  [[no_unique_address]] Channel chan_;
  std::atomic<std::size_t> senders_{1};
  std::atomic<std::size_t> holders_{sending_side | receiving_side};
  std::atomic<const void*> receiving_{nullptr};  // the receiving thread; see receive_guard
};

}  // namespace sluice::detail
