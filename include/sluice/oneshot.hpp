// sluice/oneshot.hpp - oneshot<T>(): a channel for exactly one value, as
// tokio::sync::oneshot. One allocation (the state, detail/oneshot/state.hpp),
// one atomic state word; blocking, timed, stop_token, coroutine and Asio
// receives all wait through the same waiting protocol as the channels.
//
// Invariants: each pair shares one state, freed when both handles are gone.
// Both handles are move-only; a moved-from (empty) handle reports
// "disconnected" from every operation (never UB). The value is delivered at
// most once, and destroyed exactly once: by the receive that takes it, or
// with the state when the receiver leaves without taking it. The sender is
// consumed by send(). Each handle is for one thread at a time (one pending
// operation per handle, and the handle outlives it); the two handles may be
// used from different threads at once.
#pragma once

#include <sluice/detail/async/awaitables.hpp>
#include <sluice/detail/oneshot/state.hpp>
#include <sluice/detail/waiting/any_steps.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/error.hpp>
#include <sluice/resume_on.hpp>
#include <sluice/sendable.hpp>

#include <chrono>
#include <expected>
#include <stop_token>
#include <type_traits>
#include <utility>

namespace sluice {

template <class T>
class oneshot_sender;
template <class T>
class oneshot_receiver;

namespace detail {

// Defined by <sluice/asio.hpp> (declared here too, so this header does not
// depend on the channel handles): the completion-token forms.
template <class Token>
struct completion_tokens_need_sluice_asio_hpp;

// The state behind a handle, for integrations that drive the waiting
// protocol themselves (sluice/asio.hpp). Null for an empty handle.
struct oneshot_access {
  template <class T>
  static oneshot_state<T>* state(const oneshot_sender<T>& tx) noexcept {
    return tx.st_;
  }
  template <class T>
  static oneshot_state<T>* state(const oneshot_receiver<T>& rx) noexcept {
    return rx.st_;
  }
};

}  // namespace detail

/// oneshot - a channel for one value: `auto [tx, rx] = sluice::oneshot<T>();`.
/// The sender sends once (`std::move(tx).send(v)`); the receiver receives
/// once, blocking, with a timeout, or with `co_await rx.async_recv()`.
/// Costs one allocation; throws std::bad_alloc if it cannot be had.
// Deduced return type: a rejected T is reported by the `sendable`
// constraint itself, as channel() does.
template <sendable T>
auto oneshot() {
  auto* st = new detail::oneshot_state<T>();
  return std::pair<oneshot_sender<T>, oneshot_receiver<T>>(oneshot_sender<T>(st),
                                                           oneshot_receiver<T>(st));
}

/// The sending half of a oneshot: move-only, consumed by send().
/// Destroying it unused wakes a waiting receiver with "disconnected".
/// Thread safety: one thread at a time; while an async_closed() is pending,
/// neither send nor destroy the sender (cancel the wait first).
template <class T>
class oneshot_sender {
 public:
  /// An empty handle: send() hands the value back, is_closed() is true.
  oneshot_sender() noexcept = default;
  oneshot_sender(const oneshot_sender&) = delete;
  oneshot_sender& operator=(const oneshot_sender&) = delete;
  oneshot_sender(oneshot_sender&& other) noexcept : st_(std::exchange(other.st_, nullptr)) {}
  oneshot_sender& operator=(oneshot_sender&& other) noexcept {
    if (this != &other) {
      release();
      st_ = std::exchange(other.st_, nullptr);
    }
    return *this;
  }
  ~oneshot_sender() { release(); }

  void swap(oneshot_sender& other) noexcept { std::swap(st_, other.st_); }
  friend void swap(oneshot_sender& a, oneshot_sender& b) noexcept { a.swap(b); }

  /// True unless the handle is empty (default-constructed, moved from, or
  /// consumed by send()).
  explicit operator bool() const noexcept { return st_ != nullptr; }

