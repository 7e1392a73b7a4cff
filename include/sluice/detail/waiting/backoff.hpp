// sluice/detail/waiting/backoff.hpp - how long a thread spins and yields before it parks.
//
// Waking a thread parked on another, idle core costs tens of microseconds on
// virtual machines (a futex wake plus a vCPU wake-up), while a hand-off
// between two running threads costs well under one. So a waiter first spins
// (cheap, keeps its core), then yields (lets a preempted peer on an
// oversubscribed machine run and make the progress we wait for), and only
// then parks. The constants are the one place this policy is tuned.
//
// Yielding has one trap: two threads that wait on each other while sharing
// one core (a new thread starts on its parent's core; the load balancer moves
// it only milliseconds later) never run out of yield budget, because each
// yield runs the partner, which makes the progress awaited, then spins and
// yields back. Every hand-off then costs two context switches and two wasted
// spins (~2-4 us instead of ~0.2 us). So a thread whose waits keep ending only
// after a yield parks at its next wait: its partner keeps the core, and the
// wake-up that follows lets the scheduler place the sleeper on an idle core.
//
// Invariant: a backoff never blocks; is_completed() turns true after a bounded
// number of snooze() calls, after which callers must park instead.
#pragma once

#include <sluice/config.hpp>

// Microseconds a waiter yields before it parks (see backoff::yield_budget).
#ifndef SLUICE_YIELD_BUDGET_US
#  define SLUICE_YIELD_BUDGET_US 100
#endif

#include <chrono>
#include <thread>

#if defined(__linux__)
#  include <sched.h>
#endif

namespace sluice::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

// Whether this thread may run on more than one CPU. Spinning waits for
// another thread to act, which is pointless when that thread can only run
// after we give up our CPU (a process pinned with taskset -c 0): then
// waiters yield at once. Read once per thread.
inline bool can_run_in_parallel() noexcept {
#if defined(__linux__)
  static thread_local const bool multi = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return true;
    return CPU_COUNT(&set) > 1;
  }();
  return multi;
#else
  return std::thread::hardware_concurrency() != 1;
#endif
}

class backoff {
 public:
  // Waits in a row that a thread ended only after yielding, after which its
  // next wait parks instead of yielding (see above). At ~3 us per such wait,
  // co-located threads break apart within ~50 us, while on an oversubscribed
  // machine (where yields serve other threads) at most one wait in
  // yield_streak_limit + 1 parks.
  static constexpr unsigned yield_streak_limit = 16;

  // Steps 0..spin_limit spin 2^step pauses each; later steps yield.
  static constexpr unsigned spin_limit = 6;
  // How long the yielding phase lasts before the waiter should park. It is
  // longer than the ~26 us a futex wake of a sleeping vCPU takes on virtual
  // machines: a waiter whose partner was just woken keeps running until the
  // partner is back, so two threads fall into a hand-off without system
  // calls instead of waking each other every message.
  static constexpr std::chrono::microseconds yield_budget{SLUICE_TSAN ? 20 : SLUICE_YIELD_BUDGET_US};

  // Short exponential spin for retrying a contended CAS: never yields
  // (unless spinning is pointless, see can_run_in_parallel()).
  void spin() noexcept {
    if (!can_run_in_parallel()) {
      std::this_thread::yield();
      return;
    }
    const unsigned step = step_ < spin_limit ? step_ : spin_limit;
    for (unsigned i = 0; i < (1u << step); ++i) cpu_relax();
    if (step_ <= spin_limit) ++step_;
  }

  // Wait for another thread to make progress: spin first, then yield.
  void snooze() noexcept {
    if (step_ <= spin_limit && can_run_in_parallel()) {
      for (unsigned i = 0; i < (1u << step_); ++i) cpu_relax();
      ++step_;
      return;
    }
    if (step_ <= spin_limit) step_ = spin_limit + 1;
    if (!yielding_) {
      yielding_ = true;
      yield_start_ = std::chrono::steady_clock::now();
    }
    std::this_thread::yield();
  }

  // True once the spinning steps are used up (snooze() would yield next).
  [[nodiscard]] bool is_spin_completed() const noexcept { return step_ > spin_limit; }

  // True once waiting longer should park the thread instead of burning CPU.
  [[nodiscard]] bool is_completed() const noexcept {
    if (step_ > spin_limit && yield_streak() >= yield_streak_limit && can_run_in_parallel()) {
      return true;
    }
    return yielding_ && std::chrono::steady_clock::now() - yield_start_ >= yield_budget;
  }

  // Record how a wait that may park ended: without parking (after yielding or
  // not), or by parking. Only waits that can park keep the streak.
  void wait_ended_unparked() const noexcept {
    yield_streak() = yielding_ ? yield_streak() + 1 : 0;
  }
  static void wait_ended_parked() noexcept { yield_streak() = 0; }

 private:
  static unsigned& yield_streak() noexcept {
    static thread_local unsigned streak = 0;
    return streak;
  }

  unsigned step_ = 0;
  bool yielding_ = false;
  std::chrono::steady_clock::time_point yield_start_{};
};

}  // namespace sluice::detail
