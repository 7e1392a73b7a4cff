// sluice/detail/select/select_steps.hpp - a select as steps of the waiting
// protocol (waiting/protocol.hpp): one waiter, registered through one entry
// per arm, each entry naming its arm's selection. The thread driver
// (wait_on) and the callback driver (async_operation) run it as they run a
// single send or receive; nothing here parks, suspends or resumes.
//
// The algorithm is crossbeam-channel's select (and Go's selectgo, without
// its global lock order):
//   1. attempt every arm, in a random order (fair) or the written one;
//   2. register an entry on every arm; an arm whose re-check finds it ready
//      ends the registration (the driver then aborts the wait);
//   3. the first party to make progress on any arm claims the waiter with
//      that arm's selection: a rendezvous counterpart completes the arm
//      through its packet (a hand-off: done), any other claim is a wake-up;
//   4. unregister every other entry, then attempt again, the woken arm
//      first (its progress is ours to use, so no wake-up is lost), then the
//      rest; if none succeeds, back to 2.
//
// Invariants:
// - Exactly one arm completes per select: an arm completes either in an
//   attempt, made while no entry is registered, or through a hand-off
//   claim, of which the waiter admits exactly one (waiter.hpp). An arm's
//   enlist() never completes anything (wait_entry::in_select).
// - A send arm that does not complete keeps its value where the caller put
//   it: attempts move it only on success, and a rendezvous entry lends it
//   without moving it.
// - After conclude_claim() no entry is linked anywhere; after a woken arm's
//   claim, either that arm is attempted first or relay() passes the
//   wake-up on.
// - `arms`, `entries` and `order` have one element per arm, owned by the
//   caller for the whole select (a thread's stack, a coroutine frame).
//   An entry is set up when it is registered; an arm is touched only when
//   the select gets to it (an attempt stops at the first arm that
//   completes), which is what lets a selector rebuild only the arms the
//   last select touched.
#pragma once

#include <sluice/detail/select/arm_order.hpp>
#include <sluice/detail/waiting/claim_outcome.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/detail/waiting/waiter.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace sluice::detail {

// One arm of a select: the steps of one operation on one channel, behind a
// virtual interface so that one select drives arms of any channel, message
// type and flavor (and a list of them built at run time). The concrete arm
// also owns its outcome (a message, "sent", "disconnected").
class select_arm {
 public:
  virtual bool attempt() = 0;
  virtual readiness enlist(wait_entry& e) noexcept = 0;
  virtual readiness recheck() noexcept = 0;
  virtual void delist(wait_entry& e) noexcept = 0;
  virtual void completed() noexcept = 0;
  virtual void relay() noexcept = 0;
  [[nodiscard]] virtual bool hands_off() const noexcept = 0;
  [[nodiscard]] virtual bool spins() const noexcept = 0;
  // A receive arm that completed with a message, cancelled before its
  // owner could use it (an Asio handler's turn): gives the message back to
  // its channel (the next receive returns it first). False if there was
  // nothing to give back.
  virtual bool give_back() noexcept { return false; }

 protected:
  select_arm() = default;
  ~select_arm() = default;
  select_arm(const select_arm&) = delete;
  select_arm& operator=(const select_arm&) = delete;
};

// Adapts a flavor's steps to select_arm.
template <class Steps>
class steps_arm : public select_arm {
 public:
  // `make()` returns the steps (built in place: steps need not be movable).
  template <class Make>
  explicit steps_arm(std::in_place_t, Make&& make) : steps_(std::forward<Make>(make)()) {}

  bool attempt() final { return steps_.attempt(); }
  readiness enlist(wait_entry& e) noexcept final { return steps_.enlist(e); }
  readiness recheck() noexcept final { return steps_.recheck(); }
  void delist(wait_entry& e) noexcept final { steps_.delist(e); }
  void completed() noexcept final { steps_.completed(); }
  void relay() noexcept final { steps_.relay(); }
  [[nodiscard]] bool hands_off() const noexcept final { return steps_.hands_off(); }
  [[nodiscard]] bool spins() const noexcept final { return steps_.spins(); }

 protected:
  ~steps_arm() = default;
  Steps& steps() noexcept { return steps_; }
  const Steps& steps() const noexcept { return steps_; }

