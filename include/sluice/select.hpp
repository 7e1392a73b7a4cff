// sluice/select.hpp - waiting on several channel operations at once and
// completing exactly one of them: Go's select, crossbeam's select!, for
// threads and coroutines alike, over channels of any message type and
// flavor, oneshot receivers and timers.
//
//   int v = 42;
//   auto r = sluice::select(sluice::recv_from(rx_a),      // arm 0
//                           sluice::recv_from(rx_b),      // arm 1
//                           sluice::send_to(tx_c, v));    // arm 2
//   switch (r.index()) { ... std::get<0>(r) ... }
//
// The result is a std::variant with one alternative per arm, in written
// order (alternatives of equal type are told apart by index()): a receive
// arm yields std::expected<T, recv_error> (the error: disconnected and
// empty), a send arm std::expected<void, send_error<T>> (the error hands
// the value back), a timer arm the time its tick was due.
//
// Invariants:
// - Exactly one arm completes per select; every other arm consumed and sent
//   nothing. A send arm's value stays in the caller's variable unless that
//   arm sent it (several send arms may name one variable).
// - A receive arm on a disconnected, empty channel and a send arm on a
//   disconnected channel are ready: they complete with their error.
// - Fair by default: among arms ready at once, each is equally likely.
//   With `sluice::biased` first, the earliest written ready arm wins.
// - Every form waits through the channels' one waiting protocol
//   (detail/select/select_steps.hpp): a thread parks, a coroutine suspends,
//   and whoever makes an arm ready wakes it.
#pragma once

#include <sluice/detail/async/awaitables.hpp>
#include <sluice/detail/select/select_steps.hpp>
#include <sluice/detail/select/timer_steps.hpp>
#include <sluice/detail/waiting/any_steps.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/thread_wait.hpp>
#include <sluice/error.hpp>
#include <sluice/oneshot.hpp>
#include <sluice/receiver.hpp>
#include <sluice/resume_on.hpp>
#include <sluice/sender.hpp>
#include <sluice/timer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace sluice {

/// Tag for a select that tries its arms in written order (priorities)
/// instead of at random: `sluice::select(sluice::biased, ...)`.
struct biased_t {
  explicit biased_t() = default;
};
inline constexpr biased_t biased{};

namespace detail {

// The arm states: one operation's steps and its outcome, built in the
// select's own frame from a case (below).

template <class T>
using receiver_select_steps =
    any_steps<typename list_channel<T>::template recv_steps<recv_error>,
              typename array_channel<T>::template recv_steps<recv_error>,
              typename zero_channel<T>::template recv_steps<recv_error>, no_channel_steps>;

template <class T>
class receiver_arm final : private held<std::expected<T, recv_error>>,
                           public steps_arm<receiver_select_steps<T>> {
  using holder = held<std::expected<T, recv_error>>;
  using steps_type = receiver_select_steps<T>;

 public:
  using source = receiver<T>;
  using outcome_type = std::expected<T, recv_error>;

  explicit receiver_arm(receiver<T>& rx)
      : holder(std::unexpect, recv_error{}),
        steps_arm<steps_type>(std::in_place, [&]() -> steps_type {
          const auto& ref = handle_access::ref(rx);
          if (ref.empty()) return steps_type(std::in_place_type<no_channel_steps>);
          return ref.visit([&](auto& c) {
            using flavor = std::remove_reference_t<decltype(c.chan())>;
            return steps_type(std::in_place_type<typename flavor::template recv_steps<recv_error>>,
                              c.chan(), this->holder::value, recv_error{}, recv_error{});
          });
        }) {}

  outcome_type take() { return std::move(this->holder::value); }

  bool give_back() noexcept override {
    outcome_type& v = this->holder::value;
    if (!v.has_value()) return false;
    this->steps().visit([&](auto& st) {
      if constexpr (requires { st.give_back(std::move(*v)); }) st.give_back(std::move(*v));
    });
    std::destroy_at(&v);  // re-created in place: T need not be assignable
    std::construct_at(&v, std::unexpect, recv_error{});
    return true;
  }
};

template <class T>
using oneshot_select_steps =
    any_steps<typename oneshot_state<T>::template recv_steps<recv_error>, no_channel_steps>;

template <class T>
class oneshot_arm final : private held<std::expected<T, recv_error>>,
                          public steps_arm<oneshot_select_steps<T>> {
  using holder = held<std::expected<T, recv_error>>;
  using steps_type = oneshot_select_steps<T>;

 public:
  using source = oneshot_receiver<T>;
  using outcome_type = std::expected<T, recv_error>;

  explicit oneshot_arm(oneshot_receiver<T>& rx)
      : holder(std::unexpect, recv_error{}),
        steps_arm<steps_type>(std::in_place, [&]() -> steps_type {
          oneshot_state<T>* st = oneshot_access::state(rx);
          if (st == nullptr) return steps_type(std::in_place_type<no_channel_steps>);
          return steps_type(
              std::in_place_type<typename oneshot_state<T>::template recv_steps<recv_error>>, *st,
              this->holder::value, recv_error{}, recv_error{});
        }) {}

  outcome_type take() { return std::move(this->holder::value); }

  bool give_back() noexcept override {
    outcome_type& v = this->holder::value;
    if (!v.has_value()) return false;
    this->steps().visit([&](auto& st) {
      if constexpr (requires { st.give_back(std::move(*v)); }) st.give_back(std::move(*v));
    });
    std::destroy_at(&v);  // re-created in place: T need not be assignable
    std::construct_at(&v, std::unexpect, recv_error{});
    return true;
  }
};

class timer_arm final : private held<steady::time_point>, public steps_arm<timer_steps> {
  using holder = held<steady::time_point>;

