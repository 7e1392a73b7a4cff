// sluice/detail/memory/block_source.hpp - where the unbounded flavor's blocks come
// from, so that memory goes back to the OS once a burst has been drained.
//
// The allocator keeps freed heap memory for reuse (glibc returns it only from
// the top of the heap, and the block in use sits there), so a channel that
// once held ten million messages would keep their memory forever. Blocks are
// therefore taken from two places:
// - the heap, while the channel's queue spans few blocks (a channel holding
//   a handful of messages stays as small as one block); the channel says
//   how many, from its positions, so no count of live blocks is kept (two
//   read-modify-writes per block, on a line every send reads);
// - past that, regions mapped straight from the OS, of as many blocks as
//   fit in 64 KiB, or in 256 KiB once the queue spans 1 MiB of blocks (at
//   least one block either way). Large regions because unmapping costs a
//   system call and a flush of the translation cache: Linux flushes a
//   range of up to 33 pages page by page and anything larger in one go, so
//   a 64 KiB region cost 10x the time per byte of a 256 KiB one to unmap
//   (~45 us against ~17 us per region, measured on Linux 6 in a VM), and a
//   queue of millions of messages paid it for every 64 KiB. Small regions below
//   that because a queue that swings between empty and a few hundred
//   blocks (producers preempted, say) cycles its regions: small ones are
//   emptied, kept and reused sooner (measured: 256 KiB regions for every
//   queue made 4 producers streaming 1,000,000 messages 1.3x slower).
//   A region emptied of its blocks is kept for reuse while the kept ones
//   stay within `kept_bytes_limit` (512 KiB, counted before the OS rounds
//   a region up to whole pages; large regions within half of it, and all
//   of one size: 8 small regions of 8-byte messages, or one large one, and
//   none once one block is bigger than that, past ~16 KiB messages, whose
//   producer running ahead then maps a fresh region per block), and
//   unmapped otherwise: a producer running ahead of its consumer would
//   otherwise map and unmap, and fault in fresh pages, all the time, and a
//   drained burst leaves at most that behind, besides the channel's spare
//   block and the region blocks are carved from. The channel's queue is
//   FIFO, so regions empty in order.
// - past that again, for a queue spanning a huge page's worth of blocks or
//   more (2 MiB), huge regions: one huge page each (os_pages.hpp), when
//   blocks are small enough (<= 4 KiB). Fresh 4 KiB pages cost a fault and a
//   zeroed page each, ~1.1 ms per MiB on a virtual machine even populated
//   in one call; a huge page costs one (~45 us per MiB), so a queue of
//   millions of messages spends a fraction of the time on its memory. A
//   huge region exhausted as usual is unmapped whole once its blocks are
//   released. But a burst's last region would stay whole while its last
//   blocks live (a drained channel keeps its tail block), so when the
//   receiver finds the queue short (under 256 KiB of blocks, from its head
//   and tail, as it frees a block) while a huge region is being carved,
//   that region stops being carved: its uncarved blocks count as released,
//   it is no longer a huge page candidate (Linux's khugepaged would rebuild
//   the page), and it gives back, now and as they die, its groups of
//   256 KiB that hold no live block (each group counts the live blocks
//   that overlap it); the next block comes from a region sized for the
//   queue now. A drained burst then keeps a group or two, not a huge page
//   (its resident pages; the kernel frees the rest of the physical page
//   when it splits it, under memory pressure). The length decides, not
//   where the freed block lies: a block a sender allocated ahead and gave
//   back comes from the end of what was carved while the queue is long.
//   A burst whose last block is exactly a region's last keeps that region
//   whole while the block lives (about one burst in 4,000). Only that
//   region gives groups back: giving back part of a huge page splits it,
//   and a virtual machine then takes longer to touch each of its 4 KiB
//   pages (measured: draining a million messages took 2.5x the time when
//   every region gave its groups back as they died); 256 KiB, not less:
//   Linux flushes a range of up to 33 pages from the translation cache
//   page by page.
//   Huge regions are never kept or cached: they are unmapped once released.
// When the channel is destroyed, its kept regions go to the process's chunk
// cache (chunk_cache.hpp, 2 MiB in all by default), where the next channel
// that needs a region takes them before mapping a fresh one: fresh pages
// cost the kernel a fault and a zeroed page each, most of the time of a
// channel that streams 100,000 messages once.
//
// Invariants:
// - A block's `origin` names its region, or is null for a heap block.
// - A region's `blocks` is set before any block is carved from it and
//   never changes while it is mapped; its size is bytes_of(blocks).
// - `handed_` counts blocks carved from `current_`, which holds
//   `current_blocks_`; the list at `kept_` holds regions none of whose
//   blocks is live, `kept_bytes_` bytes in all (all under `lock_`), and
//   kept_bytes_ <= kept_bytes_limit (before page rounding; a large region
//   joins only while kept_bytes_ stays within half of it); kept regions
//   are all of one size. Once handed_ ==
//   current_blocks_, current_ may already be kept or unmapped: it is never
//   dereferenced again, only replaced.
//   `released` in a region counts blocks given back. Whoever makes
//   released == blocks (only possible once all its blocks were carved, so
//   nobody carves from it any more) keeps it or unmaps it; a kept region
//   is reset before reuse.
// - Huge regions: `live[g]` counts blocks carved and not released that
//   overlap group g. Groups are discarded only in a region whose carving
//   ended early (`ended_early`, set under lock_ once nothing more is carved
//   from it), when live[g] reads 0 (no block of it is live, nor will be),
//   never the header's first page, and always before the discarder's own
//   block counts as released: a discard never reaches a region that may be
//   unmapped.
#pragma once

