// sluice/detail/flavors/buffered_steps.hpp - the receive and "closed" steps
// (waiting/protocol.hpp) that the two buffered flavors (list, array) share.
//
// A Flavor here offers: value_type, try_recv_as(if_empty, if_disconnected,
// status), next_written(), recv_readiness(), closed_for_senders(), and the
// queues receivers() and closed_watchers().
//
// Invariants:
// - The steps hold pointers only (to the channel, and to a result the caller
//   owns), so the caller decides where the outcome lives: a thread's stack,
//   a coroutine frame, an asynchronous operation.
// - While the next slot is reserved but not yet written (stalled), an
//   attempt reads only that slot's flag, not the senders' tail, whose cache
//   line a streaming sender writes on every send.
#pragma once

#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/thread_wait.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>

#include <expected>
#include <memory>
#include <stop_token>

namespace sluice::detail {

template <class Flavor, class E>
class buffered_recv_steps {
 public:
  using value_type = typename Flavor::value_type;
  using result_type = std::expected<value_type, E>;

  // `result` receives the outcome; `status` is the caller's last view of
  // the channel (from a failed first attempt, or recv_status::empty).
  buffered_recv_steps(Flavor& ch, result_type& result, E if_empty, E if_disconnected,
                      recv_status status = recv_status::empty) noexcept
      : ch_(&ch), result_(&result), if_empty_(if_empty), if_disconnected_(if_disconnected),
        status_(status) {}

  bool attempt() noexcept {
    if (status_ == recv_status::stalled && !ch_->next_written()) return false;
    // Re-create in place: T need not be assignable.
    std::destroy_at(result_);
    std::construct_at(result_, ch_->try_recv_as(if_empty_, if_disconnected_, status_));
    return status_ == recv_status::message || status_ == recv_status::disconnected;
  }
  readiness enlist(wait_entry& e) noexcept {
    ch_->receivers().register_entry(e);
    return ch_->recv_readiness();
  }
  readiness recheck() noexcept { return ch_->recv_readiness(); }
  void delist(wait_entry& e) noexcept { ch_->receivers().unregister(e); }
  void completed() noexcept {}
  static void relay() noexcept {}  // one receiver: nobody else to pass it to
  // A message this receive took after all, given back (receive_stash.hpp).
  void give_back(value_type&& value) noexcept { ch_->stash().put(std::move(value)); }
  [[nodiscard]] static bool hands_off() noexcept { return false; }
  [[nodiscard]] static bool spins() noexcept { return true; }

  [[nodiscard]] recv_status status() const noexcept { return status_; }

 private:
  Flavor* ch_;
  result_type* result_;
  E if_empty_;
  E if_disconnected_;
  recv_status status_;
};

// Waits until the receiver is gone or closed the channel (a sender's
// async_closed). Every flavor offers closed_for_senders() and
// closed_watchers(), a queue disconnected when the receiving side stops.
template <class Flavor>
class closed_steps {
 public:
  explicit closed_steps(Flavor& ch) noexcept : ch_(&ch) {}

  bool attempt() noexcept { return ch_->closed_for_senders(); }
  readiness enlist(wait_entry& e) noexcept {
    // A flavor whose receiver may leave without waking anyone (array.hpp's
    // quiet leave) learns first that a sender waits.
    if constexpr (requires { ch_->note_sender_wait(); }) ch_->note_sender_wait();
    ch_->closed_watchers().register_entry(e);
    return recheck();
  }
  readiness recheck() noexcept {
    return ch_->closed_for_senders() ? readiness::ready : readiness::wait;
  }
  void delist(wait_entry& e) noexcept { ch_->closed_watchers().unregister(e); }
  void completed() noexcept {}
  static void relay() noexcept {}  // a disconnection claims every watcher
  [[nodiscard]] static bool hands_off() noexcept { return false; }
  [[nodiscard]] static bool spins() noexcept { return false; }

 private:
  Flavor* ch_;
};

// The waiting half of recv_buffered(): the first attempt left `result`
// empty with `status` (empty or stalled). Out of line, so that the attempt
// inlines into the caller without the wait's frame.
template <class Flavor, class E>
[[gnu::noinline]] void recv_buffered_wait(Flavor& chan,
                                          std::expected<typename Flavor::value_type, E>& result,
                                          recv_status status, const deadline& d,
                                          const std::stop_token& stop, E if_timeout,
                                          E if_disconnected, E if_cancelled) {
  // Empty, or the next message still being written: either way the
  // receiver has caught up with its senders.
  chan.pacer().on_empty();
  buffered_recv_steps<Flavor, E> st(chan, result, if_timeout, if_disconnected, status);
  // On timeout the last attempt left "empty", reported as if_timeout.
  if (wait_on(st, d, stop) == wait_result::cancelled) {
    result.error() = if_cancelled;  // the attempts left an error in it
  } else if (result) {
    chan.pacer().on_message();
  }
}

// A blocking receive on a buffered flavor: one inline attempt, then the
// thread driver. Failures are reported in the caller's error type E; every
// path returns the one local result, so the message is not moved again on
// the way out. Flavor also offers pacer() (receive_pacer.hpp).
// Always inlined, with the wait out of line: compiled as a call of its own,
// the result came back through the stack, a byte store (the expected's
// flag) read back as part of a word, which the store buffer cannot forward
// (measured: 9.2 ns a receive instead of 6.1, one thread draining a
// bounded(1'000'000) channel).
template <class Flavor, class E>
[[gnu::always_inline]] inline std::expected<typename Flavor::value_type, E> recv_buffered(
    Flavor& chan, const deadline& d, const std::stop_token& stop, E if_timeout,
    E if_disconnected, E if_cancelled) {
  recv_status status = recv_status::empty;
  auto result = chan.try_recv_as(if_timeout, if_disconnected, status);
  if (result) [[likely]] {
    chan.pacer().on_message();
  } else if (status != recv_status::disconnected) {
    recv_buffered_wait(chan, result, status, d, stop, if_timeout, if_disconnected, if_cancelled);
  }
  return result;
}

}  // namespace sluice::detail
