// sluice/detail/waiter.hpp - one blocked operation (or one blocked select):
// a thread that parks, or a callback that resumes a coroutine.
//
// A waiter is registered in one or more wait queues (one per channel side it
// waits on). Whoever completes it first claims it by moving its state word
// from "waiting" to a result, exactly once; then wakes it.
//
// State word (32 bits, also the futex word of a parked thread):
//   waiting       0  registered, nobody has claimed it yet
//   parked        1  waiting, and the thread sleeps in the parker
//   aborted       2  the waiter gave up (timeout, or it saw progress itself)
//   disconnected  3  the channel side it waits on was disconnected
//   >= first_op      operation `n` was selected (for select: arm index)
//
// Invariants:
// - The state leaves {waiting, parked} exactly once (CAS), so an operation is
//   completed at most once and a waiter never consumes two wake-ups.
// - After a successful claim the claimer may touch only what the waiter keeps
//   alive until it has seen the claim (the hand-off packet, for rendezvous),
//   plus the wake itself: a futex wake that uses only the word's address, or
//   the callback of a coroutine waiter, whose frame stays suspended until the
//   callback resumes it.
#pragma once

#include <sluice/detail/backoff.hpp>
#include <sluice/detail/deadline.hpp>
#include <sluice/detail/parker.hpp>

#include <atomic>
#include <cstdint>

namespace sluice::detail {

using selection = std::uint32_t;
inline constexpr selection sel_waiting = 0;
inline constexpr selection sel_parked = 1;
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

// What a claimer needs to wake a claimed waiter, copied out at claim time so
// that waking reads nothing from the waiter (which may be gone by then, see
// the invariants above).
class wake_token {
 public:
  using resume_fn = void (*)(waiter&) noexcept;

  wake_token() noexcept = default;
  wake_token(waiter* w, resume_fn resume, const std::atomic<std::uint32_t>* word,
             bool must_wake) noexcept
      : waiter_(w), resume_(resume), word_(word), must_wake_(must_wake) {}

  // Whether the claim succeeded.
  explicit operator bool() const noexcept { return waiter_ != nullptr; }

  // Wakes the claimed waiter if it needs it. Call once, after finishing any
  // hand-off into the waiter's packet.
  void wake() const noexcept {
    if (!must_wake_) return;
    if (resume_ != nullptr) {
      resume_(*waiter_);  // a suspended coroutine frame: alive until resumed
    } else {
      wake_all(word_);  // address only
    }
  }

 private:
  waiter* waiter_ = nullptr;
  resume_fn resume_ = nullptr;
  const std::atomic<std::uint32_t>* word_ = nullptr;
  bool must_wake_ = false;
};

class waiter {
 public:
  // Called to resume a non-thread waiter once claimed (coroutines).
  using resume_fn = wake_token::resume_fn;

  // A thread waiter: wait_until() spins, yields, then parks the thread.
  waiter() noexcept : owner_(current_thread_owner()) {}
  // A callback waiter: `resume` is invoked after a claim; never parks.
  waiter(const void* owner, resume_fn resume) noexcept : owner_(owner), resume_(resume) {}

  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  [[nodiscard]] const void* owner() const noexcept { return owner_; }

  // Claims the waiter for `sel` unless someone already did; the token wakes it.
  // acq_rel: acquire so the claimer sees what the waiter published before
  // registering (its packet); release so the waiter, acquiring the state,
  // sees everything the claimer wrote before the claim.
  // Everything the token needs is read *before* the CAS: once it succeeds,
  // the waiter may see the claim, return and free this object.
  wake_token try_claim(selection sel) noexcept {
    const resume_fn resume = resume_;
    const std::atomic<selection>* word = &state_;
    selection cur = state_.load(std::memory_order_relaxed);
    while (cur == sel_waiting || cur == sel_parked) {
      if (state_.compare_exchange_weak(cur, sel, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        return {this, resume, word, resume != nullptr || cur == sel_parked};
      }
    }
    return {};
  }

  // The waiter's own view of its state. acquire: pairs with the claim above.
  [[nodiscard]] selection selected() const noexcept {
    return state_.load(std::memory_order_acquire);
  }

  // Thread waiters: block until claimed or `d` passes; on timeout the waiter
  // aborts itself, unless a claim won the race, whose result is returned.
  // `patient` waiters spin and yield before parking (the claimer is likely
  // to come soon); others spin briefly, having already spun before waiting.
  selection wait_until(const deadline& d, bool patient) noexcept {
    backoff bo;
    while (patient ? !bo.is_completed() : !bo.is_spin_completed()) {
      const selection s = selected();
      if (s > sel_parked) {
        if (patient) bo.wait_ended_unparked();
        return s;
      }
      bo.snooze();
    }
    backoff::wait_ended_parked();
    for (;;) {
      selection cur = sel_waiting;
      // Announce that we sleep, so the claimer knows a futex wake is owed.
      // acquire on failure: the failure value is a claim whose writes we need.
      if (!state_.compare_exchange_strong(cur, sel_parked, std::memory_order_acquire,
                                          std::memory_order_acquire) &&
          cur != sel_parked) {
        return cur;
      }
      if (d.has_passed()) {
        if (try_claim(sel_aborted)) return sel_aborted;
        return selected();
      }
      park_while(state_, sel_parked, d);
      const selection s = selected();
      if (s > sel_parked) return s;
    }
  }

 private:
  std::atomic<selection> state_{sel_waiting};
  const void* owner_;
  resume_fn resume_ = nullptr;
};

}  // namespace sluice::detail