#include <sluice/config.hpp>
#include <sluice/detail/memory/chunk_cache.hpp>
#include <sluice/detail/memory/os_pages.hpp>
#include <sluice/detail/waiting/spin_lock.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

namespace sluice::detail {

// Block must have a `void* origin` member and be default constructible;
// every block acquire() hands out is freshly default-constructed (the list
// flavor relies on it for its cleared `written` flags).
template <class Block>
class block_source {
  static constexpr std::size_t group_bytes = 256 * 1024;
  static constexpr std::size_t huge_groups = huge_page_bytes / group_bytes;

  struct region {
    std::atomic<std::size_t> released{0};  // blocks given back so far
    std::size_t blocks = 0;                // blocks it holds (its size: bytes_of)
    region* next_kept = nullptr;           // the next kept region (under lock_)
    // Huge regions only (see the invariants).
    bool huge = false;
    std::atomic<bool> ended_early{false};    // carving ended before the region was exhausted
    std::atomic<std::uint32_t> live[huge_groups]{};
  };

  // A queue spanning fewer blocks than this (head's and tail's included)
  // gets heap blocks: a steady stream (head block, tail block, the next
  // one, the spare) never touches a region.
  static constexpr std::size_t heap_blocks = 4;
  static constexpr std::size_t header_bytes =
      (sizeof(region) + alignof(Block) - 1) / alignof(Block) * alignof(Block);
  static constexpr std::size_t blocks_within(std::size_t target_bytes) noexcept {
    return std::max<std::size_t>(1, (target_bytes - header_bytes) / sizeof(Block));
  }
  static constexpr std::size_t bytes_of(std::size_t blocks) noexcept {
    return header_bytes + blocks * sizeof(Block);
  }
  static constexpr std::size_t small_blocks = blocks_within(64 * 1024);
  static constexpr std::size_t large_blocks = blocks_within(256 * 1024);
  // A huge region's blocks; its pages' header is the region's first page.
  static constexpr std::size_t header_page = 4096;
  static constexpr std::size_t huge_blocks = (huge_page_bytes - header_bytes) / sizeof(Block);

