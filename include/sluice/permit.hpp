// sluice/permit.hpp - permit<T>: room in a bounded channel reserved ahead of
// the message (sync_sender::reserve(), tokio's Permit and OwnedPermit).
//
//   auto p = tx.reserve();          // waits while the channel is full
//   if (p) std::move(*p).send(v);   // never waits, never fails
//
// Invariants:
// - A non-empty permit holds one reserved slot of its channel and a sender
//   handle of it (so the channel stays open for the receiver while the
//   permit exists: it counts in strong_count(), as tokio's OwnedPermit).
//   The slot is given up exactly once: filled by send(), or freed by the
//   destructor or an assignment, which wakes a sender waiting for room.
// - An empty permit (default-constructed, moved from, used) holds nothing.
// - On a rendezvous channel the permit reserves the hand-off instead of a
//   slot (detail/flavors/zero.hpp): one permit at a time, granted while a
//   receiver waits.
#pragma once

#include <sluice/detail/handles/handle.hpp>

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace sluice {

template <class T>
class sync_sender;

/// One reserved slot of a bounded (or rendezvous) channel: send() queues a
/// value there without waiting and without failing. Move-only. Destroyed
/// unused, it gives the slot back.
template <class T>
class permit {
 public:
  /// An empty permit.
  permit() noexcept = default;
  permit(permit&&) noexcept = default;
  /// Gives this permit's slot back first, if it holds one.
  permit& operator=(permit&& other) noexcept {
    if (this != &other) {
      give_back();
      tx_ = std::move(other.tx_);
    }
    return *this;
  }
  permit(const permit&) = delete;
  permit& operator=(const permit&) = delete;
  ~permit() { give_back(); }

  /// permit::send - `std::move(p).send(value)`: queues `value` in the
  /// reserved slot; cannot fail and never waits for room. After the receiver called
  /// close(), the value is still received (the receiver waits for every
  /// permit before it reports the disconnection); after the receiver is
  /// gone, it is destroyed at once, as the messages queued then were. The
  /// permit is empty afterwards.
  /// Precondition: the permit is not empty (checked: aborts with a message).
  void send(T value) && noexcept {
    if (!tx_) [[unlikely]] empty_permit_used();
    detail::handle_access::ref(tx_).visit(
        [&](auto& c) { c.chan().send_reserved(std::move(value)); });
    tx_ = sync_sender<T>();
  }

  /// True unless the permit is empty.
  explicit operator bool() const noexcept { return static_cast<bool>(tx_); }

  friend void swap(permit& a, permit& b) noexcept { a.tx_.swap(b.tx_); }

 private:
  friend struct detail::handle_access;
  // Adopts a slot `tx` just reserved.
  explicit permit(sync_sender<T>&& tx) noexcept : tx_(std::move(tx)) {}

  void give_back() noexcept {
    if (!tx_) return;
    detail::handle_access::ref(tx_).visit([](auto& c) { c.chan().release_reserved(); });
    tx_ = sync_sender<T>();
  }

  [[noreturn, gnu::cold]] static void empty_permit_used() noexcept {
    std::fputs("sluice: send() on an empty permit (moved from or already used)\n", stderr);
    std::abort();
  }

  sync_sender<T> tx_;
};

}  // namespace sluice
