// sluice/detail/async/awaitables.hpp - what `co_await tx.async_send(v)`,
// `co_await rx.async_recv()` and `co_await tx.async_closed()` return: an
// awaitable that drives a flavor's steps with the callback driver
// (waiting/async_wait.hpp), usable in any C++20 coroutine (no promise
// cooperation, no await_transform).
//
// Invariants:
// - await_ready() makes one attempt: an operation that can complete at once
//   never suspends.
// - await_suspend() registers; it returns false (resume at once) when the
//   operation finished meanwhile, else the coroutine is resumed exactly once,
//   by `finish`, after the completing party released every lock: inline
//   (resume_inline) or through the user's scheduler (resume_on).
// - The awaitable owns what the steps point at (the message to send, the
//   result slot), so it is neither copyable nor movable; it lives in the
//   coroutine frame for the whole co_await expression.
// - The stop callback, if any, is the last member: destroyed first, it
//   waits for a cancellation running on another thread before the rest goes.
#pragma once

#include <sluice/detail/handles/handle.hpp>
#include <sluice/detail/waiting/any_steps.hpp>
#include <sluice/detail/waiting/async_wait.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/error.hpp>
#include <sluice/resume_on.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <expected>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

namespace sluice::detail {

template <class X>
inline constexpr bool is_resume_on_v = false;
template <class S>
inline constexpr bool is_resume_on_v<resume_on_t<S>> = true;

// A completion token (<sluice/asio.hpp>): any last argument of an async
// operation that is not one of the core's own (a stop token, resume_on).
template <class Token>
concept completion_token = !std::is_same_v<std::decay_t<Token>, std::stop_token> &&
                           !is_resume_on_v<std::decay_t<Token>>;

// Steps for an empty (moved-from) handle: finished at once, disconnected.
class no_channel_steps {
 public:
  static bool attempt() noexcept { return true; }
  static readiness enlist(wait_entry&) noexcept { return readiness::ready; }
  static readiness recheck() noexcept { return readiness::ready; }
  static void delist(wait_entry&) noexcept {}
  static void completed() noexcept {}
  static void relay() noexcept {}
  [[nodiscard]] static bool hands_off() noexcept { return false; }
  [[nodiscard]] static bool spins() noexcept { return false; }
  [[nodiscard]] static bool sent() noexcept { return false; }
  [[nodiscard]] static bool reserved() noexcept { return false; }
};

// The part every awaitable shares: suspension, cancellation, resumption.
template <class Steps, class Resumption>
class awaitable_operation : public async_operation<Steps> {
  using base = async_operation<Steps>;

 public:
  template <class... Args>
  explicit awaitable_operation(Resumption resumption, std::stop_token stop, Args&&... args)
      : base(&finish, /*deferred=*/false, std::forward<Args>(args)...),
        resumption_(std::move(resumption)),
        stop_(std::move(stop)) {}

  awaitable_operation(const awaitable_operation&) = delete;
  awaitable_operation& operator=(const awaitable_operation&) = delete;

  // A coroutine destroyed while suspended here (a task dropped unfinished):
  // the operation is unregistered, so the channel never touches the frame
  // again. If a claimer is completing it at that very moment, nothing safe
  // is left to do: stop with a message rather than corrupt memory.
  ~awaitable_operation() {
    // Inline and short: every co_await destroys one of these, most of them
    // finished without suspending.
    on_stop_.reset();  // no cancellation from now on
    if (suspended_) [[unlikely]] abandon_or_abort();
  }

  bool await_ready() noexcept { return this->try_now(); }

  bool await_suspend(std::coroutine_handle<> h) noexcept {
    node_.handle = h;
    if (stop_.stop_possible()) {
      // Connected inside the arming window: a request that comes at once
      // (or already came) is found by settle().
      this->begin_arming();
      on_stop_.emplace(stop_, canceller{this});
    }
    // Set before settle(): once it returns false the operation belongs to
    // its claimer, which may resume the coroutine and destroy this object
    // before settle()'s caller runs another instruction.
    suspended_ = true;
    if (!this->settle()) return true;
    suspended_ = false;
    return false;
  }

 protected:
  void rethrow_if_failed() const {
    if (this->error()) std::rethrow_exception(this->error());
  }
  // Still pending after a suspension (not yet finished by a claimer).
  [[nodiscard]] bool pending() const noexcept { return suspended_; }
  [[nodiscard]] bool cancelled() const noexcept {
    return this->result() == wait_result::cancelled;
  }

 private:
  struct canceller {
    base* op;
    void operator()() const noexcept { op->cancel(); }
  };

