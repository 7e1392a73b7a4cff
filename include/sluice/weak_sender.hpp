// sluice/weak_sender.hpp - weak_sender<T> and weak_sync_sender<T>: sender
// handles that do not keep the channel open (tokio's WeakSender,
// WeakUnboundedSender).
//
//   sluice::weak_sender<Event> weak = tx.downgrade();
//   if (auto strong = weak.upgrade()) strong->send(e);   // else: closed
//
// Invariants:
// - A weak handle keeps the channel's memory, never the channel: the
//   receiver sees the disconnection when the last strong sender goes,
//   however many weak handles remain (counter.hpp's handle word).
// - upgrade() yields a sender only while another strong sender exists and
//   the receiver is neither gone nor closed; once it has failed for the
//   first reason it fails for ever (a strong count never rises from zero).
// - Copies are more weak handles; a moved-from handle is empty and its
//   upgrade() fails. Every operation is safe from many threads at once.
#pragma once

#include <sluice/detail/flavors/array.hpp>
#include <sluice/detail/flavors/list.hpp>
#include <sluice/detail/flavors/zero.hpp>
#include <sluice/detail/handles/handle.hpp>

#include <cstddef>
#include <optional>
#include <utility>

namespace sluice {

template <class T>
class sender;
template <class T>
class sync_sender;

namespace detail {

// What both weak kinds share; `Strong` is the sender kind upgrade() makes.
template <class Strong, class... Flavors>
class weak_sender_handle {
  using ref_type = flavor_ref<Flavors...>;

 public:
  weak_sender_handle(const weak_sender_handle& other) noexcept : ref_(other.ref_) {
    if (!ref_.empty()) ref_.visit([](auto& c) { c.acquire_weak(); });
  }
  weak_sender_handle(weak_sender_handle&& other) noexcept : ref_(other.ref_.take()) {}
  weak_sender_handle& operator=(const weak_sender_handle& other) noexcept {
    if (this != &other) {
      weak_sender_handle copy(other);
      swap(copy);
    }
    return *this;
  }
  weak_sender_handle& operator=(weak_sender_handle&& other) noexcept {
    if (this != &other) {
      release();
      ref_ = other.ref_.take();
    }
    return *this;
  }
  ~weak_sender_handle() { release(); }

  void swap(weak_sender_handle& other) noexcept { std::swap(ref_, other.ref_); }

  /// True unless the handle is empty (default-constructed or moved from).
  /// An engaged weak handle may still fail to upgrade.
  explicit operator bool() const noexcept { return !ref_.empty(); }

  /// upgrade - a sender of the channel, or nullopt when every strong sender
  /// is gone, the receiver is gone or closed, or the handle is empty.
  [[nodiscard]] std::optional<Strong> upgrade() const noexcept {
    if (ref_.empty() || !ref_.visit([](auto& c) { return c.try_upgrade(); })) {
      return std::nullopt;
    }
    return handle_access::adopt<Strong>(ref_);
  }

  /// The channel's strong and weak sender counts (0 for an empty handle);
  /// snapshots, as on every handle.
  [[nodiscard]] std::size_t strong_count() const noexcept {
    return ref_.empty() ? 0 : ref_.visit([](auto& c) { return c.sender_count(); });
  }
  [[nodiscard]] std::size_t weak_count() const noexcept {
    return ref_.empty() ? 0 : ref_.visit([](auto& c) { return c.weak_count(); });
  }

 protected:
  weak_sender_handle() noexcept = default;
  // Adopts one weak count the caller already took.
  explicit weak_sender_handle(ref_type ref) noexcept : ref_(ref) {}

 private:
  friend struct handle_access;

  void release() noexcept {
    if (!ref_.empty()) ref_.take().visit([](auto& c) { c.release_weak(); });
  }

  ref_type ref_;
};

}  // namespace detail

/// A weak handle to an unbounded channel's sending side (sender::downgrade()).
template <class T>
class weak_sender : public detail::weak_sender_handle<sender<T>, detail::list_channel<T>> {
  using base = detail::weak_sender_handle<sender<T>, detail::list_channel<T>>;

 public:
  /// An empty handle: upgrade() fails.
  weak_sender() noexcept = default;
  friend void swap(weak_sender& a, weak_sender& b) noexcept { a.swap(b); }

 private:
  friend struct detail::handle_access;
  using base::base;
};

/// A weak handle to a bounded or rendezvous channel's sending side
/// (sync_sender::downgrade()).
template <class T>
class weak_sync_sender
    : public detail::weak_sender_handle<sync_sender<T>, detail::array_channel<T>,
                                        detail::zero_channel<T>> {
  using base = detail::weak_sender_handle<sync_sender<T>, detail::array_channel<T>,
                                          detail::zero_channel<T>>;

 public:
  /// An empty handle: upgrade() fails.
  weak_sync_sender() noexcept = default;
  friend void swap(weak_sync_sender& a, weak_sync_sender& b) noexcept { a.swap(b); }

 private:
  friend struct detail::handle_access;
  using base::base;
};

}  // namespace sluice