 public:
  static constexpr std::size_t small_region_bytes = bytes_of(small_blocks);
  static constexpr std::size_t large_region_bytes = bytes_of(large_blocks);
  // A queue spanning this many blocks or more takes large regions.
  static constexpr std::size_t large_queue_blocks =
      std::max<std::size_t>(heap_blocks, (1024 * 1024) / sizeof(Block));
  // Whether huge regions are used at all, and from which queue span on.
  static constexpr bool has_huge_regions = SLUICE_HUGE_PAGES != 0 && maps_huge_pages &&
                                            sizeof(Block) <= 4096 && header_bytes <= header_page;
  static constexpr std::size_t huge_queue_blocks =
      std::max<std::size_t>(large_queue_blocks, huge_page_bytes / sizeof(Block));
  // Blocks in a huge region, and the groups it gives back by.
  static constexpr std::size_t huge_region_blocks = huge_blocks;
  static constexpr std::size_t huge_group_bytes = group_bytes;
  // A queue spanning fewer blocks than this is short: a huge region being
  // carved then stops being carved (see the header).
  static constexpr std::size_t short_queue_blocks =
      std::max<std::size_t>(1, group_bytes / sizeof(Block));
  // Bytes of emptied regions a live channel keeps for reuse, at most.
  static constexpr std::size_t kept_bytes_limit = 512 * 1024;

  block_source() noexcept = default;
  block_source(const block_source&) = delete;
  block_source& operator=(const block_source&) = delete;

  // Precondition: every acquired block was released.
  ~block_source() {
    // An exhausted region was kept or unmapped by its last release; a
    // partly carved one is still mapped and now has no live block.
    if (current_ != nullptr && handed_ < current_blocks_) retire(current_);
    while (kept_ != nullptr) {
      region* r = kept_;
      kept_ = r->next_kept;
      retire(r);
    }
  }

  // A fresh block for a queue that spans `queued_blocks` blocks now (a
  // hint: which source a block comes from does not affect correctness).
  // Any thread. Throws std::bad_alloc.
  Block* acquire(std::size_t queued_blocks) {
    if (queued_blocks < heap_blocks) return new Block;
    std::lock_guard guard(lock_);
    if (current_ == nullptr || handed_ == current_blocks_) {
      take_region(has_huge_regions && queued_blocks >= huge_queue_blocks ? huge_blocks
                  : queued_blocks >= large_queue_blocks                   ? large_blocks
                                                                          : small_blocks);
    }
    region* r = current_;
    const std::size_t offset = header_bytes + handed_ * sizeof(Block);
    ++handed_;
    Block* b = ::new (reinterpret_cast<std::byte*>(r) + offset) Block;
    b->origin = r;
    if (r->huge) {
      // relaxed: under lock_, which end_carving() takes before it reads them.
      for (std::size_t g = first_group(offset); g <= last_group(offset); ++g) {
        r->live[g].fetch_add(1, std::memory_order_relaxed);
      }
      if (handed_ == current_blocks_) current_huge_.store(nullptr, std::memory_order_relaxed);
    }
    return b;
  }

  // What release() is told when the caller does not know the queue's span
  // (or is not the receiver taking blocks in order).
  static constexpr std::size_t span_unknown = static_cast<std::size_t>(-1);

  // Whether a huge region is being carved now: a receiver then tells
  // release() how many blocks the queue spans (a hint, read relaxed).
  [[nodiscard]] bool carving_huge() const noexcept {
    return current_huge_.load(std::memory_order_relaxed) != nullptr;
  }

