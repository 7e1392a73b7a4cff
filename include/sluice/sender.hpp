// sluice/sender.hpp - the sending halves: sender<T> (unbounded channels,
// never blocks) and sync_sender<T> (bounded and rendezvous channels).
//
// Invariants: a sender handle is one producer; copies are more producers
// (the channel disconnects for the receiver when the last copy is gone); a
// moved-from handle is empty and every operation on it reports
// "disconnected", handing the value back. All operations are safe to call
// from many threads at once, on the same handle or on copies.
#pragma once

#include <sluice/detail/flavors/array.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/async/awaitables.hpp>
#include <sluice/detail/handles/handle.hpp>
#include <sluice/detail/flavors/list.hpp>
#include <sluice/detail/flavors/zero.hpp>
#include <sluice/error.hpp>
#include <sluice/permit.hpp>
#include <sluice/resume_on.hpp>
#include <sluice/sendable.hpp>
#include <sluice/weak_sender.hpp>

#include <chrono>
#include <expected>
#include <stop_token>
#include <type_traits>
#include <utility>

namespace sluice {

template <class T>
class receiver;

namespace detail {

// Copy and move rules shared by both sender kinds: a copy is another
// producer, a move transfers this one.
template <class... Flavors>
class sender_handle : public handle<Flavors...> {
  using base = handle<Flavors...>;

 public:
  sender_handle(const sender_handle& other) noexcept : base(other.ref_) {
    if (!this->ref_.empty()) this->ref_.visit([](auto& c) { c.acquire_sender(); });
  }
  sender_handle(sender_handle&& other) noexcept : base(other.ref_.take()) {}
  sender_handle& operator=(const sender_handle& other) noexcept {
    if (this != &other) {
      sender_handle copy(other);
      swap(copy);
    }
    return *this;
  }
  sender_handle& operator=(sender_handle&& other) noexcept {
    if (this != &other) {
      release();
      this->ref_ = other.ref_.take();
    }
    return *this;
  }
  ~sender_handle() { release(); }

  void swap(sender_handle& other) noexcept { std::swap(this->ref_, other.ref_); }

  /// async_closed - `co_await tx.async_closed()` completes when the
  /// receiving side has stopped: the receiver is gone or called close()
  /// (at once if it already has, and for an empty handle). Where the
  /// coroutine resumes: see resume_on.hpp.
  [[nodiscard]] auto async_closed() const { return make_closed<false>(detail::resume_inline{}, {}); }
  /// async_closed(stop) - as async_closed(), and a stop request ends the
  /// wait: the result is true if the receiving side stopped, false if the
  /// wait was cancelled first.
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

 protected:
  sender_handle() noexcept = default;
  explicit sender_handle(typename base::ref_type ref) noexcept : base(ref) {}

  // downgrade()'s body: a weak handle of kind Weak (empty if this one is).
  template <class Weak>
  Weak make_weak() const noexcept {
    if (this->ref_.empty()) return Weak();
    this->ref_.visit([](auto& c) { c.acquire_weak(); });
    return handle_access::adopt<Weak>(this->ref_);
  }

 private:
  // The awaitable types are named inside the functions only (deduced return
  // types): naming a flavor's steps in the class would instantiate the
  // flavor with the handle, before a message type that holds a handle of its
  // own channel is complete.
  template <bool Cancellable, class R>
  auto make_closed(R where, std::stop_token stop) const {
    using closed_steps =
        detail::any_steps<typename Flavors::closed_steps..., detail::no_channel_steps>;
    using closed_awaitable = detail::closed_awaitable<closed_steps, R, Cancellable>;
    if (this->ref_.empty()) {
      return closed_awaitable(std::move(where), std::move(stop),
                              std::in_place_type<detail::no_channel_steps>);
    }
    return this->ref_.visit([&](auto& c) {
      using flavor = std::remove_reference_t<decltype(c.chan())>;
      return closed_awaitable(std::move(where), std::move(stop),
                              std::in_place_type<typename flavor::closed_steps>, c.chan());
    });
  }

  void release() noexcept {
    if (!this->ref_.empty()) this->ref_.take().visit([](auto& c) { c.release_sender(); });
  }
};

}  // namespace detail

/// The sending half of an unbounded channel (see channel()). send() never
/// blocks. Copy it to get more producers.
template <class T>
class sender : public detail::sender_handle<detail::list_channel<T>> {
  using base = detail::sender_handle<detail::list_channel<T>>;

 public:
  /// An empty handle: every send reports disconnected.
  sender() noexcept = default;

