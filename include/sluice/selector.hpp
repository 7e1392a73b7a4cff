// sluice/selector.hpp - a select over arms added at run time (a list of
// receivers whose length is known only then): Rust's old Select/Handle,
// crossbeam's Select, Go's reflect.Select.
//
//   sluice::selector sel;
//   std::vector<sluice::select_handle<std::expected<int, sluice::recv_error>>> arms;
//   for (auto& rx : receivers) arms.push_back(sel.add(sluice::recv_from(rx)));
//   for (;;) {
//     const std::size_t k = sel.select();      // the arm that completed
//     auto msg = arms[k].take();
//   }
//
// Invariants:
// - The selector owns one state per arm, allocated once by add(); each
//   select rebuilds the states in place (fresh steps, no allocation), and
//   the completed arm's outcome stays readable through its handle until the
//   next select.
// - A select over a selector waits exactly as a static select does
//   (detail/select/select_steps.hpp): exactly one arm completes.
// - One select at a time per selector (it is a set of operations, like a
//   receiver); the handles and values its arms name must outlive it.
#pragma once

#include <sluice/select.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <new>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

class selector;

namespace detail {

// One arm of a selector: its case, and its state rebuilt per select.
class dynamic_arm {
 public:
  virtual ~dynamic_arm() = default;
  // Destroys the last select's state (if any) and builds a fresh one.
  virtual select_arm& rebuild() = 0;
};

template <class Case>
class dynamic_arm_of final : public dynamic_arm {
  using state = typename Case::state_type;

 public:
  explicit dynamic_arm_of(const Case& c) noexcept : case_(c) {}
  dynamic_arm_of(const dynamic_arm_of&) = delete;
  dynamic_arm_of& operator=(const dynamic_arm_of&) = delete;
  ~dynamic_arm_of() override { reset(); }

  select_arm& rebuild() override {
    reset();
    // Built in place from the case's prvalue: states are not movable.
    state* s = ::new (static_cast<void*>(&storage_)) state(case_.make());
    built_ = true;
    return *s;
  }

  typename Case::outcome_type take() { return current().take(); }

 private:
  state& current() noexcept { return *std::launder(reinterpret_cast<state*>(&storage_)); }
  void reset() noexcept {
    if (built_) current().~state();
    built_ = false;
  }

  Case case_;
  alignas(state) unsigned char storage_[sizeof(state)];
  bool built_ = false;
};

// A selector's frame for one select: the arms rebuilt, and what the steps
// point at (the selector's own vectors, reused from select to select).
struct dynamic_frame {
  std::span<select_arm* const> arms_view;
  std::span<wait_entry> entries_view;
  std::span<std::uint32_t> order_view;

  [[nodiscard]] std::span<select_arm* const> arms() const noexcept { return arms_view; }
  [[nodiscard]] std::span<wait_entry> entries() const noexcept { return entries_view; }
  [[nodiscard]] std::span<std::uint32_t> order() const noexcept { return order_view; }
};

// What an Asio select over a selector holds (sluice/asio.hpp): the rebuilt
// frame and the map to the user's indices; it yields the index.
struct dynamic_select_state {
  using result_type = std::size_t;
  dynamic_frame frame;
  std::span<const std::size_t> index_of;

  [[nodiscard]] std::span<select_arm* const> arms() const noexcept { return frame.arms(); }
  [[nodiscard]] std::span<wait_entry> entries() const noexcept { return frame.entries(); }
  [[nodiscard]] std::span<std::uint32_t> order() const noexcept { return frame.order(); }
  [[nodiscard]] std::size_t take(std::size_t k) const noexcept { return index_of[k]; }
};

}  // namespace detail

/// What selector::add() returns: the arm's index (what a select returns
/// when this arm completed) and access to its outcome.
template <class Outcome>
class select_handle {
 public:
  /// The arm's position: a select returns it when this arm completed.
  [[nodiscard]] std::size_t index() const noexcept { return index_; }