 public:
  using source = timer;
  using outcome_type = steady::time_point;

  explicit timer_arm(timer& t)
      : holder(),
        steps_arm<timer_steps>(std::in_place, [&] {
          return timer_steps(timer_access::schedule(t), this->holder::value);
        }) {}

  outcome_type take() noexcept { return this->holder::value; }
};

// A send arm over Sender (sender<T> or sync_sender<T>), whose flavors'
// send steps are Steps.
template <class Sender, class T, class Steps>
class send_arm final : public steps_arm<Steps> {
 public:
  using source = const Sender;
  using outcome_type = std::expected<void, send_error<T>>;

  send_arm(const Sender& tx, T& value)
      : steps_arm<Steps>(std::in_place,
                         [&]() -> Steps {
                           const auto& ref = handle_access::ref(tx);
                           if (ref.empty()) return Steps(std::in_place_type<no_channel_steps>);
                           return ref.visit([&](auto& c) {
                             using flavor = std::remove_reference_t<decltype(c.chan())>;
                             return Steps(std::in_place_type<typename flavor::send_steps>,
                                          c.chan(), value);
                           });
                         }),
        value_(&value) {}

  outcome_type take() {
    if (this->steps().visit([](auto& s) { return s.sent(); })) return {};
    return std::unexpected(send_error<T>{std::move(*value_)});
  }

 private:
  T* value_;
};

template <class T>
using sender_arm =
    send_arm<sender<T>, T, any_steps<typename list_channel<T>::send_steps, no_channel_steps>>;
template <class T>
using sync_sender_arm =
    send_arm<sync_sender<T>, T,
             any_steps<typename array_channel<T>::send_steps,
                       typename zero_channel<T>::send_steps, no_channel_steps>>;

}  // namespace detail

/// One arm of a select, as recv_from() and send_to() make it: it refers to
/// the handle (and the value to send), which must outlive the select.
template <class State, class... Refs>
class select_case {
 public:
  using state_type = State;
  using outcome_type = typename State::outcome_type;

  explicit select_case(Refs&... refs) noexcept : refs_(refs...) {}

  /// The same arm, taking part only if `enabled` (tokio's `, if cond`
  /// precondition; Go's nil channel): a disabled arm is never ready and
  /// never chosen, so a select can stop waiting on a channel it is done
  /// with without changing shape.
  [[nodiscard]] select_case only_if(bool enabled) const noexcept {
    select_case c = *this;
    c.enabled_ = enabled;
    return c;
  }
  [[nodiscard]] bool enabled() const noexcept { return enabled_; }

