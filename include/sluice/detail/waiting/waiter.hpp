// sluice/detail/waiting/waiter.hpp - one waiting operation (or one waiting
// select): a thread that parks, or a callback that resumes a coroutine or
// completes an asynchronous handler.
//
// A waiter is registered in one or more wait queues (one per channel side it
// waits on). Whoever completes it first claims it by moving its state word
// from "waiting" to a selection, exactly once; then wakes it. A claim is
// either final at once (the waiter only needs to learn the selection), or a
// hand-off: the claimer still moves a message into or out of the waiter's
// packet (running T's move constructor and destructor, user code of any
// duration) and completes the claim when done. The waiter acts only once
// its claim is complete; a thread sleeps, rather than spins, while it is not.
//
// State word (32 bits, also the futex word of a sleeping thread):
//   bits 0-28  the selection: waiting 0, cancelled 1 (a stop request or
//              cancellation), aborted 2 (the waiter gave up: timeout, or it
//              saw progress itself), disconnected 3, or operation n >=
//              first_op (for select: the arm)
//   bit 29     arming (callback waiters): the owner is still registering and
//              re-checking; a claim made meanwhile does not call back, the
//              owner finds it when it disarms
//   bit 30     sleeping (thread waiters): the thread sleeps (or is about to)
//              on the word, so whoever makes the state final owes it a wake
//   bit 31     handing off: claimed, the claimer is still finishing
//
// Invariants:
// - The selection leaves "waiting" exactly once per arming (CAS), so an
//   operation is completed at most once and a waiter never consumes two
//   wake-ups; only the owner resets it, when no claim can be in flight.
// - A callback waiter's callback runs at most once per arming, and never
//   while its owner is still arming: exactly one party (the owner or one
//   claimer) carries the operation on at any time.
// - After a successful claim the claimer may touch only what the waiter keeps
//   alive until its state is final (its packet, and for a hand-off the state
//   word itself), plus the wake: a futex wake that uses only the word's
//   address, or the callback, whose owner stays suspended until it runs.
#pragma once

#include <sluice/detail/waiting/backoff.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/parker.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace sluice::detail {

using selection = std::uint32_t;
inline constexpr selection sel_waiting = 0;
inline constexpr selection sel_cancelled = 1;
inline constexpr selection sel_aborted = 2;
inline constexpr selection sel_disconnected = 3;
inline constexpr selection sel_first_op = 4;

// The operation id a single (non-select) blocking operation registers with.
inline constexpr selection sel_single_op = sel_first_op;

// Identity of the party that owns a waiter: a thread, or a coroutine task.
// A channel never pairs a waiter with another waiter of the same owner (a
// select that both sends and receives on one rendezvous channel must not
// hand a value to itself).
inline const void* current_thread_owner() noexcept {
  static thread_local const char tag = 0;
  return &tag;
}

class waiter;

// What a claimer needs to finish a claim, copied out at claim time so that
// waking reads nothing from the waiter (which may be gone by then, see the
// invariants above).
class wake_token {
 public:
  using resume_fn = void (*)(waiter&) noexcept;

  wake_token() noexcept = default;
  wake_token(waiter* w, resume_fn resume, std::atomic<std::uint32_t>* word, selection sel,
             bool handoff, bool must_wake) noexcept
      : waiter_(w), resume_(resume), word_(word), sel_(sel), handoff_(handoff),
        must_wake_(must_wake) {}

  // Whether the claim succeeded.
  explicit operator bool() const noexcept { return waiter_ != nullptr; }

  // Whether waking runs a callback (which may resume a coroutine inline)
  // rather than waking a thread.
  [[nodiscard]] bool calls_back() const noexcept { return resume_ != nullptr; }

  // Finishes the claim: completes a hand-off (after the claimer is done with
  // the waiter's packet), then wakes the waiter if it needs it. Call once.
  void wake() const noexcept;

 private:
  waiter* waiter_ = nullptr;
  resume_fn resume_ = nullptr;
  std::atomic<std::uint32_t>* word_ = nullptr;
  selection sel_ = sel_waiting;
  bool handoff_ = false;
  bool must_wake_ = false;
};

class waiter {
 public:
  // Called to resume a non-thread waiter once claimed (coroutines).
  using resume_fn = wake_token::resume_fn;

  static constexpr std::uint32_t arming = 1u << 29;
  static constexpr std::uint32_t sleeping = 1u << 30;
  static constexpr std::uint32_t handing_off = 1u << 31;
  static constexpr std::uint32_t selection_mask = arming - 1;

  // A thread waiter: wait_until() spins, yields, then parks the thread.
  waiter() noexcept : owner_(current_thread_owner()) {}
  // A callback waiter: `resume` is invoked after a claim; never parks.
  waiter(const void* owner, resume_fn resume) noexcept : owner_(owner), resume_(resume) {}

  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  [[nodiscard]] const void* owner() const noexcept { return owner_; }

  // Whether nobody has claimed the waiter yet (a hint for a select's
  // readiness test; relaxed: a claim may follow at once either way).
  [[nodiscard]] bool is_waiting() const noexcept {
    return (state_.load(std::memory_order_relaxed) & (selection_mask | handing_off)) ==
           sel_waiting;
  }

