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
#include <sluice/detail/wait_queue.hpp>
#include <sluice/detail/waiter.hpp>

namespace sluice::detail {

// Repeats `attempt()` (which returns an engaged std::optional when the
// operation is finished, successfully or not) until it finishes or `d`
// passes; returns the disengaged optional on timeout. `ready()` tells whether
// an attempt could finish now (progress or disconnection happened).
template <class Attempt, class Ready>
auto block_on(wait_queue& queue, const deadline& d, Attempt attempt, Ready ready)
    -> decltype(attempt()) {
  for (;;) {
    backoff bo;
    for (;;) {
      if (auto done = attempt()) return done;
      if (bo.is_completed()) break;
      bo.snooze();
    }
    if (d.has_passed()) return {};

    waiter w;
    wait_entry entry{.w = &w};
    queue.register_entry(entry);
    if (ready()) w.try_claim(sel_aborted);
    const selection s = w.wait_until(d, /*patient=*/false);
    if (s != entry.op) queue.unregister(entry);
    if (s == sel_aborted && d.has_passed()) return attempt();  // one last try
  }
}

}  // namespace sluice::detail
