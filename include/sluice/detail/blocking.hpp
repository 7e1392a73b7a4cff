// sluice/detail/blocking.hpp - the blocking loop shared by the buffered
// flavors (list, array): try, back off, register, re-check, park, repeat.
//
// Invariant (no lost wake-up): a waiter registers in the queue *before* it
// re-checks `ready()`; the other side publishes progress *before* it checks
// the queue (both seq_cst, see wait_queue::register_entry). So either the
// re-check sees the progress and the waiter aborts its own wait, or the
// other side sees the waiter and wakes it.
#pragma once

#include <sluice/detail/backoff.hpp>
#include <sluice/detail/deadline.hpp>
#include <sluice/detail/receive_pacer.hpp>
#include <sluice/detail/wait_queue.hpp>
#include <sluice/detail/waiter.hpp>
#include <sluice/error.hpp>

#include <expected>
#include <memory>
#include <optional>
#include <utility>

namespace sluice::detail {

// The slow path of a blocking operation whose first attempt failed.
// Repeats `attempt()` (true when the operation finished, successfully or
// not; the caller keeps the outcome) until it finishes or `d` passes, and
// returns false on timeout. `ready()` tells whether an attempt could finish
// now (progress or disconnection happened). Kept out of line so that the
// callers' fast paths stay small.
template <class Attempt, class Ready>
[[gnu::noinline]] bool block_on(wait_queue& queue, const deadline& d, Attempt attempt,
                                Ready ready) {
  for (;;) {
    backoff bo;
    for (;;) {
      if (attempt()) {
        bo.wait_ended_unparked();
        return true;
      }
      if (bo.is_completed()) break;
      bo.snooze();
    }
    if (d.has_passed()) return false;

    waiter w;
    wait_entry entry{.w = &w};
    queue.register_entry(entry);
    if (ready()) w.try_claim(sel_aborted);
    const selection s = w.wait_until(d, /*patient=*/false);
    if (s != entry.op) queue.unregister(entry);
    if (s == sel_aborted && d.has_passed()) return attempt();  // one last try
  }
}

// recv for a buffered flavor: one inline attempt, then block_on. Failures
// are reported in the caller's error type E; every path returns the one
// local result, so the message is not moved again on the way out.
template <class Flavor, class E>
std::expected<typename Flavor::value_type, E> recv_blocking(Flavor& chan, wait_queue& receivers,
                                                            receive_pacer& pacer,
                                                            const deadline& d, E if_timeout,
                                                            E if_disconnected) {
  bool empty = false;
  auto result = chan.try_recv_as(if_timeout, if_disconnected, empty, &pacer);
  if (result) {
    pacer.on_message();
  } else if (empty) {
    pacer.on_empty();
    block_on(
        receivers, d,
        [&] {
          // Re-create in place: T need not be assignable.
          std::destroy_at(&result);
          std::construct_at(&result, chan.try_recv_as(if_timeout, if_disconnected, empty, &pacer));
          return result.has_value() || !empty;
        },
        [&] { return !chan.is_empty() || chan.is_disconnected(); });
    // On timeout the last attempt left "empty", reported as if_timeout.
    if (result) pacer.on_message();
  }
  return result;
}

}  // namespace sluice::detail
