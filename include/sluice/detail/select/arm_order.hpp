// sluice/detail/select/arm_order.hpp - the order in which a select tries its
// arms: a fresh uniformly random permutation per select (fair: every ready
// arm is equally likely to be taken), or the written order (biased).
//
// Invariants:
// - The generator is per thread and never shared, so drawing costs no
//   synchronisation; its quality only needs to make ready arms equally
//   likely, not to be unpredictable.
// - A permutation is Fisher-Yates over the arms' indices: uniform when the
//   draws are (Lemire's multiply-shift reduction, with its bias below
//   2^-32 * n, negligible for any number of arms a select can hold).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace sluice::detail {

// xorshift64* (Marsaglia's xorshift, scrambled by one multiply; Vigna):
// a few cycles per draw, and its high 32 bits pass BigCrush.
class select_random {
 public:
  static std::uint64_t next() noexcept {
    std::uint64_t& x = state();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545f4914f6cdd1dULL;
  }

  // Uniform in [0, n).
  static std::uint32_t below(std::uint32_t n) noexcept {
    const std::uint64_t r = next() >> 32;  // the better half
    return static_cast<std::uint32_t>((r * n) >> 32);
  }

 private:
  static std::uint64_t& state() noexcept {
    // Seeded from the slot's own address: distinct per thread, and it
    // differs from run to run wherever the system randomises addresses.
    // (| 1: xorshift's state must not be zero.)
    static thread_local std::uint64_t s =
        (reinterpret_cast<std::uintptr_t>(&s) * 0x9e3779b97f4a7c15ULL) | 1;
    return s;
  }
};

// Fills `order` with 0..n-1: shuffled if `fair`, else in written order.
inline void arrange_arms(std::span<std::uint32_t> order, bool fair) noexcept {
  const auto n = static_cast<std::uint32_t>(order.size());
  for (std::uint32_t i = 0; i < n; ++i) order[i] = i;
  if (!fair) return;
  for (std::uint32_t i = n; i > 1; --i) {
    const std::uint32_t j = select_random::below(i);
    const std::uint32_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
}

}  // namespace sluice::detail
