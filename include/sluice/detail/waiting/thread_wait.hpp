// sluice/detail/waiting/thread_wait.hpp - the blocking loop shared by the buffered
// flavors (list, array): try, back off, register, re-check, park, repeat.
//
// Invariant (no lost wake-up): a waiter registers in the queue *before* it
// re-checks the channel; the other side publishes progress *before* it checks
// the queue (both seq_cst, see wait_queue::register_entry). So either the
// re-check sees the progress and the waiter aborts its own wait, or the
// other side sees the waiter and wakes it.
//
// One state escapes that pairing: a peer part-way through an operation (a
// sender that reserved a slot and is still inside T's move constructor, or
// descheduled there). Its end is published with a plain release store, not a
// seq_cst one: a fence on every send would cost every send, to serve a case
// that needs a preempted or slow peer. The peer still notifies when it is
// done, and a waiter's registration is visible to it long before then in all
// but a window of nanoseconds; for that window the waiter sleeps with a
// re-check (readiness::poll), 1 ms and doubling up to 64 ms. So no wait
// spins on a stalled peer, and none can hang on one.
//
// Invariant (bounded waiting): the only unbounded waits are parked ones;
// spinning and yielding are bounded by the backoff policy and the deadline.
#pragma once

#include <sluice/detail/waiting/backoff.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/receive_pacer.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/detail/waiting/waiter.hpp>
#include <sluice/error.hpp>

#include <algorithm>
#include <chrono>
#include <expected>
#include <memory>
#include <utility>

namespace sluice::detail {

// What a non-blocking receive found.
enum class recv_status {
  message,       // it returned a message
  empty,         // nothing queued, senders remain
  stalled,       // the next message is reserved but still being written
  disconnected,  // nothing queued, and nothing will be
};

// What a registered waiter's re-check found.
enum class readiness {
  ready,  // an attempt can finish now: do not sleep
  wait,   // the other side notifies after its next progress (Dekker-safe)
  poll,   // a peer is part-way through an operation: sleep with a re-check
};

// The re-check intervals of readiness::poll.
class stall_poll {
 public:
  static constexpr std::chrono::milliseconds first{1};
  static constexpr std::chrono::milliseconds last{64};

  steady::time_point next() noexcept {
    const auto at = steady::now() + interval_;
    interval_ = std::min<steady::duration>(interval_ * 2, last);
    return at;
  }

 private:
  steady::duration interval_ = first;
};

// The slow path of a blocking operation whose first attempt failed.
// Repeats `attempt()` (true when the operation finished, successfully or
// not; the caller keeps the outcome) until it finishes or `d` passes, and
// returns false on timeout. `ready()` tells a registered waiter whether to
// sleep (see readiness). Kept out of line so that the callers' fast paths
// stay small.
template <class Attempt, class Ready>
[[gnu::noinline]] bool block_on(wait_queue& queue, const deadline& d, Attempt attempt,
                                Ready ready) {
  backoff bo;
  for (;;) {
    if (attempt()) {
      bo.wait_ended_unparked();
      return true;
    }
    if (bo.is_completed()) break;
    if (bo.is_spin_completed() && d.has_passed()) return false;
    bo.snooze();
  }
  stall_poll poll;
  for (;;) {
    if (d.has_passed()) return false;
    waiter w;
    wait_entry entry{.w = &w};
    queue.register_entry(entry);
    const readiness r = ready();
    if (r == readiness::ready) w.try_claim(sel_aborted);
    const selection s = w.wait_until(
        d, /*patient=*/false, r == readiness::poll ? poll.next() : steady::time_point::max());
    if (s != entry.op) queue.unregister(entry);
    if (attempt()) return true;  // also the one last try after the deadline
  }
}

// Waits, with no deadline, for a peer part-way through an operation that
// notifies `queue` when it is done (`done()` turns true).
template <class Done>
void wait_for_peer(wait_queue& queue, Done done) {
  if (done()) return;
  block_on(queue, deadline::never(), done,
           [&] { return done() ? readiness::ready : readiness::poll; });
}

// recv for a buffered flavor: one inline attempt, then block_on. Failures
// are reported in the caller's error type E; every path returns the one
// local result, so the message is not moved again on the way out.
template <class Flavor, class E>
std::expected<typename Flavor::value_type, E> recv_blocking(Flavor& chan, wait_queue& receivers,
                                                            receive_pacer& pacer,
                                                            const deadline& d, E if_timeout,
                                                            E if_disconnected) {
  recv_status status = recv_status::empty;
  auto result = chan.try_recv_as(if_timeout, if_disconnected, status);
  if (result) {
    pacer.on_message();
  } else if (status != recv_status::disconnected) {
    // Empty, or the next message still being written: either way the
    // receiver has caught up with its senders.
    pacer.on_empty();
    block_on(
        receivers, d,
        [&] {
          // A reserved slot stays reserved until written: while stalled,
          // watch that one slot rather than the sender's tail, whose cache
          // line the sender writes on every send.
          if (status == recv_status::stalled && !chan.next_written()) return false;
          // Re-create in place: T need not be assignable.
          std::destroy_at(&result);
          std::construct_at(&result, chan.try_recv_as(if_timeout, if_disconnected, status));
          return status == recv_status::message || status == recv_status::disconnected;
        },
        [&] { return chan.recv_readiness(); });
    // On timeout the last attempt left "empty", reported as if_timeout.
    if (result) pacer.on_message();
  }
  return result;
}

}  // namespace sluice::detail
