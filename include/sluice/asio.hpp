// sluice/asio.hpp - completion tokens for every async operation, with
// standalone Asio (Debian: libasio-dev; CMake target sluice::asio).
//
//   auto r = co_await rx.async_recv(asio::use_awaitable);          // std::expected<T, recv_timeout_error>
//   auto s = co_await tx.async_send(v, asio::use_awaitable);       // std::expected<void, send_timeout_error<T>>
//   bool c = co_await tx.async_closed(asio::use_awaitable);        // true: the receiving side stopped
//   auto p = co_await tx.async_reserve(asio::use_awaitable);       // std::expected<permit<T>, reserve_timeout_error>
//   auto n = co_await rx.async_recv_many(out, 64, asio::use_awaitable);  // std::expected<std::size_t, recv_timeout_error>
//   auto v = co_await oneshot_rx.async_recv(asio::use_awaitable);  // the same forms on a oneshot
//   rx.async_recv([](std::expected<T, sluice::recv_timeout_error> r) { ... });
//   auto f = rx.async_recv(asio::use_future);
//   co_await (rx.async_recv(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
//
// Any token works (use_awaitable, deferred, use_future, a callback,
// as_tuple(...)): the operations are asio::async_initiate'd with one
// signature each, void(R) with R the result above.
//
// Where the handler runs: always posted to the handler's associated
// executor (for use_awaitable, the coroutine's executor; for a plain callback
// with none bound, asio::system_executor: bind one with asio::bind_executor).
// Never inline in the initiating call, never on the thread that completed
// the operation, never under a channel lock. The executor's work is kept
// outstanding while the operation is pending.
//
// How cancellation loses nothing: a claim on a pending operation (a sender
// delivered, a receiver made room) does not take or send anything on the
// claimer's thread; it posts the operation's next step to the handler's
// executor, which checks for a cancellation first, then attempts and calls
// the handler in the same turn. A receive that had taken its message before
// a cancellation came (at initiation, or a rendezvous hand-off) gives it
// back: the next receive returns it first. So with the cancellation emitted
// on the handler's executor (a single-threaded io_context, or a strand, as
// Asio's per-operation cancellation requires anyway),
// `rx.async_recv(use_awaitable) || timer.async_wait(...)` is a timeout that
// loses no message: either the receive's handler ran first (it won), or the
// message is still in the channel. A cancelled send completes with reason
// cancelled and hands the value back, and was not delivered; except on a
// rendezvous channel, where a receiver that took the value before the
// cancellation came keeps it (the send reports success).
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

#include <sluice/selector.hpp>
#include <sluice/select.hpp>
#include <sluice/sluice.hpp>

#include <asio/associated_allocator.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/bind_allocator.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/execution.hpp>
#include <asio/execution_context.hpp>
#include <asio/query.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/defer.hpp>
#include <asio/post.hpp>
#include <asio/system_executor.hpp>

#include <expected>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

namespace sluice::detail {

// The pending operations whose handlers' executors belong to one Asio
// execution context. When the context shuts down (an io_context destroyed
// while operations wait on channels that live on), each one still waiting
// is taken out of its channel and destroyed with its handler, as Asio does
// with its own pending operations; one already claimed has a step queued on
// the context, which the context destroys (and the operation with it).
class pending_operation {
 public:
  // Unregisters the operation from its channel and destroys it, unless a
  // claimer has it (then false: its queued step owns it).
  virtual bool drop_at_shutdown() noexcept = 0;

 protected:
  ~pending_operation() = default;

 private:
  friend class pending_operations;
  pending_operation* prev_ = nullptr;
  pending_operation* next_ = nullptr;
};

class pending_operations final : public asio::execution_context::service {
 public:
  using key_type = pending_operations;
  static inline asio::execution_context::id id;

  explicit pending_operations(asio::execution_context& ctx) : service(ctx) {}

