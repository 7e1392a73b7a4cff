// sluice/detail/memory/fence.hpp - the sequentially consistent fence, in one place.
//
// ThreadSanitizer does not model standalone fences and GCC warns about them
// under -fsanitize=thread. Every fence in sluice orders a load after earlier
// accesses (a Dekker-style check); none publishes plain data, which always
// travels through release/acquire pairs the sanitizer does see. So under the
// sanitizer the fence stays (correct on the hardware) with the warning off.
#pragma once

#include <sluice/config.hpp>

#include <atomic>

namespace sluice::detail {

inline void seq_cst_fence() noexcept {
#if SLUICE_TSAN && defined(__GNUC__) && !defined(__clang__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wtsan"
  std::atomic_thread_fence(std::memory_order_seq_cst);
#  pragma GCC diagnostic pop
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace sluice::detail
