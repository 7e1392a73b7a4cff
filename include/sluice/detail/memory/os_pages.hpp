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
// takes it back with the same n. map_huge_page() returns huge_page_bytes
// aligned to them where the OS maps memory, taken back the same way.
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

// The size of a huge page (x86-64 and most 64-bit targets Linux runs on).
inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;

// Whether map_huge_page() maps huge_page_bytes at a huge page's alignment,
// and discard_pages() gives pages back: where mmap exists.
inline constexpr bool maps_huge_pages = SLUICE_HAS_MMAP != 0;

// huge_page_bytes mapped from the OS at a huge page's alignment, asked to be
// backed by one huge page (Linux's transparent huge pages, when enabled for
// such requests) and populated: one fault instead of 512, and one zeroed
// page (measured on a virtual machine: ~45 us per MiB, against ~1.1 ms per
// MiB for 4 KiB pages faulted in by populated mappings of 256 KiB). Where
// no huge page comes, its 4 KiB pages are populated as map_pages() does
// (Linux 5.14+; before, they are faulted in as they are first written).
// Unmapped with unmap_pages(p, huge_page_bytes). Throws std::bad_alloc.
inline void* map_huge_page() {
#if SLUICE_HAS_MMAP
  constexpr int prot = PROT_READ | PROT_WRITE;
  constexpr int flags = MAP_PRIVATE | MAP_ANONYMOUS;
  constexpr std::uintptr_t align = huge_page_bytes;
  // Kernels that align large anonymous mappings by themselves need one
  // call; otherwise map twice the size and trim both ends.
  auto* p = static_cast<std::byte*>(::mmap(nullptr, huge_page_bytes, prot, flags, -1, 0));
  if (p == MAP_FAILED) throw std::bad_alloc();
  if ((reinterpret_cast<std::uintptr_t>(p) & (align - 1)) != 0) {
    ::munmap(p, huge_page_bytes);
    auto* raw = static_cast<std::byte*>(::mmap(nullptr, 2 * huge_page_bytes, prot, flags, -1, 0));
    if (raw == MAP_FAILED) throw std::bad_alloc();
    p = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(raw) + align - 1) &
                                     ~(align - 1));
    const auto head = static_cast<std::size_t>(p - raw);
    if (head != 0) ::munmap(raw, head);
    ::munmap(p + huge_page_bytes, huge_page_bytes - head);
  }
#  if defined(MADV_HUGEPAGE)
  ::madvise(p, huge_page_bytes, MADV_HUGEPAGE);  // a hint: failure leaves 4 KiB pages
#  endif
  populate_pages(p, huge_page_bytes);
  return p;
#else
  return map_pages(huge_page_bytes);
#endif
}

// Gives the pages under [p, p + bytes) (page-aligned) back to the OS; the
// mapping stays, and reads zero if touched again. A hint: where it cannot
// (no mmap), the memory stays until it is unmapped.
inline void discard_pages(void* p, std::size_t bytes) noexcept {
#if SLUICE_HAS_MMAP
  ::madvise(p, bytes, MADV_DONTNEED);
#else
  (void)p;
  (void)bytes;
#endif
}

// Asks that [p, p + bytes) (page-aligned) no longer be backed by huge
// pages, nor gathered into one later (Linux's khugepaged rebuilds one from
// a 2 MiB range with any page resident). A hint.
inline void forgo_huge_page(void* p, std::size_t bytes) noexcept {
#if SLUICE_HAS_MMAP && defined(MADV_NOHUGEPAGE)
  ::madvise(p, bytes, MADV_NOHUGEPAGE);
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
