// The unbounded flavor's block source: a drained burst leaves at most
// 512 KiB of emptied regions behind while the channel lives, whatever the
// block's size (regions of large messages hold fewer blocks, one past
// 64 KiB, and a block larger than the limit is never kept), and kept regions are reused
// before any new one is mapped.
#include <sluice/detail/memory/block_source.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <vector>

namespace {

// A block as the flavor's: an `origin` member, default constructible.
template <std::size_t Payload>
struct test_block {
  void* origin = nullptr;
  std::array<std::byte, Payload> payload;
};

constexpr std::size_t kept_limit = 512 * 1024;
constexpr std::size_t queue_span = 100;  // past the heap's few blocks: regions

template <class Block>
void drained_burst_keeps_at_most_the_limit() {
  using source = sluice::detail::block_source<Block>;
  static_assert(source::kept_regions * source::region_bytes <= kept_limit);
  source blocks;
  // Enough regions that the kept list overflows.
  const std::size_t regions = source::kept_regions + 3;
  const std::size_t per_region = (source::region_bytes - 1) / sizeof(Block);  // header first
  std::vector<Block*> live;
  for (std::size_t i = 0; i < regions * per_region; ++i) {
    Block* b = blocks.acquire(queue_span);
    ASSERT_NE(b->origin, nullptr) << "a block of a long queue comes from a region";
    b->payload[0] = std::byte{1};  // the memory is writable
    live.push_back(b);
  }
  EXPECT_EQ(blocks.kept_bytes(), 0u);
  for (Block* b : live) blocks.release(b);
  live.clear();
  EXPECT_LE(blocks.kept_bytes(), kept_limit);
  EXPECT_EQ(blocks.kept_bytes(), source::kept_regions * source::region_bytes);

  // Refilling takes the kept regions first.
  for (std::size_t i = 0; i < source::kept_regions * per_region; ++i) {
    live.push_back(blocks.acquire(queue_span));
  }
  EXPECT_EQ(blocks.kept_bytes(), 0u);
  for (Block* b : live) blocks.release(b);
}

TEST(block_source, small_blocks_keep_eight_regions) {
  using source = sluice::detail::block_source<test_block<512>>;
  EXPECT_EQ(source::kept_regions, 8u);
  drained_burst_keeps_at_most_the_limit<test_block<512>>();
}

// Blocks of 1 KiB messages (31 per block): two fill a region (the old
// rule put 8 in one and kept 8 such regions, 2 MiB); the limit, not a count
// of regions, bounds what is kept.
TEST(block_source, large_blocks_keep_at_most_the_limit) {
  using source = sluice::detail::block_source<test_block<31 * 1024>>;
  EXPECT_LE(source::region_bytes, 64u * 1024);
  EXPECT_EQ(source::kept_regions, 8u);
  drained_burst_keeps_at_most_the_limit<test_block<31 * 1024>>();
}

// Blocks of 40 KiB: one per region, 12 such regions kept, then reused.
TEST(block_source, one_block_regions_are_kept_and_reused) {
  using source = sluice::detail::block_source<test_block<40 * 1024>>;
  EXPECT_LT(source::region_bytes, 2 * sizeof(test_block<40 * 1024>));
  EXPECT_EQ(source::kept_regions, 12u);
  drained_burst_keeps_at_most_the_limit<test_block<40 * 1024>>();
}

// A region (one block) larger than the limit is unmapped once emptied.
TEST(block_source, blocks_larger_than_the_limit_are_never_kept) {
  using source = sluice::detail::block_source<test_block<600 * 1024>>;
  EXPECT_EQ(source::kept_regions, 0u);
  drained_burst_keeps_at_most_the_limit<test_block<600 * 1024>>();
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