  // Builds the arm's state in place (the select's frame).
  [[nodiscard]] State make() const {
    return std::apply([](Refs&... r) { return State(r...); }, refs_);
  }

 private:
  std::tuple<Refs&...> refs_;
  bool enabled_ = true;
};

/// recv_from(rx) - a select arm that receives from `rx` (a receiver, a
/// oneshot_receiver or a timer). Yields std::expected<T, recv_error>
/// (disconnected: the channel is empty and disconnected), or for a timer
/// the steady_clock time its tick was due.
template <class T>
[[nodiscard]] auto recv_from(receiver<T>& rx) noexcept {
  return select_case<detail::receiver_arm<T>, receiver<T>>(rx);
}
template <class T>
[[nodiscard]] auto recv_from(oneshot_receiver<T>& rx) noexcept {
  return select_case<detail::oneshot_arm<T>, oneshot_receiver<T>>(rx);
}
[[nodiscard]] inline auto recv_from(timer& t) noexcept {
  return select_case<detail::timer_arm, timer>(t);
}

/// send_to(tx, value) - a select arm that sends `value` on `tx`. `value` is
/// moved from only if this arm sends it; otherwise it stays the caller's
/// (arms that lose, a select that times out or is cancelled). Yields
/// std::expected<void, send_error<T>>, whose error (the receiver is gone)
/// holds the value. Several send arms may name the same variable.
template <class T>
[[nodiscard]] auto send_to(const sender<T>& tx, std::type_identity_t<T>& value) noexcept {
  return select_case<detail::sender_arm<T>, const sender<T>, T>(tx, value);
}
template <class T>
[[nodiscard]] auto send_to(const sync_sender<T>& tx, std::type_identity_t<T>& value) noexcept {
  return select_case<detail::sync_sender_arm<T>, const sync_sender<T>, T>(tx, value);
}
// A temporary would be destroyed if its arm lost: name a variable.
template <class T>
auto send_to(const sender<T>&, std::type_identity_t<T>&&) = delete;
template <class T>
auto send_to(const sync_sender<T>&, std::type_identity_t<T>&&) = delete;

namespace detail {

template <class C>
concept select_case_type = requires { typename C::state_type; typename C::outcome_type; };

template <class... Cases>
using select_variant = std::variant<typename Cases::outcome_type...>;

// Arm states built in place from their cases (they are not movable: the
// steps point into them), reachable by index.
template <std::size_t I, class State>
struct arm_slot {
  template <class Case>
  explicit arm_slot(const Case& c) : state(c.make()) {}
  State state;
};

template <class Indices, class... States>
struct arm_slots;
template <std::size_t... I, class... States>
struct arm_slots<std::index_sequence<I...>, States...> : arm_slot<I, States>... {
  template <class... Cases>
  explicit arm_slots(const Cases&... cases) : arm_slot<I, States>(cases)... {}

  template <std::size_t K>
  auto& get() noexcept {
    using slot_state = std::tuple_element_t<K, std::tuple<States...>>;
    return static_cast<arm_slot<K, slot_state>&>(*this).state;
  }
  std::array<select_arm*, sizeof...(States)> pointers() noexcept {
    return {&get<I>()...};
  }
};

// Stands in for an arm disabled by only_if(false): never ready, registers
// nowhere. Stateless, so one instance serves every select.
class disabled_arm final : public select_arm {
 public:
  static select_arm* instance() noexcept {
    static disabled_arm arm;
    return &arm;
  }
  bool attempt() override { return false; }
  readiness enlist(wait_entry&) noexcept override { return readiness::wait; }
  readiness recheck() noexcept override { return readiness::wait; }
  void delist(wait_entry&) noexcept override {}
  void completed() noexcept override {}
  void relay() noexcept override {}
  [[nodiscard]] bool hands_off() const noexcept override { return false; }
  [[nodiscard]] bool spins() const noexcept override { return false; }

 private:
  disabled_arm() = default;
};

// A static select's frame: its arms' states and what the steps point at.
template <class... Cases>
class select_frame {
  static constexpr std::size_t n = sizeof...(Cases);
  using states_type =
      arm_slots<std::make_index_sequence<n>, typename Cases::state_type...>;

