// sluice/detail/waiting/async_wait.hpp - the callback driver of the waiting
// protocol (protocol.hpp): the same steps the thread driver runs, carried on
// by whoever completes the operation instead of by a parked thread. Serves
// coroutines (the awaitables) and asynchronous handlers (Asio).
//
// An operation is a waiter whose claim runs a callback (on_claim) on the
// claimer's thread, after the claimer released every lock. The callback
// finishes the operation when it can (a rendezvous hand-off already did; a
// buffered flavor needs one more attempt, made right there), or registers
// again; once finished, it calls `finish`, which resumes the coroutine or
// dispatches the handler where its owner wants (a scheduler, an executor,
// or inline: see inline_resumer).
//
// Invariants:
// - Exactly one party carries an operation on at a time: its owner while
//   arming (registering and re-checking; a claim made meanwhile does not
//   call back, the owner finds it when it disarms), else the one claimer
//   whose claim succeeded. So `finish` runs at most once, and never while
//   the owner is still inside start(); start() returning true means it
//   will not run at all.
// - Nothing of the operation is touched after it was handed to a claimer
//   (disarm() said "pending") or after `finish` was called.
// - cancel() may run on any thread at any time while the operation is
//   alive: it sets a flag (seen before every registration, and after, with
//   seq_cst on both sides) and claims the waiter if it is waiting.
// - Stacks stay bounded however many hand-offs follow one another: a
//   callback's attempt may run another operation's callback (a receive that
//   frees a slot claims a waiting sender), but such a chain stays within one
//   channel's two sides, and a coroutine resumed inline while another is
//   being resumed on the same thread is queued (inline_resumer).
// - A deferred operation (an Asio handler) does nothing in its callback but
//   ask its owner to carry on (`finish`, which queues proceed() on the
//   handler's executor): it takes no message and sends none except where
//   its completion runs, so a cancellation emitted there before that turn is
//   honoured (a message already taken is given back, receive_stash.hpp).
#pragma once

#include <sluice/detail/memory/asymmetric_fence.hpp>
#include <sluice/detail/memory/fence.hpp>
#include <sluice/detail/waiting/claim_outcome.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/detail/waiting/waiter.hpp>

#include <atomic>
#include <coroutine>
#include <exception>
#include <utility>

namespace sluice::detail {

template <class Steps>
class async_operation : public waiter {
 public:
  using finish_fn = void (*)(async_operation&) noexcept;

  // `deferred`: a claim only calls `finish`, and the owner calls proceed()
  // where it wants to carry on (see the invariants).
  template <class... Args>
  explicit async_operation(finish_fn finish, bool deferred, Args&&... args)
      : waiter(this, &on_claim), steps_(std::forward<Args>(args)...), finish_(finish),
        deferred_(deferred) {}

  async_operation(const async_operation&) = delete;
  async_operation& operator=(const async_operation&) = delete;

  // One attempt, without registering (an awaitable's await_ready). Steps
  // that do not spin attempt in enlist(), under the lock they register
  // with: for them this is left to settle(), which then finishes without
  // suspending if it can.
  bool try_now() noexcept { return steps_.spins() && attempt(); }

  // Opens the arming window early, so that a cancellation source can be
  // connected before settle() (a claim it makes meanwhile is found there).
  void begin_arming() noexcept {
    arm();
    armed_ = true;
  }

  // Registers until the operation is finished (true: `finish` will not be
  // called) or pending (false: `finish` will be called once, from the
  // thread that completes it).
  bool settle() noexcept {
    for (;;) {
      if (!armed_) arm();
      armed_ = false;
      // Orders the arming store before the flag loads below, against
      // cancel()'s flag store and claim (a store-load pair on both sides).
      seq_cst_fence();
      // Enlist even if cancelled already: an operation that can finish
      // without waiting finishes (a rendezvous enlist may complete it).
      readiness r = steps_.enlist(entry_);
      if (r == readiness::done) {
        try_claim(sel_aborted);  // ends the arming window; a late cancel finds it final
        return conclude(wait_result::done);
      }
      if (r == readiness::poll) {
        heavy_fence();
        r = steps_.recheck();
      }
      // seq_cst: Dekker with cancel(), whose flag store comes before its
      // claim attempt.
      if (r == readiness::ready || cancel_requested_.load(std::memory_order_seq_cst)) {
        try_claim(sel_aborted);  // fails if a claim came first: disarm() finds it
      }
      const selection s = disarm();
      if (s == sel_waiting) return false;  // pending: touch nothing more
      if (carry_on(s, conclude_claim(steps_, entry_, s))) return true;
      // The attempt failed: if cancelled, it is the wait that ends here.
      if (cancel_requested_.load(std::memory_order_seq_cst)) {
        return conclude(wait_result::cancelled);
      }
    }
  }

