// sluice/detail/memory/sole_writer.hpp - lets one thread write a shared word
// with plain stores instead of read-modify-writes, until another writer
// comes.
//
// A bounded channel's senders claim slots with a compare-exchange of the
// tail word. When one thread does all the sending (one producer streaming,
// one thread filling and draining), that locked instruction is a third of
// the cost of a send, and it guards against nobody. So the first thread
// that writes the word through take() becomes its sole writer: inside
// enter()/leave() it may load the word and store a new value as if nobody
// else could write it. Every other writer calls end() before it writes:
// that stops the sole writer's fast sections for good and waits out the one
// in progress, if any, so that from then on every writer uses
// read-modify-writes again.
//
// The hand-over is biased locking's revocation built on the asymmetric
// fence pair (asymmetric_fence.hpp): the sole writer raises `busy`, runs a
// light fence (a compiler barrier) and checks that it still owns the word;
// end() marks the word revoked, runs a heavy fence (membarrier), and waits
// until `busy` is down. Either the sole writer sees the revocation (and
// leaves its section without writing) or end() sees `busy` raised (and
// waits for the section, which holds a few loads and stores and no user
// code, to end). So end() costs a system call once per channel, and a fast
// section a few plain loads and stores.
//
// Invariants:
// - The state only moves unowned -> owned(thread) -> revoking -> shared, or
//   unowned -> shared; never back. Once it has left owned(t), thread t's
//   enter() fails.
// - A fast section (enter() returned true, until leave()) runs only on the
//   owning thread, and no other thread writes the guarded word while one
//   runs or may start: another writer writes only after its end() returned.
// - A thread's tag is the address of a thread_local of its own: distinct
//   among live threads even where each shared library has its own copy of
//   these inline definitions. A thread that starts after the owner exited
//   may get the owner's tag and act as the owner: the exited thread left
//   no section open, and thread exit and creation order its stores before
//   the new thread's.
// - A waiter about to sleep needs the tail written by read-modify-writes
//   from its registration on (end_for_waiter()): it ends an owner's role,
//   or finds nobody owns it yet, and then the take() to come (seq_cst) is
//   after its registration, so the owner's notifies see it.
// - take() succeeds only where the heavy fence is a membarrier: elsewhere
//   the light fence would be a full fence, as costly as the
//   read-modify-write it saves.
#pragma once

#include <sluice/detail/memory/asymmetric_fence.hpp>
#include <sluice/detail/waiting/backoff.hpp>

#include <atomic>
#include <cstdint>

namespace sluice::detail {

// A number for the calling thread, distinct among live threads (an
// address, so never one of sole_writer's states, 0 to 2).
inline std::uintptr_t this_thread_tag() noexcept {
  thread_local const char anchor = 0;
  return reinterpret_cast<std::uintptr_t>(&anchor);
}

class sole_writer {
 public:
  // Whether the calling thread is the sole writer (it may then write with
  // read-modify-writes without end(), or through enter()).
  [[nodiscard]] bool held_here() const noexcept {
    return state_.load(std::memory_order_relaxed) == this_thread_tag();
  }

  // Makes the calling thread the sole writer if nobody was yet (and the
  // system has membarrier). On failure the caller writes as any other
  // writer would: after end().
  bool take() noexcept {
    std::uintptr_t seen = state_.load(std::memory_order_relaxed);
    if (seen == shared) return false;  // the common case of channels that refuse()
    if (seen != unowned) return seen == this_thread_tag();
    if (init_asymmetric_fence() != fence_mode::asymmetric) return false;
    // seq_cst: after the registration of a waiter that found the word
    // unowned (end_for_waiter()). Nobody wrote the guarded word before
    // (every writer takes or ends first).
    return state_.compare_exchange_strong(seen, this_thread_tag(), std::memory_order_seq_cst,
                                          std::memory_order_relaxed);
  }

