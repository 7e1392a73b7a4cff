// sluice/detail/waiting/protocol.hpp - the steps through which every kind of
// waiter (a thread, a coroutine, an asynchronous handler, later a select)
// waits on every flavor.
//
// Each flavor offers, per operation (send, receive, reserve, closed), a
// small "steps" object the waiting layer drives; the flavor never parks,
// suspends or resumes anything, and the waiting layer never looks inside a
// queue. The shape is crossbeam-channel's start/write/read and its
// SelectHandle's register/unregister:
//
//   bool attempt()                   try now; true once the operation has
//                                    finished, either way (the steps keep
//                                    the outcome: a message, "sent",
//                                    "disconnected")
//   readiness enlist(wait_entry& e)  register `e` (the steps point its packet
//                                    at their own), then re-check the channel;
//                                    steps that do not spin (rendezvous) try
//                                    under the same lock first, and may
//                                    finish the operation there (`done`, not
//                                    registered)
//   readiness recheck()              re-check only (after a heavy fence)
//   void delist(wait_entry& e)       unregister `e`; a no-op if a claimer
//                                    already unlinked it; gives a lent
//                                    packet's value back
//   void completed()                 the counterpart finished the operation
//                                    through the packet (hand-off flavors)
//   void relay()                     a claim that asked for another attempt
//                                    will not be used (the operation was
//                                    cancelled first): pass the wake-up on to
//                                    another waiter that may use it
//   bool hands_off() const           whether a claim with the entry's own
//                                    selection means completed() (rendezvous)
//                                    rather than "attempt again"
//   bool spins() const               whether to attempt while spinning
//                                    before registering (buffered flavors,
//                                    where an attempt is a few loads)
//
// Invariant (no lost wake-up): a waiter registers *before* it re-checks; the
// other side publishes progress *before* it checks for waiters. Both halves
// are seq_cst, so either the re-check sees the progress (readiness::ready)
// or the other side sees the waiter and claims it (readiness::wait). One
// progress is published with a plain release store instead (a peer that
// reserved a slot and is still inside T's move constructor, or descheduled
// there; a receiver still moving a message out of the slot it frees): the
// re-check then says readiness::poll, and the driver runs a heavy fence and
// re-checks once more, which pairs with the peer's light fence before its
// own check (memory/asymmetric_fence.hpp). After that, waiting is safe.
#pragma once

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
  done,   // enlist() finished the operation itself (and did not register)
  ready,  // an attempt can finish now: do not wait
  wait,   // the other side claims the waiter after its next progress
  poll,   // a peer is part-way through an operation: heavy fence, re-check
};

// How a driven wait ended.
enum class wait_result {
  done,       // the operation finished (the steps hold the outcome)
  timeout,    // the deadline passed first
  cancelled,  // a stop request or cancellation came first
};

}  // namespace sluice::detail