  /// sender::send - queues `value` and returns at once.
  /// Fails with send_error (holding `value`) when the receiver is gone or
  /// closed. May throw std::bad_alloc when memory for a new block of slots
  /// cannot be had; `value` is then left unsent.
  std::expected<void, send_error<T>> send(T value) const {
    if (!*this) return std::unexpected(send_error<T>{std::move(value)});
    auto r = this->ref_.visit([&](auto& c) { return c.chan().try_send(std::move(value)); });
    if (r) return {};
    return std::unexpected(send_error<T>{std::move(r.error().value)});
  }

  /// sender::async_send - `co_await tx.async_send(value)`: send() as an
  /// awaitable, for symmetry with sync_sender. An unbounded channel is never
  /// full, so it completes at once, without suspending.
  [[nodiscard]] auto async_send(T value) const {
    return detail::ready_awaitable<std::expected<void, send_error<T>>>(send(std::move(value)));
  }
  /// async_send(value, stop), async_send(value, resume_on(s)) and
  /// async_send(value, resume_on(s), stop): the forms sync_sender has, so
  /// that generic code can use either sender. They never wait, so the stop
  /// token and the scheduler are never used; the stop forms report through
  /// send_timeout_error<T>, as sync_sender's do.
  [[nodiscard]] auto async_send(T value, std::stop_token) const {
    return detail::ready_awaitable<std::expected<void, send_timeout_error<T>>>(
        send_or_timeout_error(std::move(value)));
  }
  template <class S>
  [[nodiscard]] auto async_send(T value, resume_on_t<S>) const {
    return async_send(std::move(value));
  }
  template <class S>
  [[nodiscard]] auto async_send(T value, resume_on_t<S>, std::stop_token stop) const {
    return async_send(std::move(value), std::move(stop));
  }
  /// async_send(value, token) - with <sluice/asio.hpp>: the Asio form,
  /// completing `token` with std::expected<void, send_timeout_error<T>>.
  template <detail::completion_token Token>
  auto async_send(T value, Token&& token) const {
    return detail::completion_tokens_need_sluice_asio_hpp<std::decay_t<Token>>::send(
        *this, std::move(value), std::forward<Token>(token));
  }

  /// sender::downgrade - a weak handle to this channel's sending side. It does
  /// not keep the channel open (when the last sender goes, the receiver sees
  /// the disconnection); its upgrade() gives a sender back while another one
  /// exists and the receiver is neither gone nor closed. Empty if this handle
  /// is.
  [[nodiscard]] weak_sender<T> downgrade() const noexcept {
    return this->template make_weak<weak_sender<T>>();
  }

  friend void swap(sender& a, sender& b) noexcept { a.swap(b); }

 private:
  friend struct detail::handle_access;
  template <sendable U>
  friend auto channel();
  explicit sender(typename base::ref_type ref) noexcept : base(ref) {}

