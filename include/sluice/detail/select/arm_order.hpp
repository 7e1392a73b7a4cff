// sluice/detail/select/arm_order.hpp - the order in which a select tries its
// arms: a fresh uniformly random permutation per select (fair: every ready
// arm is equally likely to be taken), or the written order (biased). The
// permutation is drawn as far as the select looks, not further.
//
// Invariants:
// - The generator is per thread and never shared, so drawing costs no
//   synchronisation; its quality only needs to make ready arms equally
//   likely, not to be unpredictable.
// - A permutation is Fisher-Yates over the arms' indices, one position at a
//   time as they are visited: uniform when the draws are (Lemire's multiply-shift reduction, with its bias below
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

// The order in which one select tries its arms, drawn lazily: position p
// is fixed (Fisher-Yates, front to back) only when the select gets there,
// so a select whose first tried arm is ready draws once, not once per arm.
// Each fixed position is uniform over the arms not yet placed, so the
// order tried is a uniformly random permutation, as if drawn in full.
class arm_order {
 public:
  // `slots` has one element per arm; `fair` false: the written order.
  arm_order(std::span<std::uint32_t> slots, bool fair) noexcept
      : order_(slots), placed_(fair ? 0 : slots.size()) {
    for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<std::uint32_t>(i);
  }

  [[nodiscard]] std::size_t size() const noexcept { return order_.size(); }

  // The arm tried at position `p`; positions are visited 0, 1, 2, ...
  // (again from 0 on a later round, which sees the same order).
  std::uint32_t at(std::size_t p) noexcept {
    if (p == placed_) {
      const std::size_t j =
          p + select_random::below(static_cast<std::uint32_t>(order_.size() - p));
      const std::uint32_t t = order_[p];
      order_[p] = order_[j];
      order_[j] = t;
      ++placed_;
    }
    return order_[p];
  }

 private:
  std::span<std::uint32_t> order_;
  std::size_t placed_;  // positions 0..placed_-1 are fixed
};

}  // namespace sluice::detail
