// sluice/detail/deadline.hpp - one place turns any std::chrono duration or
// time point into a saturating steady_clock deadline.
//
// Invariants: conversion never overflows (durations and time points at or
// beyond what steady_clock can represent become "forever"); a timeout <= 0 or
// a time point already passed becomes "already expired" (try once).
#pragma once

#include <chrono>
#include <optional>

namespace sluice::detail {

using steady = std::chrono::steady_clock;

// A point on steady_clock, or "never" (wait forever).
class deadline {
 public:
  static constexpr deadline never() noexcept { return deadline{}; }
  static constexpr deadline at(steady::time_point t) noexcept { return deadline{t}; }

  [[nodiscard]] constexpr bool is_never() const noexcept { return !at_.has_value(); }
  [[nodiscard]] constexpr steady::time_point when() const noexcept { return *at_; }
  [[nodiscard]] bool has_passed() const noexcept { return at_ && steady::now() >= *at_; }

 private:
  constexpr deadline() noexcept = default;
  constexpr explicit deadline(steady::time_point t) noexcept : at_(t) {}
  std::optional<steady::time_point> at_;
};

// Converts a positive duration to steady_clock ticks, or nullopt when it is at
// least `limit` ticks (too far away to matter: treated as forever). Compares
// in long double so that any rep (integer or floating, any period) is safe.
template <class Rep, class Period>
std::optional<steady::duration> to_steady_ticks(std::chrono::duration<Rep, Period> d,
                                                steady::duration limit) noexcept {
  using wide = std::chrono::duration<long double, steady::period>;
  const wide w = std::chrono::duration_cast<wide>(d);
  if (!(w < wide(limit))) return std::nullopt;  // also catches NaN as forever
  // Round up: a positive timeout never becomes a zero wait.
  auto ticks = static_cast<steady::rep>(w.count());
  if (static_cast<long double>(ticks) < w.count()) ++ticks;
  return steady::duration(ticks);
}

// A positive timeout from now; callers handle <= 0 before calling.
template <class Rep, class Period>
deadline deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept {
  const auto now = steady::now();
  const auto room = steady::time_point::max() - now;
  const auto ticks = to_steady_ticks(timeout, room);
  return ticks ? deadline::at(now + *ticks) : deadline::never();
}

// True when a timeout means "try once" (zero, negative, or NaN-free <= 0).
template <class Rep, class Period>
constexpr bool is_nonpositive(std::chrono::duration<Rep, Period> d) noexcept {
  return !(d > std::chrono::duration<Rep, Period>::zero());
}

// The time left until `tp` on its own clock, or nullopt when `tp` has already
// passed. Never overflows, whatever the clock's rep or the sign of now().
template <class Clock, class Duration>
std::optional<std::chrono::duration<long double, steady::period>> time_left(
    std::chrono::time_point<Clock, Duration> tp) noexcept {
  using wide = std::chrono::duration<long double, steady::period>;
  const auto now = Clock::now();
  if (!(tp > now)) return std::nullopt;
  // Subtract in long double: tp - now in the clock's rep can overflow when now
  // is negative and tp is near max().
  const wide left = std::chrono::duration_cast<wide>(
                        std::chrono::duration<long double, typename Duration::period>(
                            static_cast<long double>(tp.time_since_epoch().count()))) -
                    std::chrono::duration_cast<wide>(
                        std::chrono::duration<long double, typename Clock::duration::period>(
                            static_cast<long double>(now.time_since_epoch().count())));
  return left;
}

}  // namespace sluice::detail