 public:
  using result_type = select_variant<Cases...>;

  explicit select_frame(const Cases&... cases) : states_(cases...), arms_(states_.pointers()) {
    const std::array<bool, n> enabled{cases.enabled()...};
    for (std::size_t i = 0; i < n; ++i) {
      if (!enabled[i]) arms_[i] = disabled_arm::instance();
      any_enabled_ = any_enabled_ || enabled[i];
    }
  }
  explicit select_frame(const std::tuple<Cases...>& cases)
      : select_frame(cases, std::make_index_sequence<n>{}) {}

  select_frame(const select_frame&) = delete;
  select_frame& operator=(const select_frame&) = delete;

  [[nodiscard]] std::span<select_arm* const> arms() const noexcept { return arms_; }
  // Whether some arm can ever complete (not every one disabled).
  [[nodiscard]] bool any_enabled() const noexcept { return any_enabled_; }
  [[nodiscard]] std::span<wait_entry> entries() noexcept { return entries_; }
  [[nodiscard]] std::span<std::uint32_t> order() noexcept { return order_; }

  // The outcome of arm `k`, the one that completed.
  result_type take(std::size_t k) { return takers<>(std::make_index_sequence<n>{})[k](states_); }

 private:
  template <std::size_t I>
  static result_type take_one(states_type& s) {
    return result_type(std::in_place_index<I>, s.template get<I>().take());
  }
  template <class = void, std::size_t... I>
  static constexpr auto takers(std::index_sequence<I...>) noexcept {
    return std::array<result_type (*)(states_type&), n>{&take_one<I>...};
  }

  template <std::size_t... I>
  select_frame(const std::tuple<Cases...>& cases, std::index_sequence<I...>)
      : select_frame(std::get<I>(cases)...) {}

  states_type states_;
  std::array<select_arm*, n> arms_;
  std::array<wait_entry, n> entries_{};
  std::array<std::uint32_t, n> order_{};
  bool any_enabled_ = false;
};

// Drives a select on the calling thread; `d` passed and one attempt failed:
// timeout.
template <class Frame>
std::expected<std::size_t, select_timeout_error> select_on_thread(Frame& frame, bool fair,
                                                                  const deadline& d,
                                                                  const std::stop_token& stop) {
  select_steps st(frame.arms(), frame.entries(), frame.order(), fair);
  if (st.attempt()) return st.winner();
  if (d.has_passed()) return std::unexpected(select_timeout_error::timeout);
  switch (wait_on(st, d, stop)) {
    case wait_result::done:
      break;
    case wait_result::timeout:
      return std::unexpected(select_timeout_error::timeout);
    case wait_result::cancelled:
      return std::unexpected(select_timeout_error::cancelled);
  }
  return st.winner();
}

template <class... Cases>
std::expected<select_variant<Cases...>, select_timeout_error> select_blocking(
    bool fair, const deadline& d, const std::stop_token& stop, const Cases&... cases) {
  static_assert(sizeof...(Cases) > 0, "a select needs at least one arm");
  select_frame<Cases...> frame(cases...);
  if (!frame.any_enabled() && d.is_never() && !stop.stop_possible()) {
    throw std::invalid_argument("sluice::select: every arm is disabled; it would wait forever");
  }
  const auto k = select_on_thread(frame, fair, d, stop);
  if (!k) return std::unexpected(k.error());
  return frame.take(*k);
}

// co_await sluice::async_select(...): the callback driver over a frame.
template <class Frame, class Resumption, bool Cancellable>
class select_awaitable : private held<Frame>, public awaitable_operation<select_steps, Resumption> {
  using holder = held<Frame>;
  using base = awaitable_operation<select_steps, Resumption>;

 public:
  template <class... Cases>
  select_awaitable(Resumption resumption, std::stop_token stop, bool fair, const Cases&... cases)
      : holder(cases...),
        base(std::move(resumption), std::move(stop), frame().arms(), frame().entries(),
             frame().order(), fair) {}

  auto await_resume() {
    this->rethrow_if_failed();
    using result = typename Frame::result_type;
    if constexpr (Cancellable) {
      if (this->cancelled()) {
        return std::expected<result, select_timeout_error>(std::unexpect,
                                                           select_timeout_error::cancelled);
      }
      return std::expected<result, select_timeout_error>(frame().take(this->steps().winner()));
    } else {
      return frame().take(this->steps().winner());
    }
  }

