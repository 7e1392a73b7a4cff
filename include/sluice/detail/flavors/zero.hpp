// sluice/detail/flavors/zero.hpp - the rendezvous flavor (bound 0): a sender and a
// receiver meet and the message passes directly between them.
//
// Algorithm: crossbeam-channel's zero flavor (Go's unbuffered channel is the
// same idea): one lock guards a queue of blocked senders, each lending its
// message (the entry's packet points at it), and a queue of blocked
// receivers, each with an empty packet. An arriving operation claims a
// waiter of the opposite kind and moves the message out of or into that
// waiter's packet; otherwise it queues itself and waits. A select's entry
// only registers (its other entries may be claimed meanwhile); a select
// finishes by attempting, unregistered.
//
// Invariants:
// - At most one of the two queues holds waiters of distinct owners (an
//   arriving operation always pairs with a waiting one if it can).
// - No user code (T's move constructor or destructor) runs under the lock.
// - A packet belongs to its waiter. The claimer claims the waiter for a
//   hand-off (waiter.hpp), moves the message into or out of the packet
//   outside the lock (T's move constructor and destructor: user code), then
//   completes the claim (release). The waiter returns from its wait only
//   once the claim is complete (acquire), parked if the hand-off is slow.
// - `disconnected_` only goes from false to true, under the lock; its atomic
//   mirror serves the lock-free queries.
// - Every kind of waiter (thread, coroutine, asynchronous handler) goes
//   through send_steps / recv_steps / reserve_steps (waiting/protocol.hpp);
//   the flavor never parks or resumes anyone, and wakes only after unlocking.
//
// Permits (reserve()): a rendezvous channel has no slot to reserve, so a
// permit reserves the hand-off itself. A reservation succeeds only while a
// receiver is waiting and no other permit is out (so one permit at a time).
// The permit's send hands its value to a waiting receiver; if none waits any
// more (it timed out, or a plain sender served it first), the value is
// parked in the channel's one `parked_` slot, and the next receive takes it
// before anything else. A send through a permit never waits and never fails.
// - `parked_state_` (under the lock) says who owns `parked_`: nobody (free),
//   a permit (reserved), the permit's send writing it (writing), a receive
//   (full: the message waits there), the party moving it out (taking). The
//   value is moved in and out outside the lock.
// - A receiver of a closed channel waits while a permit is out (reserved
//   or writing): the permit may still send, and its message is received.
#pragma once

#include <sluice/detail/flavors/buffered_steps.hpp>
#include <sluice/detail/flavors/receive_stash.hpp>
#include <sluice/detail/flavors/reservation.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/thread_wait.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/spin_lock.hpp>
#include <sluice/detail/memory/storage.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/detail/waiting/waiter.hpp>
#include <sluice/error.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <expected>
#include <mutex>
#include <memory>
#include <optional>
#include <stop_token>

namespace sluice::detail {

template <class T>
class zero_channel {
  // The hand-off slot a waiting operation lends to its counterpart.
  struct packet {
    storage<T> msg;
  };

 public:
  using value_type = T;

  // User-provided, not defaulted: value-initialization (the counter's
  // `chan_()`) then runs the member initializers only, instead of first
  // zeroing the whole object (as for list_channel, where that was measured).
  zero_channel() noexcept {}  // NOLINT(modernize-use-equals-default)
  zero_channel(const zero_channel&) = delete;
  zero_channel& operator=(const zero_channel&) = delete;

  // --- sending ----------------------------------------------------------------

  // Succeeds only if a receiver is waiting.
  std::expected<void, try_send_error<T>> try_send(T&& msg) noexcept {
    using reason = typename try_send_error<T>::reason_t;
    send_steps st(*this, msg);
    if (st.attempt() && st.sent()) return {};
    // Errors are built outside the lock: moving the value is user code.
    return std::unexpected(
        try_send_error<T>{st.disconnected() ? reason::disconnected : reason::full, std::move(msg)});
  }

  std::expected<void, send_timeout_error<T>> send(T&& msg, const deadline& d,
                                                  const std::stop_token& stop = {}) noexcept {
    using reason = typename send_timeout_error<T>::reason_t;
    send_steps st(*this, msg);
    if (!st.attempt()) {
      if (d.has_passed()) return std::unexpected(send_timeout_error<T>{reason::timeout, std::move(msg)});
      switch (wait_on(st, d, stop)) {
        case wait_result::done:
          break;
        case wait_result::timeout:
          return std::unexpected(send_timeout_error<T>{reason::timeout, std::move(msg)});
        case wait_result::cancelled:
          return std::unexpected(send_timeout_error<T>{reason::cancelled, std::move(msg)});
      }
    }
    if (st.sent()) return {};
    return std::unexpected(send_timeout_error<T>{reason::disconnected, std::move(msg)});
  }