  void add(pending_operation& op) {
    std::lock_guard guard(mutex_);
    op.prev_ = nullptr;
    op.next_ = head_;
    if (head_ != nullptr) head_->prev_ = &op;
    head_ = &op;
  }

  void remove(pending_operation& op) noexcept {
    std::lock_guard guard(mutex_);
    if (shut_down_) return;
    (op.prev_ != nullptr ? op.prev_->next_ : head_) = op.next_;
    if (op.next_ != nullptr) op.next_->prev_ = op.prev_;
  }

 private:
  void shutdown() override {
    pending_operation* list = nullptr;
    {
      std::lock_guard guard(mutex_);
      shut_down_ = true;  // from now on operations no longer unlink themselves
      list = std::exchange(head_, nullptr);
    }
    while (list != nullptr) {
      pending_operation* next = list->next_;
      list->drop_at_shutdown();  // false: a step queued on this context owns it
      list = next;
    }
  }

  std::mutex mutex_;
  pending_operation* head_ = nullptr;
  bool shut_down_ = false;
};

// The registry of an executor's execution context, or null for an
// executor that names none (use_future's, which runs on the system
// context, which lives as long as the program).
template <class Executor>
pending_operations* registry_of(const Executor& ex) {
  if constexpr (asio::can_query<const Executor&, const asio::execution::context_t&>::value) {
    return &asio::use_service<pending_operations>(asio::query(ex, asio::execution::context));
  } else if constexpr (requires { ex.context(); }) {
    return &asio::use_service<pending_operations>(ex.context());
  } else {
    return nullptr;
  }
}

// An operation started from a completion token. It owns itself from start()
// until its completion, posted to the handler's executor, deletes it.
template <class Kind, class Handler>
class asio_operation final : private held<typename Kind::state>,
                             public async_operation<typename Kind::steps>,
                             private pending_operation {
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
      // Finished at once: the initiating coroutine (or callback) is about to
      // return to its executor, so its completion runs next on this thread
      // (defer, a continuation), not on another.
      self->queue(&asio_operation::complete, /*continuation=*/true);
      return;
    }
    // Pending from here: a claim only queues proceed() on the executor.
    self->registry_ = registry_of(self->work_.get_executor());
    if (self->registry_ != nullptr) self->registry_->add(*self);
    auto slot = asio::get_associated_cancellation_slot(self->handler_);
    if (slot.is_connected()) {
      // Connected inside the arming window: a cancellation emitted at once
      // is found by settle().
      self->begin_arming();
      slot.template emplace<canceller>(self);
    }
    if (self->settle()) self->queue(&asio_operation::complete, /*continuation=*/true);
  }

 private:
  template <class State, class StepsTag, class... Args>
  asio_operation(Handler&& handler, State&& state, StepsTag which, Args&&... steps_args)
      : holder(std::forward<State>(state)),
        op_base(&finish, /*deferred=*/true, which, std::forward<Args>(steps_args)...,
                this->holder::value),
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

  // A step queued on the handler's executor; it owns the operation, so a
  // context destroyed with the step still queued destroys the operation too.
  class queued_step {
   public:
    using step_fn = void (asio_operation::*)();
    queued_step(asio_operation* op, step_fn fn) noexcept : op_(op), fn_(fn) {}
    queued_step(queued_step&& other) noexcept
        : op_(std::exchange(other.op_, nullptr)), fn_(other.fn_) {}
    queued_step& operator=(queued_step&&) = delete;
    ~queued_step() {
      if (op_ != nullptr) op_->destroy();
    }
    void operator()() { (std::exchange(op_, nullptr)->*fn_)(); }

   private:
    asio_operation* op_;
    step_fn fn_;
  };

  // A step finished by a claimer (another thread, or a coroutine that may
  // go on to block) is posted, so any thread of the executor may run it; one
  // finished at initiation is deferred (a continuation of the caller).
  void queue(typename queued_step::step_fn fn, bool continuation = false) noexcept {
    if (continuation) {
      asio::defer(work_.get_executor(), queued_step(this, fn));
    } else {
      asio::post(work_.get_executor(), queued_step(this, fn));
    }
  }

  // The claim's callback (the operation is deferred): carry on on the
  // handler's executor, where cancellations are emitted, and complete in
  // that same turn, so no cancellation falls between taking a message and
  // handing it to the handler.
  static void finish(op_base& op) noexcept {
    static_cast<asio_operation&>(op).queue(&asio_operation::proceed_step);
  }

  void proceed_step() {
    if (this->proceed()) complete();  // else pending again
  }

  void complete() {
    if (registry_ != nullptr) registry_->remove(*this);
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    std::exception_ptr error = this->error();
    // A receive cancelled after it took its message gives it back.
    auto result = Kind::make(this->holder::value, *this);
    Handler handler = std::move(handler_);
    auto work = std::move(work_);  // outstanding until the handler ran
    delete this;
    if (error) std::rethrow_exception(error);  // out of the executor's run(), as Asio does
    std::move(handler)(std::move(result));
  }

  // Destroyed without completing: its context is going away.
  void destroy() noexcept {
    if (registry_ != nullptr) registry_->remove(*this);
    // What the operation had achieved is undone (a reserved slot given back).
    if constexpr (requires { Kind::dropped(this->holder::value, *this); }) {
      Kind::dropped(this->holder::value, *this);
    }
    this->discard();
    delete this;
  }

  bool drop_at_shutdown() noexcept override {
    if (!this->abandon()) return false;
    delete this;
    return true;
  }

  Handler handler_;
  asio::executor_work_guard<executor_type> work_;
  // Set once pending (a finished-at-once operation never needs it); null:
  // the context lives as long as the program.
  pending_operations* registry_ = nullptr;
};

