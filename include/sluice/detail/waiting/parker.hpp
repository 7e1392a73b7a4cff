// sluice/detail/waiting/parker.hpp - sleep on a 32-bit word until another thread
// changes it, with an optional deadline.
//
// This is the only place that talks to the OS scheduler. On Linux it is the
// futex system call; elsewhere a hashed table of mutex/condition-variable
// buckets plays the same role.
//
// Invariants:
// - park_while(word, expected, wake_at) returns when *word != expected was
//   observed, when steady_clock reached wake_at (time_point::max(): never),
//   or spuriously; callers always re-check their condition.
// - wake_all(word) only uses the address of `word`, never its contents, so a
//   waker may call it after the waiting thread has returned and destroyed the
//   word: at worst another thread whose word reuses the address sees a
//   spurious wake-up, which the first invariant already allows.
#pragma once

#include <chrono>

#include <atomic>
#include <cstdint>

// SLUICE_PORTABLE_PARKER forces the portable implementation (for testing it
// on Linux).
#if defined(__linux__) && !defined(SLUICE_PORTABLE_PARKER)
#  define SLUICE_FUTEX_PARKER 1
#else
#  define SLUICE_FUTEX_PARKER 0
#endif

#if SLUICE_FUTEX_PARKER
#  include <linux/futex.h>
#  include <sys/syscall.h>
#  include <time.h>
#  include <unistd.h>
#else
#  include <condition_variable>
#  include <functional>
#  include <mutex>
#endif

namespace sluice::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the parker needs a plain 32-bit atomic word");

#if SLUICE_FUTEX_PARKER

inline void park_while(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::chrono::steady_clock::time_point wake_at) noexcept {
  // The futex reads the word itself and sleeps only if it still equals
  // `expected`, which closes the window between our check and the sleep.
  auto* addr = const_cast<std::atomic<std::uint32_t>*>(&word);
  if (wake_at == std::chrono::steady_clock::time_point::max()) {
    ::syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
    return;
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is what
  // std::chrono::steady_clock reads on Linux.
  const auto since_epoch = wake_at.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(secs.count());
  ts.tv_nsec = static_cast<long>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count());
  ::syscall(SYS_futex, addr, FUTEX_WAIT_BITSET_PRIVATE, expected, &ts, nullptr,
            FUTEX_BITSET_MATCH_ANY);
}

inline void wake_all(const std::atomic<std::uint32_t>* word) noexcept {
  ::syscall(SYS_futex, const_cast<std::atomic<std::uint32_t>*>(word), FUTEX_WAKE_PRIVATE,
            INT32_MAX, nullptr, nullptr, 0);
}

#else

// A portable stand-in: buckets keyed by address, each a mutex and a condition
// variable that live for the whole program, so waking never touches the word.
struct park_bucket {
  std::mutex mutex;
  std::condition_variable cv;
};

inline park_bucket& bucket_for(const void* addr) noexcept {
  static park_bucket buckets[64];
  return buckets[std::hash<const void*>{}(addr) % 64];
}

inline void park_while(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::chrono::steady_clock::time_point wake_at) noexcept {
  park_bucket& b = bucket_for(&word);
  std::unique_lock lock(b.mutex);
  if (word.load(std::memory_order_acquire) != expected) return;
  if (wake_at == std::chrono::steady_clock::time_point::max()) {
    b.cv.wait(lock);
  } else {
    b.cv.wait_until(lock, wake_at);
  }
}

inline void wake_all(const std::atomic<std::uint32_t>* word) noexcept {
  park_bucket& b = bucket_for(word);
  // Taking the lock orders this wake after a waiter's check-then-sleep.
  { std::lock_guard lock(b.mutex); }
  b.cv.notify_all();
}

#endif

}  // namespace sluice::detail
