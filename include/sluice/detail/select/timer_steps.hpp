// sluice/detail/select/timer_steps.hpp - a timer's schedule, and the steps
// (waiting/protocol.hpp) of receiving its next tick, through which a select
// (or a blocking receive) waits on it like on a channel.
//
// Invariants:
// - A schedule's `due` only moves forward: a tick is delivered at most once.
//   steady::time_point::max() means "no tick will come" (never(), or an
//   after() already delivered).
// - A tick that is late is delivered once, not once per missed period: the
//   next is scheduled one period after the later of the missed tick and now
//   (a slow consumer drops ticks, as Go's and crossbeam's tickers do).
// - Waiting registers the entry with the process's timer service, which
//   claims it at the due time; an arm that is not due never spins on the
//   clock beyond the driver's first pass.
#pragma once

#include <sluice/detail/select/timer_service.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>

#include <chrono>

namespace sluice::detail {

class timer_schedule {
 public:
  timer_schedule() noexcept = default;  // never
  timer_schedule(steady::time_point due, steady::duration period) noexcept
      : due_(due), period_(period) {}

  [[nodiscard]] steady::time_point due() const noexcept { return due_; }
  [[nodiscard]] bool will_tick() const noexcept { return due_ != steady::time_point::max(); }

  // Delivers the tick if it is due at `now`: its due time goes to `out`.
  bool fire(steady::time_point now, steady::time_point& out) noexcept {
    if (now < due_) return false;
    out = due_;
    due_ = period_ == steady::duration::zero() ? steady::time_point::max()
                                               : saturating_add(std::max(due_, now), period_);
    return true;
  }

  // `base + d`, or max() where that would overflow.
  static steady::time_point saturating_add(steady::time_point base, steady::duration d) noexcept {
    if (d <= steady::duration::zero()) return base;
    if (steady::time_point::max() - base <= d) return steady::time_point::max();
    return base + d;
  }

 private:
  steady::time_point due_ = steady::time_point::max();
  steady::duration period_{};  // zero: one tick only
};

class timer_steps {
 public:
  timer_steps(timer_schedule& schedule, steady::time_point& out) noexcept
      : schedule_(&schedule), out_(&out) {}

  bool attempt() noexcept { return schedule_->fire(steady::now(), *out_); }

  readiness enlist(wait_entry& e) noexcept {
    if (!schedule_->will_tick()) return readiness::wait;  // nothing to register for
    pending_.due = schedule_->due();
    pending_.entry = &e;
    timer_service::running().add(pending_);
    registered_ = true;
    return recheck();
  }
  readiness recheck() noexcept {
    return steady::now() >= schedule_->due() ? readiness::ready : readiness::wait;
  }
  void delist(wait_entry&) noexcept {
    if (!registered_) return;
    registered_ = false;
    timer_service::running().remove(pending_);
  }
  static void completed() noexcept {}
  static void relay() noexcept {}  // a tick is one waiter's
  [[nodiscard]] static bool hands_off() noexcept { return false; }
  // An attempt is a clock read: worth repeating while a select spins.
  [[nodiscard]] static bool spins() noexcept { return true; }

 private:
  timer_schedule* schedule_;
  steady::time_point* out_;
  timer_entry pending_;
  bool registered_ = false;
};

}  // namespace sluice::detail
