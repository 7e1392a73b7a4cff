// sluice/channel.hpp - making channels: channel() (unbounded) and
// sync_channel(bound) (bounded; bound 0 is a rendezvous).
//
// Invariants: each call allocates one shared channel and returns its only
// receiver and its first sender; the allocation is freed when both sides
// are gone. Messages from one sender arrive in the order it sent them.
#pragma once

#include <sluice/detail/flavors/array.hpp>
#include <sluice/detail/handles/counter.hpp>
#include <sluice/detail/flavors/list.hpp>
#include <sluice/detail/flavors/zero.hpp>
#include <sluice/receiver.hpp>
#include <sluice/sendable.hpp>
#include <sluice/sender.hpp>

#include <cstddef>
#include <utility>

namespace sluice {

/// channel - an unbounded channel: send() never blocks; memory grows with
/// the number of queued messages and shrinks as they are received.
/// Throws std::bad_alloc if the channel cannot be allocated.
// The return types are deduced (std::pair<sender<T>, receiver<T>> and
// std::pair<sync_sender<T>, receiver<T>>) so that a rejected T is reported
// by the `sendable` constraint itself, naming the requirement, rather than
// as a failure to form the handle types.
template <sendable T>
auto channel() {
  using flavor = detail::list_channel<T>;
  auto* c = new detail::counter<flavor>();
  const typename sender<T>::ref_type ref(c);
  return std::pair<sender<T>, receiver<T>>(sender<T>(ref),
                                           receiver<T>(typename receiver<T>::ref_type(c)));
}

/// sync_channel - a bounded channel holding at most `bound` messages; send()
/// waits while it is full. sync_channel(0) is a rendezvous: send() completes
/// only when a receiver takes the value.
/// Throws std::length_error when `bound` slots cannot be represented, and
/// std::bad_alloc when memory cannot be had. Large bounds cost memory only
/// for the slots actually used.
template <sendable T>
auto sync_channel(std::size_t bound) {
  using result = std::pair<sync_sender<T>, receiver<T>>;
  if (bound == 0) {
    auto* c = new detail::counter<detail::zero_channel<T>>();
    return result(sync_sender<T>(typename sync_sender<T>::ref_type(c)),
                  receiver<T>(typename receiver<T>::ref_type(c)));
  }
  auto* c = new detail::counter<detail::array_channel<T>>(bound);
  return result(sync_sender<T>(typename sync_sender<T>::ref_type(c)),
                receiver<T>(typename receiver<T>::ref_type(c)));
}

}  // namespace sluice
