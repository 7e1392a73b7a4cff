// sluice/detail/memory/asymmetric_fence.hpp - a pair of fences that together
// order like two sequentially consistent fences: a light one, free on the
// hot path, and a heavy one for the rare side.
//
// The waiting protocol has one Dekker pair whose progress side is a plain
// release store: a sender publishing the slot it reserved (the receiver may
// have registered meanwhile and re-checked too early), a receiver freeing
// the slot it is emptying. A seq_cst fence there would cost every send and
// every receive. Instead the frequent side runs light_fence() between its
// store and its check for waiters, and a waiter that finds a peer part-way
// runs heavy_fence() between registering and re-checking. On Linux the
// heavy fence is membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): every running
// thread of the process executes a full barrier before it returns, so each
// light fence (a compiler barrier) acts as a full one for this purpose (the
// scheme of Linux's sys_membarrier and folly's asymmetricHeavyBarrier).
// Where that is unavailable (other systems, a sandbox that refuses the
// call, valgrind) the light fence is a real seq_cst fence and the heavy one
// is too.
//
// Invariants:
// - The mode only moves from `unknown` to `asymmetric` or `symmetric`, once.
//   A light fence that read anything but `asymmetric` is a full fence, so a
//   heavy fence may rely on membarrier exactly when it saw `asymmetric`:
//   every light fence that skipped the full fence saw it too, after the
//   registration that makes membarrier cover every thread of the process.
// - heavy_fence() may be slow (a system call, about 0.3 us on 2 cores); it
//   runs only on the path that is about to sleep anyway.
#pragma once

#include <sluice/detail/memory/fence.hpp>

#include <atomic>
#include <cstdlib>

#if defined(__linux__) && __has_include(<linux/membarrier.h>)
#  include <linux/membarrier.h>
#  include <sys/syscall.h>
#  include <unistd.h>
#  define SLUICE_MEMBARRIER 1
#else
#  define SLUICE_MEMBARRIER 0
#endif

namespace sluice::detail {

enum class fence_mode : int { unknown, asymmetric, symmetric };

inline std::atomic<fence_mode> asymmetric_fence_mode{fence_mode::unknown};

// Decides the mode once (racing callers agree: the system answers the same).
inline fence_mode init_asymmetric_fence() noexcept {
  fence_mode mode = asymmetric_fence_mode.load(std::memory_order_acquire);
  if (mode != fence_mode::unknown) return mode;
  mode = fence_mode::symmetric;
#if SLUICE_MEMBARRIER
  const long cmds = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
      ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) {
    mode = fence_mode::asymmetric;
  }
#endif
  // release: a heavy fence that reads `asymmetric` runs after the registration.
  asymmetric_fence_mode.store(mode, std::memory_order_release);
  return mode;
}

// The frequent side. relaxed: see the invariants (anything but `asymmetric`
// takes the full fence, which is always correct). Always inlined: it runs in
// every send and receive, and left to the compiler it was a call there.
[[gnu::always_inline]] inline void light_fence() noexcept {
  if (asymmetric_fence_mode.load(std::memory_order_relaxed) == fence_mode::asymmetric) {
    std::atomic_signal_fence(std::memory_order_seq_cst);  // keeps the compiler's order
  } else {
    seq_cst_fence();
  }
}

// The rare side.
inline void heavy_fence() noexcept {
#if SLUICE_MEMBARRIER
  if (init_asymmetric_fence() == fence_mode::asymmetric) {
    // After a successful registration the call cannot fail; if it ever did,
    // light fences would be unpaired: stop rather than lose a wake-up.
    if (::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) std::abort();
    return;
  }
#endif
  seq_cst_fence();
}

}  // namespace sluice::detail
