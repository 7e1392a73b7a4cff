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
#include <sluice/error.hpp>

#include <expected>
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
      if (attempt()) return true;
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

// recv(deadline) for a buffered flavor: one inline attempt, then block_on.
template <class Flavor>
std::expected<typename Flavor::value_type, recv_timeout_error> recv_blocking(
    Flavor& chan, wait_queue& receivers, const deadline& d) {
  auto first = chan.try_recv();
  if (first) return std::move(*first);
  if (first.error() == try_recv_error::disconnected) {
    return std::unexpected(recv_timeout_error::disconnected);
  }
  std::optional<typename Flavor::value_type> got;
  bool disconnected = false;
  const bool done = block_on(
      receivers, d,
      [&] {
        auto r = chan.try_recv();
        if (r) {
          got.emplace(std::move(*r));  // emplace: T need not be assignable
          return true;
        }
        disconnected = r.error() == try_recv_error::disconnected;
        return disconnected;
      },
      [&] { return !chan.is_empty() || chan.is_disconnected(); });
  if (got) return std::move(*got);
  return std::unexpected(done ? recv_timeout_error::disconnected : recv_timeout_error::timeout);
}

}  // namespace sluice::detail
