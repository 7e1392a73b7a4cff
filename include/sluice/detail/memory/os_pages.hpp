// sluice/detail/memory/os_pages.hpp - memory mapped straight from the OS, for the
// flavors' large allocations.
//
// Two reasons to bypass the heap: memory unmapped goes back to the OS at once
// (the heap keeps freed memory for reuse), and a mapping can be populated in
// one system call, which is several times cheaper than faulting its pages in
// one by one as the first messages are written.
//
// Invariant: map_pages(n) returns n bytes, page-aligned and populated where
// the OS maps memory (elsewhere: 64-byte aligned from the heap); unmap_pages
// takes it back with the same n.
// The memory is zeroed where the OS maps it (mapped_pages_are_zeroed);
// callers construct what they store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

#if defined(__unix__) || defined(__APPLE__)
#  include <sys/mman.h>
#  define SLUICE_HAS_MMAP 1
#else
#  define SLUICE_HAS_MMAP 0
#endif

namespace sluice::detail {

// Whether map_pages() returns zeroed memory (fresh pages from the OS are).
inline constexpr bool mapped_pages_are_zeroed = SLUICE_HAS_MMAP != 0;

// Throws std::bad_alloc.
inline void* map_pages(std::size_t bytes) {
#if SLUICE_HAS_MMAP
#  if defined(MAP_POPULATE)
  constexpr int populate = MAP_POPULATE;
#  else
  constexpr int populate = 0;
#  endif
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | populate,
                   -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
#else
  return ::operator new(bytes, std::align_val_t{64});
#endif
}

// Faults in the pages under [p, p + bytes) in one system call where the OS
// can (Linux 5.14+), as a populated mapping would have been: cheaper than a
// fault per page when the memory is fresh, and nearly free when it is not.
// A hint: failure (an older kernel) changes nothing.
inline void populate_pages(void* p, std::size_t bytes) noexcept {
#if SLUICE_HAS_MMAP && defined(__linux__)
  constexpr int populate_write = 23;  // MADV_POPULATE_WRITE, in headers of Linux 5.14+
  constexpr std::uintptr_t page = 4096;
  const auto first = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
  const auto end = reinterpret_cast<std::uintptr_t>(p) + bytes;
  ::madvise(reinterpret_cast<void*>(first), end - first, populate_write);
#else
  (void)p;
  (void)bytes;
#endif
}

inline void unmap_pages(void* p, std::size_t bytes) noexcept {
#if SLUICE_HAS_MMAP
  ::munmap(p, bytes);
#else
  (void)bytes;
  ::operator delete(p, std::align_val_t{64});
#endif
}

}  // namespace sluice::detail