  std::expected<void, send_timeout_error<T>> send_or_timeout_error(T&& value) const {
    auto r = send(std::move(value));
    if (r) return {};
    return std::unexpected(send_timeout_error<T>{send_timeout_error<T>::reason_t::disconnected,
                                                 std::move(r.error().value)});
  }
};

/// The sending half of a bounded or rendezvous channel (see sync_channel()).
/// send() blocks while the channel is full (rendezvous: until a receiver
/// takes the value). Copy it to get more producers.
template <class T>
class sync_sender
    : public detail::sender_handle<detail::array_channel<T>, detail::zero_channel<T>> {
  using base =
      detail::sender_handle<detail::array_channel<T>, detail::zero_channel<T>>;
  using timeout_reason = typename send_timeout_error<T>::reason_t;

 public:
  /// An empty handle: every send reports disconnected.
  sync_sender() noexcept = default;

  /// sync_sender::send - queues `value`, waiting while the channel is full.
  /// On a rendezvous channel, returns once a receiver has taken the value.
  /// Fails with send_error (holding `value`) when the receiver is gone or
  /// closed, including while waiting. A channel with a large bound allocates
  /// its slots as they are first used: this (and try_send, send_timeout,
  /// send_deadline) may then throw std::bad_alloc, leaving `value` unsent.
  std::expected<void, send_error<T>> send(T value) const {
    auto r = send_until(std::move(value), detail::deadline::never());
    if (r) return {};
    return std::unexpected(send_error<T>{std::move(r.error().value)});
  }

  /// sync_sender::try_send - queues `value` only if that needs no waiting.
  /// Fails with reason full (rendezvous: no receiver is waiting) or
  /// disconnected; either way the error holds `value`. On a channel with a
  /// large bound (over 4,096 slots of 8-byte messages with 128-byte cache
  /// lines; fewer for larger ones) or large messages (slots allocated 64 KiB
  /// at a time), "full" may also mean that another sender is still
  /// allocating the slots this one would take.
  std::expected<void, try_send_error<T>> try_send(T value) const {
    if (!*this) {
      return std::unexpected(
          try_send_error<T>{try_send_error<T>::reason_t::disconnected, std::move(value)});
    }
    return this->ref_.visit([&](auto& c) { return c.chan().try_send(std::move(value)); });
  }

  /// sync_sender::send_timeout - as send(), giving up after `timeout`.
  /// A timeout <= 0 (or NaN) tries once; one too long for steady_clock
  /// (duration::max(), +inf) waits forever. Any rep and period; nothing
  /// overflows.
  template <class Rep, class Period>
  std::expected<void, send_timeout_error<T>> send_timeout(
      T value, std::chrono::duration<Rep, Period> timeout) const {
    return send_within(std::move(value), detail::deadline::after(timeout));
  }

  /// sync_sender::send_deadline - as send(), giving up at `deadline` on its
  /// own clock. A time point already passed tries once; time_point::max()
  /// waits forever. A clock other than steady_clock is read again at least
  /// every 50 ms while waiting: a jump forward past the deadline ends the
  /// wait within 50 ms, a clock set back extends it, a clock that stands
  /// still never reaches it (without spinning). The clock's now() must not
  /// throw.
  template <class Clock, class Duration>
  std::expected<void, send_timeout_error<T>> send_deadline(
      T value, std::chrono::time_point<Clock, Duration> deadline) const {
    return send_within(std::move(value), detail::deadline::until(deadline));
  }

  /// sync_sender::send(value, stop) - as send(), and a stop request on
  /// `stop` ends the wait at once.
  /// Cancellation: the error (reason cancelled) holds `value`; nothing was
  /// sent. A send that completes without waiting completes even if stop was
  /// already requested; on a rendezvous channel, a receiver that already
  /// took the value wins over a later stop request.
  std::expected<void, send_timeout_error<T>> send(T value, std::stop_token stop) const {
    return send_until(std::move(value), detail::deadline::never(), stop);
  }

  /// sync_sender::send_timeout(value, timeout, stop) - send_timeout() that a
  /// stop request on `stop` also ends. Cancellation: as send(value, stop).
  template <class Rep, class Period>
  std::expected<void, send_timeout_error<T>> send_timeout(
      T value, std::chrono::duration<Rep, Period> timeout, std::stop_token stop) const {
    return send_within(std::move(value), detail::deadline::after(timeout), stop);
  }

  /// sync_sender::send_deadline(value, deadline, stop) - send_deadline() that
  /// a stop request on `stop` also ends. Cancellation: as send(value, stop).
  template <class Clock, class Duration>
  std::expected<void, send_timeout_error<T>> send_deadline(
      T value, std::chrono::time_point<Clock, Duration> deadline, std::stop_token stop) const {
    return send_within(std::move(value), detail::deadline::until(deadline), stop);
  }

  /// sync_sender::async_send - `co_await tx.async_send(value)`: send() for
  /// coroutines. Completes without suspending when there is room (on a
  /// rendezvous channel: a receiver waiting); otherwise suspends until a
  /// receiver makes room or takes the value, and resumes inline on the thread
  /// that did (see resume_on.hpp). Yields std::expected<void, send_error<T>>:
  /// the error holds `value` when the receiver is gone or closed. May throw
  /// std::bad_alloc from co_await, as send() may.
  /// GCC 12 destroys an aggregate temporary built inside a co_await
  /// expression twice: build such a value in a statement of its own.
  [[nodiscard]] auto async_send(T value) const {
    return make_send<send_error<T>>(detail::resume_inline{}, {}, std::move(value));
  }
  /// async_send(value, stop) - as async_send(value), and a stop request on
  /// `stop` (at any time while suspended) ends the wait at once.
  /// Cancellation: yields send_timeout_error<T> with reason cancelled,
  /// holding `value`; nothing was sent.
  [[nodiscard]] auto async_send(T value, std::stop_token stop) const {
    return make_send<send_timeout_error<T>>(detail::resume_inline{}, std::move(stop),
                                            std::move(value));
  }
  /// async_send(value, resume_on(s)) and async_send(value, resume_on(s),
  /// stop): the same, resuming through the scheduler `s`.
  template <class S>
  [[nodiscard]] auto async_send(T value, resume_on_t<S> where) const {
    return make_send<send_error<T>>(std::move(where), {}, std::move(value));
  }
  template <class S>
  [[nodiscard]] auto async_send(T value, resume_on_t<S> where, std::stop_token stop) const {
    return make_send<send_timeout_error<T>>(std::move(where), std::move(stop), std::move(value));
  }
  /// async_send(value, token) - with <sluice/asio.hpp>: the Asio form,
  /// completing `token` with std::expected<void, send_timeout_error<T>>;
  /// cancellable through the token's cancellation slot.
  template <detail::completion_token Token>
  auto async_send(T value, Token&& token) const {
    return detail::completion_tokens_need_sluice_asio_hpp<std::decay_t<Token>>::send(
        *this, std::move(value), std::forward<Token>(token));
  }

  /// sync_sender::reserve - reserves room for one message, waiting while the
  /// channel is full, and returns it as a permit, whose send() then never
  /// waits or fails (tokio's reserve). Permits count against the bound: with
  /// k permits out, k fewer messages fit. Fails with reserve_error when the
  /// receiver is gone or closed, including while waiting. On a rendezvous
  /// channel, waits until a receiver is waiting and no other permit is out
  /// (see permit.hpp). May throw std::bad_alloc, as send() may.
  std::expected<permit<T>, reserve_error> reserve() const {
    auto r = reserve_until(detail::deadline::never());
    if (r) return std::move(*r);
    return std::unexpected(reserve_error{});
  }

  /// sync_sender::try_reserve - reserve() only if that needs no waiting.
  /// Fails with try_reserve_error::full (rendezvous: no receiver waiting,
  /// or a permit is out) or disconnected.
  std::expected<permit<T>, try_reserve_error> try_reserve() const {
    if (!*this) return std::unexpected(try_reserve_error::disconnected);
    auto r = this->ref_.visit([](auto& c) { return c.chan().try_reserve(); });
    if (!r) return std::unexpected(r.error());
    return adopt_permit();
  }

  /// sync_sender::reserve(stop) - as reserve(), and a stop request on `stop`
  /// ends the wait at once: the error is then reserve_timeout_error::cancelled,
  /// and nothing was reserved.
  std::expected<permit<T>, reserve_timeout_error> reserve(std::stop_token stop) const {
    return reserve_until(detail::deadline::never(), stop);
  }

  /// sync_sender::reserve_timeout / reserve_deadline - as reserve(), giving
  /// up after `timeout` or at `deadline` (reserve_timeout_error::timeout),
  /// with the rules of send_timeout() and send_deadline(); with a stop token
  /// last, a stop request also ends the wait.
  template <class Rep, class Period>
  std::expected<permit<T>, reserve_timeout_error> reserve_timeout(
      std::chrono::duration<Rep, Period> timeout, std::stop_token stop = {}) const {
    return reserve_within(detail::deadline::after(timeout), stop);
  }
  template <class Clock, class Duration>
  std::expected<permit<T>, reserve_timeout_error> reserve_deadline(
      std::chrono::time_point<Clock, Duration> deadline, std::stop_token stop = {}) const {
    return reserve_within(detail::deadline::until(deadline), stop);
  }

  /// sync_sender::async_reserve - `co_await tx.async_reserve()`: reserve()
  /// for coroutines, yielding std::expected<permit<T>, reserve_error>.
  /// Completes without suspending when there is room; otherwise resumes as
  /// async_send() does (see resume_on.hpp).
  [[nodiscard]] auto async_reserve() const {
    return make_reserve<reserve_error>(detail::resume_inline{}, {});
  }
  /// async_reserve(stop) - as async_reserve(), and a stop request ends the
  /// wait: yields std::expected<permit<T>, reserve_timeout_error>.
  [[nodiscard]] auto async_reserve(std::stop_token stop) const {
    return make_reserve<reserve_timeout_error>(detail::resume_inline{}, std::move(stop));
  }
  /// async_reserve(resume_on(s)) and async_reserve(resume_on(s), stop): the
  /// same, resuming through the scheduler `s`.
  template <class S>
  [[nodiscard]] auto async_reserve(resume_on_t<S> where) const {
    return make_reserve<reserve_error>(std::move(where), {});
  }
  template <class S>
  [[nodiscard]] auto async_reserve(resume_on_t<S> where, std::stop_token stop) const {
    return make_reserve<reserve_timeout_error>(std::move(where), std::move(stop));
  }
  /// async_reserve(token) - with <sluice/asio.hpp>: the Asio form, completing
  /// `token` with std::expected<permit<T>, reserve_timeout_error>;
  /// cancellable through the token's cancellation slot.
  template <detail::completion_token Token>
  auto async_reserve(Token&& token) const {
    return detail::completion_tokens_need_sluice_asio_hpp<std::decay_t<Token>>::reserve(
        *this, std::forward<Token>(token));
  }

  /// sync_sender::downgrade - a weak handle to this channel's sending side. It does
  /// not keep the channel open (when the last sender goes, the receiver sees
  /// the disconnection); its upgrade() gives a sender back while another one
  /// exists and the receiver is neither gone nor closed. Empty if this handle
  /// is.
  [[nodiscard]] weak_sync_sender<T> downgrade() const noexcept {
    return this->template make_weak<weak_sync_sender<T>>();
  }

  friend void swap(sync_sender& a, sync_sender& b) noexcept { a.swap(b); }

 private:
  friend struct detail::handle_access;
  // The awaitable type is named inside the function only (see make_closed).
  template <class Error, class R>
  auto make_send(R where, std::stop_token stop, T&& value) const {
    using send_steps =
        detail::any_steps<typename detail::array_channel<T>::send_steps,
                          typename detail::zero_channel<T>::send_steps, detail::no_channel_steps>;
    using send_awaitable = detail::send_awaitable<T, Error, send_steps, R>;
    if (!*this) return send_awaitable(std::move(where), std::move(stop), std::move(value));
    return this->ref_.visit([&](auto& c) {
      using flavor = std::remove_reference_t<decltype(c.chan())>;
      return send_awaitable(std::move(where), std::move(stop),
                            std::in_place_type<typename flavor::send_steps>, c.chan(),
                            std::move(value));
    });
  }

  template <class Error, class R>
  auto make_reserve(R where, std::stop_token stop) const {
    using reserve_steps =
        detail::any_steps<typename detail::array_channel<T>::reserve_steps,
                          typename detail::zero_channel<T>::reserve_steps, detail::no_channel_steps>;
    using reserve_awaitable =
        detail::reserve_awaitable<sync_sender, permit<T>, Error, reserve_steps, R>;
    if (!*this) return reserve_awaitable(std::move(where), std::move(stop));
    return this->ref_.visit([&](auto& c) {
      using flavor = std::remove_reference_t<decltype(c.chan())>;
      return reserve_awaitable(std::move(where), std::move(stop), *this,
                               std::in_place_type<typename flavor::reserve_steps>, c.chan());
    });
  }

  template <sendable U>
  friend auto sync_channel(std::size_t);
  explicit sync_sender(typename base::ref_type ref) noexcept : base(ref) {}

  // The permit of a slot this handle just reserved: it holds a copy of the
  // handle, which keeps the channel open for the receiver.
  permit<T> adopt_permit() const noexcept {
    return detail::handle_access::make<permit<T>>(sync_sender(*this));
  }

  std::expected<permit<T>, reserve_timeout_error> reserve_until(
      const detail::deadline& d, const std::stop_token& stop = {}) const {
    if (!*this) return std::unexpected(reserve_timeout_error::disconnected);
    auto r = this->ref_.visit([&](auto& c) { return c.chan().reserve(d, stop); });
    if (!r) return std::unexpected(r.error());
    return adopt_permit();
  }

  // A timed reservation: one try if the deadline has passed already.
  std::expected<permit<T>, reserve_timeout_error> reserve_within(
      const detail::deadline& d, const std::stop_token& stop) const {
    if (!d.has_passed()) return reserve_until(d, stop);
    auto r = try_reserve();
    if (r) return std::move(*r);
    return std::unexpected(r.error() == try_reserve_error::full
                               ? reserve_timeout_error::timeout
                               : reserve_timeout_error::disconnected);
  }

  std::expected<void, send_timeout_error<T>> send_until(T&& value, const detail::deadline& d,
                                                        const std::stop_token& stop = {}) const {
    if (!*this) {
      return std::unexpected(send_timeout_error<T>{timeout_reason::disconnected, std::move(value)});
    }
    return this->ref_.visit([&](auto& c) { return c.chan().send(std::move(value), d, stop); });
  }

  // A timed send: one try if the deadline has passed already, else wait.
  std::expected<void, send_timeout_error<T>> send_within(T&& value, const detail::deadline& d,
                                                         const std::stop_token& stop = {}) const {
    if (!d.has_passed()) return send_until(std::move(value), d, stop);
    // One try, "full" reported as "timeout".
    auto r = try_send(std::move(value));
    if (r) return {};
    return std::unexpected(send_timeout_error<T>{
        r.error().is_full() ? timeout_reason::timeout : timeout_reason::disconnected,
        std::move(r.error().value)});
  }
};

}  // namespace sluice
