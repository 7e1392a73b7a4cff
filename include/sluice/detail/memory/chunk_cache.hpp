// sluice/detail/memory/chunk_cache.hpp - a small process-wide cache of the
// memory that destroyed channels give back, for the next channels to reuse.
//
// Why: a channel's slots are fresh memory, and fresh memory costs the
// kernel a page fault and a zeroed page per 4 KiB (a third of the time of a
// channel that streams 100,000 messages once). The allocator does not keep
// it either: freed memory at the top of the heap is trimmed, and large
// blocks are unmapped. A program that makes channel after channel (a
// pipeline per request) would pay that on every one. Memory reused from
// here is already mapped: the next channel pays for writing its zeroed
// stamps only.
//
// What is kept: at most `ceiling` bytes (SLUICE_CHUNK_CACHE_BYTES, 2 MiB by
// default: config.hpp) in the whole process, in
// chunks the way they were freed (a bounded channel's segments, an
// unbounded channel's regions). Past the ceiling, chunks of other sizes
// given longest ago are freed to make room, and a chunk that still does not
// fit is freed at once. Only destroyed channels feed it, never a live one,
// so a live channel's memory use is what it holds. The cache is never
// destroyed (a channel destroyed during static destruction may still put
// to it); what it holds at exit goes back with the process.
//
// Invariants:
// - Every chunk in the cache is raw memory of exactly its recorded size and
//   from its recorded source (the heap, 64-byte aligned, or a mapping), so a
//   chunk taken by size and source is one the taker can free.
// - held_ <= ceiling; held_ is the sum of the cached chunks' sizes.
// - Chunks of one size and source share a bucket (8 buckets: channels in
//   one program use few segment sizes); a new size takes an empty bucket or
//   empties the one given to longest ago.
// - A cached chunk's bytes past its recorded `dirty` prefix are zero (its
//   giver said so), so take_zeroed() clears only the prefix.
// - Nothing is freed or cleared under the lock (munmap is a system call).
// - All access is under lock_; nothing inside allocates or calls user code.
#pragma once

#include <sluice/config.hpp>
#include <sluice/detail/memory/os_pages.hpp>
#include <sluice/detail/waiting/spin_lock.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#  define SLUICE_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define SLUICE_ASAN 1
#  endif
#endif
#if defined(SLUICE_ASAN)
#  include <sanitizer/asan_interface.h>
#endif

