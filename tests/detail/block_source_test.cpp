// The unbounded flavor's block source: a drained burst leaves at most
// 512 KiB of emptied regions behind while the channel lives (256 KiB of
// large ones), whatever the block's size (regions of large messages hold
// fewer blocks, one past 64 KiB, and a block larger than the limit is never
// kept), kept regions are reused before any new one is mapped, and a long
// queue takes its blocks from large regions.
#include <sluice/detail/memory/block_source.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <set>
#include <vector>

namespace {

// A block as the flavor's: an `origin` member, default constructible.
template <std::size_t Payload>
struct test_block {
  void* origin = nullptr;
  std::array<std::byte, Payload> payload;
};

constexpr std::size_t kept_limit = 512 * 1024;
constexpr std::size_t short_span = 100;  // past the heap's few blocks: small regions

// The longest queue that still takes small regions (the heap serves queues
// of under 4 blocks; blocks over 256 KiB have one size of region only).
template <class Source>
constexpr std::size_t small_span = std::max<std::size_t>(4, Source::large_queue_blocks - 1);

// Fills more regions than the kept list holds (a queue spanning `span`
// blocks), drains them all, then refills what was kept.
// Regions of `region_bytes` are kept within `limit` bytes.
template <class Block>
void drained_burst_keeps_at_most_the_limit(std::size_t span, std::size_t region_bytes,
                                           std::size_t limit = kept_limit) {
  using source = sluice::detail::block_source<Block>;
  static_assert(source::kept_bytes_limit == kept_limit);
  const std::size_t kept_regions = limit / region_bytes;
  source blocks;
  const std::size_t regions = kept_regions + 3;
  const std::size_t per_region = (region_bytes - 1) / sizeof(Block);  // header first
  std::vector<Block*> live;
  std::set<void*> origins;
  for (std::size_t i = 0; i < regions * per_region; ++i) {
    Block* b = blocks.acquire(span);
    ASSERT_NE(b->origin, nullptr) << "a block of a long queue comes from a region";
    b->payload[0] = std::byte{1};  // the memory is writable
    origins.insert(b->origin);
    live.push_back(b);
  }
  EXPECT_EQ(origins.size(), regions) << "regions of " << region_bytes << " bytes";
  EXPECT_EQ(blocks.kept_bytes(), 0u);
  for (Block* b : live) blocks.release(b);
  live.clear();
  EXPECT_LE(blocks.kept_bytes(), kept_limit);
  EXPECT_EQ(blocks.kept_bytes(), kept_regions * region_bytes);

  // Refilling takes the kept regions first.
  for (std::size_t i = 0; i < kept_regions * per_region; ++i) live.push_back(blocks.acquire(span));
  EXPECT_EQ(blocks.kept_bytes(), 0u);
  for (Block* b : live) blocks.release(b);
}

TEST(block_source, small_blocks_keep_eight_small_regions) {
  using source = sluice::detail::block_source<test_block<512>>;
  static_assert(short_span < source::large_queue_blocks);
  EXPECT_EQ(kept_limit / source::small_region_bytes, 8u);
  drained_burst_keeps_at_most_the_limit<test_block<512>>(short_span, source::small_region_bytes);
}

// A queue spanning 1 MiB of blocks takes 256 KiB regions, kept within half
// the limit: one.
TEST(block_source, a_long_queue_takes_large_regions) {
  using source = sluice::detail::block_source<test_block<512>>;
  EXPECT_LE(source::large_region_bytes, 256u * 1024);
  EXPECT_GT(source::large_region_bytes, 3 * source::small_region_bytes);
  EXPECT_EQ(kept_limit / 2 / source::large_region_bytes, 1u);
  drained_burst_keeps_at_most_the_limit<test_block<512>>(
      source::large_queue_blocks, source::large_region_bytes, kept_limit / 2);
}

// Regions of both sizes share the kept list and its limit: a queue that
// shrinks reuses the large regions kept while it was long.
TEST(block_source, kept_regions_of_either_size_are_reused) {
  using block = test_block<512>;
  using source = sluice::detail::block_source<block>;
  source blocks;
  const std::size_t per_large = (source::large_region_bytes - 1) / sizeof(block);
  std::vector<block*> live;
  for (std::size_t i = 0; i < 2 * per_large; ++i) {
    live.push_back(blocks.acquire(source::large_queue_blocks));
  }
  for (block* b : live) blocks.release(b);
  live.clear();
  const std::size_t kept = blocks.kept_bytes();
  ASSERT_EQ(kept, source::large_region_bytes);  // one large region
  block* b = blocks.acquire(short_span);        // a short queue: a region is needed
  EXPECT_EQ(blocks.kept_bytes(), kept - source::large_region_bytes) << "a kept region reused";
  blocks.release(b);
}

// Kept regions are all of one size: a large region emptied after small ones
// replaces them (a drained burst of a long queue keeps 256 KiB, not the
// small regions of its first 1 MiB and a large one).
TEST(block_source, a_region_of_the_other_size_replaces_the_kept_ones) {
  using block = test_block<512>;
  using source = sluice::detail::block_source<block>;
  source blocks;
  const std::size_t per_small = (source::small_region_bytes - 1) / sizeof(block);
  const std::size_t per_large = (source::large_region_bytes - 1) / sizeof(block);
  std::vector<block*> small;
  std::vector<block*> large;
  for (std::size_t i = 0; i < 8 * per_small; ++i) small.push_back(blocks.acquire(short_span));
  for (std::size_t i = 0; i < per_large; ++i) {
    large.push_back(blocks.acquire(source::large_queue_blocks));
  }
  for (block* b : small) blocks.release(b);
  EXPECT_EQ(blocks.kept_bytes(), 8 * source::small_region_bytes);
  for (block* b : large) blocks.release(b);
  EXPECT_EQ(blocks.kept_bytes(), source::large_region_bytes);
}

// Blocks of 1 KiB messages (31 per block): two fill a small region; the
// limit, not a count of regions, bounds what is kept.
TEST(block_source, large_blocks_keep_at_most_the_limit) {
  using source = sluice::detail::block_source<test_block<31 * 1024>>;
  EXPECT_LE(source::small_region_bytes, 64u * 1024);
  EXPECT_EQ(kept_limit / source::small_region_bytes, 8u);
  drained_burst_keeps_at_most_the_limit<test_block<31 * 1024>>(small_span<source>,
                                                               source::small_region_bytes);
}

// Blocks of 40 KiB: one per small region, 12 such regions kept, then reused.
TEST(block_source, one_block_regions_are_kept_and_reused) {
  using source = sluice::detail::block_source<test_block<40 * 1024>>;
  EXPECT_LT(source::small_region_bytes, 2 * sizeof(test_block<40 * 1024>));
  EXPECT_EQ(kept_limit / source::small_region_bytes, 12u);
  drained_burst_keeps_at_most_the_limit<test_block<40 * 1024>>(small_span<source>,
                                                               source::small_region_bytes);
}

// A region (one block) larger than the limit is unmapped once emptied.
TEST(block_source, blocks_larger_than_the_limit_are_never_kept) {
  using source = sluice::detail::block_source<test_block<600 * 1024>>;
  EXPECT_EQ(kept_limit / source::small_region_bytes, 0u);
  EXPECT_EQ(source::large_region_bytes, source::small_region_bytes);
  drained_burst_keeps_at_most_the_limit<test_block<600 * 1024>>(small_span<source>,
                                                                source::small_region_bytes);
}

// A short queue's blocks come from the heap and are never kept.
TEST(block_source, short_queue_blocks_come_from_the_heap) {
  sluice::detail::block_source<test_block<512>> blocks;
  test_block<512>* b = blocks.acquire(1);
  EXPECT_EQ(b->origin, nullptr);
  blocks.release(b);
  EXPECT_EQ(blocks.kept_bytes(), 0u);
}

}  // namespace
