// sluice/detail/memory/chunk_cache.hpp - a small process-wide cache of the
// memory that destroyed channels give back, for the next channels to reuse.
//
// Why: a bounded channel's slots are fresh memory, and fresh memory costs the
// kernel a page fault and a zeroed page per 4 KiB (a third of the time of a
// channel that streams 100,000 messages once). The allocator does not keep
// it either: freed memory at the top of the heap is trimmed, and large
// blocks are unmapped. A program that makes channel after channel (a
// pipeline per request) would pay that on every one. Memory reused from
// here is already mapped: the next channel pays for writing its zeroed
// stamps only.
//
// What is kept: at most `ceiling` bytes (2 MiB) in the whole process, in
// chunks the way they were freed (one bounded channel's segments, each of
// one size); a chunk that does not fit under the ceiling is freed at once.
// Only destroyed channels feed it, never a live one, so a live channel's
// memory use is what it holds. The cache is never destroyed (a channel
// destroyed during static destruction may still give to it); what it holds
// at exit goes back with the process.
//
// Invariants:
// - Every chunk in the cache is raw memory of exactly its recorded size,
//   from the source its size implies for its owner (the caller decides both
//   from the size alone, so taking by size gives a chunk it can free).
// - held_ <= ceiling; held_ is the sum of the cached chunks' sizes.
// - Chunks of one size share a bucket (8 buckets: channels in one program
//   use few segment sizes); a chunk whose size finds no bucket is not kept.
// - All access is under lock_; nothing inside allocates or calls user code.
#pragma once

#include <sluice/detail/waiting/spin_lock.hpp>

#include <array>
#include <cstddef>
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

class chunk_cache {
 public:
  static constexpr std::size_t ceiling = std::size_t{2} << 20;  // 2 MiB

  // A cached chunk of exactly `bytes` bytes, or null. Its contents are
  // unspecified.
  void* take(std::size_t bytes) noexcept {
    std::lock_guard guard(lock_);
    for (bucket& b : buckets_) {
      if (b.bytes != bytes || b.first == nullptr) continue;
      node* n = b.first;
      b.first = n->next;
      held_ -= bytes;
      n->~node();
      unpoison(n, bytes);
      return n;
    }
    return nullptr;
  }

  // Keeps the chunk `p` of `bytes` bytes (aligned for a pointer) if it fits
  // under the ceiling and a bucket takes its size; returns false otherwise,
  // and then the caller frees it.
  bool give(void* p, std::size_t bytes) noexcept {
    if (bytes < sizeof(node) || bytes > ceiling) return false;
    std::lock_guard guard(lock_);
    if (held_ + bytes > ceiling) return false;
    bucket* into = nullptr;
    for (bucket& b : buckets_) {
      if (b.bytes == bytes) {
        into = &b;
        break;
      }
      if (into == nullptr && b.first == nullptr) into = &b;  // free for a new size
    }
    if (into == nullptr) return false;
    into->bytes = bytes;
    into->first = ::new (p) node{into->first};
    held_ += bytes;
    poison(into->first, bytes);
    return true;
  }

  // Bytes held now.
  [[nodiscard]] std::size_t held() noexcept {
    std::lock_guard guard(lock_);
    return held_;
  }

 private:
  struct node {
    node* next;
  };
  // One list per chunk size: a take is one bucket scan, never a list walk.
  struct bucket {
    std::size_t bytes = 0;
    node* first = nullptr;  // most recently given first: the warmest memory
  };

  // Under AddressSanitizer a cached chunk (but its link) is poisoned, so a
  // use after the channel died is still reported.
  static void poison([[maybe_unused]] node* n, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(SLUICE_ASAN)
    ASAN_POISON_MEMORY_REGION(reinterpret_cast<std::byte*>(n) + sizeof(node), bytes - sizeof(node));
#endif
  }
  static void unpoison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(SLUICE_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#endif
  }

  spin_lock lock_;
  std::array<bucket, 8> buckets_{};
  std::size_t held_ = 0;
};

// The process's cache (constant-initialised and trivially destructible, so
// usable from any static destructor; see above).
inline constinit chunk_cache process_chunk_cache{};

}  // namespace sluice::detail
