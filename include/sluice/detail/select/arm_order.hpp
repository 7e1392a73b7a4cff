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

// wyrand (Wang Yi's generator, also crossbeam's and Go's fastrand): one
// 64-bit multiply per draw, passes BigCrush.
class select_random {
 public:
  static std::uint64_t next() noexcept {
    std::uint64_t& s = state();
    s += 0xa0761d6478bd642fULL;
    const unsigned __int128 m =
        static_cast<unsigned __int128>(s) * static_cast<unsigned __int128>(s ^ 0xe7037ed1a0b428dbULL);
    return static_cast<std::uint64_t>(m >> 64) ^ static_cast<std::uint64_t>(m);
  }

  // Uniform in [0, n).
  static std::uint32_t below(std::uint32_t n) noexcept {
    const std::uint64_t r = next() & 0xffffffffULL;
    return static_cast<std::uint32_t>((r * n) >> 32);
  }

 private:
  static std::uint64_t& state() noexcept {
    // Seeded from the slot's own address: distinct per thread, and it
    // differs from run to run wherever the system randomises addresses.
    static thread_local std::uint64_t s = reinterpret_cast<std::uintptr_t>(&s) * 0x9e3779b97f4a7c15ULL;
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