// What each kind of operation holds and yields.
template <class T, class Steps>
struct asio_recv_kind {
  using state = std::expected<T, recv_timeout_error>;
  using steps = Steps;
  static state make(state& s, async_operation<Steps>& op) {
    if (op.result() == wait_result::cancelled) {
      s.error() = recv_timeout_error::cancelled;
    } else if (s.has_value() && op.cancel_requested()) {
      // Taken, but cancelled before this turn: the handler's `||` would drop
      // it. The next receive gets it first.
      op.steps().visit([&](auto& st) {
        if constexpr (requires { st.give_back(std::move(*s)); }) st.give_back(std::move(*s));
      });
      std::destroy_at(&s);  // re-created in place: T need not be assignable
      std::construct_at(&s, std::unexpect, recv_timeout_error::cancelled);
    }
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

// A reservation: the operation holds a copy of the sender, which the permit
// adopts. A permit reserved before a cancellation came is still delivered:
// a handler that drops it (the losing side of `||`) gives the slot back.
template <class T, class Steps>
struct asio_reserve_kind {
  using state = sync_sender<T>;
  using steps = Steps;
  static std::expected<permit<T>, reserve_timeout_error> make(state& tx,
                                                              async_operation<Steps>& op) {
    if (op.steps().visit([](auto& s) { return s.reserved(); })) {
      return handle_access::make<permit<T>>(std::move(tx));
    }
    return std::unexpected(op.result() == wait_result::cancelled
                               ? reserve_timeout_error::cancelled
                               : reserve_timeout_error::disconnected);
  }
  // The operation is destroyed with its handler never called (its context
  // went away): a slot it reserved goes back, through the permit's destructor.
  static void dropped(state& tx, async_operation<Steps>& op) noexcept { (void)make(tx, op); }
};

// A select over a frame (a static select's arms, or a selector's): the
// steps are built over the frame the operation holds.
template <class Frame>
struct frame_select_steps : select_steps {
  frame_select_steps(std::in_place_t, bool fair, Frame& f) noexcept
      : select_steps(f.arms(), f.entries(), f.order(), fair) {}
};

// The winning arm's outcome (a static select: the variant; a selector: the
// index). A receive arm that took its message before a cancellation came
// gives it back, as a single receive does; a send that happened stays done.
template <class Frame>
struct asio_select_kind {
  using state = Frame;
  using steps = frame_select_steps<Frame>;
  static std::expected<typename Frame::result_type, select_timeout_error> make(
      Frame& f, async_operation<steps>& op) {
    // (An attempt that threw is rethrown instead of this result.)
    if (op.result() == wait_result::cancelled || op.error()) {
      return std::unexpected(select_timeout_error::cancelled);
    }
    const std::size_t k = op.steps().winner();
    if (op.cancel_requested() && f.arms()[k]->give_back()) {
      return std::unexpected(select_timeout_error::cancelled);
    }
    return f.take(k);
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
  asio::post(ex, [h = std::move(handler), r = std::forward<R>(result)]() mutable {
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

  // oneshot_receiver<T>::async_recv(token)
  template <class T, class Tok>
  static auto recv(oneshot_receiver<T>& rx, Tok&& token) {
    using result = std::expected<T, recv_timeout_error>;
    return asio::async_initiate<Tok, void(result)>(
        [](auto handler, oneshot_receiver<T>* r) { start_oneshot_recv(std::move(handler), *r); },
        token, &rx);
  }

  // sync_sender<T>::async_reserve(token)
  template <class T, class Tok>
  static auto reserve(const sync_sender<T>& tx, Tok&& token) {
    using result = std::expected<permit<T>, reserve_timeout_error>;
    return asio::async_initiate<Tok, void(result)>(
        [](auto handler, const sync_sender<T>* s) { start_reserve(std::move(handler), *s); },
        token, &tx);
  }

  // receiver<T>::async_recv_many(out, limit, token): an async_recv whose
  // handler, on the same executor turn, appends the message and drains what
  // else is queued (receiver::append_and_drain). The wrapper carries the
  // user handler's executor, cancellation slot and allocator.
  template <class T, class C, class Tok>
  static auto recv_many(receiver<T>& rx, C& out, std::size_t limit, Tok&& token) {
    using result = std::expected<std::size_t, recv_timeout_error>;
    return asio::async_initiate<Tok, void(result)>(
        [](auto handler, receiver<T>* r, C* o, std::size_t lim) {
          if (lim == 0) {
            post_result(std::move(handler), result(0));
            return;
          }
          auto ex = asio::get_associated_executor(handler, asio::system_executor());
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto alloc = asio::get_associated_allocator(handler);
          auto then = [h = std::move(handler), r, o, lim](std::expected<T, recv_timeout_error> first) mutable {
            if (!first) {
              std::move(h)(first.error() == recv_timeout_error::cancelled
                               ? result(std::unexpect, recv_timeout_error::cancelled)
                               : result(0));
              return;
            }
            std::move(h)(result(r->append_and_drain(*o, std::move(*first), lim)));
          };
          start_recv(asio::bind_executor(
                         ex, asio::bind_cancellation_slot(
                                 slot, asio::bind_allocator(alloc, std::move(then)))),
                     *r);
        },
        token, &rx, &out, limit);
  }

  // sluice::async_select(token, arms...): the arms' cases are copied into
  // the initiation (they refer to the handles), the frame is built in the
  // operation.
  template <class Tok, class... Cases>
  static auto select(bool fair, Tok&& token, const Cases&... cases) {
    using frame = select_frame<Cases...>;
    using result = std::expected<typename frame::result_type, select_timeout_error>;
    return asio::async_initiate<Tok, void(result)>(
        [](auto handler, bool f, std::tuple<Cases...> cs) {
          using op = asio_operation<asio_select_kind<frame>, std::decay_t<decltype(handler)>>;
          op::start(std::move(handler), std::move(cs), std::in_place, f);
        },
        token, fair, std::tuple<Cases...>(cases...));
  }

  // selector::async_select(token): over the selector's arms, rebuilt when
  // the operation starts.
  template <class Tok>
  static auto select_over(selector& sel, bool fair, Tok&& token) {
    using result = std::expected<std::size_t, select_timeout_error>;
    return asio::async_initiate<Tok, void(result)>(
        [](auto handler, selector* s, bool f) {
          if (s->empty()) {
            throw std::invalid_argument("sluice::selector: async_select() without arms");
          }
          using op = asio_operation<asio_select_kind<dynamic_select_state>,
                                    std::decay_t<decltype(handler)>>;
          const dynamic_frame fr = s->rebuild();
          op::start(std::move(handler), dynamic_select_state{fr, s->index_of_}, std::in_place, f);
        },
        token, &sel, fair);
  }

  // async_closed(token) on either sender, and on a oneshot_sender
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

  template <class Handler, class T>
  static void start_reserve(Handler&& handler, const sync_sender<T>& tx) {
    using flavor_steps = any_steps<stateless_steps<typename array_channel<T>::reserve_steps>,
                                   stateless_steps<typename zero_channel<T>::reserve_steps>,
                                   stateless_no_channel_steps>;
    using op = asio_operation<asio_reserve_kind<T, flavor_steps>, std::decay_t<Handler>>;
    const auto& ref = handle_access::ref(tx);
    if (ref.empty()) {
      op::start(std::move(handler), sync_sender<T>(),
                std::in_place_type<stateless_no_channel_steps>);
      return;
    }
    ref.visit([&](auto& c) {
      using flavor = std::remove_reference_t<decltype(c.chan())>;
      op::start(std::move(handler), sync_sender<T>(tx),
                std::in_place_type<stateless_steps<typename flavor::reserve_steps>>, c.chan());
    });
  }

  template <class Handler, class Sender>
  static void start_closed(Handler&& handler, const Sender& tx) {
    // The flavors this sender kind may hold, read off its reference type.
    start_closed_on(std::move(handler), handle_access::ref(tx));
  }

  // A oneshot's receive: the same operation on the oneshot's steps, which
  // take the same (state, result, if_empty, if_disconnected) arguments.
  template <class Handler, class T>
  static void start_oneshot_recv(Handler&& handler, oneshot_receiver<T>& rx) {
    using oneshot_steps =
        recv_adapter<typename oneshot_state<T>::template recv_steps<recv_timeout_error>>;
    using op = asio_operation<asio_recv_kind<T, any_steps<oneshot_steps, recv_no_channel>>,
                              std::decay_t<Handler>>;
    using state = std::expected<T, recv_timeout_error>;
    oneshot_state<T>* st = oneshot_access::state(rx);
    if (st == nullptr) {
      op::start(std::move(handler), state(std::unexpect, recv_timeout_error::disconnected),
                std::in_place_type<recv_no_channel>);
      return;
    }
    op::start(std::move(handler), state(std::unexpect, recv_timeout_error::disconnected),
              std::in_place_type<oneshot_steps>, *st);
  }

  template <class Handler, class T>
  static void start_closed(Handler&& handler, const oneshot_sender<T>& tx) {
    using oneshot_steps = stateless_steps<typename oneshot_state<T>::closed_steps>;
    using kind = asio_closed_kind<any_steps<oneshot_steps, stateless_no_channel_steps>>;
    using op = asio_operation<kind, std::decay_t<Handler>>;
    oneshot_state<T>* st = oneshot_access::state(tx);
    if (st == nullptr) {
      op::start(std::move(handler), typename kind::state{},
                std::in_place_type<stateless_no_channel_steps>);
      return;
    }
    op::start(std::move(handler), typename kind::state{}, std::in_place_type<oneshot_steps>, *st);
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