  // Asks the operation to end with wait_result::cancelled unless it
  // finishes first. Any thread, any time while the operation is alive.
  void cancel() noexcept {
    cancel_requested_.store(true, std::memory_order_seq_cst);
    seq_cst_fence();  // the flag store before the claim's load (see settle())
    if (wake_token t = try_claim(sel_cancelled)) t.wake();
  }

  // A deferred operation's owner carries it on after a claim (where its
  // `finish` queued it): true once finished, false if pending again. A
  // cancellation requested by then wins over a claim that only asked for
  // another attempt (the wake-up is passed on), not over a completed
  // hand-off.
  bool proceed() noexcept {
    const selection s = final_selection();
    const claim_outcome c = conclude_claim(steps_, entry_, s);
    if (c != claim_outcome::handed_off && cancel_requested_.load(std::memory_order_seq_cst)) {
      if (c == claim_outcome::woken) steps_.relay();
      return conclude(wait_result::cancelled);
    }
    return carry_on(s, c) || settle();
  }

  // The owner gives up a pending operation without waiting for it (its
  // frame is being destroyed): true if no claimer had it, and it is now
  // unregistered (a lent value taken back); false if a claimer is carrying
  // it on, which the owner can then only wait for.
  bool abandon() noexcept {
    if (!try_claim(sel_aborted)) return false;
    steps_.delist(entry_);
    return true;
  }

  // A claimed operation that will never be carried on (its owner's context
  // is going away): what a claim left in the steps' packet goes back to the
  // owner's side (a message a rendezvous sender handed over, a value lent to
  // a rendezvous receiver), so that it is destroyed with the operation.
  void discard() noexcept { (void)conclude_claim(steps_, entry_, final_selection()); }

  // Whether cancel() was called (a deferred owner's completion checks it).
  [[nodiscard]] bool cancel_requested() const noexcept {
    return cancel_requested_.load(std::memory_order_seq_cst);
  }

  [[nodiscard]] wait_result result() const noexcept { return result_; }
  Steps& steps() noexcept { return steps_; }
  // An exception thrown by an attempt (std::bad_alloc from a bounded
  // channel's first use of a segment), rethrown to the owner.
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }

 private:
  bool conclude(wait_result r) noexcept {
    result_ = r;
    return true;
  }

  bool attempt() noexcept {
    try {
      if (steps_.attempt()) return conclude(wait_result::done);
      return false;
    } catch (...) {
      error_ = std::current_exception();
      return conclude(wait_result::done);
    }
  }

  // Carries on after the final selection `s` (ours to act on), already
  // concluded as `c`: true once finished.
  bool carry_on(selection s, claim_outcome c) noexcept {
    if (c == claim_outcome::handed_off) return conclude(wait_result::done);
    // After a cancellation too, one last attempt: an operation that can
    // finish without waiting finishes (the thread driver's last try).
    if (attempt()) return true;
    if (s == sel_cancelled) return conclude(wait_result::cancelled);
    return false;
  }

  // The claim's callback: on the claimer's thread, outside every lock.
  static void on_claim(waiter& w) noexcept {
    auto& self = static_cast<async_operation&>(w);
    if (self.deferred_) {
      self.finish_(self);
      return;
    }
    const selection s = self.final_selection();
    if (self.carry_on(s, conclude_claim(self.steps_, self.entry_, s)) || self.settle()) {
      self.finish_(self);
    }
  }

  wait_entry entry_{.w = this};  // next to the waiter: a claimer touches both
  Steps steps_;
  finish_fn finish_;
  bool deferred_;
  std::atomic<bool> cancel_requested_{false};
  bool armed_ = false;
  wait_result result_ = wait_result::done;
  std::exception_ptr error_;
};

// The default place a coroutine resumes when no scheduler is given: on the
// thread that completed its operation, right away, unless that thread is
// already resuming a coroutine this way; then it is queued and resumed
// when the outer resumption returns (a trampoline). So a chain of
// hand-offs between coroutines runs in a loop, not in a growing stack.
struct resume_node {
  std::coroutine_handle<> handle;
  resume_node* next = nullptr;
};

class inline_resumer {
 public:
  static void resume(resume_node& n) noexcept {
    state& t = local();
    if (t.running) {
      n.next = nullptr;
      (t.tail != nullptr ? t.tail->next : t.head) = &n;
      t.tail = &n;
      return;
    }
    t.running = true;
    struct done_guard {
      state& t;
      ~done_guard() { t.running = false; }
    } guard{t};
    n.handle.resume();
    while (resume_node* x = t.head) {
      t.head = x->next;
      if (t.head == nullptr) t.tail = nullptr;
      x->handle.resume();  // x may be gone after this
    }
  }

 private:
  struct state {
    bool running = false;
    resume_node* head = nullptr;
    resume_node* tail = nullptr;
  };
  static state& local() noexcept {
    static thread_local state s;
    return s;
  }
};

}  // namespace sluice::detail