  // The steps of a send (waiting/protocol.hpp). While registered, the
  // entry's packet is the caller's message itself: the receiver that claims
  // the entry moves it out (one move, outside the lock); nobody else touches
  // it. So several send arms of one select may lend the same message: only
  // the claimed one is moved from.
  class send_steps {
   public:
    send_steps(zero_channel& ch, T& msg) noexcept : ch_(&ch), msg_(&msg) {}

    bool attempt() noexcept {
      std::unique_lock guard(ch_->lock_);
      if (ch_->disconnected_) {
        outcome_ = outcome::disconnected;
        return true;
      }
      claimed_entry c = ch_->receivers_.claim_first(current_thread_owner(), /*handoff=*/true);
      guard.unlock();
      if (!c) return false;
      hand_to(c, *msg_);
      outcome_ = outcome::sent;
      return true;
    }
    // Under one lock: hand the message to a waiting receiver (done), or
    // register with it. A select's entry only registers, or reports that
    // an attempt would finish (ready).
    readiness enlist(wait_entry& e) noexcept {
      std::unique_lock guard(ch_->lock_);
      if (e.in_select) {
        if (ch_->disconnected_ || ch_->receivers_.has_waiting(e.w->owner())) {
          return readiness::ready;
        }
      } else {
        if (ch_->disconnected_) {
          outcome_ = outcome::disconnected;
          return readiness::done;
        }
        if (claimed_entry c = ch_->receivers_.claim_first(e.w->owner(), /*handoff=*/true)) {
          guard.unlock();
          hand_to(c, *msg_);
          outcome_ = outcome::sent;
          return readiness::done;
        }
      }
      e.packet = msg_;
      ch_->senders_.push_back(e);
      registered_ = true;
      return readiness::wait;
    }
    static readiness recheck() noexcept { return readiness::wait; }
    void delist(wait_entry& e) noexcept {
      if (!registered_) return;
      registered_ = false;
      std::lock_guard guard(ch_->lock_);
      ch_->senders_.remove(e);  // unclaimed: the message is still the caller's
    }
    void completed() noexcept {
      registered_ = false;  // the receiver moved the message out
      outcome_ = outcome::sent;
    }
    static void relay() noexcept {}  // claims here are hand-offs
    [[nodiscard]] static bool hands_off() noexcept { return true; }
    [[nodiscard]] static bool spins() noexcept { return false; }

    [[nodiscard]] bool sent() const noexcept { return outcome_ == outcome::sent; }
    [[nodiscard]] bool disconnected() const noexcept {
      return outcome_ == outcome::disconnected;
    }

   private:
    enum class outcome { none, sent, disconnected };

    zero_channel* ch_;
    T* msg_;
    bool registered_ = false;
    outcome outcome_ = outcome::none;
  };

  // --- permits -------------------------------------------------------------------

  // The steps of a reservation (waiting/protocol.hpp): done once a receiver
  // is waiting and no permit is out; woken by a receiver that registers, a
  // permit given back, or a disconnect.
  class reserve_steps {
   public:
    explicit reserve_steps(zero_channel& ch) noexcept : ch_(&ch) {}

    bool attempt() noexcept {
      std::lock_guard guard(ch_->lock_);
      return try_locked();
    }
    readiness enlist(wait_entry& e) noexcept {
      std::lock_guard guard(ch_->lock_);
      if (try_locked()) return readiness::done;
      ch_->reservers_.push_back(e);
      return readiness::wait;
    }
    static readiness recheck() noexcept { return readiness::wait; }
    void delist(wait_entry& e) noexcept {
      std::lock_guard guard(ch_->lock_);
      ch_->reservers_.remove(e);
    }
    static void completed() noexcept {}
    // The wake-up (a receiver waiting) may serve another reservation.
    void relay() noexcept {
      claimed_entry c;
      {
        std::lock_guard guard(ch_->lock_);
        c = ch_->claim_reserver();
      }
      c.wake();
    }
    [[nodiscard]] static bool hands_off() noexcept { return false; }
    [[nodiscard]] static bool spins() noexcept { return false; }

    [[nodiscard]] bool reserved() const noexcept { return outcome_ == outcome::reserved; }
    [[nodiscard]] bool disconnected() const noexcept {
      return outcome_ == outcome::disconnected;
    }

   private:
    enum class outcome { none, reserved, disconnected };