  [[gnu::noinline, gnu::cold]] void abandon_or_abort() noexcept {
    if (this->abandon()) return;
    std::fputs(
        "sluice: a coroutine was destroyed while its channel operation was completing; "
        "cancel it (stop token) and let it resume before destroying it\n",
        stderr);
    std::abort();
  }

  static void finish(base& op) noexcept {
    auto& self = static_cast<awaitable_operation&>(op);
    self.suspended_ = false;  // resumed from here on: nothing to abandon
    if constexpr (std::is_same_v<Resumption, resume_inline>) {
      inline_resumer::resume(self.node_);
    } else {
      // Out of the awaitable first: the scheduler may resume the coroutine
      // on another thread, which destroys the awaitable, before the call
      // below returns.
      auto scheduler = std::move(self.resumption_.scheduler);
      const std::coroutine_handle<> handle = self.node_.handle;
      scheduler(handle);
    }
  }

  [[no_unique_address]] Resumption resumption_;
  resume_node node_;
  bool suspended_ = false;  // pending after a suspension, until `finish`
  std::stop_token stop_;
  std::optional<std::stop_callback<canceller>> on_stop_;  // last: see the invariants
};

// Holds a value before the operation base that points at it (bases are
// constructed in order, so the value exists first).
template <class V>
struct held {
  template <class... Args>
  explicit held(Args&&... args) : value(std::forward<Args>(args)...) {}
  V value;
};

// co_await rx.async_recv(...): std::expected<T, E>. E is recv_error (not
// cancellable) or recv_timeout_error (cancelled reported as such).
template <class T, class E, class Steps, class Resumption>
class recv_awaitable : private held<std::expected<T, E>>,
                       public awaitable_operation<Steps, Resumption> {
  using result_type = std::expected<T, E>;
  using holder = held<result_type>;
  using base = awaitable_operation<Steps, Resumption>;

 public:
  // `which` names the flavor's steps; they are built from (channel, result
  // slot, if_empty, if_disconnected).
  template <class S, class Flavor>
  recv_awaitable(Resumption resumption, std::stop_token stop, std::in_place_type_t<S> which,
                 Flavor& chan, E if_disconnected, E if_cancelled)
      : holder(std::unexpect, if_disconnected),
        base(std::move(resumption), std::move(stop), which, chan, this->holder::value,
             if_disconnected, if_disconnected),
        if_cancelled_(if_cancelled) {}

  // An empty handle: disconnected at once.
  recv_awaitable(Resumption resumption, std::stop_token stop, E if_disconnected, E if_cancelled)
      : holder(std::unexpect, if_disconnected),
        base(std::move(resumption), std::move(stop), std::in_place_type<no_channel_steps>),
        if_cancelled_(if_cancelled) {}

  result_type await_resume() {
    this->rethrow_if_failed();
    result_type& r = this->holder::value;
    // Rebuilt member by member rather than copied whole: the attempt just
    // wrote them one by one, and a wide copy of the whole object would
    // wait for those stores to reach the cache (a store-forwarding stall,
    // a third of an immediate receive's overhead).
    if (r.has_value()) return result_type(std::in_place, std::move(*r));
    return result_type(std::unexpect, this->cancelled() ? if_cancelled_ : r.error());
  }

 private:
  E if_cancelled_;
};

// co_await tx.async_send(v) on a sync_sender: std::expected<void, Error>,
// Error being send_error<T> (not cancellable) or send_timeout_error<T>.
template <class T, class Error, class Steps, class Resumption>
class send_awaitable : private held<T>, public awaitable_operation<Steps, Resumption> {
  using holder = held<T>;
  using base = awaitable_operation<Steps, Resumption>;

 public:
  template <class S, class Flavor>
  send_awaitable(Resumption resumption, std::stop_token stop, std::in_place_type_t<S> which,
                 Flavor& chan, T&& msg)
      : holder(std::move(msg)),
        base(std::move(resumption), std::move(stop), which, chan, this->holder::value) {}

  // An empty handle: disconnected at once.
  send_awaitable(Resumption resumption, std::stop_token stop, T&& msg)
      : holder(std::move(msg)),
        base(std::move(resumption), std::move(stop), std::in_place_type<no_channel_steps>) {}