  // Opens a fast section. True: the caller is the sole writer and no other
  // writer can write until leave(). Always inlined: it runs in every send.
  [[gnu::always_inline]] bool enter() noexcept {
    const std::uintptr_t me = this_thread_tag();
    if (state_.load(std::memory_order_relaxed) != me) return false;
    busy_.store(true, std::memory_order_relaxed);
    // The Dekker pair with end(): our busy store before our state load,
    // against its state store before its load of busy (its heavy fence).
    light_fence();
    if (state_.load(std::memory_order_relaxed) == me) return true;
    busy_.store(false, std::memory_order_relaxed);
    return false;
  }

  // Closes a fast section. release: a writer that waited for it (end())
  // sees the section's stores.
  [[gnu::always_inline]] void leave() noexcept { busy_.store(false, std::memory_order_release); }

  // Before a write by a thread that may not be the sole writer: the sole
  // writer itself needs nothing (it is not inside its section).
  void end_unless_mine() const noexcept {
    const std::uintptr_t seen = state_.load(std::memory_order_acquire);
    if (seen != shared && seen != this_thread_tag()) end_slow();
  }

  // For a waiter that registered and is about to re-check the guarded word:
  // the word's writes are its progress, and the sole writer's plain stores
  // are no seq_cst half of that Dekker pair. Ends the role, unless nobody
  // holds it yet (seq_cst: then a later take() comes after our
  // registration in the total order, and so do the new owner's checks for
  // waiters) or we do (we are not inside our section).
  void end_for_waiter() const noexcept {
    const std::uintptr_t seen = state_.load(std::memory_order_seq_cst);
    if (seen == unowned || seen == shared || seen == this_thread_tag()) return;
    end();
  }

  // Whether the role has ended (or was refused): every writer now writes
  // with read-modify-writes. A hint (relaxed): it only ever turns true.
  [[nodiscard]] bool shared_now() const noexcept {
    return state_.load(std::memory_order_relaxed) == shared;
  }

  // Nobody will take the role (before any writer came): for a word whose
  // writers are not worth it.
  void refuse() noexcept { state_.store(shared, std::memory_order_relaxed); }

  // Tests only: whether a thread holds the role now.
  [[nodiscard]] bool owned_for_testing() const noexcept {
    return state_.load(std::memory_order_acquire) > shared;
  }

  // For any writer but the sole one (harmless from it): when this returns,
  // no fast section runs, and none will start again.
  // acquire: as end_slow().
  void end() const noexcept {
    if (state_.load(std::memory_order_acquire) != shared) end_slow();
  }

 private:
  [[gnu::noinline]] void end_slow() const noexcept {
    std::uintptr_t seen = state_.load(std::memory_order_acquire);
    for (;;) {
      if (seen == shared) return;
      if (seen == revoking) {  // another writer is ending it: wait for that
        backoff bo;
        while ((seen = state_.load(std::memory_order_acquire)) == revoking) bo.snooze();
        continue;
      }
      if (seen == unowned || seen == this_thread_tag()) {
        // No section runs elsewhere: nobody owns the word, or we do and are
        // outside our section. acq_rel: against a racing take().
        if (state_.compare_exchange_weak(seen, shared, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
          return;
        }
        continue;
      }
      // seq_cst, then the heavy fence: the other half of enter()'s pair.
      if (!state_.compare_exchange_weak(seen, revoking, std::memory_order_seq_cst,
                                        std::memory_order_acquire)) {
        continue;
      }
      heavy_fence();
      // acquire: the section's stores (its leave() is a release).
      backoff bo;
      while (busy_.load(std::memory_order_acquire)) bo.snooze();
      // release: writers that waited on `revoking` see those stores too.
      state_.store(shared, std::memory_order_release);
      return;
    }
  }

  static constexpr std::uintptr_t unowned = 0;
  static constexpr std::uintptr_t revoking = 1;
  static constexpr std::uintptr_t shared = 2;
  // unowned, revoking, shared, or the owner's thread tag. Mutable: end()
  // runs from const re-checks of a registered waiter.
  mutable std::atomic<std::uintptr_t> state_{unowned};
  mutable std::atomic<bool> busy_{false};
};

}  // namespace sluice::detail