    bool try_locked() noexcept {
      if (ch_->disconnected_) {
        outcome_ = outcome::disconnected;
        return true;
      }
      if (ch_->parked_state_ != parked::free || ch_->receivers_.empty()) return false;
      ch_->parked_state_ = parked::reserved;
      outcome_ = outcome::reserved;
      return true;
    }

    zero_channel* ch_;
    outcome outcome_ = outcome::none;
  };

  std::expected<void, try_reserve_error> try_reserve() noexcept {
    reserve_steps st(*this);
    st.attempt();
    if (st.reserved()) return {};
    return std::unexpected(st.disconnected() ? try_reserve_error::disconnected
                                             : try_reserve_error::full);
  }

  std::expected<void, reserve_timeout_error> reserve(const deadline& d,
                                                     const std::stop_token& stop = {}) noexcept {
    reserve_steps st(*this);
    return reserve_blocking(st, d, stop);
  }

  // A permit's send: to a waiting receiver, else into `parked_`; once the
  // receiver is gone, nowhere (`msg` is left to the caller, who destroys it).
  // A permit's send never waits, so it may pair with a receiver of its own
  // owner (a coroutine resumed inline by that receiver's registration):
  // claims name no owner.
  void send_reserved(T&& msg) noexcept {
    std::unique_lock guard(lock_);
    if (receiver_gone_) {
      parked_state_ = parked::free;
      return;
    }
    if (claimed_entry c = receivers_.claim_first(nullptr, /*handoff=*/true)) {
      parked_state_ = parked::free;
      const claimed_entry next = claim_reserver();
      guard.unlock();
      hand_to(c, msg);
      next.wake();
      return;
    }
    parked_state_ = parked::writing;
    guard.unlock();
    parked_.construct(std::move(msg));
    guard.lock();
    if (receiver_gone_) {  // it left while the value was being written
      parked_state_ = parked::taking;  // for good: nobody reserves any more
      guard.unlock();
      parked_.destroy();
      return;
    }
    // A receiver that registered while the value was being written.
    const claimed_entry c = receivers_.claim_first(nullptr, /*handoff=*/true);
    parked_state_ = c ? parked::taking : parked::full;
    if (!c) parked_full_.store(true, std::memory_order_relaxed);
    guard.unlock();
    if (c) {
      T value = parked_.take();
      hand_to(c, value);
      free_parked();
    }
  }

  // A permit dropped unused.
  void release_reserved() noexcept {
    std::unique_lock guard(lock_);
    parked_state_ = parked::free;
    const claimed_entry next = claim_reserver();
    // A receiver of a closed channel waits for the permit: it may now learn
    // of the disconnection.
    const bool wake_receivers = disconnected_;
    guard.unlock();
    next.wake();
    if (wake_receivers) disconnect_waiters(receivers_);
  }

  // --- receiving ----------------------------------------------------------------

  // Takes the message of a blocked sender, if there is one.
  std::expected<T, try_recv_error> try_recv() noexcept {
    recv_status status = recv_status::empty;
    return try_recv_as(try_recv_error::empty, try_recv_error::disconnected, status);
  }

  template <class E>
  std::expected<T, E> try_recv_as(E if_empty, E if_disconnected, recv_status& status) noexcept {
    std::expected<T, E> result(std::unexpect, if_empty);
    recv_steps<E> st(*this, result, if_empty, if_disconnected);
    st.attempt();
    status = result            ? recv_status::message
             : st.disconnected() ? recv_status::disconnected
                                 : recv_status::empty;
    return result;
  }

  template <class E>
  std::expected<T, E> recv_as(const deadline& d, const std::stop_token& stop, E if_timeout,
                              E if_disconnected, E if_cancelled) noexcept {
    std::expected<T, E> result(std::unexpect, if_timeout);
    recv_steps<E> st(*this, result, if_timeout, if_disconnected);
    if (d.has_passed()) {
      st.attempt();  // one try
    } else if (wait_on(st, d, stop) == wait_result::cancelled) {  // enlist() tries first
      result.error() = if_cancelled;
    }
    return result;
  }

  // The steps of a receive (waiting/protocol.hpp): the outcome goes to
  // `result`; while registered, a sender moves its message into the steps'
  // own packet.
  template <class E>
  class recv_steps {
   public:
    using result_type = std::expected<T, E>;

    recv_steps(zero_channel& ch, result_type& result, E if_empty, E if_disconnected) noexcept
        : ch_(&ch), result_(&result), if_empty_(if_empty), if_disconnected_(if_disconnected) {}