  /// The outcome of this arm. Precondition: the last select of its
  /// selector completed this arm, and take() was not called since.
  Outcome take() { return take_(arm_); }

 private:
  friend class selector;
  select_handle(std::size_t index, detail::dynamic_arm* arm,
                Outcome (*take_outcome)(detail::dynamic_arm*))
      : index_(index), arm_(arm), take_(take_outcome) {}

  std::size_t index_;
  detail::dynamic_arm* arm_;
  Outcome (*take_)(detail::dynamic_arm*);
};

/// A set of select arms built at run time; select() and its variants
/// complete exactly one of them and return its index.
class selector {
 public:
  selector() = default;
  selector(const selector&) = delete;
  selector& operator=(const selector&) = delete;
  selector(selector&&) noexcept = default;
  selector& operator=(selector&&) noexcept = default;
  ~selector() = default;

  /// Adds an arm (recv_from(), send_to()); its index is the number of arms
  /// added before it. Throws std::length_error beyond the most arms one
  /// select can hold (over 500 million), std::bad_alloc if out of memory.
  template <detail::select_case_type Case>
  select_handle<typename Case::outcome_type> add(const Case& c) {
    if (arms_.size() >= detail::select_steps::max_arms) {
      throw std::length_error("sluice::selector: too many arms");
    }
    using arm = detail::dynamic_arm_of<Case>;
    auto owned = std::make_unique<arm>(c);
    arm* a = owned.get();
    // Room for one more everywhere first: then nothing below throws, and a
    // select never allocates.
    room_for_one_more(states_);
    room_for_one_more(entries_);
    room_for_one_more(order_);
    room_for_one_more(index_of_);
    room_for_one_more(removed_);
    room_for_one_more(arms_);
    arms_.push_back(std::move(owned));
    removed_.push_back(!c.enabled());  // only_if(false): added, taking no part
    if (c.enabled()) ++active_;
    arranged_ = false;
    return select_handle<typename Case::outcome_type>(
        arms_.size() - 1, a, [](detail::dynamic_arm* d) { return static_cast<arm*>(d)->take(); });
  }

  /// The number of arms added (removed ones included: indices are kept).
  [[nodiscard]] std::size_t size() const noexcept { return arms_.size(); }
  /// Whether no arm takes part any more.
  [[nodiscard]] bool empty() const noexcept { return active_ == 0; }

  /// Takes arm `index` out of later selects (a disconnected channel, as
  /// Go sets a channel variable to nil); the other arms keep their indices.
  /// Throws std::out_of_range for an index never added; removing twice is
  /// harmless.
  void remove(std::size_t index) {
    if (index >= arms_.size()) throw std::out_of_range("sluice::selector::remove: no such arm");
    if (removed_[index]) return;
    removed_[index] = true;
    --active_;
    arranged_ = false;
  }

  /// Removes every arm (handles from before are invalid).
  void clear() noexcept {
    arms_.clear();
    removed_.clear();
    active_ = 0;
    arranged_ = false;
  }

  /// Waits until one arm can complete, completes it, returns its index.
  /// Throws std::invalid_argument on a selector without arms (it would
  /// wait forever).
  std::size_t select() { return *run(true, detail::deadline::never(), {}, true); }
  std::size_t select(biased_t) { return *run(false, detail::deadline::never(), {}, true); }

  /// As select(); a stop request ends the wait with cancelled.
  std::expected<std::size_t, select_timeout_error> select(const std::stop_token& stop) {
    return run(true, detail::deadline::never(), stop, true);
  }
  std::expected<std::size_t, select_timeout_error> select(biased_t, const std::stop_token& stop) {
    return run(false, detail::deadline::never(), stop, true);
  }

  /// Completes an arm that is ready now, or try_select_error.
  std::expected<std::size_t, try_select_error> try_select() { return try_run(true); }
  std::expected<std::size_t, try_select_error> try_select(biased_t) { return try_run(false); }

