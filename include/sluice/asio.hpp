// sluice/asio.hpp - completion tokens for every async operation, with
// standalone Asio (Debian: libasio-dev; CMake target sluice::asio).
//
//   auto r = co_await rx.async_recv(asio::use_awaitable);          // std::expected<T, recv_timeout_error>
//   auto s = co_await tx.async_send(v, asio::use_awaitable);       // std::expected<void, send_timeout_error<T>>
//   bool c = co_await tx.async_closed(asio::use_awaitable);        // true: the receiving side stopped
//   rx.async_recv([](std::expected<T, sluice::recv_timeout_error> r) { ... });
//   auto f = rx.async_recv(asio::use_future);
//   co_await (rx.async_recv(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
//
// Any token works (use_awaitable, deferred, use_future, a callback,
// as_tuple(...)): the operations are asio::async_initiate'd with one
// signature each, void(R) with R the result above.
//
// Where the handler runs: always queued on the handler's associated
// executor (as a continuation: see post_continuation) (for use_awaitable, the coroutine's executor; for a
// plain callback with none bound, asio::system_executor: bind one with
// asio::bind_executor). Never inline in the initiating call, never on the
// thread that completed the operation, never under a channel lock. The
// executor's work is kept outstanding while the operation is pending.
//
// Cancellation: through the handler's associated cancellation slot (any
// cancellation type). A cancelled receive takes nothing: the message stays
// queued, so `rx.async_recv(use_awaitable) || timer.async_wait(...)` is a
// timeout that loses no message. A cancelled send completes with reason
// cancelled and hands the value back. As with Asio's own operations, the
// slot's emit must not run concurrently with the operation's completion
// handler (emit from the handler's executor, or a strand of it).
//
// Lifetime: as an Asio I/O object must outlive its operations, the handle an
// operation was started from must stay alive until it completes (a deferred
// operation: until it is launched and completes). Holding a copy of the
// sender instead would cost two atomic operations on the channel's shared
// count per send.
//
// Invariants: the core headers never include Asio; this header only adds
// the token forms, on the same channels and the same waiting protocol
// (waiting/async_wait.hpp) as threads and plain coroutines.
#pragma once

#include <sluice/sluice.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/execution.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/require.hpp>
#include <asio/system_executor.hpp>

#include <expected>
#include <memory>
#include <type_traits>
#include <utility>

namespace sluice::detail {

// Queues `f` on `ex`, never running it inline, as a continuation: when the
// calling thread runs that executor's handlers (a coroutine on an
// io_context completing another coroutine's operation), `f` runs on this
// thread right after the current handler, as Go runs a goroutine it just
// woke (runnext), instead of waking another thread; elsewhere (a plain
// thread completing the operation) it is queued like any post.
template <class Executor, class F>
void post_continuation(const Executor& ex, F&& f) {
  if constexpr (asio::execution::is_executor<Executor>::value) {
    asio::execution::execute(
        asio::prefer(asio::require(ex, asio::execution::blocking.never),
                     asio::execution::relationship.continuation),
        std::forward<F>(f));
  } else {
    asio::post(ex, std::forward<F>(f));
  }
}

// An operation started from a completion token. It owns itself from start()
// until its completion, posted to the handler's executor, deletes it.
template <class Kind, class Handler>
class asio_operation : private held<typename Kind::state>,
                       public async_operation<typename Kind::steps> {
  using holder = held<typename Kind::state>;
  using op_base = async_operation<typename Kind::steps>;
  using executor_type = asio::associated_executor_t<Handler, asio::system_executor>;

 public:
  // `state` initialises what the steps point at (the message, the result
  // slot); the steps are built from `steps_args` plus that state.
  template <class State, class StepsTag, class... Args>
  static void start(Handler&& handler, State&& state, StepsTag which, Args&&... steps_args) {
    auto* self = new asio_operation(std::move(handler), std::forward<State>(state), which,
                                    std::forward<Args>(steps_args)...);
    if (self->try_now()) {
      self->post_completion();
      return;
    }
    auto slot = asio::get_associated_cancellation_slot(self->handler_);
    if (slot.is_connected()) {
      // Connected inside the arming window: a cancellation emitted at once
      // is found by settle().
      self->begin_arming();
      slot.template emplace<canceller>(self);
    }
    if (self->settle()) self->post_completion();
  }

 private:
  template <class State, class StepsTag, class... Args>
  asio_operation(Handler&& handler, State&& state, StepsTag which, Args&&... steps_args)
      : holder(std::forward<State>(state)),
        op_base(&finish, which, std::forward<Args>(steps_args)..., this->holder::value),
        handler_(std::move(handler)),
        work_(asio::make_work_guard(asio::get_associated_executor(handler_, asio::system_executor()))) {}

  struct canceller {
    op_base* op;
    void operator()(asio::cancellation_type type) const noexcept {
      if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                   asio::cancellation_type::total)) != asio::cancellation_type::none) {
        op->cancel();
      }
    }
  };

  static void finish(op_base& op) noexcept { static_cast<asio_operation&>(op).post_completion(); }

  void post_completion() noexcept {
    // The completion runs on the handler's executor: it disconnects the
    // slot there (where emits come from), then frees the operation and
    // calls the handler.
    post_continuation(work_.get_executor(), [this] { complete(); });
  }

  void complete() {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    std::exception_ptr error = this->error();
    auto result = Kind::make(this->holder::value, *this);
    Handler handler = std::move(handler_);
    auto work = std::move(work_);  // outstanding until the handler ran
    delete this;
    if (error) std::rethrow_exception(error);  // out of the executor's run(), as Asio does
    std::move(handler)(std::move(result));
  }

  Handler handler_;
  asio::executor_work_guard<executor_type> work_;
};