  // Claims the waiter for `sel` unless someone already did; the token wakes
  // it. With `handoff`, the claim stays pending until the token's wake().
  // acq_rel: acquire so the claimer sees what the waiter published before
  // registering (its packet); release so the waiter, acquiring the state,
  // sees everything the claimer wrote before the claim.
  // Everything the token needs is read *before* the CAS: once a final claim
  // succeeds, the waiter may see it, return and free this object.
  wake_token try_claim(selection sel, bool handoff = false) noexcept {
    const resume_fn resume = resume_;
    std::atomic<std::uint32_t>* word = &state_;
    std::uint32_t cur = state_.load(std::memory_order_relaxed);
    while ((cur & (selection_mask | handing_off)) == sel_waiting) {
      // A hand-off keeps the sleeping and arming bits: its completion reads
      // them to know whether a wake (or the callback) is owed. A final claim
      // drops the arming bit: the owner, disarming, finds the claim.
      const std::uint32_t next =
          handoff ? (sel | handing_off | (cur & (sleeping | arming))) : sel;
      if (state_.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        const bool must_wake =
            resume != nullptr ? (cur & arming) == 0 : (cur & sleeping) != 0;
        return {this, resume, word, sel, handoff, must_wake};
      }
    }
    return {};
  }

  // Callback waiters: starts an arming window (see the state word). Only the
  // owner calls it, when no claim of an earlier arming is in flight.
  // relaxed: the registration that follows publishes it (queue lock).
  void arm() noexcept { state_.store(sel_waiting | arming, std::memory_order_relaxed); }

  // Callback waiters: ends the arming window. Returns sel_waiting when the
  // waiter is now pending (a claim will call back), else the final
  // selection of a claim made while arming, which the owner carries on.
  // acquire: the owner then sees what the claimer wrote before its claim.
  selection disarm() noexcept {
    std::uint32_t cur = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((cur & arming) == 0) return cur & selection_mask;  // claimed while arming
      if (state_.compare_exchange_weak(cur, cur & ~arming, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        // Still waiting, or a hand-off whose completion will now call back.
        return sel_waiting;
      }
    }
  }

  // Thread waiters: a fresh wait for the next registration. Only the owner
  // calls it, after its previous wait ended (nothing claims a final state).
  // relaxed: the registration that follows publishes it (queue lock).
  void reset() noexcept { state_.store(sel_waiting, std::memory_order_relaxed); }

  // The final selection (after wait_until or a callback). acquire: pairs
  // with the claim.
  [[nodiscard]] selection final_selection() const noexcept {
    return state_.load(std::memory_order_acquire) & selection_mask;
  }

  // Thread waiters: block until the state is final, or until `d` passes
  // while nobody has claimed the waiter: then the waiter aborts itself
  // (unless a claim won the race, whose result is returned) and returns
  // sel_aborted. A claimed hand-off is waited for
  // whatever the deadline: the operation is committed.
  // `patient` waiters spin and yield before parking (the claimer is likely
  // to come soon); others spin briefly, having already spun before waiting.
  selection wait_until(const deadline& d, bool patient) noexcept {
    backoff bo;
    bool handoff_seen = false;
    while (patient ? !bo.is_completed() : !bo.is_spin_completed()) {
      // acquire: pairs with the claim (or the hand-off's completion).
      const std::uint32_t s = state_.load(std::memory_order_acquire);
      if (is_final(s)) {
        if (patient) bo.wait_ended_unparked();
        return s & selection_mask;
      }
      if ((s & handing_off) != 0 && !handoff_seen) {
        // Claimed: the claimer is one move away from done. A fresh budget,
        // so that a claim late in the budget does not cost a park.
        handoff_seen = true;
        bo = backoff{};
        continue;
      }
      bo.snooze();
    }
    backoff::wait_ended_parked();
    for (;;) {
      std::uint32_t s = state_.load(std::memory_order_acquire);
      if (is_final(s)) return s & selection_mask;
      const bool claimed = (s & selection_mask) != sel_waiting;
      if (!claimed && d.has_passed()) {
        // acquire on failure: the failure value may be a claim whose
        // writes we need.
        if (state_.compare_exchange_strong(s, sel_aborted, std::memory_order_acquire,
                                           std::memory_order_acquire)) {
          return sel_aborted;
        }
        continue;
      }
      if ((s & sleeping) == 0) {
        // Announce that we sleep, so the claimer knows a futex wake is owed.
        if (!state_.compare_exchange_weak(s, s | sleeping, std::memory_order_acquire,
                                          std::memory_order_acquire)) {
          continue;
        }
        s |= sleeping;
      }
      park_while(state_, s, claimed ? steady::time_point::max() : d.wake_at());
    }
  }

 private:
  friend class wake_token;

  // Claimed and not still being handed off.
  static bool is_final(std::uint32_t s) noexcept {
    return (s & selection_mask) != sel_waiting && (s & handing_off) == 0;
  }

  std::atomic<std::uint32_t> state_{sel_waiting};
  const void* owner_;
  resume_fn resume_ = nullptr;
};

inline void wake_token::wake() const noexcept {
  bool must_wake = must_wake_;
  if (handoff_) {
    // release: the waiter's acquire of its final state sees the hand-off.
    // The exchange also learns whether the waiter went to sleep (thread) or
    // finished arming (callback) meanwhile.
    const std::uint32_t before = word_->exchange(sel_, std::memory_order_release);
    must_wake = resume_ != nullptr ? (before & waiter::arming) == 0
                                   : (before & waiter::sleeping) != 0;
  }
  if (!must_wake) return;
  if (resume_ != nullptr) {
    resume_(*waiter_);  // its owner stays suspended until this runs
  } else {
    wake_all(word_);  // address only
  }
}

}  // namespace sluice::detail
