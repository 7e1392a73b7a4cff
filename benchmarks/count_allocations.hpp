// Counts the heap bytes in use, by replacing the global operator new/delete
// of a benchmark binary. Include in exactly one translation unit.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace bench {
inline std::atomic<std::size_t> heap_bytes{0};
std::size_t heap_in_use() { return heap_bytes.load(std::memory_order_relaxed); }
}  // namespace bench

// Each block is prefixed with its size so delete can subtract it.
namespace bench_detail {
constexpr std::size_t header = alignof(std::max_align_t);
inline void* counted_alloc(std::size_t n, std::size_t align) {
  const std::size_t head = align > header ? align : header;
  void* raw = std::aligned_alloc(head, (n + head + head - 1) / head * head);
  if (raw == nullptr) throw std::bad_alloc();
  auto* p = static_cast<std::byte*>(raw) + head;
  reinterpret_cast<std::size_t*>(p)[-1] = n;
  reinterpret_cast<std::size_t*>(p)[-2] = head;
  bench::heap_bytes.fetch_add(n, std::memory_order_relaxed);
  return p;
}
inline void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  auto* b = static_cast<std::byte*>(p);
  const std::size_t n = reinterpret_cast<std::size_t*>(b)[-1];
  const std::size_t head = reinterpret_cast<std::size_t*>(b)[-2];
  bench::heap_bytes.fetch_sub(n, std::memory_order_relaxed);
  std::free(b - head);
}
}  // namespace bench_detail

void* operator new(std::size_t n) { return bench_detail::counted_alloc(n, 0); }
void* operator new[](std::size_t n) { return bench_detail::counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
  return bench_detail::counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return bench_detail::counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { bench_detail::counted_free(p); }
void operator delete[](void* p) noexcept { bench_detail::counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { bench_detail::counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { bench_detail::counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { bench_detail::counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { bench_detail::counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { bench_detail::counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { bench_detail::counted_free(p); }
