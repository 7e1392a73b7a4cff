// sluice/detail/waiting/deadline.hpp - one place turns any std::chrono duration or
// time point into what a waiting operation needs: "has it passed?" and "when
// must a sleeper wake up to ask again?".
//
// Arithmetic is done in long double nanoseconds, never in the caller's rep:
// a time point of hours near max() minus now() in nanoseconds overflows any
// integer rep, and a comparison in the common type overflows before it can
// tell "far future" from "past". long double (64-bit mantissa on x86-64)
// holds every nanosecond count below 2^64 exactly, and its exponent range
// takes years::max() in nanoseconds.
//
// Kinds of deadline:
// - expired: a timeout <= 0 or NaN, or a time point already passed: the
//   operation tries once.
// - never: duration::max() or anything at least as far away as steady_clock
//   can represent, +inf, and time_point::max() of any clock.
// - steady: a point on steady_clock, waited for exactly (the parker sleeps
//   until it on CLOCK_MONOTONIC).
// - followed: a point on any other clock (system_clock, a user's clock).
//   Its distance is re-read from that clock at least every `clock_poll`
//   while waiting, so a clock that jumps forward is noticed within
//   clock_poll, and a clock set back extends the wait. A clock that runs
//   behind steady_clock (frozen, or set back while waiting) is re-read after
//   lagging_clock_recheck, doubling up to clock_poll: a waiter never spins on
//   a clock that does not advance.
//
// Invariants: nothing here overflows or divides by zero for any rep (integer
// or floating, including inf and NaN) or period; a deadline belongs to one
// waiting operation (its mutable state is not shared between threads); a
// followed deadline refers to the caller's time point, which outlives it.
// The clock's now() is called only from has_passed(), at most once per
// expiry of the current estimate: a slow user clock slows nothing else.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <type_traits>

namespace sluice::detail {

using steady = std::chrono::steady_clock;

// How often a deadline on a clock other than steady_clock is checked against
// that clock while waiting (the most a forward jump can go unnoticed).
inline constexpr std::chrono::milliseconds clock_poll{50};
// The first re-check of a clock found behind its steady_clock estimate.
inline constexpr std::chrono::microseconds lagging_clock_recheck{64};

// Nanoseconds in `d`, exact for integer counts up to 2^64 ns; +-inf and NaN
// pass through.
template <class Rep, class Period>
long double to_nanoseconds(std::chrono::duration<Rep, Period> d) noexcept {
  constexpr long double ns_per_tick =
      static_cast<long double>(Period::num) * 1e9L / static_cast<long double>(Period::den);
  return static_cast<long double>(d.count()) * ns_per_tick;
}

class deadline {
 public:
  static deadline never() noexcept { return deadline(kind::never); }
  static deadline at(steady::time_point t) noexcept { return deadline(t); }

  // Built in place by the factories above and below; never copied (a
  // followed deadline's state belongs to one wait).
  deadline(const deadline&) = delete;
  deadline& operator=(const deadline&) = delete;

  // `timeout` from now.
  template <class Rep, class Period>
  static deadline after(std::chrono::duration<Rep, Period> timeout) noexcept {
    return after_ns(to_nanoseconds(timeout), steady::now());
  }

  // The time point `tp` of its own clock. A followed deadline keeps a
  // reference to `tp`, so an rvalue is refused.
  template <class Clock, class Duration>
  static deadline until(const std::chrono::time_point<Clock, Duration>& tp) noexcept {
    using point = std::chrono::time_point<Clock, Duration>;
    if (tp == point::max()) return never();
    if constexpr (std::is_same_v<Clock, steady>) {
      const auto now = steady::now();
      return after_ns(to_nanoseconds(tp.time_since_epoch()) -
                          to_nanoseconds(now.time_since_epoch()),
                      now);
    } else {
      return deadline(&tp, &left_ns<Clock, Duration>);  // the clock is first read by has_passed()
    }
  }
  template <class Clock, class Duration>
  static deadline until(const std::chrono::time_point<Clock, Duration>&&) = delete;

