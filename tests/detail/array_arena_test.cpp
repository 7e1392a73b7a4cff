// The bounded flavor's arena: a ring of up to 32 MiB with large segments
// (64 KiB or more), or with more bytes than the chunk cache holds (2 MiB),
// carves its segments from one block of the allocator's as they are
// installed, so the next channel like it runs on the memory the allocator
// kept. A block handed on is not zeroed: every segment carved from it must
// start empty, whatever the last channel left there; messages left in a
// dropped channel are destroyed once; over-aligned messages keep their
// alignment; racing senders and a recycling receiver count every message.
#include <sluice/detail/flavors/array.hpp>
#include <sluice/sluice.hpp>

#include "../support/counted.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

using sluice::detail::array_channel;
using counted = sluice_test::basic_counted<std::int32_t>;  // 8 bytes
using sluice_test::leak_check;

// 8-byte messages take 16-byte slots: bound 1'000'000 has 245 segments of
// 4096 slots (64 KiB), a 16 MiB arena; bound 200'000 has 196 segments of
// 16 KiB, 3.2 MB (an arena: more than the chunk cache holds); bound 100'000
// has 8 KiB segments, 1.6 MB (no arena); bound 3'000'000 would need 48 MiB
// (mapped segments instead).
constexpr std::size_t arena_bound = 1'000'000;
constexpr std::size_t small_segment_arena_bound = 200'000;

