// sluice/detail/handles/handle.hpp - what every public handle shares: a reference to
// the channel, the queries, and the rules for empty (moved-from) handles.
//
// Invariants:
// - An empty handle owns nothing; every query answers as for a disconnected,
//   empty channel (len 0, is_disconnected true) and never touches memory.
// - A non-empty handle keeps the channel allocation alive.
#pragma once

#include <sluice/detail/handles/flavor_ref.hpp>

#include <cstddef>
#include <optional>
#include <utility>

namespace sluice::detail {

struct handle_access;

template <class... Flavors>
class handle {
 public:
  /// True unless the handle is empty (default-constructed or moved from).
  explicit operator bool() const noexcept { return !ref_.empty(); }

  /// Messages queued now (0 for rendezvous channels and empty handles).
  [[nodiscard]] std::size_t len() const noexcept {
    return ref_.empty() ? 0 : ref_.visit([](auto& c) { return c.chan().len(); });
  }
  /// True when no message is queued (always for rendezvous channels).
  [[nodiscard]] bool is_empty() const noexcept {
    return ref_.empty() || ref_.visit([](auto& c) { return c.chan().is_empty(); });
  }
  /// True when a send would have to wait (always for rendezvous channels,
  /// never for unbounded ones).
  [[nodiscard]] bool is_full() const noexcept {
    return !ref_.empty() && ref_.visit([](auto& c) { return c.chan().is_full(); });
  }
  /// The bound (0 for rendezvous); nullopt for unbounded channels.
  [[nodiscard]] std::optional<std::size_t> capacity() const noexcept {
    if (ref_.empty()) return std::nullopt;
    return ref_.visit([](auto& c) { return c.chan().capacity(); });
  }
  /// True when the other side is gone or the receiver called close().
  [[nodiscard]] bool is_disconnected() const noexcept {
    return ref_.empty() || ref_.visit([](auto& c) { return c.chan().is_disconnected(); });
  }
  /// The number of (strong) sender handles of the channel: copies of the
  /// sender, and senders made by upgrade(). 0 for an empty handle. A
  /// snapshot: other threads may change it at once.
  [[nodiscard]] std::size_t strong_count() const noexcept {
    return ref_.empty() ? 0 : ref_.visit([](auto& c) { return c.sender_count(); });
  }
  /// The number of weak sender handles of the channel (see downgrade()).
  /// 0 for an empty handle. A snapshot, as strong_count().
  [[nodiscard]] std::size_t weak_count() const noexcept {
    return ref_.empty() ? 0 : ref_.visit([](auto& c) { return c.weak_count(); });
  }
  /// True when both handles are non-empty and refer to the same channel.
  template <class Other>
  [[nodiscard]] bool same_channel(const Other& other) const noexcept;

 protected:
  using ref_type = flavor_ref<Flavors...>;

  handle() noexcept = default;
  explicit handle(ref_type ref) noexcept : ref_(ref) {}

  ref_type ref_;

 private:
  friend struct handle_access;
};

struct handle_access {
  template <class... Flavors>
  static const void* address(const handle<Flavors...>& h) noexcept {
    return h.ref_.address();
  }
  // The channel reference, for integrations that drive the waiting
  // protocol themselves (sluice/asio.hpp).
  template <class... Flavors>
  static const flavor_ref<Flavors...>& ref(const handle<Flavors...>& h) noexcept {
    return h.ref_;
  }
  // A handle of kind H over `ref`, adopting a count the caller already took
  // (a sender made by upgrade(), a weak handle made by downgrade()).
  template <class H, class Ref>
  static H adopt(const Ref& ref) noexcept {
    return H(ref);
  }
  // An H made by its private constructor from `x` (a permit adopting the
  // sender of the slot just reserved).
  template <class H, class X>
  static H make(X&& x) noexcept {
    return H(std::forward<X>(x));
  }
};

// Defined by <sluice/asio.hpp>: the completion-token forms of the async
// operations. A call with a token and without that header names this type
// in the compiler's error.
template <class Token>
struct completion_tokens_need_sluice_asio_hpp;

template <class... Flavors>
template <class Other>
bool handle<Flavors...>::same_channel(const Other& other) const noexcept {
  const void* mine = ref_.address();
  return mine != nullptr && mine == handle_access::address(other);
}

}  // namespace sluice::detail