  // Whether the deadline has passed. For a followed clock, re-reads the
  // clock once the current estimate has run out.
  [[nodiscard]] bool has_passed() const noexcept {
    switch (kind_) {
      case kind::expired:
        return true;
      case kind::never:
        return false;
      case kind::on_steady:
        return steady::now() >= when_;
      case kind::followed:
        break;
    }
    return followed_has_passed();
  }

  // Whether this is never() (or a time point at the end of time).
  [[nodiscard]] bool is_never() const noexcept { return kind_ == kind::never; }

  // When a sleeping waiter must wake to call has_passed() again:
  // steady::time_point::max() for never. Meaningful after has_passed()
  // returned false.
  [[nodiscard]] steady::time_point wake_at() const noexcept {
    return kind_ == kind::never ? steady::time_point::max() : when_;
  }

 private:
  enum class kind : std::uint8_t { expired, never, on_steady, followed };

  // Only what a kind reads is initialised: a blocking send or receive
  // builds a never() deadline every time, so it must cost next to nothing.
  explicit deadline(kind k) noexcept : kind_(k) {}
  explicit deadline(steady::time_point t) noexcept : kind_(kind::on_steady), when_(t) {}
  deadline(const void* point, long double (*left)(const void*)) noexcept
      : kind_(kind::followed),
        when_(steady::time_point::min()),
        followed_{point, left,
                  static_cast<long double>(
                      std::chrono::nanoseconds(lagging_clock_recheck).count()),
                  false} {}

  // Nanoseconds from now until the time point at `p`, on its clock.
  template <class Clock, class Duration>
  static long double left_ns(const void* p) noexcept {
    const auto& tp = *static_cast<const std::chrono::time_point<Clock, Duration>*>(p);
    // Two conversions, then one subtraction in long double: tp - now in the
    // clock's own rep could overflow (now negative, tp near max()).
    return to_nanoseconds(tp.time_since_epoch()) - to_nanoseconds(Clock::now().time_since_epoch());
  }

  // steady_clock ticks for a positive, finite nanosecond count below the
  // range left on steady_clock (callers check), rounded up so that a
  // positive wait never becomes zero.
  static steady::duration ns_to_ticks(long double ns) noexcept {
    constexpr long double ticks_per_ns = static_cast<long double>(steady::period::den) /
                                         (static_cast<long double>(steady::period::num) * 1e9L);
    const long double exact = ns * ticks_per_ns;
    auto ticks = static_cast<steady::rep>(exact);
    if (static_cast<long double>(ticks) < exact) ++ticks;
    return steady::duration(ticks);
  }

  static long double room_ns(steady::time_point now) noexcept {
    return to_nanoseconds(steady::time_point::max() - now);
  }

  static deadline after_ns(long double ns, steady::time_point now) noexcept {
    if (!(ns > 0)) return deadline(kind::expired);  // zero, negative, -inf, NaN
    if (!(ns < room_ns(now))) return never();       // +inf, max(), beyond steady's range
    return at(now + ns_to_ticks(ns));
  }

  bool followed_has_passed() const noexcept {
    const auto now = steady::now();
    if (now < when_) return false;
    const long double left = followed_.left_ns(followed_.point);
    if (!(left > 0)) {  // reached (NaN counts as reached: try once)
      kind_ = kind::expired;
      return true;
    }
    constexpr auto poll = static_cast<long double>(std::chrono::nanoseconds(clock_poll).count());
    long double wait = std::min(left, poll);
    if (followed_.expected_end) {
      // The last estimate expected the deadline by now: the clock runs
      // behind steady_clock. Re-read it less and less often.
      wait = std::max(wait, followed_.lag_recheck_ns);
      followed_.lag_recheck_ns = std::min(followed_.lag_recheck_ns * 2, poll);
    }
    followed_.expected_end = wait == left;
    wait = std::min(wait, room_ns(now) / 2);  // never past steady's range
    when_ = now + ns_to_ticks(wait);
    return false;
  }

  struct followed_state {
    const void* point;                   // the caller's time point
    long double (*left_ns)(const void*);  // reads its clock
    long double lag_recheck_ns;          // the next re-check of a clock found behind
    bool expected_end;                   // the last estimate expected the deadline
  };

  mutable kind kind_;
  mutable steady::time_point when_;  // on_steady: the point; followed: the next check
  mutable followed_state followed_;  // followed only
};

}  // namespace sluice::detail
