// sluice/detail/select/timer_service.hpp - the party that claims waiters
// registered on a timer (after(d), tick(d)) when their time comes, as a
// channel's sender claims a waiting receiver. Threads and coroutines wait on
// a timer the same way: through an entry (waiting/wait_queue.hpp).
//
// One service per process, with one thread, started by the first timer made
// (after(), tick(): where a failure to start it can be reported) and kept
// until the process exits (never destroyed, so a timer used during static
// destruction still works). Pending timers form a list sorted by due time,
// linked through entries that live in the waiting party's frame: queueing
// never allocates and never fails.
//
// Invariants:
// - The list and each entry's links and `queued` flag are read and written
//   only under the lock; `queued` is true exactly while the entry is listed.
// - An expired entry leaves the list before its waiter is claimed, so an
//   owner that finds its entry unqueued under the lock knows the service no
//   longer touches it; claims are made under the lock, wakes after it is
//   released (a callback may resume a coroutine inline on the service's
//   thread, which must not hold the lock then).
#pragma once

#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/detail/waiting/waiter.hpp>

#include <array>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

namespace sluice::detail {

struct timer_entry {
  steady::time_point due{};
  wait_entry* entry = nullptr;  // claimed with entry->op at `due`
  timer_entry* prev = nullptr;
  timer_entry* next = nullptr;
  bool queued = false;
};

class timer_service {
 public:
  // The service, its thread started. Throws std::system_error if the
  // thread cannot be started (then the next call tries again).
  static timer_service& instance() {
    timer_service& s = the_service();
    s.ensure_started();
    return s;
  }

  // The service, once instance() has succeeded (every timer that can tick
  // was made through it).
  static timer_service& running() noexcept { return the_service(); }

  // Queues `t`; its entry's waiter is claimed at t.due unless remove()
  // comes first.
  void add(timer_entry& t) noexcept {
    std::unique_lock guard(lock_);
    // From the back: a new timer is most often the latest.
    timer_entry* after = tail_;
    while (after != nullptr && t.due < after->due) after = after->prev;
    t.prev = after;
    t.next = after != nullptr ? after->next : head_;
    (t.next != nullptr ? t.next->prev : tail_) = &t;
    (after != nullptr ? after->next : head_) = &t;
    t.queued = true;
    const bool earliest = head_ == &t;
    guard.unlock();
    if (earliest) changed_.notify_one();
  }

  // Takes `t` out of the list if the service has not claimed it yet.
  void remove(timer_entry& t) noexcept {
    std::lock_guard guard(lock_);
    unlink(t);
  }

 private:
  timer_service() = default;

  static timer_service& the_service() {
    // Never destroyed: see the header.
    static timer_service* const service = new timer_service();
    return *service;
  }

  void ensure_started() {
    std::lock_guard guard(lock_);
    if (started_) return;
    std::thread(&timer_service::run, this).detach();
    started_ = true;
  }

  [[noreturn]] void run() noexcept {
    std::array<wake_token, 16> due;
    std::unique_lock guard(lock_);
    for (;;) {
      std::size_t n = 0;
      const steady::time_point now = steady::now();
      while (head_ != nullptr && head_->due <= now && n < due.size()) {
        timer_entry& t = *head_;
        unlink(t);  // before the claim: see the invariants
        if (wake_token w = t.entry->w->try_claim(t.entry->op)) due[n++] = w;
      }
      if (n > 0) {
        guard.unlock();
        wait_queue::wake_batch(due, n);
        guard.lock();
        continue;
      }
      if (head_ == nullptr) {
        changed_.wait(guard);
      } else {
        changed_.wait_until(guard, head_->due);
      }
    }
  }

  void unlink(timer_entry& t) noexcept {
    if (!t.queued) return;
    (t.prev != nullptr ? t.prev->next : head_) = t.next;
    (t.next != nullptr ? t.next->prev : tail_) = t.prev;
    t.prev = t.next = nullptr;
    t.queued = false;
  }

  std::mutex lock_;
  std::condition_variable changed_;  // the earliest due time changed
  timer_entry* head_ = nullptr;      // earliest first
  timer_entry* tail_ = nullptr;
  bool started_ = false;
};

}  // namespace sluice::detail
