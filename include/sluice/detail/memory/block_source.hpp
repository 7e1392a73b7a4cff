// sluice/detail/memory/block_source.hpp - where the unbounded flavor's blocks come
// from, so that memory goes back to the OS once a burst has been drained.
//
// The allocator keeps freed heap memory for reuse (glibc returns it only from
// the top of the heap, and the block in use sits there), so a channel that
// once held ten million messages would keep their memory forever. Blocks are
// therefore taken from two places:
// - the heap, while the channel has few live blocks (a channel holding a
//   handful of messages stays as small as one block);
// - past that, regions of many blocks mapped straight from the OS; a region
//   is unmapped the moment the last of its blocks is released, except that
//   one emptied region is kept for reuse (a producer running ahead of its
//   consumer would otherwise map and unmap, and fault in fresh pages, all
//   the time). The list is FIFO, so regions empty in order and a drained
//   burst leaves at most one region behind.
//
// Invariants:
// - A block's `origin` names its region, or is null for a heap block.
// - `handed_` counts blocks carved from `current_` (under `lock_`);
//   `released` in a region counts blocks given back. Whoever makes
//   released == blocks_per_region (only possible once all its blocks were
//   carved, so nobody carves from it any more) parks it in `spare_region_`
//   or unmaps it; a parked region is reset under `lock_` before reuse.
#pragma once

#include <sluice/detail/memory/os_pages.hpp>
#include <sluice/detail/waiting/spin_lock.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <new>

namespace sluice::detail {

// Block must have a `void* origin` member and be default constructible.
template <class Block>
class block_source {
  struct region {
    std::atomic<std::size_t> released{0};  // blocks given back so far
  };

  // Heap blocks allowed before regions take over: enough for a steady
  // stream (head block, tail block, spare) without touching a region.
  static constexpr std::size_t heap_blocks = 4;
  static constexpr std::size_t region_target_bytes = 64 * 1024;
  static constexpr std::size_t header_bytes =
      (sizeof(region) + alignof(Block) - 1) / alignof(Block) * alignof(Block);
  static constexpr std::size_t blocks_per_region =
      std::max<std::size_t>(8, (region_target_bytes - header_bytes) / sizeof(Block));
  static constexpr std::size_t region_bytes = header_bytes + blocks_per_region * sizeof(Block);

 public:
  block_source() noexcept = default;
  block_source(const block_source&) = delete;
  block_source& operator=(const block_source&) = delete;

  // Precondition: every acquired block was released.
  ~block_source() {
    // An exhausted region was unmapped by its last release; a partly carved
    // one is still mapped and now has no live block.
    if (current_ != nullptr && handed_ < blocks_per_region) unmap_pages(current_, region_bytes);
    if (region* r = spare_region_.load(std::memory_order_relaxed)) unmap_pages(r, region_bytes);
  }

  // A fresh block. Any thread. Throws std::bad_alloc.
  Block* acquire() {
    // relaxed: a heuristic only; which source a block comes from does not
    // affect correctness.
    if (live_.fetch_add(1, std::memory_order_relaxed) < heap_blocks) {
      try {
        return new Block;
      } catch (...) {
        live_.fetch_sub(1, std::memory_order_relaxed);
        throw;
      }
    }
    std::unique_lock guard(lock_);
    if (current_ == nullptr || handed_ == blocks_per_region) {
      // acquire: pairs with the release that parked it; its blocks are gone.
      region* r = spare_region_.exchange(nullptr, std::memory_order_acquire);
      if (r != nullptr) {
        r->released.store(0, std::memory_order_relaxed);
      } else {
        try {
          r = ::new (map_pages(region_bytes)) region;
        } catch (...) {
          guard.unlock();
          live_.fetch_sub(1, std::memory_order_relaxed);
          throw;
        }
      }
      current_ = r;
      handed_ = 0;
    }
    auto* raw = reinterpret_cast<std::byte*>(current_) + header_bytes + handed_ * sizeof(Block);
    ++handed_;
    Block* b = ::new (raw) Block;
    b->origin = current_;
    return b;
  }

  // Gives a block back. Any thread; each block once.
  void release(Block* b) noexcept {
    if (b == nullptr) return;
    live_.fetch_sub(1, std::memory_order_relaxed);
    auto* r = static_cast<region*>(b->origin);
    if (r == nullptr) {
      delete b;
      return;
    }
    b->~Block();
    // acq_rel: the releaser that unmaps must see every other release done.
    if (r->released.fetch_add(1, std::memory_order_acq_rel) + 1 == blocks_per_region) {
      region* none = nullptr;
      // release: the next carver sees the region's blocks destroyed.
      if (!spare_region_.compare_exchange_strong(none, r, std::memory_order_release,
                                                 std::memory_order_relaxed)) {
        unmap_pages(r, region_bytes);
      }
    }
  }

 private:
  spin_lock lock_;                       // guards current_ and handed_
  region* current_ = nullptr;            // the region blocks are carved from
  std::size_t handed_ = 0;               // blocks carved from current_
  std::atomic<std::size_t> live_{0};     // blocks acquired and not released
  std::atomic<region*> spare_region_{nullptr};  // one emptied region kept for reuse
};

}  // namespace sluice::detail
