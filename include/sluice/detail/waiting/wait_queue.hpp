// sluice/detail/waiting/wait_queue.hpp - the waiters blocked on one side of a channel.
//
// A wait_entry links one waiter into one queue. Entries live in the waiting
// party's frame (a thread's stack, a coroutine frame), so blocking never
// allocates. Entries are served first come, first served.
//
// Invariants:
// - An entry is linked into at most one queue at a time, and only the queue's
//   lock holder reads or writes the links.
// - A claimer unlinks an entry *before* claiming its waiter. So once a waiter
//   sees itself claimed (acquire on its state), its entry is already unlinked
//   and it may destroy it without taking the lock; a waiter that ends any
//   other way (timeout, abort, disconnect) calls unregister() first.
// - `empty_` is true only when no entry is linked. It lets the fast path of
//   every send and receive skip the lock; see register_entry() for why it is
//   sequentially consistent.
// - Nobody is woken (no futex wake, no callback) while the queue's lock is
//   held: claims are made under the lock, wakes after it is released.
#pragma once

#include <sluice/detail/waiting/spin_lock.hpp>
#include <sluice/detail/waiting/waiter.hpp>

#include <array>

#include <atomic>
#include <cstddef>
#include <mutex>

namespace sluice::detail {

// 40 bytes on 64-bit targets: with its waiter (24) it fills one cache line
// on a thread's stack (see wait_on), so a claimer touches one line of the
// waiting side; in an async operation the two are adjacent.
struct wait_entry {
  waiter* w = nullptr;
  void* packet = nullptr;  // rendezvous hand-off slot, owned by the waiter
  wait_entry* prev = nullptr;
  wait_entry* next = nullptr;
  selection op = sel_single_op;  // what the waiter learns when this entry is chosen
  bool linked = false;
  // One of a select's entries (its waiter has others, in other queues): its
  // enlist() only registers and reports readiness, and never completes the
  // operation there, since another entry may be claimed meanwhile.
  bool in_select = false;
};

// A claimed entry: the token that wakes its waiter and the waiter's packet,
// returned so the caller can finish the hand-off before waking, outside any
// lock.
struct claimed_entry {
  wake_token token;
  void* packet = nullptr;

  explicit operator bool() const noexcept { return static_cast<bool>(token); }
  void wake() const noexcept { token.wake(); }
};

// The unlocked list; its owner provides the lock.
class waiter_list {
 public:
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const wait_entry* e = head_; e != nullptr; e = e->next) ++n;
    return n;
  }

  void push_back(wait_entry& e) noexcept {
    e.prev = tail_;
    e.next = nullptr;
    (tail_ ? tail_->next : head_) = &e;
    tail_ = &e;
    e.linked = true;
  }

  void remove(wait_entry& e) noexcept {
    if (!e.linked) return;
    (e.prev ? e.prev->next : head_) = e.next;
    (e.next ? e.next->prev : tail_) = e.prev;
    e.prev = e.next = nullptr;
    e.linked = false;
  }

  // Whether a waiter of another owner than `self` is still waiting here (a
  // select's readiness test on a rendezvous channel). A hint: that waiter
  // may be claimed elsewhere the next moment.
  [[nodiscard]] bool has_waiting(const void* self) const noexcept {
    for (const wait_entry* e = head_; e != nullptr; e = e->next) {
      if (e->w->owner() != self && e->w->is_waiting()) return true;
    }
    return false;
  }

  // Claims the first waiter that belongs to another owner than `self`; a
  // `handoff` claim is complete only once the returned entry's wake() runs.
  // Entries whose waiter was already claimed elsewhere (a select woken by
  // another channel, a timed-out waiter) are dropped on the way.
  claimed_entry claim_first(const void* self, bool handoff = false) noexcept {
    for (wait_entry* e = head_; e != nullptr;) {
      wait_entry* next = e->next;
      if (e->w->owner() != self) {
        waiter* w = e->w;
        void* packet = e->packet;
        const selection op = e->op;
        remove(*e);  // before the claim: see the header's invariants
        if (wake_token t = w->try_claim(op, handoff)) return {t, packet};
      }
      e = next;
    }
    return {};
  }

  // Claims up to `out.size()` waiters with `sel_disconnected`, unlinking
  // every entry it meets; returns how many tokens it filled. The caller
  // wakes them after releasing its lock.
  template <std::size_t N>
  std::size_t disconnect_some(std::array<wake_token, N>& out) noexcept {
    std::size_t n = 0;
    while (head_ != nullptr && n < N) {
      wait_entry* e = head_;
      waiter* w = e->w;
      remove(*e);  // before the claim: see the header's invariants
      if (wake_token t = w->try_claim(sel_disconnected)) out[n++] = t;
    }
    return n;
  }

 private:
  wait_entry* head_ = nullptr;
  wait_entry* tail_ = nullptr;
};