  std::expected<void, Error> await_resume() {
    this->rethrow_if_failed();
    if (!this->cancelled() && this->steps().visit([](auto& s) { return s.sent(); })) return {};
    if constexpr (std::is_same_v<Error, send_error<T>>) {
      return std::unexpected(Error{std::move(this->holder::value)});
    } else {
      using reason = typename Error::reason_t;
      return std::unexpected(Error{this->cancelled() ? reason::cancelled : reason::disconnected,
                                   std::move(this->holder::value)});
    }
  }
};

// co_await tx.async_reserve(): std::expected<Permit, Error>, Error being
// reserve_error (not cancellable) or reserve_timeout_error. Holds a copy of
// the sender, which the permit adopts: the channel outlives the operation.
template <class Sender, class Permit, class Error, class Steps, class Resumption>
class reserve_awaitable : private held<Sender>, public awaitable_operation<Steps, Resumption> {
  using holder = held<Sender>;
  using base = awaitable_operation<Steps, Resumption>;

 public:
  template <class S, class Flavor>
  reserve_awaitable(Resumption resumption, std::stop_token stop, const Sender& tx,
                    std::in_place_type_t<S> which, Flavor& chan)
      : holder(tx), base(std::move(resumption), std::move(stop), which, chan) {}

  // An empty handle: disconnected at once.
  reserve_awaitable(Resumption resumption, std::stop_token stop)
      : base(std::move(resumption), std::move(stop), std::in_place_type<no_channel_steps>) {}

  reserve_awaitable(const reserve_awaitable&) = delete;
  reserve_awaitable& operator=(const reserve_awaitable&) = delete;
  // A coroutine destroyed after the reservation finished but before it
  // resumed (a scheduler that dropped it): the slot goes back. While still
  // pending, the base abandons the operation (nothing was reserved).
  ~reserve_awaitable() {
    if (!delivered_ && !this->pending() &&
        this->steps().visit([](auto& s) { return s.reserved(); })) {
      (void)handle_access::make<Permit>(std::move(this->holder::value));
    }
  }

  std::expected<Permit, Error> await_resume() {
    this->rethrow_if_failed();
    if (this->steps().visit([](auto& s) { return s.reserved(); })) {
      delivered_ = true;
      return handle_access::make<Permit>(std::move(this->holder::value));
    }
    if constexpr (std::is_same_v<Error, reserve_error>) {
      return std::unexpected(Error{});
    } else {
      return std::unexpected(this->cancelled() ? Error::cancelled : Error::disconnected);
    }
  }

 private:
  bool delivered_ = false;  // the permit left through await_resume
};

// co_await tx.async_closed(): completes when the receiving side stopped
// (the receiver is gone or called close()); with a stop token, returns
// false if cancelled first, true otherwise.
template <class Steps, class Resumption, bool Cancellable>
class closed_awaitable : public awaitable_operation<Steps, Resumption> {
  using base = awaitable_operation<Steps, Resumption>;

 public:
  template <class... Args>
  explicit closed_awaitable(Resumption resumption, std::stop_token stop, Args&&... args)
      : base(std::move(resumption), std::move(stop), std::forward<Args>(args)...) {}

  auto await_resume() const noexcept {
    if constexpr (Cancellable) {
      return !this->cancelled();
    }
  }
};

// co_await tx.async_send(v) on an unbounded sender: never waits.
template <class R>
class ready_awaitable {
 public:
  explicit ready_awaitable(R&& r) : r_(std::move(r)) {}
  static bool await_ready() noexcept { return true; }
  static void await_suspend(std::coroutine_handle<>) noexcept {}
  R await_resume() { return std::move(r_); }

 private:
  R r_;
};

// co_await rx.async_recv_many(out, limit): a receive awaitable (`Inner`,
// which does the waiting), then `drain(message, limit)`, which appends the
// message and what else is queued now and returns how many it appended.
// Yields std::size_t, or std::expected<std::size_t, recv_timeout_error> for
// the cancellable forms (`Cancellable`).
template <class Inner, class Drain, bool Cancellable>
class recv_many_awaitable {
 public:
  template <class Make>
  recv_many_awaitable(Make make_inner, Drain drain, std::size_t limit)
      : inner_(make_inner()), drain_(std::move(drain)), limit_(limit) {}

  // limit 0: nothing to wait for (the inner operation is never started).
  bool await_ready() noexcept { return limit_ == 0 || inner_.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept { return inner_.await_suspend(h); }

  auto await_resume() {
    using result = std::conditional_t<Cancellable, std::expected<std::size_t, recv_timeout_error>,
                                      std::size_t>;
    if (limit_ == 0) return result(0);
    auto first = inner_.await_resume();
    if (!first) {
      if constexpr (Cancellable) {
        if (first.error() == recv_timeout_error::cancelled) {
          return result(std::unexpect, recv_timeout_error::cancelled);
        }
      }
      return result(0);  // disconnected and empty
    }
    return result(drain_(std::move(*first), limit_));
  }

 private:
  Inner inner_;
  Drain drain_;
  std::size_t limit_;
};

}  // namespace sluice::detail