namespace sluice::detail {

// Marks kept memory unusable under AddressSanitizer (nothing elsewhere), so
// a use after its channel died is reported; unpoison before handing it on.
inline void poison_chunk([[maybe_unused]] void* p, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(SLUICE_ASAN)
  ASAN_POISON_MEMORY_REGION(p, bytes);
#endif
}
inline void unpoison_chunk([[maybe_unused]] void* p, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(SLUICE_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#endif
}

class chunk_cache {
 public:
  static constexpr std::size_t ceiling = SLUICE_CHUNK_CACHE_BYTES;  // config.hpp
  // Heap chunks come from ::operator new(bytes, std::align_val_t{heap_alignment}).
  static constexpr std::size_t heap_alignment = 64;

  // Where a chunk came from, and so how it is freed.
  enum class source : unsigned char { heap, mapped };

  // A cached chunk of exactly `bytes` bytes from `from`, or null. Its
  // contents are unspecified.
  void* take(std::size_t bytes, source from) noexcept {
    std::size_t dirty = 0;
    return take_chunk(bytes, from, dirty);
  }

  // As take(), but every byte of the chunk is zero: only the prefix its
  // giver may have written (see put()) is cleared, so a channel that used a
  // few slots of its segment hands the next one a segment that costs a few
  // bytes to clear, not a page.
  void* take_zeroed(std::size_t bytes, source from) noexcept {
    std::size_t dirty = 0;
    void* p = take_chunk(bytes, from, dirty);
    if (p != nullptr) std::memset(p, 0, dirty);  // outside the lock
    return p;
  }

  // Keeps the chunk `p` of `bytes` bytes from `from`, or frees it (heap
  // chunks: see heap_alignment). To
  // make room, chunks of other sizes go first, those given longest ago
  // first (the memory of the channels a program makes now matters more than
  // that of channels it made once); chunks of its own size are never pushed
  // out, so past the ceiling `p` itself is freed.
  // `dirty` says how many leading bytes the giver may have written since
  // the chunk was last all zero (all of them, unless the giver knows
  // better); take_zeroed() clears that many, and the cache's own link.
  void put(void* p, std::size_t bytes, source from, std::size_t dirty = ~std::size_t{0}) noexcept {
    node* evicted = nullptr;
    bool kept = false;
    if (bytes >= sizeof(node) && bytes <= ceiling) {
      dirty = std::clamp(dirty, sizeof(node), bytes);
      std::lock_guard guard(lock_);
      kept = keep(p, bytes, from, dirty, evicted);
    }
    if (!kept) free_chunk(p, bytes, from);
    while (evicted != nullptr) {
      node* n = evicted;
      evicted = n->next;
      const std::size_t n_bytes = n->bytes;
      const source n_from = n->from;
      n->~node();
      unpoison_chunk(n, n_bytes);
      free_chunk(n, n_bytes, n_from);
    }
  }

  // Frees a chunk the way its source says.
  static void free_chunk(void* p, std::size_t bytes, source from) noexcept {
    if (from == source::mapped) {
      unmap_pages(p, bytes);
    } else {
      ::operator delete(p, bytes, std::align_val_t{heap_alignment});
    }
  }

  // Bytes held now.
  [[nodiscard]] std::size_t held() noexcept {
    std::lock_guard guard(lock_);
    return held_;
  }

 private:
  struct node {
    node* next;
    std::size_t bytes;  // read when the chunk is evicted
    std::size_t dirty;  // leading bytes that may be non-zero (>= sizeof(node))
    source from;
  };
  // One list per chunk size: a take is one bucket scan, never a list walk.
  struct bucket {
    std::size_t bytes = 0;
    source from = source::heap;
    std::size_t last_given = 0;  // gives_ at its latest give
    node* first = nullptr;  // most recently given first: the warmest memory
  };

  // put()'s work under the lock: links `p` in, first moving chunks of other
  // buckets to `evicted` as needed. False if `p` cannot be kept.
  bool keep(void* p, std::size_t bytes, source from, std::size_t dirty, node*& evicted) noexcept {
    bucket* into = find(bytes, from);
    for (;;) {
      const bool fits = held_ + bytes <= ceiling;
      if (fits && into != nullptr) break;
      bucket* victim = oldest_other(into);
      if (victim == nullptr) return false;  // only chunks of its own size
      node* n = victim->first;
      victim->first = n->next;
      held_ -= victim->bytes;
      n->next = evicted;
      evicted = n;
      if (into == nullptr) into = find(bytes, from);
    }
    into->bytes = bytes;
    into->from = from;
    into->last_given = ++gives_;
    into->first = ::new (p) node{into->first, bytes, dirty, from};
    held_ += bytes;
    poison(into->first, bytes);
    return true;
  }

  // take()'s work: unlinks a chunk, and says how many of its leading bytes
  // may be non-zero.
  void* take_chunk(std::size_t bytes, source from, std::size_t& dirty) noexcept {
    std::lock_guard guard(lock_);
    for (bucket& b : buckets_) {
      if (b.bytes != bytes || b.from != from || b.first == nullptr) continue;
      node* n = b.first;
      b.first = n->next;
      held_ -= bytes;
      dirty = n->dirty;
      n->~node();
      unpoison_chunk(n, bytes);
      return n;
    }
    return nullptr;
  }

  // The bucket for chunks of `bytes` from `from`, else an empty one, else null.
  bucket* find(std::size_t bytes, source from) noexcept {
    bucket* empty = nullptr;
    for (bucket& b : buckets_) {
      if (b.first != nullptr && b.bytes == bytes && b.from == from) return &b;
      if (empty == nullptr && b.first == nullptr) empty = &b;
    }
    return empty;
  }

  // The non-empty bucket other than `own` given to longest ago, or null.
  bucket* oldest_other(const bucket* own) noexcept {
    bucket* oldest = nullptr;
    for (bucket& b : buckets_) {
      if (&b == own || b.first == nullptr) continue;
      if (oldest == nullptr || b.last_given < oldest->last_given) oldest = &b;
    }
    return oldest;
  }

  // Under AddressSanitizer a cached chunk (but its link) is poisoned, so a
  // use after the channel died is still reported.
  static void poison(node* n, std::size_t bytes) noexcept {
    poison_chunk(reinterpret_cast<std::byte*>(n) + sizeof(node), bytes - sizeof(node));
  }

  spin_lock lock_;
  std::array<bucket, 8> buckets_{};
  std::size_t held_ = 0;
  std::size_t gives_ = 0;  // counts puts kept, to order buckets by age
};

// The process's cache (constant-initialised and trivially destructible, so
// usable from any static destructor; see above).
inline constinit chunk_cache process_chunk_cache{};

}  // namespace sluice::detail