  // Gives a block back (null: none). Any thread; each block once.
  // `queued_blocks`: the span of the queue, head's and tail's blocks
  // included, from the receiver that drained `b` in order; when it is under
  // a group's worth, the huge region being carved stops being carved (see
  // the header).
  void release(Block* b, std::size_t queued_blocks = span_unknown) noexcept {
    if (queued_blocks < short_queue_blocks) {
      // relaxed: a hint; end_carving() decides under the lock.
      if (region* h = current_huge_.load(std::memory_order_relaxed)) end_carving(h);
    }
    if (b == nullptr) return;
    auto* r = static_cast<region*>(b->origin);
    if (r == nullptr) {
      delete b;
      return;
    }
    b->~Block();
    const std::size_t blocks = r->blocks;  // read while a block keeps r mapped
    if (r->huge) {
      release_huge_block(r, static_cast<std::size_t>(reinterpret_cast<std::byte*>(b) -
                                                     reinterpret_cast<std::byte*>(r)));
    }
    // acq_rel: the releaser that keeps or unmaps must see every other
    // release done; the lock below then hands that on to the next carver.
    if (r->released.fetch_add(1, std::memory_order_acq_rel) + 1 != blocks) return;
    if (r->huge) {  // never kept
      unmap_huge(r);
      return;
    }
    region* outgrown = nullptr;  // kept regions of the other size, to unmap
    {
      std::lock_guard guard(lock_);
      if (kept_ != nullptr && kept_->blocks != blocks) {
        outgrown = kept_;
        kept_ = nullptr;
        kept_bytes_ = 0;
      }
      if (kept_bytes_ + bytes_of(blocks) <= keep_limit_for(blocks)) {
        r->next_kept = kept_;
        kept_ = r;
        kept_bytes_ += bytes_of(blocks);
        r = nullptr;
      }
    }
    // Outside the lock: system calls.
    if (r != nullptr) unmap_pages(r, bytes_of(blocks));
    while (outgrown != nullptr) {
      region* next = outgrown->next_kept;
      unmap_pages(outgrown, bytes_of(outgrown->blocks));
      outgrown = next;
    }
  }

  // Bytes of the emptied regions kept now (for tests).
  [[nodiscard]] std::size_t kept_bytes() noexcept {
    std::lock_guard guard(lock_);
    return kept_bytes_;
  }

 private:
  // Large regions are kept within half the limit, small ones within all
  // of it, and the kept ones are all of one size (an emptied region of the
  // other size replaces them: the queue has moved past, or back under,
  // 1 MiB): a drained burst of a long queue then leaves one large region
  // kept besides the one in use, and streams whose queue stays under 1 MiB
  // keep as many small ones as before.
  static constexpr std::size_t keep_limit_for(std::size_t blocks) noexcept {
    return blocks == small_blocks ? kept_bytes_limit : kept_bytes_limit / 2;
  }

  // Makes current_ a region with no block carved: a kept one (of either
  // size: its pages are in already), else one of `blocks` blocks from the
  // process's cache or mapped. Under lock_ (a system call, rarely: once per
  // region, and the other senders have blocks to fill meanwhile). Throws
  // std::bad_alloc.
  void take_region(std::size_t blocks) {
    if (blocks == huge_blocks && has_huge_regions) {
      region* r = ::new (map_huge_page()) region;
      r->blocks = blocks;
      r->huge = true;
      current_ = r;
      current_blocks_ = blocks;
      handed_ = 0;
      current_huge_.store(r, std::memory_order_relaxed);
      return;
    }
    current_huge_.store(nullptr, std::memory_order_relaxed);
    region* r = kept_;
    if (r != nullptr) {
      kept_ = r->next_kept;
      kept_bytes_ -= bytes_of(r->blocks);
    } else {
      void* raw = process_chunk_cache.take(bytes_of(blocks), chunk_cache::source::mapped);
      if (raw == nullptr) raw = map_pages(bytes_of(blocks));
      r = ::new (raw) region;
      r->blocks = blocks;
    }
    // Blocks are counted from zero again (a kept region's count is full).
    r->released.store(0, std::memory_order_relaxed);
    current_ = r;
    current_blocks_ = r->blocks;
    handed_ = 0;
  }

  // A region this channel is done with: to the process's cache (kept or unmapped).
  static void retire(region* r) noexcept {
    if (r->huge) {
      unmap_huge(r);
      return;
    }
    const std::size_t bytes = bytes_of(r->blocks);
    r->~region();
    process_chunk_cache.put(r, bytes, chunk_cache::source::mapped);
  }

  // A released block of huge region `r` at `offset`: counts it out of its
  // groups and, if the carving of `r` ended early, discards the groups that
  // died. Before the block counts as released (see the invariants).
  void release_huge_block(region* r, std::size_t offset) noexcept {
    const std::size_t first = first_group(offset);
    const std::size_t last = last_group(offset);
    // seq_cst (the decrements, then the load of ended_early): the Dekker
    // pair with end_carving(), whose scan of live[] follows its store of
    // ended_early: one of the two sees the other and discards.
    for (std::size_t g = first; g <= last; ++g) r->live[g].fetch_sub(1, std::memory_order_seq_cst);
    if (r->ended_early.load(std::memory_order_seq_cst)) {
      for (std::size_t g = first; g <= last; ++g) discard_dead(r, g, g + 1);
    }
  }

