// sluice/detail/flavors/zero.hpp - the rendezvous flavor (bound 0): a sender and a
// receiver meet and the message passes directly between them.
//
// Algorithm: crossbeam-channel's zero flavor (Go's unbuffered channel is the
// same idea): one lock guards a queue of blocked senders, each with its
// message in a packet on its own stack, and a queue of blocked receivers,
// each with an empty packet. An arriving operation claims a waiter of the
// opposite kind and moves the message through that waiter's packet;
// otherwise it queues itself and waits.
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
//   through send_steps / recv_steps (waiting/protocol.hpp); the flavor never
//   parks or resumes anyone, and wakes only after unlocking.
#pragma once

#include <sluice/detail/flavors/buffered_steps.hpp>
#include <sluice/detail/flavors/receive_stash.hpp>
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

  zero_channel() noexcept = default;
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
  // message waits in the steps' own packet (moved there outside the lock);
  // delist() moves it back into `msg` if no receiver took it.
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
    // register with it in the packet. The move into the packet is user
    // code: made before taking the lock.
    readiness enlist(wait_entry& e) noexcept {
      p_.msg.construct(std::move(*msg_));
      std::unique_lock guard(ch_->lock_);
      if (ch_->disconnected_) {
        guard.unlock();
        take_back();
        outcome_ = outcome::disconnected;
        return readiness::done;
      }
      if (claimed_entry c = ch_->receivers_.claim_first(e.w->owner(), /*handoff=*/true)) {
        guard.unlock();
        T value = p_.msg.take();
        hand_to(c, value);
        outcome_ = outcome::sent;
        return readiness::done;
      }
      e.packet = &p_;
      ch_->senders_.push_back(e);
      in_packet_ = true;
      return readiness::wait;
    }
    static readiness recheck() noexcept { return readiness::wait; }
    void delist(wait_entry& e) noexcept {
      if (!in_packet_) return;
      {
        std::lock_guard guard(ch_->lock_);
        ch_->senders_.remove(e);
      }
      take_back();  // nobody claimed us: the message is still ours
    }
    void completed() noexcept {
      in_packet_ = false;  // the receiver moved the message out
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

    // Re-create in place: T need not be assignable.
    void take_back() noexcept {
      std::destroy_at(msg_);
      std::construct_at(msg_, p_.msg.take());
      in_packet_ = false;
    }

    zero_channel* ch_;
    T* msg_;
    packet p_;
    bool in_packet_ = false;
    outcome outcome_ = outcome::none;
  };

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
      if (claimed_entry c = ch_->senders_.claim_first(current_thread_owner(), /*handoff=*/true)) {
        guard.unlock();
        set(static_cast<packet*>(c.packet)->msg.take());
        c.wake();  // the hand-off is complete: the sender may leave
        return true;
      }
      if (!ch_->disconnected_) return false;
      guard.unlock();
      set_disconnected();
      return true;
    }
    // Under one lock: take a waiting sender's message (done), or register
    // with an empty packet.
    readiness enlist(wait_entry& e) noexcept {
      if (ch_->stash_.holds()) [[unlikely]] {
        set(ch_->stash_.take());
        return readiness::done;
      }
      std::unique_lock guard(ch_->lock_);
      if (claimed_entry c = ch_->senders_.claim_first(e.w->owner(), /*handoff=*/true)) {
        guard.unlock();
        set(static_cast<packet*>(c.packet)->msg.take());
        c.wake();  // the hand-off is complete: the sender may leave
        return readiness::done;
      }
      if (ch_->disconnected_) {
        guard.unlock();
        set_disconnected();
        return readiness::done;
      }
      e.packet = &p_;
      ch_->receivers_.push_back(e);
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

  // --- queries: a rendezvous channel never holds a message ------------------------

  [[nodiscard]] static constexpr std::size_t len() noexcept { return 0; }
  [[nodiscard]] static constexpr bool is_empty() noexcept { return true; }
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
  void disconnect_receivers() noexcept {
    disconnect();
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

  spin_lock lock_;  // guards the two queues and disconnected_
  waiter_list senders_;    // blocked senders, each with a full packet
  waiter_list receivers_;  // blocked receivers, each with an empty packet
  bool disconnected_ = false;
  std::atomic<bool> disconnected_flag_{false};  // lock-free mirror for queries
  wait_queue closed_watchers_;  // senders waiting for the receiving side to stop
  receive_stash<T> stash_;      // a message a cancelled receive gave back
};

}  // namespace sluice::detail