    bool attempt() noexcept {
      if (ch_->stash_.holds()) [[unlikely]] {
        set(ch_->stash_.take());
        return true;
      }
      std::unique_lock guard(ch_->lock_);
      if (ch_->parked_state_ == parked::full) [[unlikely]] {
        take_parked(guard);
        return true;
      }
      if (claimed_entry c = ch_->senders_.claim_first(current_thread_owner(), /*handoff=*/true)) {
        guard.unlock();
        set(std::move(*static_cast<T*>(c.packet)));
        c.wake();  // the hand-off is complete: the sender may leave
        return true;
      }
      if (!ch_->disconnected_ || ch_->permit_out()) return false;
      guard.unlock();
      set_disconnected();
      return true;
    }
    // Under one lock: take a waiting sender's message (done), or register
    // with an empty packet. A select's entry only registers, or reports
    // that an attempt would finish (ready).
    readiness enlist(wait_entry& e) noexcept {
      if (e.in_select) return enlist_in_select(e);
      if (ch_->stash_.holds()) [[unlikely]] {
        set(ch_->stash_.take());
        return readiness::done;
      }
      std::unique_lock guard(ch_->lock_);
      if (ch_->parked_state_ == parked::full) [[unlikely]] {
        take_parked(guard);
        return readiness::done;
      }
      if (claimed_entry c = ch_->senders_.claim_first(e.w->owner(), /*handoff=*/true)) {
        guard.unlock();
        set(std::move(*static_cast<T*>(c.packet)));
        c.wake();  // the hand-off is complete: the sender may leave
        return readiness::done;
      }
      if (ch_->disconnected_ && !ch_->permit_out()) {
        guard.unlock();
        set_disconnected();
        return readiness::done;
      }
      e.packet = &p_;
      ch_->receivers_.push_back(e);
      // A reservation waits for a receiver to wait.
      const claimed_entry reserver = ch_->claim_reserver();
      guard.unlock();
      reserver.wake();
      return readiness::wait;
    }
    static readiness recheck() noexcept { return readiness::wait; }
    void delist(wait_entry& e) noexcept {
      std::lock_guard guard(ch_->lock_);
      ch_->receivers_.remove(e);
    }
    void completed() noexcept { set(p_.msg.take()); }  // the sender wrote the packet
    static void relay() noexcept {}  // claims here are hand-offs
    // A message this receive took after all, given back (receive_stash.hpp).
    void give_back(T&& value) noexcept { ch_->stash_.put(std::move(value)); }
    [[nodiscard]] static bool hands_off() noexcept { return true; }
    [[nodiscard]] static bool spins() noexcept { return false; }

    [[nodiscard]] bool disconnected() const noexcept { return disconnected_; }

   private:
    readiness enlist_in_select(wait_entry& e) noexcept {
      if (ch_->stash_.holds()) [[unlikely]] return readiness::ready;
      std::unique_lock guard(ch_->lock_);
      if (ch_->parked_state_ == parked::full || ch_->senders_.has_waiting(e.w->owner()) ||
          (ch_->disconnected_ && !ch_->permit_out())) {
        return readiness::ready;
      }
      e.packet = &p_;
      ch_->receivers_.push_back(e);
      const claimed_entry reserver = ch_->claim_reserver();
      guard.unlock();
      reserver.wake();
      return readiness::wait;
    }

    // Takes the parked message (parked_state_ full, lock held).
    void take_parked(std::unique_lock<spin_lock>& guard) noexcept {
      ch_->parked_state_ = parked::taking;
      ch_->parked_full_.store(false, std::memory_order_relaxed);
      guard.unlock();
      set(ch_->parked_.take());
      ch_->free_parked();
    }
    void set_disconnected() noexcept {
      disconnected_ = true;
      std::destroy_at(result_);
      std::construct_at(result_, std::unexpect, if_disconnected_);
    }
    void set(T&& value) noexcept {
      std::destroy_at(result_);
      std::construct_at(result_, std::in_place, std::move(value));
    }

    zero_channel* ch_;
    result_type* result_;
    [[maybe_unused]] E if_empty_;
    E if_disconnected_;
    packet p_;
    bool disconnected_ = false;
  };

  // Waits until the receiver is gone or closed the channel.
  using closed_steps = detail::closed_steps<zero_channel>;
  [[nodiscard]] bool closed_for_senders() const noexcept { return is_disconnected(); }
  wait_queue& closed_watchers() noexcept { return closed_watchers_; }
  // A message the receiver took and gives back (the next receive returns it).
  receive_stash<T>& stash() noexcept { return stash_; }

  // --- queries: a rendezvous channel holds no message ------------------------------