// A waiter_list with its own lock and a lock-free emptiness hint.
class wait_queue {
 public:
  void register_entry(wait_entry& e) noexcept {
    std::lock_guard guard(lock_);
    list_.push_back(e);
    // seq_cst: the registering party next re-checks the channel (is there a
    // message / free slot now?) with seq_cst loads. Either that re-check sees
    // the other side's progress, or the other side's seq_cst load in
    // notify_one() sees this store: the Dekker pattern that rules out a lost
    // wake-up.
    empty_.store(false, std::memory_order_seq_cst);
  }

  void unregister(wait_entry& e) noexcept {
    std::lock_guard guard(lock_);
    list_.remove(e);
    empty_.store(list_.empty(), std::memory_order_relaxed);
  }

  // Whether an entry is linked, for a party whose own registrations are the
  // only ones it asks about (they happened before: relaxed).
  [[nodiscard]] bool has_waiters() const noexcept { return !empty_.load(std::memory_order_relaxed); }

  // Wakes one waiter, if any. Callers have just made progress the waiter
  // waits for, published with a seq_cst operation (see register_entry) or
  // with a release store: then light_fence() orders that store before the
  // emptiness check, paired with the heavy fence of a waiter that found the
  // progress half made (asymmetric_fence.hpp).
  // Returns whether it woke one. The check is inlined into every send and
  // receive (most find nobody waiting); the wake-up is a call.
  [[gnu::always_inline]] bool notify_one() noexcept {
    light_fence();
    if (empty_.load(std::memory_order_seq_cst)) return false;
    return wake_first();
  }

  // Wakes up to `n` waiters, for progress that serves that many (a batch of
  // receives that freed n slots). Same ordering contract as notify_one().
  void notify_up_to(std::size_t n) noexcept {
    while (n-- > 0 && notify_one()) {
    }
  }

  // Wakes every waiter registered now (for progress that serves them all,
  // such as a segment of slots becoming available). One at a time, each
  // woken outside the lock; waiters that register meanwhile re-check the
  // channel themselves.
  void notify_all() noexcept {
    light_fence();
    if (empty_.load(std::memory_order_seq_cst)) return;
    std::size_t n = 0;
    {
      std::lock_guard guard(lock_);
      n = list_.size();
    }
    while (n-- > 0 && !empty_.load(std::memory_order_relaxed)) notify_one();
  }

  // Wakes every waiter with "disconnected", a batch at a time, each batch
  // claimed under the lock and woken after it. Callers have made the
  // disconnection visible first, so a waiter registering meanwhile sees it
  // in its re-check. An empty queue is left without taking the lock (most
  // channels die with nobody waiting): the emptiness check is ordered as in
  // notify_one(), so a waiter that registered unseen sees the disconnection.
  // The check is inlined (a channel's disconnection checks four queues);
  // the wake-ups are a call.
  [[gnu::always_inline]] void disconnect() noexcept {
    light_fence();
    if (empty_.load(std::memory_order_seq_cst)) return;
    disconnect_all();
  }

  // Wakes the first `n` tokens: threads first, then callbacks, so that a
  // coroutine resumed inline by a callback never waits for a thread whose
  // wake-up is still to come in this batch.
  template <std::size_t N>
  static void wake_batch(const std::array<wake_token, N>& batch, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
      if (!batch[i].calls_back()) batch[i].wake();
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (batch[i].calls_back()) batch[i].wake();
    }
  }

 private:
  // disconnect()'s wake-ups.
  [[gnu::noinline]] void disconnect_all() noexcept {
    std::array<wake_token, 16> batch;
    for (;;) {
      std::size_t n = 0;
      {
        std::lock_guard guard(lock_);
        n = list_.disconnect_some(batch);
        empty_.store(list_.empty(), std::memory_order_relaxed);
      }
      wake_batch(batch, n);
      if (n < batch.size()) return;
    }
  }

  // notify_one()'s wake-up: out of line, off the senders' and receivers' path.
  [[gnu::noinline]] bool wake_first() noexcept {
    claimed_entry c;
    {
      std::lock_guard guard(lock_);
      c = list_.claim_first(current_thread_owner());
      empty_.store(list_.empty(), std::memory_order_relaxed);
    }
    c.wake();  // outside the lock: a futex wake is a system call, a callback is user code
    return static_cast<bool>(c);
  }

  spin_lock lock_;
  std::atomic<bool> empty_{true};
  waiter_list list_;
};

}  // namespace sluice::detail