// What each kind of operation holds and yields.
template <class T, class Steps>
struct asio_recv_kind {
  using state = std::expected<T, recv_timeout_error>;
  using steps = Steps;
  static state make(state& s, const async_operation<Steps>& op) {
    if (op.result() == wait_result::cancelled) s.error() = recv_timeout_error::cancelled;
    return std::move(s);
  }
};

template <class T, class Steps>
struct asio_send_kind {
  using state = T;
  using steps = Steps;
  static std::expected<void, send_timeout_error<T>> make(T& value, async_operation<Steps>& op) {
    using reason = typename send_timeout_error<T>::reason_t;
    const bool cancelled = op.result() == wait_result::cancelled;
    if (!cancelled && op.steps().visit([](auto& s) { return s.sent(); })) return {};
    return std::unexpected(send_timeout_error<T>{
        cancelled ? reason::cancelled : reason::disconnected, std::move(value)});
  }
};

template <class Steps>
struct asio_closed_kind {
  struct state {};
  using steps = Steps;
  static bool make(state&, const async_operation<Steps>& op) {
    return op.result() != wait_result::cancelled;
  }
};

// Steps for a closed wait, whose steps take no state: adapts the
// constructor call (the operation passes its state last).
template <class Steps>
struct stateless_steps : Steps {
  template <class Flavor, class State>
  stateless_steps(Flavor& chan, State&) noexcept : Steps(chan) {}
};
struct stateless_no_channel_steps : no_channel_steps {
  template <class State>
  explicit stateless_no_channel_steps(State&) noexcept {}
};

// Posts `result` to the handler's executor (operations that never wait).
template <class Handler, class R>
void post_result(Handler&& handler, R&& result) {
  auto ex = asio::get_associated_executor(handler, asio::system_executor());
  post_continuation(ex, [h = std::move(handler), r = std::forward<R>(result)]() mutable {
    std::move(h)(std::move(r));
  });
}

template <class Token>
struct completion_tokens_need_sluice_asio_hpp {
  // receiver<T>::async_recv(token)
  template <class T, class Tok>
  static auto recv(receiver<T>& rx, Tok&& token) {
    using result = std::expected<T, recv_timeout_error>;
    return asio::async_initiate<Tok, void(result)>(
        [](auto handler, receiver<T>* r) { start_recv(std::move(handler), *r); }, token, &rx);
  }

  // sync_sender<T>::async_send(value, token) and sender<T>::async_send(value, token)
  template <class Sender, class T, class Tok>
  static auto send(const Sender& tx, T&& value, Tok&& token) {
    using result = std::expected<void, send_timeout_error<T>>;
    return asio::async_initiate<Tok, void(result)>(
        [](auto handler, const Sender* s, T v) { start_send(std::move(handler), *s, std::move(v)); },
        token, &tx, std::move(value));
  }

  // async_closed(token) on either sender
  template <class Sender, class Tok>
  static auto closed(const Sender& tx, Tok&& token) {
    return asio::async_initiate<Tok, void(bool)>(
        [](auto handler, const Sender* s) { start_closed(std::move(handler), *s); }, token, &tx);
  }

