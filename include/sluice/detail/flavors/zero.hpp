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
#pragma once

#include <sluice/detail/waiting/thread_wait.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/spin_lock.hpp>
#include <sluice/detail/memory/storage.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/detail/waiting/waiter.hpp>
#include <sluice/error.hpp>

#include <atomic>
#include <cstddef>
#include <expected>
#include <mutex>
#include <optional>

namespace sluice::detail {

template <class T>
class zero_channel {
  // The hand-off slot a blocked operation lends to its counterpart.
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
    std::unique_lock guard(lock_);
    const bool disconnected = disconnected_;
    claimed_entry c;
    if (!disconnected) c = receivers_.claim_first(current_thread_owner(), /*handoff=*/true);
    guard.unlock();  // errors are built outside: moving the value is user code
    if (disconnected) {
      return std::unexpected(try_send_error<T>{reason::disconnected, std::move(msg)});
    }
    if (!c) return std::unexpected(try_send_error<T>{reason::full, std::move(msg)});
    hand_to(c, msg);
    return {};
  }

  std::expected<void, send_timeout_error<T>> send(T&& msg, const deadline& d) noexcept {
    using reason = typename send_timeout_error<T>::reason_t;
    std::unique_lock guard(lock_);
    if (disconnected_) {
      guard.unlock();  // errors are built outside: moving the value is user code
      return std::unexpected(send_timeout_error<T>{reason::disconnected, std::move(msg)});
    }
    if (claimed_entry c = receivers_.claim_first(current_thread_owner(), /*handoff=*/true)) {
      guard.unlock();
      hand_to(c, msg);
      return {};
    }
    guard.unlock();
    if (d.has_passed()) return std::unexpected(send_timeout_error<T>{reason::timeout, std::move(msg)});

    // Wait with the message in our own packet until a receiver takes it.
    // The move into the packet is user code: outside the lock, so the
    // channel's other users never wait for it; then look again.
    packet p;
    p.msg.construct(std::move(msg));
    guard.lock();
    if (disconnected_) {
      guard.unlock();
      return std::unexpected(send_timeout_error<T>{reason::disconnected, p.msg.take()});
    }
    if (claimed_entry c = receivers_.claim_first(current_thread_owner(), /*handoff=*/true)) {
      guard.unlock();  // a receiver came meanwhile
      T value = p.msg.take();
      hand_to(c, value);
      return {};
    }
    waiter w;
    wait_entry entry{.w = &w, .packet = &p};
    senders_.push_back(entry);
    guard.unlock();

    const selection s = w.wait_until(d, /*patient=*/true);
    if (s == entry.op) return {};  // the receiver has moved the message out
    // Timed out or disconnected: nobody claimed us, so the message is ours.
    guard.lock();
    senders_.remove(entry);
    guard.unlock();
    return std::unexpected(send_timeout_error<T>{
        s == sel_disconnected ? reason::disconnected : reason::timeout, p.msg.take()});
  }

  // --- receiving ----------------------------------------------------------------

  // Takes the message of a blocked sender, if there is one.
  std::expected<T, try_recv_error> try_recv() noexcept {
    recv_status status = recv_status::empty;
    return try_recv_as(try_recv_error::empty, try_recv_error::disconnected, status);
  }

  template <class E>
  std::expected<T, E> try_recv_as(E if_empty, E if_disconnected, recv_status& status) noexcept {
    std::unique_lock guard(lock_);
    if (claimed_entry c = senders_.claim_first(current_thread_owner(), /*handoff=*/true)) {
      guard.unlock();
      status = recv_status::message;
      return take_from<E>(c);
    }
    status = disconnected_ ? recv_status::disconnected : recv_status::empty;
    return std::unexpected(disconnected_ ? if_disconnected : if_empty);
  }

  template <class E>
  std::expected<T, E> recv_as(const deadline& d, E if_timeout, E if_disconnected) noexcept {
    std::unique_lock guard(lock_);
    if (claimed_entry c = senders_.claim_first(current_thread_owner(), /*handoff=*/true)) {
      guard.unlock();
      return take_from<E>(c);
    }
    if (disconnected_) return std::unexpected(if_disconnected);
    if (d.has_passed()) return std::unexpected(if_timeout);

    packet p;
    waiter w;
    wait_entry entry{.w = &w, .packet = &p};
    receivers_.push_back(entry);
    guard.unlock();

    const selection s = w.wait_until(d, /*patient=*/true);
    if (s == entry.op) {  // the sender has written the message
      return std::expected<T, E>(std::in_place, p.msg.take());
    }
    guard.lock();
    receivers_.remove(entry);
    guard.unlock();
    return std::unexpected(s == sel_disconnected ? if_disconnected : if_timeout);
  }

  // --- queries: a rendezvous channel never holds a message ------------------------

  [[nodiscard]] static constexpr std::size_t len() noexcept { return 0; }
  [[nodiscard]] static constexpr bool is_empty() noexcept { return true; }
  [[nodiscard]] static constexpr bool is_full() noexcept { return true; }
  [[nodiscard]] static constexpr std::optional<std::size_t> capacity() noexcept { return 0; }
  [[nodiscard]] bool is_disconnected() const noexcept {
    return disconnected_flag_.load(std::memory_order_acquire);
  }

  // --- disconnection ------------------------------------------------------------
  // Any side leaving, or close(), ends the rendezvous for everyone: blocked
  // senders wake and take their messages back, blocked receivers wake empty.

  void disconnect_senders() noexcept { disconnect(); }
  void disconnect_receivers() noexcept { disconnect(); }
  void close() noexcept { disconnect(); }

 private:
  void disconnect() noexcept {
    std::lock_guard guard(lock_);
    if (disconnected_) return;
    disconnected_ = true;
    disconnected_flag_.store(true, std::memory_order_release);
    senders_.disconnect_all();
    receivers_.disconnect_all();
  }

  // Moves `msg` into a claimed receiver's packet, then completes the
  // hand-off (the receiver sees the message) and wakes it. After that the
  // packet may be gone: only the wake token's word address is used.
  static void hand_to(const claimed_entry& c, T& msg) noexcept {
    static_cast<packet*>(c.packet)->msg.construct(std::move(msg));
    c.wake();
  }

  // Moves the message out of a claimed sender's packet, then completes the
  // hand-off (the sender may leave) and wakes it.
  template <class E>
  static std::expected<T, E> take_from(const claimed_entry& c) noexcept {
    std::expected<T, E> result(std::in_place, static_cast<packet*>(c.packet)->msg.take());
    c.wake();
    return result;
  }

  spin_lock lock_;  // guards the two queues and disconnected_
  waiter_list senders_;    // blocked senders, each with a full packet
  waiter_list receivers_;  // blocked receivers, each with an empty packet
  bool disconnected_ = false;
  std::atomic<bool> disconnected_flag_{false};  // lock-free mirror for queries
};

}  // namespace sluice::detail