 private:
  Frame& frame() noexcept { return this->holder::value; }
};

template <class R, bool Cancellable, class... Cases>
auto make_select_awaitable(R where, std::stop_token stop, bool fair, const Cases&... cases) {
  static_assert(sizeof...(Cases) > 0, "a select needs at least one arm");
  if (!Cancellable && !(cases.enabled() || ...)) {
    throw std::invalid_argument(
        "sluice::async_select: every arm is disabled; it would wait forever");
  }
  return select_awaitable<select_frame<Cases...>, R, Cancellable>(std::move(where),
                                                                  std::move(stop), fair, cases...);
}

}  // namespace detail

// --- blocking -------------------------------------------------------------------

/// select(arms...) - waits until one arm can complete, completes it, and
/// returns its outcome (the variant's index is the arm's position).
template <detail::select_case_type... Cases>
detail::select_variant<Cases...> select(const Cases&... cases) {
  return *detail::select_blocking(true, detail::deadline::never(), {}, cases...);
}
/// select(biased, arms...) - as select(), preferring earlier arms.
template <detail::select_case_type... Cases>
detail::select_variant<Cases...> select(biased_t, const Cases&... cases) {
  return *detail::select_blocking(false, detail::deadline::never(), {}, cases...);
}

/// select(stop, arms...) - as select(), and a stop request on `stop` ends
/// the wait with select_timeout_error::cancelled (no arm completed). An arm
/// that can complete without waiting completes even if stop was requested.
template <detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select(
    const std::stop_token& stop, const Cases&... cases) {
  return detail::select_blocking(true, detail::deadline::never(), stop, cases...);
}
template <detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select(
    biased_t, const std::stop_token& stop, const Cases&... cases) {
  return detail::select_blocking(false, detail::deadline::never(), stop, cases...);
}

/// try_select(arms...) - completes an arm that is ready now, without
/// waiting; try_select_error if none is (a Go select with a default arm).
template <detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, try_select_error> try_select(
    const Cases&... cases) {
  auto r = detail::select_blocking(true, detail::deadline::at({}), {}, cases...);
  if (!r) return std::unexpected(try_select_error{});
  return std::move(*r);
}
template <detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, try_select_error> try_select(
    biased_t, const Cases&... cases) {
  auto r = detail::select_blocking(false, detail::deadline::at({}), {}, cases...);
  if (!r) return std::unexpected(try_select_error{});
  return std::move(*r);
}

/// select_timeout(d, [stop,] arms...) - as select(), waiting at most `d`
/// (zero: one try; duration::max(): no limit); select_timeout_error::timeout
/// if no arm completed by then.
template <class Rep, class Period, detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select_timeout(
    std::chrono::duration<Rep, Period> d, const Cases&... cases) {
  return detail::select_blocking(true, detail::deadline::after(d), {}, cases...);
}
template <class Rep, class Period, detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select_timeout(
    std::chrono::duration<Rep, Period> d, const std::stop_token& stop, const Cases&... cases) {
  return detail::select_blocking(true, detail::deadline::after(d), stop, cases...);
}
template <class Rep, class Period, detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select_timeout(
    biased_t, std::chrono::duration<Rep, Period> d, const Cases&... cases) {
  return detail::select_blocking(false, detail::deadline::after(d), {}, cases...);
}
template <class Rep, class Period, detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select_timeout(
    biased_t, std::chrono::duration<Rep, Period> d, const std::stop_token& stop,
    const Cases&... cases) {
  return detail::select_blocking(false, detail::deadline::after(d), stop, cases...);
}