 private:
  template <class T>
  using recv_steps = any_steps<typename list_channel<T>::template recv_steps<recv_timeout_error>,
                               typename array_channel<T>::template recv_steps<recv_timeout_error>,
                               typename zero_channel<T>::template recv_steps<recv_timeout_error>,
                               no_channel_steps>;

  // The steps' constructors take (channel, state, if_empty, if_disconnected)
  // for a receive; the operation passes its state last, so adapt.
  template <class Steps>
  struct recv_adapter : Steps {
    template <class Flavor, class Result>
    recv_adapter(Flavor& chan, Result& result) noexcept
        : Steps(chan, result, recv_timeout_error::disconnected, recv_timeout_error::disconnected) {}
  };
  struct recv_no_channel : no_channel_steps {
    template <class Result>
    explicit recv_no_channel(Result&) noexcept {}
  };

  template <class Handler, class T>
  static void start_recv(Handler&& handler, receiver<T>& rx) {
    using flavor_steps =
        any_steps<recv_adapter<typename list_channel<T>::template recv_steps<recv_timeout_error>>,
                  recv_adapter<typename array_channel<T>::template recv_steps<recv_timeout_error>>,
                  recv_adapter<typename zero_channel<T>::template recv_steps<recv_timeout_error>>,
                  recv_no_channel>;
    using op = asio_operation<asio_recv_kind<T, flavor_steps>, std::decay_t<Handler>>;
    using state = std::expected<T, recv_timeout_error>;
    const auto& ref = handle_access::ref(rx);
    if (ref.empty()) {
      op::start(std::move(handler), state(std::unexpect, recv_timeout_error::disconnected),
                std::in_place_type<recv_no_channel>);
      return;
    }
    ref.visit([&](auto& c) {
      using flavor = std::remove_reference_t<decltype(c.chan())>;
      using steps = recv_adapter<typename flavor::template recv_steps<recv_timeout_error>>;
      op::start(std::move(handler), state(std::unexpect, recv_timeout_error::disconnected),
                std::in_place_type<steps>, c.chan());
    });
  }

  // The send steps take (channel, message); the operation passes its state
  // (the message) last, which is the same shape.
  template <class Handler, class T>
  static void start_send(Handler&& handler, const sender<T>& tx, T value) {
    post_result(std::move(handler), [&]() -> std::expected<void, send_timeout_error<T>> {
      auto r = tx.send(std::move(value));
      if (r) return {};
      return std::unexpected(send_timeout_error<T>{send_timeout_error<T>::reason_t::disconnected,
                                                   std::move(r.error().value)});
    }());
  }

  template <class Handler, class T>
  static void start_send(Handler&& handler, const sync_sender<T>& tx, T value) {
    struct send_no_channel : no_channel_steps {
      explicit send_no_channel(T&) noexcept {}
    };
    using flavor_steps = any_steps<typename array_channel<T>::send_steps,
                                   typename zero_channel<T>::send_steps, send_no_channel>;
    using op = asio_operation<asio_send_kind<T, flavor_steps>, std::decay_t<Handler>>;
    const auto& ref = handle_access::ref(tx);
    if (ref.empty()) {
      op::start(std::move(handler), std::move(value), std::in_place_type<send_no_channel>);
      return;
    }
    ref.visit([&](auto& c) {
      using flavor = std::remove_reference_t<decltype(c.chan())>;
      op::start(std::move(handler), std::move(value),
                std::in_place_type<typename flavor::send_steps>, c.chan());
    });
  }

  template <class Handler, class Sender>
  static void start_closed(Handler&& handler, const Sender& tx) {
    // The flavors this sender kind may hold, read off its reference type.
    start_closed_on(std::move(handler), handle_access::ref(tx));
  }

  template <class Handler, class... Flavors>
  static void start_closed_on(Handler&& handler, const flavor_ref<Flavors...>& ref) {
    using flavor_steps = any_steps<stateless_steps<typename Flavors::closed_steps>...,
                                   stateless_no_channel_steps>;
    using kind = asio_closed_kind<flavor_steps>;
    using op = asio_operation<kind, std::decay_t<Handler>>;
    if (ref.empty()) {
      op::start(std::move(handler), typename kind::state{},
                std::in_place_type<stateless_no_channel_steps>);
      return;
    }
    ref.visit([&](auto& c) {
      using flavor = std::remove_reference_t<decltype(c.chan())>;
      op::start(std::move(handler), typename kind::state{},
                std::in_place_type<stateless_steps<typename flavor::closed_steps>>, c.chan());
    });
  }
};

}  // namespace sluice::detail
