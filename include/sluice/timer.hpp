// sluice/timer.hpp - timers that a select waits on like channels:
// after(d) delivers one tick once d has passed, tick(d) one every d,
// never() none. A tick is the steady_clock time it was due.
//
// Invariants: a timer is a plain value (copies tick independently); its
// receiving operations are for one thread at a time, like a receiver's. A
// timer that can tick was made through the process's timer service, which
// after() and tick() start (or report that they cannot).
#pragma once

#include <sluice/detail/select/timer_service.hpp>
#include <sluice/detail/select/timer_steps.hpp>
#include <sluice/error.hpp>

#include <chrono>
#include <expected>
#include <stdexcept>
#include <thread>

namespace sluice {

namespace detail {
struct timer_access;

// `d` in the steady clock's unit, rounded up; zero for zero or negative,
// max() beyond the clock's range.
template <class Rep, class Period>
steady::duration timer_duration(std::chrono::duration<Rep, Period> d) {
  const long double ns = to_nanoseconds(d);
  if (!(ns > 0)) return steady::duration::zero();
  if (ns >= static_cast<long double>(steady::duration::max().count())) {
    return steady::duration::max();
  }
  return std::chrono::ceil<steady::duration>(std::chrono::duration<long double, std::nano>(ns));
}
}  // namespace detail

/// A source of ticks made by after(), tick() or never(); receive from it
/// directly or through a select arm (`sluice::recv_from(t)`).
class timer {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  /// A timer that never ticks (as never()).
  timer() noexcept = default;

  /// The tick if one is due now (and the next one scheduled); else
  /// try_recv_error::empty. Never disconnected.
  std::expected<time_point, try_recv_error> try_recv() noexcept {
    time_point t;
    if (schedule_.fire(clock::now(), t)) return t;
    return std::unexpected(try_recv_error::empty);
  }

  /// Waits for the next tick. On a timer that will not tick any more
  /// (never(), or an after() already received) this waits forever, as a
  /// receive on a channel that stays open and empty does.
  time_point recv() {
    for (;;) {
      if (auto t = try_recv()) return *t;
      if (schedule_.will_tick()) {
        std::this_thread::sleep_until(schedule_.due());
      } else {
        std::this_thread::sleep_for(std::chrono::hours(24));
      }
    }
  }

  /// Waits for the next tick for at most `timeout`.
  template <class Rep, class Period>
  std::expected<time_point, recv_timeout_error> recv_timeout(
      std::chrono::duration<Rep, Period> timeout) {
    return recv_until(
        detail::timer_schedule::saturating_add(clock::now(), detail::timer_duration(timeout)));
  }

  /// Waits for the next tick until `tp` (a steady_clock time point).
  template <class Duration>
  std::expected<time_point, recv_timeout_error> recv_deadline(
      std::chrono::time_point<clock, Duration> tp) {
    return recv_until(std::chrono::time_point_cast<clock::duration>(tp));
  }

  /// When the next tick is due; time_point::max() if none will come.
  [[nodiscard]] time_point next_tick() const noexcept { return schedule_.due(); }

 private:
  friend struct detail::timer_access;
  explicit timer(detail::timer_schedule s) noexcept : schedule_(s) {}

  std::expected<time_point, recv_timeout_error> recv_until(time_point limit) {
    for (;;) {
      if (auto t = try_recv()) return *t;
      if (clock::now() >= limit) return std::unexpected(recv_timeout_error::timeout);
      std::this_thread::sleep_until(std::min(limit, schedule_.due()));
    }
  }

  detail::timer_schedule schedule_;
};

namespace detail {
struct timer_access {
  static timer make(timer_schedule s) { return timer(s); }
  static timer_schedule& schedule(timer& t) noexcept { return t.schedule_; }
};
}  // namespace detail

/// after(d) - a timer that ticks once, when `d` has passed (at once for
/// zero or a negative d). Throws std::system_error if the timer service's
/// thread cannot be started.
template <class Rep, class Period>
timer after(std::chrono::duration<Rep, Period> d) {
  detail::timer_service::instance();
  const auto now = timer::clock::now();
  return detail::timer_access::make(detail::timer_schedule(
      detail::timer_schedule::saturating_add(now, detail::timer_duration(d)),
      timer::clock::duration::zero()));
}

/// tick(d) - a timer that ticks every `d`, the first time `d` from now.
/// A consumer that falls behind gets one late tick, not one per missed
/// period. Throws std::invalid_argument unless d > 0, and std::system_error
/// if the timer service's thread cannot be started.
template <class Rep, class Period>
timer tick(std::chrono::duration<Rep, Period> d) {
  const timer::clock::duration period = detail::timer_duration(d);
  if (period <= timer::clock::duration::zero()) {
    throw std::invalid_argument("sluice::tick: the period must be positive");
  }
  detail::timer_service::instance();
  return detail::timer_access::make(detail::timer_schedule(
      detail::timer_schedule::saturating_add(timer::clock::now(), period), period));
}

/// never() - a timer that never ticks: a select arm that is never chosen
/// (to disable an arm without changing the select's shape).
inline timer never() noexcept { return timer(); }

}  // namespace sluice
