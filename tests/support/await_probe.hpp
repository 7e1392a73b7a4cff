// tests/support/await_probe.hpp - what one awaited channel operation did,
// recorded by the coroutine that awaited it, for a test to read from its
// own thread once `finished()`.
//
// Invariant: `done` is stored last, with release; every other field is
// read only after finished() (acquire) said true.
#pragma once

#include "coro_task.hpp"

#include <sluice/sluice.hpp>

#include <atomic>
#include <cstdint>
#include <ostream>
#include <thread>
#include <type_traits>

namespace sluice_test {

enum class outcome { pending, value, sent, permit, disconnected, cancelled, timeout, closed };

inline const char* name(outcome o) {
  switch (o) {
    case outcome::pending: return "pending";
    case outcome::value: return "value";
    case outcome::sent: return "sent";
    case outcome::permit: return "permit";
    case outcome::disconnected: return "disconnected";
    case outcome::cancelled: return "cancelled";
    case outcome::timeout: return "timeout";
    case outcome::closed: return "closed";
  }
  return "?";
}

// Lets EXPECT_EQ print outcomes.
inline std::ostream& operator<<(std::ostream& os, outcome o) { return os << name(o); }

// The outcome an operation's error stands for.
template <class E>
outcome outcome_of(const E& e) {
  if constexpr (std::is_same_v<E, sluice::recv_error> || std::is_same_v<E, sluice::reserve_error>) {
    return outcome::disconnected;
  } else if constexpr (std::is_same_v<E, sluice::recv_timeout_error> ||
                       std::is_same_v<E, sluice::reserve_timeout_error>) {
    switch (e) {
      case E::timeout: return outcome::timeout;
      case E::disconnected: return outcome::disconnected;
      case E::cancelled: return outcome::cancelled;
    }
    return outcome::pending;
  } else if constexpr (requires { e.is_cancelled(); }) {
    if (e.is_cancelled()) return outcome::cancelled;
    if (e.is_disconnected()) return outcome::disconnected;
    return outcome::timeout;
  } else {
    return outcome::disconnected;  // send_error: the receiver is gone or closed
  }
}

struct probe {
  std::atomic<bool> done{false};     // release-stored last: the rest is readable after it
  outcome result = outcome::pending;
  std::int64_t value = -1;           // received, or handed back by a failed send
  bool value_owned = false;          // a handed-back message still owns its token
  bool was_ready = false;            // await_ready() said yes: no suspension at all
  bool reached_suspend = false;      // await_suspend() ran (it may still have resumed at once)
  std::thread::id thread;            // where the coroutine went on after the co_await
  bool on_pool = false;              // ... and whether that was a thread of a given pool

  [[nodiscard]] bool finished() const { return done.load(std::memory_order_acquire); }

  // Right after the co_await: how it went, and where the coroutine is now.
  template <class Awaitable>
  void saw(const observed<Awaitable>& seen) {
    was_ready = seen.was_ready();
    reached_suspend = seen.reached_suspend();
    thread = std::this_thread::get_id();
  }
  // Last: publishes the record.
  void finish() { done.store(true, std::memory_order_release); }
};

}  // namespace sluice_test