 private:
  Steps steps_;
};

class select_steps {
 public:
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  // The most arms one select can hold: each needs its own selection.
  static constexpr std::size_t max_arms = waiter::selection_mask - sel_first_op;

  select_steps(std::span<select_arm* const> arms, std::span<wait_entry> entries,
               std::span<std::uint32_t> order, bool fair) noexcept
      : arms_(arms), entries_(entries), order_(order, fair) {}

  select_steps(const select_steps&) = delete;
  select_steps& operator=(const select_steps&) = delete;

  // The arm that completed (valid once the select is done).
  [[nodiscard]] std::size_t winner() const noexcept { return winner_; }

  bool attempt() {
    if (woken_ != none) {
      const std::size_t k = woken_;
      woken_ = none;
      if (arms_[k]->attempt()) return win(k);
    }
    for (std::size_t p = 0; p < order_.size(); ++p) {
      const std::uint32_t i = order_.at(p);
      if (arms_[i]->attempt()) return win(i);
    }
    return false;
  }

  readiness enlist(wait_entry& e) noexcept {
    enlisted_ = 0;
    bool poll = false;
    for (std::size_t i = 0; i < arms_.size(); ++i) {
      wait_entry& mine = entries_[i];
      mine.w = e.w;
      mine.op = sel_first_op + static_cast<selection>(i);
      mine.in_select = true;
      ++enlisted_;
      switch (arms_[i]->enlist(mine)) {
        case readiness::wait:
          break;
        case readiness::poll:
          poll = true;
          break;
        case readiness::ready:
        case readiness::done:  // (never: in_select entries only register)
          return readiness::ready;
      }
    }
    return poll ? readiness::poll : readiness::wait;
  }

  readiness recheck() noexcept {
    for (std::size_t i = 0; i < enlisted_; ++i) {
      if (arms_[i]->recheck() == readiness::ready) return readiness::ready;
    }
    return readiness::wait;
  }

  void delist(wait_entry&) noexcept { delist_except(none); }

  // See claim_outcome.hpp: the claimed arm's entry was unlinked by its
  // claimer; every other one is unlinked here.
  claim_outcome conclude_claim(wait_entry&, selection s) noexcept {
    const std::size_t k =
        s >= sel_first_op && s - sel_first_op < enlisted_ ? s - sel_first_op : none;
    delist_except(k);
    if (k == none) return claim_outcome::elsewhere;
    if (arms_[k]->hands_off()) {
      arms_[k]->completed();
      win(k);
      return claim_outcome::handed_off;
    }
    woken_ = k;
    return claim_outcome::woken;
  }

  // Not used by the drivers (conclude_claim covers hand-offs); present for
  // the protocol's shape.
  static void completed() noexcept {}

  // The woken arm's wake-up will not be used (the select was cancelled):
  // passed on to another waiter of that channel.
  void relay() noexcept {
    if (woken_ == none) return;
    arms_[woken_]->relay();
    woken_ = none;
  }

  [[nodiscard]] static bool hands_off() noexcept { return false; }
  // Asked only when the select is about to wait (then it registers on every
  // arm anyway): worked out once, not per select.
  [[nodiscard]] bool spins() const noexcept {
    if (spins_ == unknown) {
      spins_ = no;
      for (select_arm* a : arms_) {
        if (a->spins()) {
          spins_ = yes;
          break;
        }
      }
    }
    return spins_ == yes;
  }

 private:
  bool win(std::size_t k) noexcept {
    winner_ = k;
    return true;
  }

  void delist_except(std::size_t k) noexcept {
    for (std::size_t i = 0; i < enlisted_; ++i) {
      if (i != k) arms_[i]->delist(entries_[i]);
    }
    enlisted_ = 0;
  }

  std::span<select_arm* const> arms_;
  std::span<wait_entry> entries_;
  arm_order order_;
  std::size_t enlisted_ = 0;  // arms 0..enlisted_-1 registered this round
  std::size_t woken_ = none;  // the arm whose claim asked for an attempt
  std::size_t winner_ = none;
  enum tristate : unsigned char { unknown, no, yes };
  mutable tristate spins_ = unknown;
};

}  // namespace sluice::detail
