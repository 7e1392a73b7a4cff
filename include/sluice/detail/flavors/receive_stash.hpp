// sluice/detail/flavors/receive_stash.hpp - a message given back by a
// cancelled receive that had already taken it.
//
// An asynchronous receive may take a message and then learn that it was
// cancelled before its handler ran (an Asio operation racing a timer in
// `||`: the timer's handler cancels it while its completion is queued).
// Its message then goes here, and the next receive, of any kind, returns it
// first: it was the oldest, so order is kept and nothing is lost.
//
// Invariants:
// - Touched by receiving operations only (one at a time), plus the lock-free
//   queries that read `held_`.
// - Holds at most one message: a receive returns the stash before anything
//   else, so a second cancelled receive can only give back that same one.
#pragma once

#include <sluice/detail/memory/storage.hpp>

#include <atomic>
#include <utility>

namespace sluice::detail {

template <class T>
class receive_stash {
 public:
  receive_stash() noexcept = default;
  receive_stash(const receive_stash&) = delete;
  receive_stash& operator=(const receive_stash&) = delete;
  ~receive_stash() { clear(); }

  // relaxed: receiving operations are ordered by their owner's own
  // synchronisation; queries from other threads only get a hint.
  [[nodiscard]] bool holds() const noexcept { return held_.load(std::memory_order_relaxed); }

  void put(T&& value) noexcept {
    msg_.construct(std::move(value));
    held_.store(true, std::memory_order_relaxed);
  }

  T take() noexcept {
    held_.store(false, std::memory_order_relaxed);
    return msg_.take();
  }

  // Hands `value`, just received, to a batch's sink (recv_many); if the
  // sink throws, keeps it here (so the next receive returns it first) and
  // lets the exception go on. Precondition: empty (a receive takes the
  // stash before anything else).
  template <class Sink>
  void hand_to(Sink& sink, T&& value) {
    try {
      sink(std::move(value));
    } catch (...) {
      put(std::move(value));
      throw;
    }
  }

  void clear() noexcept {
    if (holds()) {
      held_.store(false, std::memory_order_relaxed);
      msg_.destroy();
    }
  }

 private:
  storage<T> msg_;
  std::atomic<bool> held_{false};
};

}  // namespace sluice::detail