  /// oneshot_sender::send - `std::move(tx).send(value)`: delivers `value`
  /// and consumes the sender (it is empty afterwards, whatever the outcome).
  /// Never blocks; wakes a waiting receiver. Fails with send_error holding
  /// `value` when the receiver is gone or called close() (or the handle is
  /// empty): the value is then not delivered.
  std::expected<void, send_error<T>> send(T value) && {
    detail::oneshot_state<T>* st = std::exchange(st_, nullptr);
    if (st != nullptr && st->send(value)) return {};
    return std::unexpected(send_error<T>{std::move(value)});
  }

  /// oneshot_sender::is_closed - true once send() would fail: the receiver
  /// is gone or called close() (and for an empty handle).
  [[nodiscard]] bool is_closed() const noexcept { return st_ == nullptr || st_->is_closed(); }

  /// oneshot_sender::async_closed - `co_await tx.async_closed()` completes
  /// when the receiving side has stopped (the receiver is gone or called
  /// close()): at once if it already has, and for an empty handle. Resumes
  /// inline on the thread that stopped it (see resume_on.hpp). Lets a
  /// producer give up work nobody waits for any more.
  [[nodiscard]] auto async_closed() const {
    return make_closed<false>(detail::resume_inline{}, {});
  }
  /// async_closed(stop) - as async_closed(), and a stop request ends the
  /// wait: the result is true if the receiving side stopped, false if the
  /// wait was cancelled first.
  /// Cancellation: nothing is lost; the sender may then send or be dropped.
  [[nodiscard]] auto async_closed(std::stop_token stop) const {
    return make_closed<true>(detail::resume_inline{}, std::move(stop));
  }
  /// async_closed(resume_on(s)) and async_closed(resume_on(s), stop): the
  /// same, resuming through the scheduler `s`.
  template <class S>
  [[nodiscard]] auto async_closed(resume_on_t<S> where) const {
    return make_closed<false>(std::move(where), {});
  }
  template <class S>
  [[nodiscard]] auto async_closed(resume_on_t<S> where, std::stop_token stop) const {
    return make_closed<true>(std::move(where), std::move(stop));
  }
  /// async_closed(token) - with <sluice/asio.hpp>: the Asio form, completing
  /// `token` with true (the receiving side stopped) or false (cancelled).
  template <detail::completion_token Token>
  auto async_closed(Token&& token) const {
    return detail::completion_tokens_need_sluice_asio_hpp<std::decay_t<Token>>::closed(
        *this, std::forward<Token>(token));
  }

 private:
  template <sendable U>
  friend auto oneshot();
  friend struct detail::oneshot_access;
  explicit oneshot_sender(detail::oneshot_state<T>* st) noexcept : st_(st) {}

  // The awaitable type is named inside the function only (as the channel
  // senders do): T may still be incomplete where the class is instantiated.
  template <bool Cancellable, class R>
  auto make_closed(R where, std::stop_token stop) const {
    using closed_steps = typename detail::oneshot_state<T>::closed_steps;
    using steps = detail::any_steps<closed_steps, detail::no_channel_steps>;
    using closed_awaitable = detail::closed_awaitable<steps, R, Cancellable>;
    if (st_ == nullptr) {
      return closed_awaitable(std::move(where), std::move(stop),
                              std::in_place_type<detail::no_channel_steps>);
    }
    return closed_awaitable(std::move(where), std::move(stop), std::in_place_type<closed_steps>,
                            *st_);
  }

  void release() noexcept {
    if (st_ != nullptr) std::exchange(st_, nullptr)->release_sender();
  }

  detail::oneshot_state<T>* st_ = nullptr;
};

/// The receiving half of a oneshot: move-only. Receives the value once;
/// every later receive reports disconnected. Destroying it destroys a value
/// sent and not received, and makes a later send fail.
/// Thread safety: one thread at a time, one receive at a time (a pending
/// async_recv counts), and the handle outlives a pending receive.
template <class T>
class oneshot_receiver {
 public:
  /// An empty handle: every receive reports disconnected.
  oneshot_receiver() noexcept = default;
  oneshot_receiver(const oneshot_receiver&) = delete;
  oneshot_receiver& operator=(const oneshot_receiver&) = delete;
  oneshot_receiver(oneshot_receiver&& other) noexcept : st_(std::exchange(other.st_, nullptr)) {}
  oneshot_receiver& operator=(oneshot_receiver&& other) noexcept {
    if (this != &other) {
      release();
      st_ = std::exchange(other.st_, nullptr);
    }
    return *this;
  }
  ~oneshot_receiver() { release(); }

