// sluice/detail/waiting/spin_lock.hpp - a tiny lock for critical sections of a few
// dozen instructions (linking a waiter into a queue).
//
// Invariant: nothing blocks or allocates while it is held, so holders leave
// quickly; contenders back off (spin, then yield) so a preempted holder on an
// oversubscribed machine gets the CPU back.
#pragma once

#include <sluice/detail/waiting/backoff.hpp>

#include <atomic>

namespace sluice::detail {

class spin_lock {
 public:
  void lock() noexcept {
    backoff bo;
    // acquire: the critical section must see what the previous holder wrote.
    while (flag_.exchange(true, std::memory_order_acquire)) {
      // Test before test-and-set: spin on a shared line, not an exclusive one.
      while (flag_.load(std::memory_order_relaxed)) bo.snooze();
    }
  }
  // release: publishes the critical section to the next holder.
  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

}  // namespace sluice::detail