  /// As select(), waiting at most `d`.
  template <class Rep, class Period>
  std::expected<std::size_t, select_timeout_error> select_timeout(
      std::chrono::duration<Rep, Period> d, const std::stop_token& stop = {}) {
    return run(true, detail::deadline::after(d), stop, false);
  }
  template <class Rep, class Period>
  std::expected<std::size_t, select_timeout_error> select_timeout(
      biased_t, std::chrono::duration<Rep, Period> d, const std::stop_token& stop = {}) {
    return run(false, detail::deadline::after(d), stop, false);
  }

  /// As select(), until the time point `tp` of any clock.
  template <class Clock, class Duration>
  std::expected<std::size_t, select_timeout_error> select_deadline(
      const std::chrono::time_point<Clock, Duration>& tp, const std::stop_token& stop = {}) {
    return run(true, detail::deadline::until(tp), stop, false);
  }
  template <class Clock, class Duration>
  std::expected<std::size_t, select_timeout_error> select_deadline(
      biased_t, const std::chrono::time_point<Clock, Duration>& tp,
      const std::stop_token& stop = {}) {
    return run(false, detail::deadline::until(tp), stop, false);
  }

  /// `co_await sel.async_select()`: the index of the arm that completed
  /// (the coroutine suspends; resumed as by sluice::async_select()).
  /// Throws std::invalid_argument on a selector without arms.
  [[nodiscard]] auto async_select() { return make_awaitable<detail::resume_inline, false>({}, {}, true); }
  [[nodiscard]] auto async_select(biased_t) {
    return make_awaitable<detail::resume_inline, false>({}, {}, false);
  }
  /// As async_select(), yielding std::expected<std::size_t,
  /// select_timeout_error>: cancelled by a stop request first.
  [[nodiscard]] auto async_select(std::stop_token stop) {
    return make_awaitable<detail::resume_inline, true>({}, std::move(stop), true);
  }
  [[nodiscard]] auto async_select(biased_t, std::stop_token stop) {
    return make_awaitable<detail::resume_inline, true>({}, std::move(stop), false);
  }
  template <class S>
  [[nodiscard]] auto async_select(resume_on_t<S> where) {
    return make_awaitable<resume_on_t<S>, false>(std::move(where), {}, true);
  }
  template <class S>
  [[nodiscard]] auto async_select(resume_on_t<S> where, std::stop_token stop) {
    return make_awaitable<resume_on_t<S>, true>(std::move(where), std::move(stop), true);
  }
  /// async_select(token) and async_select(biased, token) - with
  /// <sluice/asio.hpp>: the Asio form, completing with
  /// std::expected<std::size_t, select_timeout_error>.
  template <class Token>
    requires(detail::completion_token<Token> && !std::is_same_v<std::decay_t<Token>, biased_t>)
  auto async_select(Token&& token) {
    return detail::completion_tokens_need_sluice_asio_hpp<Token>::select_over(
        *this, true, std::forward<Token>(token));
  }
  template <class Token>
    requires detail::completion_token<Token>
  auto async_select(biased_t, Token&& token) {
    return detail::completion_tokens_need_sluice_asio_hpp<Token>::select_over(
        *this, false, std::forward<Token>(token));
  }

 private:
  // co_await sel.async_select(): the callback driver over the selector's
  // rebuilt arms.
  template <class Resumption, bool Cancellable>
  class awaitable : private detail::held<detail::dynamic_frame>,
                    public detail::awaitable_operation<detail::select_steps, Resumption> {
    using holder = detail::held<detail::dynamic_frame>;
    using base = detail::awaitable_operation<detail::select_steps, Resumption>;

   public:
    awaitable(Resumption where, std::stop_token stop, bool fair, detail::dynamic_frame f,
              std::span<const std::size_t> index_of)
        : holder(f),
          base(std::move(where), std::move(stop), f.arms(), f.entries(), f.order(), fair),
          index_of_(index_of) {}

    auto await_resume() {
      this->rethrow_if_failed();
      if constexpr (Cancellable) {
        if (this->cancelled()) {
          return std::expected<std::size_t, select_timeout_error>(std::unexpect,
                                                                  select_timeout_error::cancelled);
        }
        return std::expected<std::size_t, select_timeout_error>(index_of_[this->steps().winner()]);
      } else {
        return index_of_[this->steps().winner()];
      }
    }

   private:
    std::span<const std::size_t> index_of_;
  };

