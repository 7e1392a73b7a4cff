// sluice/receiver.hpp - the receiving half, and iteration over it.
//
// Invariants: there is exactly one receiver per channel (movable, not
// copyable). Its receiving operations and close() are for one thread at a
// time, like any non-const member of a standard container; its queries may
// be called from any thread. When it is destroyed, later sends fail, blocked
// senders wake with their values, and every queued message is destroyed
// before the destructor returns.
#pragma once

#include <sluice/detail/flavors/array.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/async/awaitables.hpp>
#include <sluice/detail/handles/handle.hpp>
#include <sluice/detail/flavors/list.hpp>
#include <sluice/detail/memory/storage.hpp>
#include <sluice/detail/flavors/zero.hpp>
#include <sluice/error.hpp>
#include <sluice/resume_on.hpp>
#include <sluice/sendable.hpp>

#include <chrono>
#include <cstddef>
#include <expected>
#include <stop_token>
#include <iterator>
#include <memory>
#include <type_traits>
#include <utility>

namespace sluice {

template <class T>
class sender;
template <class T>
class sync_sender;

/// The receiving half of a channel made by channel() or sync_channel().
/// `for (auto&& msg : rx)` receives until the channel is disconnected.
template <class T>
class receiver
    : public detail::handle<detail::list_channel<T>, detail::array_channel<T>,
                            detail::zero_channel<T>> {
  using base =
      detail::handle<detail::list_channel<T>, detail::array_channel<T>, detail::zero_channel<T>>;

 public:
  class iterator;
  class try_iter_range;

  /// An empty handle: every receive reports disconnected.
  receiver() noexcept = default;
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;
  receiver(receiver&& other) noexcept : base(other.ref_.take()) {}
  receiver& operator=(receiver&& other) noexcept {
    if (this != &other) {
      release();
      this->ref_ = other.ref_.take();
    }
    return *this;
  }
  ~receiver() { release(); }

  void swap(receiver& other) noexcept { std::swap(this->ref_, other.ref_); }
  friend void swap(receiver& a, receiver& b) noexcept { a.swap(b); }

  /// receiver::recv - the next message, waiting for one if none is queued.
  /// Fails with recv_error once the channel is empty and disconnected (every
  /// sender gone, or close() called); messages queued before that are still
  /// delivered first.
  std::expected<T, recv_error> recv() {
    return recv_until(detail::deadline::never(), {}, recv_error{}, recv_error{}, recv_error{});
  }

  /// receiver::recv(stop) - as recv(), and a stop request on `stop` ends the
  /// wait at once with recv_timeout_error::cancelled.
  /// Cancellation: no message is taken; whatever is queued stays queued for
  /// the next receive. A message that can be had without waiting is
  /// returned even if stop was already requested.
  std::expected<T, recv_timeout_error> recv(std::stop_token stop) {
    return recv_until(detail::deadline::never(), stop, recv_timeout_error::timeout,
                      recv_timeout_error::disconnected, recv_timeout_error::cancelled);
  }

  /// receiver::try_recv - the next message if one can be had without
  /// waiting. On a rendezvous channel, takes the value of a blocked sender.
  std::expected<T, try_recv_error> try_recv() {
    if (!*this) return std::unexpected(try_recv_error::disconnected);
    return receiving([](auto& chan) { return chan.try_recv(); });
  }

  /// receiver::recv_timeout - as recv(), giving up after `timeout`.
  /// A timeout <= 0 (or NaN) tries once; one too long for steady_clock
  /// (duration::max(), +inf) waits forever. Any rep and period; nothing
  /// overflows.
  template <class Rep, class Period>
  std::expected<T, recv_timeout_error> recv_timeout(std::chrono::duration<Rep, Period> timeout) {
    return recv_within(detail::deadline::after(timeout));
  }

  /// receiver::recv_deadline - as recv(), giving up at `deadline` on its own
  /// clock. A time point already passed tries once; time_point::max() waits
  /// forever. A clock other than steady_clock is read again at least every
  /// 50 ms while waiting: a jump forward past the deadline ends the wait
  /// within 50 ms, a clock set back extends it, a clock that stands still
  /// never reaches it (without spinning). The clock's now() must not throw.
  template <class Clock, class Duration>
  std::expected<T, recv_timeout_error> recv_deadline(
      std::chrono::time_point<Clock, Duration> deadline) {
    return recv_within(detail::deadline::until(deadline));
  }

  /// receiver::recv_timeout(timeout, stop) - recv_timeout() that a stop
  /// request on `stop` also ends. Cancellation: as recv(stop).
  template <class Rep, class Period>
  std::expected<T, recv_timeout_error> recv_timeout(std::chrono::duration<Rep, Period> timeout,
                                                    std::stop_token stop) {
    return recv_within(detail::deadline::after(timeout), stop);
  }

  /// receiver::recv_deadline(deadline, stop) - recv_deadline() that a stop
  /// request on `stop` also ends. Cancellation: as recv(stop).
  template <class Clock, class Duration>
  std::expected<T, recv_timeout_error> recv_deadline(
      std::chrono::time_point<Clock, Duration> deadline, std::stop_token stop) {
    return recv_within(detail::deadline::until(deadline), stop);
  }

  /// receiver::close - stops the channel without dropping the receiver, as
  /// tokio's close(): later sends fail (blocked senders wake and get their
  /// values back), messages already queued can still be received, then
  /// receiving reports disconnected. Every handle's is_disconnected() is
  /// true from then on. Idempotent.
  void close() noexcept {
    if (*this) receiving([](auto& chan) { chan.close(); });
  }

  /// receiver::async_recv - `co_await rx.async_recv()`: recv() for
  /// coroutines. Completes without suspending when a message is queued (on
  /// a rendezvous channel: a sender waiting) or the channel is disconnected;
  /// otherwise suspends until a sender delivers, and resumes inline on the
  /// thread that did (see resume_on.hpp). Yields std::expected<T, recv_error>.
  /// One receiving operation at a time: a pending async_recv counts.
  [[nodiscard]] auto async_recv() {
    return make_recv<recv_error>(detail::resume_inline{}, {});
  }
  /// async_recv(stop) - as async_recv(), and a stop request on `stop` (at
  /// any time while suspended) ends the wait at once with
  /// recv_timeout_error::cancelled.
  /// Cancellation: no message is taken; whatever is queued, or arrives
  /// later, stays for the next receive.
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
  /// `token` (use_awaitable, deferred, use_future, a callback, as_tuple(...))
  /// with std::expected<T, recv_timeout_error>; see that header.
  template <detail::completion_token Token>
  auto async_recv(Token&& token) {
    return detail::completion_tokens_need_sluice_asio_hpp<std::decay_t<Token>>::recv(
        *this, std::forward<Token>(token));
  }

  /// receiver::recv_many - waits for a message, then appends it and up to
  /// `limit` - 1 more that are queued now to `out` (any container with
  /// push_back(T&&)), in order; returns how many it appended. Returns 0 only
  /// when `limit` is 0 (at once, without waiting) or the channel is empty and
  /// disconnected. tokio's recv_many; cheaper per message than a loop of
  /// recv(): one wait, one receiving operation for the whole batch.
  /// If push_back throws, the message it was given goes back to the channel
  /// (the next receive returns it first; standard containers leave it
  /// untouched when they throw) and the exception propagates; the messages
  /// appended before stay in `out`.
  template <class C>
    requires requires(C& c, T&& v) { c.push_back(std::move(v)); }
  std::size_t recv_many(C& out, std::size_t limit) {
    if (limit == 0) return 0;
    auto first = recv();
    if (!first) return 0;
    return append_and_drain(out, std::move(*first), limit);
  }

  /// receiver::recv_many(out, limit, stop) - as recv_many(), and a stop
  /// request on `stop` ends the wait at once with
  /// recv_timeout_error::cancelled. 0 (not an error) when the channel is
  /// empty and disconnected.
  /// Cancellation: nothing is appended and no message is taken.
  template <class C>
    requires requires(C& c, T&& v) { c.push_back(std::move(v)); }
  std::expected<std::size_t, recv_timeout_error> recv_many(C& out, std::size_t limit,
                                                           std::stop_token stop) {
    if (limit == 0) return 0;
    auto first = recv(std::move(stop));
    if (!first) {
      if (first.error() == recv_timeout_error::cancelled) return std::unexpected(first.error());
      return 0;
    }
    return append_and_drain(out, std::move(*first), limit);
  }

  /// receiver::async_recv_many - `co_await rx.async_recv_many(out, limit)`:
  /// recv_many() for coroutines (suspends as async_recv() does; `out` must
  /// outlive the co_await). Yields std::size_t.
  template <class C>
    requires requires(C& c, T&& v) { c.push_back(std::move(v)); }
  [[nodiscard]] auto async_recv_many(C& out, std::size_t limit) {
    return make_recv_many<false>(out, limit, [&] { return async_recv(); });
  }
  /// async_recv_many(out, limit, stop) - as async_recv_many(), and a stop
  /// request ends the wait at once. Yields std::expected<std::size_t,
  /// recv_timeout_error>: cancelled when stopped first.
  /// Cancellation: nothing is appended and no message is taken.
  template <class C>
    requires requires(C& c, T&& v) { c.push_back(std::move(v)); }
  [[nodiscard]] auto async_recv_many(C& out, std::size_t limit, std::stop_token stop) {
    return make_recv_many<true>(out, limit, [&] { return async_recv(std::move(stop)); });
  }
  /// async_recv_many(out, limit, resume_on(s)) and
  /// async_recv_many(out, limit, resume_on(s), stop): the same, resuming
  /// through the scheduler `s`.
  template <class C, class S>
    requires requires(C& c, T&& v) { c.push_back(std::move(v)); }
  [[nodiscard]] auto async_recv_many(C& out, std::size_t limit, resume_on_t<S> where) {
    return make_recv_many<false>(out, limit, [&] { return async_recv(std::move(where)); });
  }
  template <class C, class S>
    requires requires(C& c, T&& v) { c.push_back(std::move(v)); }
  [[nodiscard]] auto async_recv_many(C& out, std::size_t limit, resume_on_t<S> where,
                                     std::stop_token stop) {
    return make_recv_many<true>(out, limit,
                                [&] { return async_recv(std::move(where), std::move(stop)); });
  }

  /// async_recv_many(out, limit, token) - with <sluice/asio.hpp>: the Asio
  /// form, completing `token` with std::expected<std::size_t,
  /// recv_timeout_error> (cancelled, or how many were appended: 0 when the
  /// channel is empty and disconnected). The messages are appended on the
  /// handler's executor, just before the handler runs; `out` must outlive
  /// the operation. Cancellation: nothing is appended and no message is taken.
  template <class C, detail::completion_token Token>
    requires requires(C& c, T&& v) { c.push_back(std::move(v)); }
  auto async_recv_many(C& out, std::size_t limit, Token&& token) {
    return detail::completion_tokens_need_sluice_asio_hpp<std::decay_t<Token>>::recv_many(
        *this, out, limit, std::forward<Token>(token));
  }

  /// Blocking iteration: each step waits for the next message; the range
  /// ends when the channel is empty and disconnected.
  iterator begin() { return iterator(this, true); }
  static std::default_sentinel_t end() noexcept { return {}; }

  /// A range over the messages that can be received now without waiting.
  try_iter_range try_iter() noexcept { return try_iter_range(this); }

 private:
  template <sendable U>
  friend auto channel();
  template <sendable U>
  friend auto sync_channel(std::size_t);
  explicit receiver(typename base::ref_type ref) noexcept : base(ref) {}
  // The Asio form of async_recv_many drains through append_and_drain.
  template <class Token>
  friend struct detail::completion_tokens_need_sluice_asio_hpp;

  // The awaitable type is named inside the function only: naming a
  // flavor's steps in the class would instantiate the flavor with the
  // handle, before a message type that holds a handle of its own channel is
  // complete.
  template <class E, class R>
  auto make_recv(R where, std::stop_token stop) {
    using recv_steps = detail::any_steps<typename detail::list_channel<T>::template recv_steps<E>,
                                         typename detail::array_channel<T>::template recv_steps<E>,
                                         typename detail::zero_channel<T>::template recv_steps<E>,
                                         detail::no_channel_steps>;
    using recv_awaitable = detail::recv_awaitable<T, E, recv_steps, R>;
    constexpr E if_disconnected = disconnected_error<E>();
    constexpr E if_cancelled = cancelled_error<E>();
    if (!*this) {
      return recv_awaitable(std::move(where), std::move(stop), if_disconnected, if_cancelled);
    }
    return this->ref_.visit([&](auto& c) {
      using flavor = std::remove_reference_t<decltype(c.chan())>;
      using steps = typename flavor::template recv_steps<E>;
      return recv_awaitable(std::move(where), std::move(stop), std::in_place_type<steps>,
                            c.chan(), if_disconnected, if_cancelled);
    });
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

  void release() noexcept {
    if (*this) this->ref_.take().visit([](auto& c) { c.release_receiver(); });
  }

  // recv_many's second half: appends `first`, then what is queued now, up to
  // `limit` in all, as one receiving operation. A push_back that throws
  // gives its message back to the channel (the stash: returned first).
  template <class C>
  std::size_t append_and_drain(C& out, T&& first, std::size_t limit) {
    if (!*this) {  // cannot happen after a successful receive; no stash to use
      out.push_back(std::move(first));
      return 1;
    }
    return receiving([&](auto& chan) {
      append(chan, out, std::move(first));
      std::size_t n = 1;
      if constexpr (requires { chan.pacer(); }) {
        // A buffered flavor drains in one step (one notification of waiting
        // senders for the batch: try_recv_batch).
        auto sink = [&out](T&& v) { out.push_back(std::move(v)); };
        const std::size_t more = chan.try_recv_batch(sink, limit - 1);
        // Counted as the blocking receives they replace: the pacer then sees
        // the real length of a run (receive_pacer.hpp), and lags a receiver
        // that keeps catching up with a streaming sender.
        chan.pacer().on_messages(more);  // recv() counted the first
        n += more;
      } else {
        while (n < limit) {  // a rendezvous: the senders waiting now, one by one
          detail::recv_status status = detail::recv_status::empty;
          auto r = chan.try_recv_as(try_recv_error::empty, try_recv_error::disconnected, status);
          if (!r) break;
          append(chan, out, std::move(*r));
          ++n;
        }
      }
      return n;
    });
  }
  template <class Chan, class C>
  static void append(Chan& chan, C& out, T&& v) {
    try {
      out.push_back(std::move(v));
    } catch (...) {
      chan.stash().put(std::move(v));
      throw;
    }
  }

  // The awaitable of async_recv_many: `make_inner` builds the receive.
  template <bool Cancellable, class C, class MakeInner>
  auto make_recv_many(C& out, std::size_t limit, MakeInner make_inner) {
    auto drain = [this, &out](T&& first, std::size_t lim) {
      return append_and_drain(out, std::move(first), lim);
    };
    using inner = decltype(make_inner());
    return detail::recv_many_awaitable<inner, decltype(drain), Cancellable>(make_inner, drain,
                                                                           limit);
  }

  // Runs f(channel) as a receiving operation (see SLUICE_CHECK_RECEIVER).
  // Precondition: non-empty.
  template <class F>
  decltype(auto) receiving(F&& f) {
    return this->ref_.visit([&](auto& c) -> decltype(auto) {
      const typename std::remove_reference_t<decltype(c)>::receive_guard guard(c);
      return f(c.chan());
    });
  }

  // Receives until `d`, reporting failures as the caller's error type.
  template <class E>
  std::expected<T, E> recv_until(const detail::deadline& d, const std::stop_token& stop,
                                 E if_timeout, E if_disconnected, E if_cancelled) {
    if (!*this) return std::unexpected(if_disconnected);
    return receiving([&](auto& chan) {
      return chan.recv_as(d, stop, if_timeout, if_disconnected, if_cancelled);
    });
  }

  // A timed receive: one try if the deadline has passed already, else wait.
  std::expected<T, recv_timeout_error> recv_within(const detail::deadline& d,
                                                   const std::stop_token& stop = {}) {
    if (!d.has_passed()) {
      return recv_until(d, stop, recv_timeout_error::timeout, recv_timeout_error::disconnected,
                        recv_timeout_error::cancelled);
    }
    if (!*this) return std::unexpected(recv_timeout_error::disconnected);
    detail::recv_status status = detail::recv_status::empty;
    return receiving([&](auto& chan) {
      return chan.try_recv_as(recv_timeout_error::timeout, recv_timeout_error::disconnected,
                              status);
    });
  }
};

/// An input iterator that receives as it advances: blocking (from begin())
/// or non-blocking (from try_iter()). It holds the current message.
template <class T>
class receiver<T>::iterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using iterator_concept = std::input_iterator_tag;

  iterator() noexcept = default;
  iterator(iterator&& other) noexcept : rx_(other.rx_), blocking_(other.blocking_) {
    if (other.has_value_) emplace(other.value_.take()), other.has_value_ = false;
  }
  iterator& operator=(iterator&& other) noexcept {
    if (this != &other) {
      reset();
      rx_ = other.rx_;
      blocking_ = other.blocking_;
      if (other.has_value_) emplace(other.value_.take()), other.has_value_ = false;
    }
    return *this;
  }
  ~iterator() { reset(); }

  /// The current message; move from it to keep it.
  T& operator*() const noexcept { return *value_.get(); }
  T* operator->() const noexcept { return value_.get(); }

  iterator& operator++() {
    reset();
    fetch();
    return *this;
  }
  void operator++(int) { ++*this; }

  friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
    return !it.has_value_;
  }

 private:
  friend class receiver;
  friend class try_iter_range;

  iterator(receiver* rx, bool blocking) : rx_(rx), blocking_(blocking) { fetch(); }

  void fetch() {
    if (blocking_) {
      if (auto r = rx_->recv()) emplace(std::move(*r));
    } else {
      if (auto r = rx_->try_recv()) emplace(std::move(*r));
    }
  }
  void emplace(T&& v) noexcept {
    value_.construct(std::move(v));
    has_value_ = true;
  }
  void reset() noexcept {
    if (has_value_) value_.destroy();
    has_value_ = false;
  }

  receiver* rx_ = nullptr;
  bool blocking_ = true;
  bool has_value_ = false;
  mutable detail::storage<T> value_;  // live iff has_value_
};

/// The range returned by try_iter(): ends at the first "nothing ready".
template <class T>
class receiver<T>::try_iter_range {
 public:
  iterator begin() { return iterator(rx_, false); }
  static std::default_sentinel_t end() noexcept { return {}; }

 private:
  friend class receiver;
  explicit try_iter_range(receiver* rx) noexcept : rx_(rx) {}
  receiver* rx_;
};

}  // namespace sluice
