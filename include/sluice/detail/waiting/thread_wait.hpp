// sluice/detail/waiting/thread_wait.hpp - the thread driver of the waiting
// protocol (protocol.hpp): try, back off, register, re-check, park, repeat.
//
// Invariants:
// - The only unbounded waits are parked ones; spinning and yielding are
//   bounded by the backoff policy and the deadline.
// - A stop request claims the waiter with sel_cancelled and wakes it; the
//   driver checks the token after every registration (after the waiter's
//   reset), so a request that finds the waiter between two waits is seen
//   too. An operation that can finish without waiting finishes even if stop
//   was requested before it started. A claim that completed the
//   operation (a rendezvous hand-off) wins over a stop request: the
//   operation happened.
// - Every wait ends with the entry unlinked: by its claimer, or by delist().
#pragma once

#include <sluice/detail/memory/asymmetric_fence.hpp>
#include <sluice/detail/memory/fence.hpp>
#include <sluice/detail/waiting/backoff.hpp>
#include <sluice/detail/waiting/claim_outcome.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/detail/waiting/waiter.hpp>

#include <optional>
#include <stop_token>
#include <utility>

namespace sluice::detail {

// A stop callback that cancels a thread's wait: claims the waiter if it is
// waiting (and wakes it), or does nothing (the driver then sees the request
// before its next wait).
struct cancel_thread_wait {
  waiter* w;
  void operator()() const noexcept {
    // The stop state was set before this runs; ordered before the claim's
    // load, against the driver's reset and its stop_requested() check.
    seq_cst_fence();
    if (wake_token t = w->try_claim(sel_cancelled)) t.wake();
  }
};

// Drives `st` on the calling thread until it finishes, `d` passes or `stop`
// is requested. Precondition: the caller's own first attempt failed (steps
// that spin), or was not made (steps that do not: their enlist() attempts
// under its lock). Steps that spin attempt again at once, before the first
// pause: by then a peer has often made the room or the message (measured:
// the unbounded streaming rows, 0.67-0.92x the time of pausing first).
// Kept out of line so that the callers' fast paths stay small.
template <class Steps>
[[gnu::noinline]] wait_result wait_on(Steps& st, const deadline& d,
                                      const std::stop_token& stop = {}) {
  if (st.spins()) {
    backoff bo;
    for (;;) {
      if (st.attempt()) {
        bo.wait_ended_unparked();
        return wait_result::done;
      }
      if (bo.is_completed()) break;
      if (bo.is_spin_completed()) {
        if (stop.stop_requested()) return wait_result::cancelled;
        if (d.has_passed()) return wait_result::timeout;
      }
      bo.snooze();
    }
  }

  // One cache line: a claimer reads the entry, unlinks it and claims the
  // waiter, all on the line this thread then spins on (one transfer per
  // hand-off, not two; measured on the rendezvous rows).
  struct alignas(64) waiting_block {
    waiter w;
    wait_entry entry{.w = &w};
  } block;
  static_assert(sizeof(waiting_block) == 64, "waiter and entry fill one cache line");
  waiter& w = block.w;
  wait_entry& entry = block.entry;
  std::optional<std::stop_callback<cancel_thread_wait>> on_stop;
  if (stop.stop_possible()) on_stop.emplace(stop, cancel_thread_wait{&w});
  for (;;) {
    if (d.has_passed()) return wait_result::timeout;
    w.reset();
    readiness r = st.enlist(entry);
    if (r == readiness::done) return wait_result::done;
    if (r == readiness::poll) {
      heavy_fence();
      r = st.recheck();
    }
    if (r == readiness::ready) {
      w.try_claim(sel_aborted);  // do not sleep
    } else if (on_stop) {
      // A request whose callback ran before reset() claimed nothing: the
      // stop state is set before callbacks run, so it is seen here. The
      // fence orders reset() before that load (the callback fences too).
      seq_cst_fence();
      if (stop.stop_requested()) w.try_claim(sel_cancelled);
    }
    const selection s = w.wait_until(d, /*patient=*/!st.spins());
    if (conclude_claim(st, entry, s) == claim_outcome::handed_off) return wait_result::done;
    if (s == sel_cancelled) return wait_result::cancelled;
    if (st.attempt()) return wait_result::done;  // also the one last try after the deadline
  }
}

// Steps for a wait inside a flavor (not a user's operation): `attempt()`
// says whether the awaited progress happened, `ready()` re-checks it for a
// registered waiter. Waiters of this kind sit in `queue` like any other.
template <class Attempt, class Ready>
class queue_steps {
 public:
  queue_steps(wait_queue& queue, Attempt attempt, Ready ready)
      : queue_(&queue), attempt_(std::move(attempt)), ready_(std::move(ready)) {}

  bool attempt() { return attempt_(); }
  readiness enlist(wait_entry& e) {
    queue_->register_entry(e);
    return ready_();
  }
  readiness recheck() { return ready_(); }
  void delist(wait_entry& e) noexcept { queue_->unregister(e); }
  void completed() noexcept {}
  static void relay() noexcept {}  // never cancelled
  [[nodiscard]] static bool hands_off() noexcept { return false; }
  [[nodiscard]] static bool spins() noexcept { return true; }

 private:
  wait_queue* queue_;
  Attempt attempt_;
  Ready ready_;
};

// Waits, with no deadline, for a peer part-way through an operation that
// notifies `queue` when it is done (`done()` turns true).
template <class Done>
void wait_for_peer(wait_queue& queue, Done done) {
  if (done()) return;
  queue_steps st(queue, done, [&] { return done() ? readiness::ready : readiness::poll; });
  wait_on(st, deadline::never());
}

}  // namespace sluice::detail