  template <class V>
  static void room_for_one_more(V& v) {
    if (v.size() == v.capacity()) v.reserve(v.size() < 8 ? 8 : 2 * v.size());
  }

  template <class Token>
  friend struct detail::completion_tokens_need_sluice_asio_hpp;

  // The arms taking part, rebuilt from their cases (so a select sees each
  // handle as it is now); `index_of_` maps their positions in the frame to
  // the indices the user knows. The lists are made again only after an add
  // or a remove: a state is rebuilt where the last one was. Entries need no
  // reset between selects: a finished select left none registered, and
  // registering sets one up.
  detail::dynamic_frame rebuild() {
    if (arranged_) {
      for (const std::size_t i : index_of_) (void)arms_[i]->rebuild();
      return {states_, entries_, order_};
    }
    states_.clear();
    index_of_.clear();
    for (std::size_t i = 0; i < arms_.size(); ++i) {
      if (removed_[i]) continue;
      states_.push_back(&arms_[i]->rebuild());  // capacity reserved by add()
      index_of_.push_back(i);
    }
    entries_.assign(states_.size(), detail::wait_entry{});
    order_.assign(states_.size(), 0);
    arranged_ = true;
    return {states_, entries_, order_};
  }

  template <class Resumption, bool Cancellable>
  awaitable<Resumption, Cancellable> make_awaitable(Resumption where, std::stop_token stop,
                                                    bool fair) {
    if (empty()) throw std::invalid_argument("sluice::selector: async_select() without arms");
    const detail::dynamic_frame f = rebuild();
    return awaitable<Resumption, Cancellable>(std::move(where), std::move(stop), fair, f,
                                              index_of_);
  }

  std::expected<std::size_t, select_timeout_error> run(bool fair, const detail::deadline& d,
                                                       const std::stop_token& stop,
                                                       bool unlimited) {
    if (empty()) {
      if (unlimited && !stop.stop_possible()) {
        throw std::invalid_argument("sluice::selector: select() without arms would wait forever");
      }
      // Nothing can complete: wait for the deadline or the stop request.
      const select_case<detail::timer_arm, timer> never_ticks(idle_timer_);
      detail::select_frame<select_case<detail::timer_arm, timer>> idle(never_ticks);
      const auto r = detail::select_on_thread(idle, true, d, stop);
      return std::unexpected(r ? select_timeout_error::timeout : r.error());
    }
    detail::dynamic_frame f = rebuild();
    const auto r = detail::select_on_thread(f, fair, d, stop);
    if (!r) return r;
    return index_of_[*r];
  }

  std::expected<std::size_t, try_select_error> try_run(bool fair) {
    if (empty()) return std::unexpected(try_select_error{});
    detail::dynamic_frame f = rebuild();
    const auto r = detail::select_on_thread(f, fair, detail::deadline::at({}), {});
    if (!r) return std::unexpected(try_select_error{});
    return index_of_[*r];
  }

  std::vector<std::unique_ptr<detail::dynamic_arm>> arms_;
  std::vector<detail::select_arm*> states_;
  std::vector<detail::wait_entry> entries_;
  std::vector<std::uint32_t> order_;
  std::vector<std::size_t> index_of_;  // frame position -> arm index
  std::vector<bool> removed_;
  std::size_t active_ = 0;
  bool arranged_ = false;  // states_, index_of_, entries_, order_ match the arms
  timer idle_timer_;  // never ticks: what an empty selector waits on
};

}  // namespace sluice