  void swap(oneshot_receiver& other) noexcept { std::swap(st_, other.st_); }
  friend void swap(oneshot_receiver& a, oneshot_receiver& b) noexcept { a.swap(b); }

  /// True unless the handle is empty (default-constructed or moved from).
  /// Stays true after the value was received (receives then report
  /// disconnected).
  explicit operator bool() const noexcept { return st_ != nullptr; }

  /// oneshot_receiver::recv - the value, waiting until it is sent. Fails
  /// with recv_error when no value will come: the sender was destroyed
  /// unused, close() was called before a send, or the value was already
  /// received.
  std::expected<T, recv_error> recv() {
    return recv_until(detail::deadline::never(), {}, recv_error{}, recv_error{}, recv_error{});
  }

  /// oneshot_receiver::recv(stop) - as recv(), and a stop request on `stop`
  /// ends the wait at once with recv_timeout_error::cancelled.
  /// Cancellation: nothing is taken; a value sent meanwhile or later stays
  /// for the next receive. A value already sent is returned even if stop
  /// was requested before the call.
  std::expected<T, recv_timeout_error> recv(std::stop_token stop) {
    return recv_until(detail::deadline::never(), stop, recv_timeout_error::timeout,
                      recv_timeout_error::disconnected, recv_timeout_error::cancelled);
  }

  /// oneshot_receiver::try_recv - the value if it was sent; otherwise
  /// try_recv_error::empty while it may still come, or disconnected when it
  /// will not (as recv()'s failures).
  std::expected<T, try_recv_error> try_recv() {
    using steps = typename detail::oneshot_state<T>::template recv_steps<try_recv_error>;
    std::expected<T, try_recv_error> result(std::unexpect, try_recv_error::empty);
    if (st_ == nullptr) return std::unexpected(try_recv_error::disconnected);
    steps st(*st_, result, try_recv_error::empty, try_recv_error::disconnected);
    st.attempt();
    return result;
  }

  /// oneshot_receiver::recv_timeout - as recv(), giving up after `timeout`
  /// with recv_timeout_error::timeout. A timeout <= 0 (or NaN) tries once;
  /// one too long for steady_clock (duration::max(), +inf) waits forever.
  template <class Rep, class Period>
  std::expected<T, recv_timeout_error> recv_timeout(std::chrono::duration<Rep, Period> timeout) {
    return recv_within(detail::deadline::after(timeout));
  }

  /// oneshot_receiver::recv_deadline - as recv(), giving up at `deadline`
  /// on its own clock (see receiver::recv_deadline for clocks other than
  /// steady_clock). A time point already passed tries once;
  /// time_point::max() waits forever.
  template <class Clock, class Duration>
  std::expected<T, recv_timeout_error> recv_deadline(
      std::chrono::time_point<Clock, Duration> deadline) {
    return recv_within(detail::deadline::until(deadline));
  }

  /// recv_timeout(timeout, stop) and recv_deadline(deadline, stop): the
  /// same, and a stop request on `stop` also ends the wait.
  /// Cancellation: as recv(stop).
  template <class Rep, class Period>
  std::expected<T, recv_timeout_error> recv_timeout(std::chrono::duration<Rep, Period> timeout,
                                                    std::stop_token stop) {
    return recv_within(detail::deadline::after(timeout), stop);
  }
  template <class Clock, class Duration>
  std::expected<T, recv_timeout_error> recv_deadline(
      std::chrono::time_point<Clock, Duration> deadline, std::stop_token stop) {
    return recv_within(detail::deadline::until(deadline), stop);
  }

  /// oneshot_receiver::close - as tokio's close(): a later send() fails and
  /// hands its value back, and the sender's is_closed() / async_closed()
  /// report it; a value sent before close() stays receivable. Idempotent.
  void close() noexcept {
    if (st_ != nullptr) st_->close();
  }

