// sluice/detail/oneshot/state.hpp - the one allocation behind a oneshot pair:
// a state word, the storage for one value, and one registration slot per side.
//
// Design: tokio's oneshot (one Arc'd cell, one atomic state word with
// VALUE_SENT / CLOSED / RX_TASK_SET / TX_TASK_SET bits), with sluice's
// waiting protocol (waiting/protocol.hpp) in place of tokio's wakers: the
// state offers recv_steps and closed_steps exactly as a flavor does, and a
// thread (wait_on), a coroutine or an Asio handler (async_operation) waits
// through them. Nothing here parks, suspends or resumes anyone.
//
// State word (each bit is set at most once, except the two noted):
//   value_sent  `value_` holds a live value (set by a successful send;
//               cleared when a receive takes it, set again by give_back)
//   tx_gone     the sender sent, or was destroyed unused
//   closed      the receiver called close() or is gone: sends fail
//   rx_gone     the receiver handle is gone
//   rx_waiting  `rx_entry_` holds a registered receive (set and cleared by
//               the receiver; see "slots" below)
//   tx_waiting  `tx_entry_` holds a registered closed-wait (likewise, sender)
//
//   event            RMW                          then
//   send             CAS +value_sent +tx_gone     fails (value back) if closed
//   sender dropped   fetch_or tx_gone             claims rx_entry_ if rx_waiting
//   close()          fetch_or closed              claims tx_entry_ if tx_waiting
//   receiver dropped fetch_or closed +rx_gone     claims tx_entry_ if tx_waiting;
//                                                 destroys an unreceived value
//   (a send that sets tx_gone also claims rx_entry_; whoever sets the second
//   of tx_gone / rx_gone frees the allocation)
//
// Invariants:
// - Every transition is one read-modify-write of the one word, so the
//   modification order of that word orders everything: a registration (CAS
//   that sets rx_waiting, refused once tx_gone or closed is set) and the
//   event it waits for (tx_gone / closed) cannot miss each other, with no
//   fence and no lock: either the registration comes first and the event's
//   RMW sees the waiting bit (and claims), or the event comes first and the
//   registration's CAS sees it (readiness::ready).
// - Slots: a side writes its slot only while its waiting bit is clear, then
//   publishes it with the CAS that sets the bit. The party whose RMW newly
//   sets the triggering bit (tx_gone for rx_entry_, closed for tx_entry_)
//   while the waiting bit is set owns the slot: it reads the entry, claims
//   its waiter with the entry's own selection, and
//     - if the claim succeeds, touches the state no more (the woken side may
//       free it at once), and the waiting bit stays set, stale: the event it
//       stood for is permanent, so every later attempt finishes before
//       registering and nobody reads the slot again;
//     - if the claim fails (the wait ended otherwise: timeout, stop request,
//       cancellation), clears the waiting bit (release): the waiting side's
//       delist() waits for exactly that before its entry may go away.
//   delist() is the only wait here (a few instructions of the other side,
//   like a spin lock's holder), and nobody is woken before the claimer is
//   done with the state word.
// - A value is received at most once: taking it clears value_sent while
//   tx_gone stays set, so later receives report disconnected.
// - Preconditions (checked where it is cheap, aborting with a message): one
//   receive at a time per receiver; one async_closed at a time per sender;
//   no send or destruction of a sender while its async_closed is pending;
//   a handle outlives the operations started from it.
#pragma once

#include <sluice/detail/memory/storage.hpp>
#include <sluice/detail/waiting/backoff.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/thread_wait.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/detail/waiting/waiter.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <expected>
#include <memory>
#include <stop_token>
#include <utility>

namespace sluice::detail {

// A broken precondition (see the header): stop with a message rather than
// corrupt the state.
[[noreturn, gnu::cold]] inline void oneshot_misuse(const char* what) noexcept {
  std::fprintf(stderr, "sluice: oneshot misuse: %s\n", what);
  std::abort();
}

template <class T>
class oneshot_state {
 public:
  using value_type = T;

