// SLUICE_CHUNK_CACHE_BYTES sets how much the process keeps from destroyed
// channels. Built twice: raised to 32 MiB, a channel of 1.5 MiB of slots is
// kept whole and the next one like it runs on that memory; at 0, nothing is
// kept. (Rings of 64 KiB segments take theirs from an arena of their own,
// array.hpp, which goes back to the allocator, not to this cache.)
#include <sluice/detail/memory/chunk_cache.hpp>
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>

namespace {

using sluice::detail::chunk_cache;
using sluice::detail::process_chunk_cache;

// Fills a bounded(100,000) channel of 8-byte messages (16-byte slots: 195
// whole 8 KiB segments and a short last one, which is never cached),
// receives half, and drops it.
void fill_and_drop() {
  constexpr std::size_t bound = 100'000;
  auto [tx, rx] = sluice::sync_channel<std::uint64_t>(bound);
  for (std::uint64_t i = 0; i < bound; ++i) ASSERT_TRUE(tx.try_send(std::uint64_t{i}).has_value());
  EXPECT_FALSE(tx.try_send(std::uint64_t{0}).has_value());
  for (std::uint64_t i = 0; i < bound / 2; ++i) ASSERT_EQ(rx.try_recv().value(), i);
}

constexpr std::size_t whole_segments_bytes = 195 * std::size_t{8 * 1024};

TEST(chunk_cache_ceiling, follows_the_knob) {
  fill_and_drop();
  if (chunk_cache::ceiling == 0) {
    EXPECT_EQ(process_chunk_cache.held(), 0u);
    return;
  }
  ASSERT_GE(chunk_cache::ceiling, whole_segments_bytes);
  EXPECT_EQ(process_chunk_cache.held(), whole_segments_bytes);
  {
    // The next channel like it takes every kept segment back while it fills.
    constexpr std::size_t bound = 100'000;
    auto [tx, rx] = sluice::sync_channel<std::uint64_t>(bound);
    for (std::uint64_t i = 0; i < bound; ++i) ASSERT_TRUE(tx.try_send(~i).has_value());
    EXPECT_EQ(process_chunk_cache.held(), 0u);
    for (std::uint64_t i = 0; i < bound; ++i) ASSERT_EQ(rx.try_recv().value(), ~i);
  }
  EXPECT_EQ(process_chunk_cache.held(), whole_segments_bytes);
}

}  // namespace