TEST(array_arena, only_rings_up_to_32_mib_beyond_the_chunk_cache_have_one) {
  array_channel<std::uint64_t> large(arena_bound);
  ASSERT_TRUE(large.arena_carved_for_testing().has_value());
  EXPECT_EQ(*large.arena_carved_for_testing(), 0u);  // nothing touched yet
  std::uint64_t v = 7;
  ASSERT_TRUE(large.try_send(std::move(v)).has_value());
  EXPECT_EQ(*large.arena_carved_for_testing(), 1u);
  EXPECT_EQ(large.try_recv().value(), 7u);

  array_channel<std::uint64_t> medium(small_segment_arena_bound);
  ASSERT_TRUE(medium.arena_carved_for_testing().has_value());
  EXPECT_EQ(*medium.arena_carved_for_testing(), 0u);
  array_channel<std::uint64_t> cached(100'000);
  EXPECT_FALSE(cached.arena_carved_for_testing().has_value());
  array_channel<std::uint64_t> huge(3'000'000);
  EXPECT_FALSE(huge.arena_carved_for_testing().has_value());
}

// The arena starts on a 64-byte line, wherever in its block the allocator
// put it (glibc's mapped blocks start 16 past a line, its heap blocks at
// any multiple of 16), so every segment carved from it does: a strided
// group of 16 slots then has 4 lines of its own, and two consecutive
// indices never meet in a line across a group's edge. Small allocations
// between the channels move the blocks the allocator returns.
TEST(array_arena, starts_on_a_cache_line) {
  std::vector<std::vector<char>> shims;
  for (std::size_t shim = 1; shim <= 80; shim += 13) {
    shims.emplace_back(shim);
    array_channel<std::uint64_t> large(arena_bound);
    array_channel<std::uint64_t> medium(small_segment_arena_bound);
    for (const void* start : {large.arena_start_for_testing(), medium.arena_start_for_testing()}) {
      ASSERT_NE(start, nullptr);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(start) % 64, 0u) << "shim " << shim;
    }
    // The whole ring is still there: fill it to the bound exactly.
    for (std::uint64_t i = 0; i < small_segment_arena_bound; ++i) {
      ASSERT_TRUE(medium.try_send(std::uint64_t{i}).has_value());
    }
    EXPECT_TRUE(medium.try_send(std::uint64_t{0}).error().is_full());
    for (std::uint64_t i = 0; i < small_segment_arena_bound; ++i) {
      ASSERT_EQ(medium.try_recv().value(), i);
    }
  }
  EXPECT_EQ(array_channel<std::uint64_t>(100'000).arena_start_for_testing(), nullptr);
}

// Channel after channel on what may be the same block: the first is left
// holding messages in every segment, each next one must still see an empty
// ring, fill it to its bound exactly and give back what it was given.
// (Both kinds of arena ring: large segments, and small segments faulted in
// by windows of several.)
void fill_rings_on_reused_blocks(std::size_t bound, std::size_t segments) {
  leak_check leaks;
  const std::size_t left = bound / 10;
  for (std::int32_t round = 0; round < 3; ++round) {
    array_channel<counted> ch(bound);
    EXPECT_EQ(ch.len(), 0u);
    EXPECT_FALSE(ch.try_recv().has_value());
    for (std::size_t i = 0; i < bound; ++i) {
      counted c(static_cast<std::int32_t>(i) ^ round);
      ASSERT_TRUE(ch.try_send(std::move(c)).has_value()) << "round " << round << " slot " << i;
    }
    counted extra(-1);
    EXPECT_TRUE(ch.try_send(std::move(extra)).error().is_full());
    EXPECT_EQ(*ch.arena_carved_for_testing(), segments);
    // Receive all but the last tenth: those are destroyed with the channel.
    for (std::size_t i = 0; i + left < bound; ++i) {
      ASSERT_EQ(ch.try_recv().value().value(), static_cast<std::int32_t>(i) ^ round);
    }
    EXPECT_EQ(ch.len(), left);
    ch.disconnect_receivers();  // as the receiver's handle does: destroys them
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(array_arena, a_channel_on_a_reused_block_starts_empty) {
  fill_rings_on_reused_blocks(arena_bound, 245);
}

TEST(array_arena, a_ring_of_small_segments_on_a_reused_block_starts_empty) {
  fill_rings_on_reused_blocks(small_segment_arena_bound, 196);
}

// Slots of 128 bytes: bound 200'000 has segments of 1024 slots (128 KiB), a
// 25 MiB arena, which then comes from the allocator's aligned path.
struct alignas(64) wide {
  std::uint64_t value;
};

TEST(array_arena, over_aligned_messages) {
  for (int round = 0; round < 2; ++round) {
    array_channel<wide> ch(200'000);
    ASSERT_TRUE(ch.arena_carved_for_testing().has_value());
    for (std::uint64_t i = 0; i < 200'000; ++i) {
      wide w{i * 3 + static_cast<std::uint64_t>(round)};
      ASSERT_TRUE(ch.try_send(std::move(w)).has_value());
    }
    for (std::uint64_t i = 0; i < 200'000; ++i) {
      ASSERT_EQ(ch.try_recv().value().value, i * 3 + static_cast<std::uint64_t>(round));
    }
  }
}

// Four producers stream through a ring of 147 arena segments whose receiver
// retires what it empties (spares), lap after lap; the receiver pauses now
// and then so the ring fills. Every message once, in order per producer,
// each destroyed once. Bound 600'000: segments of 64 KiB; bound 150'000:
// segments of 16 KiB, which senders carve and fault in by windows of 16
// while others still fill the window before.
void race_through_arena_ring(std::size_t bound) {
  constexpr int producers = 4;
  constexpr std::int32_t per_producer = 250'000;
  leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(bound);
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([sender = tx, p] {
        for (std::int32_t i = 0; i < per_producer; ++i) {
          counted c(p * per_producer + i);
          ASSERT_TRUE(sender.send(std::move(c)).has_value());
        }
      });
    }
    tx = {};
    std::vector<std::int32_t> next(producers, 0);
    std::int32_t received = 0;
    while (auto r = rx.recv()) {
      const std::int32_t v = r->value();
      const auto p = static_cast<std::size_t>(v / per_producer);
      ASSERT_LT(p, next.size());
      ASSERT_EQ(v % per_producer, next[p]++) << "producer " << p;
      if (++received % 250'000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(received, producers * per_producer);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(array_arena, racing_senders_through_recycled_arena_segments) {
  race_through_arena_ring(600'000);
}

TEST(array_arena, racing_senders_through_small_arena_segments) {
  race_through_arena_ring(150'000);
}

}  // namespace