  /// oneshot_receiver::async_recv - `co_await rx.async_recv()`: recv() for
  /// coroutines. Completes without suspending when the value was sent (or
  /// will never be); otherwise suspends until the sender sends or goes
  /// away, and resumes inline on that thread (see resume_on.hpp). Yields
  /// std::expected<T, recv_error>.
  [[nodiscard]] auto async_recv() { return make_recv<recv_error>(detail::resume_inline{}, {}); }
  /// async_recv(stop) - as async_recv(), and a stop request on `stop` (at
  /// any time while suspended) ends the wait with
  /// recv_timeout_error::cancelled.
  /// Cancellation: nothing is taken; the value, sent meanwhile or later,
  /// stays for the next receive.
  [[nodiscard]] auto async_recv(std::stop_token stop) {
    return make_recv<recv_timeout_error>(detail::resume_inline{}, std::move(stop));
  }
  /// async_recv(resume_on(s)) and async_recv(resume_on(s), stop): the same,
  /// resuming through the scheduler `s`.
  template <class S>
  [[nodiscard]] auto async_recv(resume_on_t<S> where) {
    return make_recv<recv_error>(std::move(where), {});
  }
  template <class S>
  [[nodiscard]] auto async_recv(resume_on_t<S> where, std::stop_token stop) {
    return make_recv<recv_timeout_error>(std::move(where), std::move(stop));
  }
  /// async_recv(token) - with <sluice/asio.hpp>: the Asio form, completing
  /// `token` with std::expected<T, recv_timeout_error>; cancellable through
  /// the token's cancellation slot, losing nothing (see that header).
  template <detail::completion_token Token>
  auto async_recv(Token&& token) {
    return detail::completion_tokens_need_sluice_asio_hpp<std::decay_t<Token>>::recv(
        *this, std::forward<Token>(token));
  }

 private:
  template <sendable U>
  friend auto oneshot();
  friend struct detail::oneshot_access;
  explicit oneshot_receiver(detail::oneshot_state<T>* st) noexcept : st_(st) {}

  // The awaitable type is named inside the function only (see make_closed).
  template <class E, class R>
  auto make_recv(R where, std::stop_token stop) {
    using recv_steps = typename detail::oneshot_state<T>::template recv_steps<E>;
    using steps = detail::any_steps<recv_steps, detail::no_channel_steps>;
    using recv_awaitable = detail::recv_awaitable<T, E, steps, R>;
    constexpr E if_disconnected = disconnected_error<E>();
    constexpr E if_cancelled = cancelled_error<E>();
    if (st_ == nullptr) {
      return recv_awaitable(std::move(where), std::move(stop), if_disconnected, if_cancelled);
    }
    return recv_awaitable(std::move(where), std::move(stop), std::in_place_type<recv_steps>, *st_,
                          if_disconnected, if_cancelled);
  }
  template <class E>
  static constexpr E disconnected_error() noexcept {
    if constexpr (std::is_same_v<E, recv_error>) {
      return recv_error{};
    } else {
      return E::disconnected;
    }
  }
  template <class E>
  static constexpr E cancelled_error() noexcept {
    if constexpr (std::is_same_v<E, recv_error>) {
      return recv_error{};  // not cancellable: never reported
    } else {
      return E::cancelled;
    }
  }

  template <class E>
  std::expected<T, E> recv_until(const detail::deadline& d, const std::stop_token& stop,
                                 E if_timeout, E if_disconnected, E if_cancelled) {
    if (st_ == nullptr) return std::unexpected(if_disconnected);
    return st_->recv_as(d, stop, if_timeout, if_disconnected, if_cancelled);
  }

  std::expected<T, recv_timeout_error> recv_within(const detail::deadline& d,
                                                   const std::stop_token& stop = {}) {
    return recv_until(d, stop, recv_timeout_error::timeout, recv_timeout_error::disconnected,
                      recv_timeout_error::cancelled);
  }

  void release() noexcept {
    if (st_ != nullptr) std::exchange(st_, nullptr)->release_receiver();
  }

  detail::oneshot_state<T>* st_ = nullptr;
};

}  // namespace sluice