  static constexpr std::uint32_t value_sent = 1u << 0;
  static constexpr std::uint32_t tx_gone = 1u << 1;
  static constexpr std::uint32_t closed = 1u << 2;
  static constexpr std::uint32_t rx_gone = 1u << 3;
  static constexpr std::uint32_t rx_waiting = 1u << 4;
  static constexpr std::uint32_t tx_waiting = 1u << 5;

  oneshot_state() noexcept = default;
  oneshot_state(const oneshot_state&) = delete;
  oneshot_state& operator=(const oneshot_state&) = delete;

  // --- the sender ----------------------------------------------------------------

  // Sends `v` and lets go of the sender's share. True if sent; otherwise
  // (the receiver closed or is gone) `v` holds the value again.
  bool send(T& v) noexcept {
    // relaxed: only a hint that spares two moves when closed already; the
    // CAS below decides.
    std::uint32_t cur = state_.load(std::memory_order_relaxed);
    if ((cur & closed) == 0) {
      // Written before it is published: the receiver reads it only after
      // seeing value_sent, and nobody else touches the storage before then.
      value_.construct(std::move(v));
      for (;;) {
        if ((cur & closed) != 0) break;
        if ((cur & tx_waiting) != 0) {
          oneshot_misuse("send() while an async_closed() on the same sender is pending");
        }
        // release: publishes the value to the receiver's acquire load;
        // acquire: rx_entry_, written before the receiver's CAS that set
        // rx_waiting, is read below.
        if (state_.compare_exchange_weak(cur, cur | value_sent | tx_gone,
                                         std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
          if ((cur & rx_waiting) != 0) {
            if (const wake_token t = claim(rx_entry_, rx_waiting)) t.wake();
          }
          return true;
        }
      }
      // Closed meanwhile: value_sent was never set, the storage is still
      // ours. Re-created in place: T need not be assignable.
      std::destroy_at(&v);
      std::construct_at(&v, value_.take());
    }
    release_sender();
    return false;
  }

  // The sender handle goes away without sending (or after a failed send).
  void release_sender() noexcept {
    // acq_rel: acquire to read rx_entry_ (see send) or, freeing, everything
    // the receiver wrote; release so that the receiver, freeing, sees ours.
    const std::uint32_t prev = state_.fetch_or(tx_gone, std::memory_order_acq_rel);
    if ((prev & tx_waiting) != 0 && (prev & closed) == 0) {
      oneshot_misuse("a sender was destroyed while its async_closed() was pending");
    }
    if ((prev & rx_gone) != 0) {
      delete this;
    } else if ((prev & rx_waiting) != 0) {
      if (const wake_token t = claim(rx_entry_, rx_waiting)) t.wake();
    }
  }

  // Whether sends will fail (the receiver closed or is gone). acquire: a
  // caller that sees it may rely on the receiver's side having stopped.
  [[nodiscard]] bool is_closed() const noexcept {
    return (state_.load(std::memory_order_acquire) & closed) != 0;
  }

  // Whether a receive / a closed-wait is registered now (tests and
  // diagnostics: lets a test know the other side is really waiting before it
  // acts, without sleeping). relaxed: a snapshot. Meaningful only before the
  // event the wait is for (the bit may stay set after it, see the header).
  [[nodiscard]] bool receiver_waiting() const noexcept {
    return (state_.load(std::memory_order_relaxed) & rx_waiting) != 0;
  }
  [[nodiscard]] bool sender_waiting() const noexcept {
    return (state_.load(std::memory_order_relaxed) & tx_waiting) != 0;
  }

  // --- the receiver --------------------------------------------------------------

  // tokio's close(): later sends fail; a value sent before stays receivable.
  void close() noexcept {
    // acq_rel: acquire to read tx_entry_ (published by the sender's CAS
    // that set tx_waiting); release pairs with the sender's is_closed().
    const std::uint32_t prev = state_.fetch_or(closed, std::memory_order_acq_rel);
    if ((prev & closed) == 0 && (prev & tx_waiting) != 0) {
      if (const wake_token t = claim(tx_entry_, tx_waiting)) t.wake();
    }
  }

  // The receiver handle goes away: closes, destroys an unreceived value if
  // the sender is gone too (else the sender frees it, see send()'s failure).
  void release_receiver() noexcept {
    // acq_rel: as release_sender().
    const std::uint32_t prev = state_.fetch_or(closed | rx_gone, std::memory_order_acq_rel);
    if ((prev & rx_waiting) != 0 && (prev & tx_gone) == 0) {
      oneshot_misuse("a receiver was destroyed while a receive was pending");
    }
    if ((prev & tx_gone) != 0) {
      delete this;  // the destructor destroys a value still held
    } else if ((prev & closed) == 0 && (prev & tx_waiting) != 0) {
      if (const wake_token t = claim(tx_entry_, tx_waiting)) t.wake();
    }
  }

  // The steps of a receive (waiting/protocol.hpp): the outcome goes to
  // `result`. One receive at a time per receiver.
  template <class E>
  class recv_steps {
   public:
    using result_type = std::expected<T, E>;

    recv_steps(oneshot_state& st, result_type& result, E /*if_empty*/, E if_disconnected) noexcept
        : st_(&st), result_(&result), if_disconnected_(if_disconnected) {}

    bool attempt() noexcept {
      // acquire: pairs with the send's CAS (the value) or release (tx_gone).
      const std::uint32_t s = st_->state_.load(std::memory_order_acquire);
      if ((s & value_sent) != 0) {
        std::destroy_at(result_);  // re-created in place: T need not be assignable
        std::construct_at(result_, std::in_place, std::move(*st_->value_.get()));
        st_->value_.destroy();
        // relaxed: value_sent implies tx_gone, so only this receiver still
        // uses the state; its own later accesses are ordered by program order.
        st_->state_.fetch_and(~value_sent, std::memory_order_relaxed);
        return true;
      }
      if ((s & (tx_gone | closed)) != 0) {
        disconnected_ = true;
        std::destroy_at(result_);
        std::construct_at(result_, std::unexpect, if_disconnected_);
        return true;
      }
      return false;
    }
    readiness enlist(wait_entry& e) noexcept {
      return st_->enlist(st_->rx_entry_, e, rx_waiting, value_sent | tx_gone | closed,
                         registered_, "two receives at once on one oneshot_receiver");
    }
    readiness recheck() noexcept {
      return (st_->state_.load(std::memory_order_acquire) & (value_sent | tx_gone | closed)) != 0
                 ? readiness::ready
                 : readiness::wait;
    }
    void delist(wait_entry&) noexcept { st_->delist(rx_waiting, tx_gone, registered_); }
    static void completed() noexcept {}
    static void relay() noexcept {}  // one receiver: nobody to pass a wake-up to
    // A value this receive took after all (an Asio receive cancelled before
    // its handler ran), given back: the next receive returns it.
    void give_back(T&& value) noexcept {
      st_->value_.construct(std::move(value));
      // relaxed: as in attempt(), only this receiver still uses the state.
      st_->state_.fetch_or(value_sent, std::memory_order_relaxed);
    }
    [[nodiscard]] static bool hands_off() noexcept { return false; }
    // An attempt is one load: worth making before registering, and it lets
    // an awaitable complete without suspending (async_operation::try_now).
    [[nodiscard]] static bool spins() noexcept { return true; }

    [[nodiscard]] bool disconnected() const noexcept { return disconnected_; }

   private:
    oneshot_state* st_;
    result_type* result_;
    E if_disconnected_;
    bool registered_ = false;  // this receive's entry is (or was) in rx_entry_
    bool disconnected_ = false;
  };

  // Blocks the calling thread (wait_on) until the value, disconnection,
  // `d` or a stop request. Failures are reported in the caller's error type.
  template <class E>
  std::expected<T, E> recv_as(const deadline& d, const std::stop_token& stop, E if_timeout,
                              E if_disconnected, E if_cancelled) noexcept {
    std::expected<T, E> result(std::unexpect, if_timeout);
    recv_steps<E> st(*this, result, if_timeout, if_disconnected);
    if (st.attempt() || d.has_passed()) return result;  // a passed deadline: one try
    // On timeout the last attempt failed and left if_timeout in `result`.
    if (wait_on(st, d, stop) == wait_result::cancelled) result.error() = if_cancelled;
    return result;
  }

  // Waits until the receiving side stops (a sender's async_closed). One at
  // a time per sender.
  class closed_steps {
   public:
    explicit closed_steps(oneshot_state& st) noexcept : st_(&st) {}

    bool attempt() noexcept { return st_->is_closed(); }
    readiness enlist(wait_entry& e) noexcept {
      return st_->enlist(st_->tx_entry_, e, tx_waiting, closed, registered_,
                         "two async_closed() at once on one oneshot_sender");
    }
    readiness recheck() noexcept { return attempt() ? readiness::ready : readiness::wait; }
    void delist(wait_entry&) noexcept { st_->delist(tx_waiting, closed, registered_); }
    static void completed() noexcept {}
    static void relay() noexcept {}  // one watcher
    [[nodiscard]] static bool hands_off() noexcept { return false; }
    [[nodiscard]] static bool spins() noexcept { return true; }  // as recv_steps

   private:
    oneshot_state* st_;
    bool registered_ = false;
  };

 private:
  ~oneshot_state() {
    // Only the last side to leave runs this, after its acq_rel RMW.
    if ((state_.load(std::memory_order_relaxed) & value_sent) != 0) value_.destroy();
  }

  // Registers `e` in `slot` unless one of `ready` is set (see the header's
  // slots invariant). Readiness is decided by the CAS alone: no poll.
  readiness enlist(wait_entry*& slot, wait_entry& e, std::uint32_t waiting,
                   std::uint32_t ready, bool& registered, const char* misuse) noexcept {
    std::uint32_t cur = state_.load(std::memory_order_relaxed);
    // Checked first: a stale waiting bit only exists alongside a ready bit.
    if ((cur & ready) != 0) return readiness::ready;
    if ((cur & waiting) != 0) oneshot_misuse(misuse);
    slot = &e;
    // release: publishes the slot to the party that sets the triggering bit
    // (its RMW reads this one or a later one of the same release sequence).
    while (!state_.compare_exchange_weak(cur, cur | waiting, std::memory_order_release,
                                         std::memory_order_relaxed)) {
      if ((cur & ready) != 0) return readiness::ready;  // the slot was not published
    }
    registered = true;
    return readiness::wait;
  }

  // Unregisters after a wait that ended without this side's claim (or
  // after an enlist that did not register: then nothing to do). If the
  // other side has taken the slot over (`trigger` set), waits until it is
  // done with the entry: it clears the bit right after its failed claim.
  void delist(std::uint32_t waiting, std::uint32_t trigger, bool& registered) noexcept {
    if (!registered) return;
    registered = false;
    backoff bo;
    // acquire: pairs with the claimer's release when it lets go of the slot.
    std::uint32_t cur = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((cur & waiting) == 0) return;
      if ((cur & trigger) != 0) {
        bo.snooze();
        cur = state_.load(std::memory_order_acquire);
        continue;
      }
      if (state_.compare_exchange_weak(cur, cur & ~waiting, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return;
      }
    }
  }

  // The caller's RMW just set the bit that hands it `entry` (see the
  // header). Claims the waiter for the entry's own selection (so its
  // driver attempts again rather than delisting); on failure gives the slot
  // back. The caller wakes the token once it is done with the state.
  wake_token claim(wait_entry* entry, std::uint32_t waiting) noexcept {
    waiter* const w = entry->w;
    const wake_token t = w->try_claim(entry->op);
    if (!t) {
      // release: our reads of the entry happen before the owner's delist()
      // returns and lets it go. The state is still alive: the owner's
      // handle holds it while its operation is in delist().
      state_.fetch_and(~waiting, std::memory_order_release);
    }
    return t;
  }

  std::atomic<std::uint32_t> state_{0};  // the bits above
  storage<T> value_;                     // live iff value_sent
  wait_entry* rx_entry_ = nullptr;       // guarded by rx_waiting (see the header)
  wait_entry* tx_entry_ = nullptr;       // guarded by tx_waiting
};

}  // namespace sluice::detail