  // Ends the carving of `r` if it is still the region being carved and not
  // used up: its uncarved blocks count as released, it stops being a huge
  // page candidate, and its dead groups (the uncarved ones among them) are
  // discarded, as are the groups that die from now on. `r` stays mapped
  // until its uncarved blocks are counted (its count cannot be complete
  // before), which is last.
  void end_carving(region* r) noexcept {
    std::size_t uncarved = 0;
    {
      std::lock_guard guard(lock_);
      // `r` may be a stale hint: compared, and read only once it is
      // current_ and not used up (so not released whole: mapped), and it
      // must be a huge region (another region may have been mapped at a
      // huge one's address since).
      if (current_ != r || handed_ == current_blocks_ || !r->huge) return;
      uncarved = current_blocks_ - handed_;
      current_ = nullptr;
      current_blocks_ = 0;
      handed_ = 0;
      current_huge_.store(nullptr, std::memory_order_relaxed);
      r->ended_early.store(true, std::memory_order_seq_cst);  // see release_huge_block()
    }
    // Linux's khugepaged would otherwise rebuild a huge page from what is
    // left (a page or more of it resident) within seconds.
    forgo_huge_page(r, huge_page_bytes);
    // Runs of dead groups, one system call each (one early-ended region per
    // drained burst: discards split its huge page, and the pages of a split
    // one cost a virtual machine more to touch, so regions exhausted as
    // usual are unmapped whole instead).
    for (std::size_t g = 0; g < huge_groups;) {
      if (r->live[g].load(std::memory_order_seq_cst) != 0) {
        ++g;
        continue;
      }
      std::size_t to = g + 1;
      while (to < huge_groups && r->live[to].load(std::memory_order_seq_cst) == 0) ++to;
      discard_dead(r, g, to);
      g = to;
    }
    // acq_rel: as release()'s count; the last one unmaps.
    const std::size_t blocks = r->blocks;
    if (r->released.fetch_add(uncarved, std::memory_order_acq_rel) + uncarved == blocks) {
      unmap_huge(r);
    }
  }

  // The groups the block at `offset` of a huge region overlaps: first to last.
  static constexpr std::size_t first_group(std::size_t offset) noexcept {
    return offset / group_bytes;
  }
  static constexpr std::size_t last_group(std::size_t offset) noexcept {
    return (offset + sizeof(Block) - 1) / group_bytes;
  }

  // A huge region released whole (or never carved again): back to the OS.
  static void unmap_huge(region* r) noexcept {
    r->~region();
    unmap_pages(r, huge_page_bytes);
  }

  // Discards groups [from, to) of `r`, which held no live block when read
  // (none can come: its carving has ended). Two threads may both discard a
  // group: the second finds it discarded. The first page keeps the header.
  static void discard_dead(region* r, std::size_t from, std::size_t to) noexcept {
    if (from == to - 1 && r->live[from].load(std::memory_order_seq_cst) != 0) return;
    const std::size_t begin = std::max(from * group_bytes, header_page);
    discard_pages(reinterpret_cast<std::byte*>(r) + begin, to * group_bytes - begin);
  }

  // current_ while it is a huge region being carved, else null: read
  // without the lock by receivers deciding whether to end its carving.
  // First: beside the flavor's spare block pointer, on a line the receiver
  // takes anyway, not on the senders' line of the members below.
  std::atomic<region*> current_huge_{nullptr};
  spin_lock lock_;                   // guards the members below
  region* current_ = nullptr;        // the region blocks are carved from
  std::size_t current_blocks_ = 0;   // blocks current_ holds
  std::size_t handed_ = 0;           // blocks carved from current_
  // Emptied regions kept for reuse, linked through their headers (the
  // channel's last cache line has no room for an array of them).
  region* kept_ = nullptr;
  std::size_t kept_bytes_ = 0;
};

}  // namespace sluice::detail