  // (Except a message a permit parked: see the header.)
  [[nodiscard]] std::size_t len() const noexcept { return parked_full_.load(std::memory_order_relaxed) ? 1 : 0; }
  [[nodiscard]] bool is_empty() const noexcept { return len() == 0; }
  [[nodiscard]] static constexpr bool is_full() noexcept { return true; }
  [[nodiscard]] static constexpr std::optional<std::size_t> capacity() noexcept { return 0; }
  // seq_cst: also the re-check of a closed watcher (closed_steps), against
  // the store in disconnect() made before the watchers are disconnected.
  [[nodiscard]] bool is_disconnected() const noexcept {
    return disconnected_flag_.load(std::memory_order_seq_cst);
  }

  // --- disconnection ------------------------------------------------------------
  // Any side leaving, or close(), ends the rendezvous for everyone: blocked
  // senders wake and take their messages back, blocked receivers wake empty.

  void disconnect_senders() noexcept { disconnect(); }
  // A parked message is destroyed here; one being written now is destroyed
  // by its writer (send_reserved), which sees receiver_gone_.
  // (`senders_gone` changes nothing here: the lock is taken either way.)
  void disconnect_receivers([[maybe_unused]] bool senders_gone = false) noexcept {
    disconnect();
    bool destroy_parked = false;
    {
      std::lock_guard guard(lock_);
      receiver_gone_ = true;
      if (parked_state_ == parked::full) {
        parked_state_ = parked::taking;  // for good: nobody reserves any more
        parked_full_.store(false, std::memory_order_relaxed);
        destroy_parked = true;
      }
    }
    if (destroy_parked) parked_.destroy();
    stash_.clear();
  }
  void close() noexcept { disconnect(); }

 private:
  void disconnect() noexcept {
    {
      std::lock_guard guard(lock_);
      if (disconnected_) return;
      disconnected_ = true;
      // seq_cst: see is_disconnected().
      disconnected_flag_.store(true, std::memory_order_seq_cst);
    }
    // No operation registers from now on (enlist checks the flag under the
    // lock): wake those registered, each batch claimed under the lock and
    // woken after it.
    disconnect_waiters(senders_);
    disconnect_waiters(receivers_);
    disconnect_waiters(reservers_);
    closed_watchers_.disconnect();
  }

  void disconnect_waiters(waiter_list& list) noexcept {
    std::array<wake_token, 16> batch;
    for (;;) {
      std::size_t n = 0;
      {
        std::lock_guard guard(lock_);
        n = list.disconnect_some(batch);
      }
      wait_queue::wake_batch(batch, n);
      if (n < batch.size()) return;
    }
  }

  // Moves `msg` into a claimed receiver's packet, then completes the
  // hand-off (the receiver sees the message) and wakes it. After that the
  // packet may be gone: only the wake token is used.
  static void hand_to(const claimed_entry& c, T& msg) noexcept {
    static_cast<packet*>(c.packet)->msg.construct(std::move(msg));
    c.wake();
  }

  // Who owns `parked_` (see the header).
  enum class parked : unsigned char { free, reserved, writing, full, taking };

  [[nodiscard]] bool permit_out() const noexcept {
    return parked_state_ == parked::reserved || parked_state_ == parked::writing;
  }

  // A reservation to wake, if a receiver waits and no permit is out (lock held).
  claimed_entry claim_reserver() noexcept {
    if (reservers_.empty() || receivers_.empty() || parked_state_ != parked::free) return {};
    return reservers_.claim_first(nullptr);
  }

  // After the parked message was moved out: `parked_` is free again.
  void free_parked() noexcept {
    claimed_entry next;
    {
      std::lock_guard guard(lock_);
      parked_state_ = parked::free;
      next = claim_reserver();
    }
    next.wake();
  }

  spin_lock lock_;  // guards the three queues, disconnected_ and parked_state_
  waiter_list senders_;    // blocked senders, each with a full packet
  waiter_list receivers_;  // blocked receivers, each with an empty packet
  waiter_list reservers_;  // blocked reservations (permits)
  bool disconnected_ = false;
  bool receiver_gone_ = false;  // a permit's send then goes nowhere
  parked parked_state_ = parked::free;
  std::atomic<bool> parked_full_{false};  // lock-free mirror of "full", for queries
  storage<T> parked_;  // the message a permit sent while no receiver waited
  std::atomic<bool> disconnected_flag_{false};  // lock-free mirror for queries
  wait_queue closed_watchers_;  // senders waiting for the receiving side to stop
  receive_stash<T> stash_;      // a message a cancelled receive gave back
};

}  // namespace sluice::detail