/// select_deadline(tp, [stop,] arms...) - as select_timeout(), until the
/// time point `tp` of any clock (a clock other than steady_clock is
/// followed, as by recv_deadline()).
template <class Clock, class Duration, detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select_deadline(
    const std::chrono::time_point<Clock, Duration>& tp, const Cases&... cases) {
  return detail::select_blocking(true, detail::deadline::until(tp), {}, cases...);
}
template <class Clock, class Duration, detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select_deadline(
    const std::chrono::time_point<Clock, Duration>& tp, const std::stop_token& stop,
    const Cases&... cases) {
  return detail::select_blocking(true, detail::deadline::until(tp), stop, cases...);
}
template <class Clock, class Duration, detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select_deadline(
    biased_t, const std::chrono::time_point<Clock, Duration>& tp, const Cases&... cases) {
  return detail::select_blocking(false, detail::deadline::until(tp), {}, cases...);
}
template <class Clock, class Duration, detail::select_case_type... Cases>
std::expected<detail::select_variant<Cases...>, select_timeout_error> select_deadline(
    biased_t, const std::chrono::time_point<Clock, Duration>& tp, const std::stop_token& stop,
    const Cases&... cases) {
  return detail::select_blocking(false, detail::deadline::until(tp), stop, cases...);
}

// --- coroutines -----------------------------------------------------------------

/// async_select(arms...) - `co_await sluice::async_select(...)`: select()
/// for coroutines; the coroutine suspends instead of the thread, and is
/// resumed by whoever makes an arm ready (inline on that thread, as for
/// async_recv()). For a time limit, add a timer arm (`recv_from(t)` of an
/// after(d)). The arms' handles must outlive the co_await.
template <detail::select_case_type... Cases>
[[nodiscard]] auto async_select(const Cases&... cases) {
  return detail::make_select_awaitable<detail::resume_inline, false>({}, {}, true, cases...);
}
template <detail::select_case_type... Cases>
[[nodiscard]] auto async_select(biased_t, const Cases&... cases) {
  return detail::make_select_awaitable<detail::resume_inline, false>({}, {}, false, cases...);
}
/// async_select(stop, arms...) - as async_select(), yielding
/// std::expected<variant, select_timeout_error>: cancelled by a stop
/// request on `stop` unless an arm completed first.
template <detail::select_case_type... Cases>
[[nodiscard]] auto async_select(std::stop_token stop, const Cases&... cases) {
  return detail::make_select_awaitable<detail::resume_inline, true>({}, std::move(stop), true,
                                                                     cases...);
}
template <detail::select_case_type... Cases>
[[nodiscard]] auto async_select(biased_t, std::stop_token stop, const Cases&... cases) {
  return detail::make_select_awaitable<detail::resume_inline, true>({}, std::move(stop), false,
                                                                     cases...);
}
/// async_select(resume_on(s), [stop,] arms...) - the same, resuming the
/// coroutine through the scheduler `s` (see resume_on.hpp).
template <class S, detail::select_case_type... Cases>
[[nodiscard]] auto async_select(resume_on_t<S> where, const Cases&... cases) {
  return detail::make_select_awaitable<resume_on_t<S>, false>(std::move(where), {}, true,
                                                              cases...);
}
template <class S, detail::select_case_type... Cases>
[[nodiscard]] auto async_select(resume_on_t<S> where, std::stop_token stop,
                                const Cases&... cases) {
  return detail::make_select_awaitable<resume_on_t<S>, true>(std::move(where), std::move(stop),
                                                             true, cases...);
}

/// async_select(token, arms...) and async_select(biased, token, arms...) -
/// with <sluice/asio.hpp>: the Asio form, completing with
/// std::expected<variant, select_timeout_error> (see asio.hpp). The token
/// comes first: the arms are the variadic tail.
template <class Token, detail::select_case_type... Cases>
  requires(detail::completion_token<Token> && !detail::select_case_type<std::decay_t<Token>> &&
           !std::is_same_v<std::decay_t<Token>, biased_t>)
auto async_select(Token&& token, const Cases&... cases) {
  return detail::completion_tokens_need_sluice_asio_hpp<Token>::select(
      true, std::forward<Token>(token), cases...);
}
template <class Token, detail::select_case_type... Cases>
  requires(detail::completion_token<Token> && !detail::select_case_type<std::decay_t<Token>>)
auto async_select(biased_t, Token&& token, const Cases&... cases) {
  return detail::completion_tokens_need_sluice_asio_hpp<Token>::select(
      false, std::forward<Token>(token), cases...);
}

}  // namespace sluice
