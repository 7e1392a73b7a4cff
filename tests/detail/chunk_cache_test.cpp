// The process's chunk cache: what destroyed channels give back is
// kept up to the ceiling and handed to the next channel of the same segment
// size, whose slots then read as empty; nothing beyond the ceiling is kept.
#include <sluice/detail/flavors/array.hpp>
#include <sluice/detail/memory/chunk_cache.hpp>
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

using sluice::detail::chunk_cache;
constexpr chunk_cache::source heap = chunk_cache::source::heap;

// Heap chunks as the cache frees them (chunk_cache::put's contract).
void* heap_chunk(std::size_t bytes) {
  return ::operator new(bytes, std::align_val_t{chunk_cache::heap_alignment});
}

// Takes every chunk of `bytes` back out and frees it; returns how many.
std::size_t drain(chunk_cache& cache, std::size_t bytes) {
  std::size_t n = 0;
  while (void* p = cache.take(bytes, heap)) {
    chunk_cache::free_chunk(p, bytes, heap);
    ++n;
  }
  return n;
}

TEST(chunk_cache, takes_back_only_what_was_put_of_that_size_and_source) {
  chunk_cache cache;
  EXPECT_EQ(cache.take(4096, heap), nullptr);
  void* a = heap_chunk(4096);
  void* b = heap_chunk(8192);
  cache.put(a, 4096, heap);
  cache.put(b, 8192, heap);
  EXPECT_EQ(cache.held(), 4096u + 8192u);
  EXPECT_EQ(cache.take(16384, heap), nullptr);
  EXPECT_EQ(cache.take(4096, chunk_cache::source::mapped), nullptr);
  EXPECT_EQ(cache.take(8192, heap), b);
  EXPECT_EQ(cache.take(8192, heap), nullptr);
  EXPECT_EQ(cache.take(4096, heap), a);
  EXPECT_EQ(cache.held(), 0u);
  chunk_cache::free_chunk(a, 4096, heap);
  chunk_cache::free_chunk(b, 8192, heap);
}

TEST(chunk_cache, keeps_nothing_beyond_its_ceiling) {
  chunk_cache cache;
  constexpr std::size_t chunk = 64 * 1024;
  for (std::size_t i = 0; i < chunk_cache::ceiling / chunk + 3; ++i) {
    cache.put(heap_chunk(chunk), chunk, heap);  // the last three are freed
  }
  EXPECT_EQ(cache.held(), chunk_cache::ceiling);
  cache.put(heap_chunk(chunk_cache::ceiling + 64), chunk_cache::ceiling + 64, heap);
  EXPECT_EQ(cache.held(), chunk_cache::ceiling);
  EXPECT_EQ(drain(cache, chunk), chunk_cache::ceiling / chunk);
  EXPECT_EQ(cache.held(), 0u);
}

// A full cache makes room for a new size by freeing the size put longest
// ago; its own size never pushes its own chunks out.
TEST(chunk_cache, a_new_size_pushes_out_the_oldest_other_size) {
  chunk_cache cache;
  constexpr std::size_t old_size = 64 * 1024;
  constexpr std::size_t new_size = 8 * 1024;
  for (std::size_t i = 0; i < chunk_cache::ceiling / old_size; ++i) {
    cache.put(heap_chunk(old_size), old_size, heap);
  }
  for (int i = 0; i < 3; ++i) cache.put(heap_chunk(new_size), new_size, heap);
  EXPECT_LE(cache.held(), chunk_cache::ceiling);
  EXPECT_EQ(drain(cache, new_size), 3u);
  // One old chunk made room for all three new ones.
  EXPECT_EQ(drain(cache, old_size), chunk_cache::ceiling / old_size - 1);
}

TEST(chunk_cache, a_ninth_size_empties_the_bucket_put_longest_ago) {
  chunk_cache cache;
  std::vector<std::size_t> sizes;
  for (std::size_t size = 64; sizes.size() < 9; size *= 2) sizes.push_back(size);
  for (std::size_t size : sizes) cache.put(heap_chunk(size), size, heap);
  EXPECT_EQ(drain(cache, sizes[0]), 0u);  // pushed out by the ninth
  for (std::size_t i = 1; i < sizes.size(); ++i) EXPECT_EQ(drain(cache, sizes[i]), 1u) << sizes[i];
  EXPECT_EQ(cache.held(), 0u);
}

// take_zeroed() hands out a chunk whose every byte is zero, having cleared
// only what its giver said it wrote (and the cache's own link).
TEST(chunk_cache, take_zeroed_clears_what_the_giver_wrote) {
  chunk_cache cache;
  constexpr std::size_t bytes = 4096;
  auto* partly = static_cast<unsigned char*>(heap_chunk(bytes));
  std::memset(partly, 0, bytes);
  std::memset(partly, 0xAB, 100);
  cache.put(partly, bytes, heap, 100);
  auto* whole = static_cast<unsigned char*>(heap_chunk(bytes));
  std::memset(whole, 0xCD, bytes);
  cache.put(whole, bytes, heap);  // no prefix given: all of it may be written
  for (int i = 0; i < 2; ++i) {
    auto* p = static_cast<unsigned char*>(cache.take_zeroed(bytes, heap));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(std::count(p, p + bytes, 0), static_cast<std::ptrdiff_t>(bytes)) << i;
    chunk_cache::free_chunk(p, bytes, heap);
  }
  EXPECT_EQ(cache.take_zeroed(bytes, heap), nullptr);
  auto* clean = static_cast<unsigned char*>(heap_chunk(bytes));
  std::memset(clean, 0, bytes);
  cache.put(clean, bytes, heap, 0);  // the link the cache writes is still cleared
  auto* p = static_cast<unsigned char*>(cache.take_zeroed(bytes, heap));
  ASSERT_EQ(p, clean);
  EXPECT_EQ(std::count(p, p + bytes, 0), static_cast<std::ptrdiff_t>(bytes));
  chunk_cache::free_chunk(p, bytes, heap);
}

// A bounded channel hands its segments on with only the slots it wrote
// marked for clearing. The next channel may lay its slots out differently
// (32-byte slots on the 16-byte slots' memory: its stamps fall on the old
// even slots' stamps, which are non-zero once written or read; the test
// below has the layouts the other way round, stamps on old messages): it
// must still find every slot empty, whether the old one wrote none, some or
// all of its slots, or went round its ring.
TEST(chunk_cache, a_channel_with_other_slots_on_partly_used_segments_starts_empty) {
  using wide = std::array<std::uint64_t, 3>;  // 32-byte slots: 128 per 4 KiB segment
  constexpr std::size_t old_bound = 1024;     // 16-byte slots: 256 per segment
  constexpr std::size_t new_bound = 512;
  for (std::size_t writes : {0u, 1u, 17u, 255u, 256u, 257u, 700u, 1023u, 1024u, 1500u}) {
    {
      auto [tx, rx] = sluice::sync_channel<std::uint64_t>(old_bound);
      for (std::size_t i = 0; i < writes; ++i) {
        ASSERT_TRUE(tx.try_send(~std::uint64_t{0}).has_value());
        if (i >= old_bound / 2) {
          ASSERT_TRUE(rx.try_recv().has_value());  // so that 1500 writes reach lap 1
        }
      }
    }
    auto [tx, rx] = sluice::sync_channel<wide>(new_bound);
    for (std::size_t i = 0; i < new_bound; ++i) {
      wide w{i, i, i};
      ASSERT_TRUE(tx.try_send(std::move(w)).has_value()) << writes << " writes, slot " << i;
    }
    wide extra{};
    EXPECT_FALSE(tx.try_send(std::move(extra)).has_value()) << writes;
    for (std::size_t i = 0; i < new_bound; ++i) {
      const wide w = rx.try_recv().value();
      ASSERT_EQ(w[0], i);
      ASSERT_EQ(w[2], i);
    }
    EXPECT_FALSE(rx.try_recv().has_value());
  }
}

// The same after the positions wrapped at 48 bits: a tail back in lap 0
// at a small index does not mean the slots past it were never written.
// The old slots are the wide ones here: a read slot's stamp wraps to zero
// too, so only its message's bytes, where the narrow slots' stamps fall,
// can show what was left uncleared.
TEST(chunk_cache, a_channel_after_one_whose_positions_wrapped_starts_empty) {
  using wide = std::array<std::uint64_t, 3>;
  constexpr std::size_t cap = 128;  // one 4 KiB segment of 32-byte slots
  {
    sluice::detail::array_channel<wide> ch(cap);
    ch.start_at_last_lap_for_testing();
    for (std::size_t i = 0; i < cap + 10; ++i) {
      ASSERT_TRUE(ch.try_send(wide{~i, ~i, ~i}).has_value());
      ASSERT_EQ(ch.try_recv().value()[0], ~i);
    }
  }
  sluice::detail::array_channel<std::uint64_t> next(cap * 2);  // 16-byte slots
  for (std::uint64_t i = 0; i < cap * 2; ++i) {
    ASSERT_TRUE(next.try_send(std::uint64_t{i}).has_value()) << i;
  }
  for (std::uint64_t i = 0; i < cap * 2; ++i) ASSERT_EQ(next.try_recv().value(), i);
}

// A bounded channel made after one that used the same segment size reads
// every slot as empty, whatever the memory held before (the reused chunk
// still holds the old channel's stamps and messages), and counts each
// message's destructor exactly once.
TEST(chunk_cache, a_channel_on_reused_memory_starts_empty) {
  // 40-byte slots: 1.6 MB of 10 KiB segments, within the cache's ceiling
  // (a larger ring would carve its segments from an arena of its own).
  constexpr std::size_t bound = 40'000;
  for (int round = 0; round < 4; ++round) {
    auto [tx, rx] = sluice::sync_channel<std::string>(bound);
    for (std::size_t i = 0; i < bound; ++i) {
      ASSERT_TRUE(tx.try_send(std::to_string(round) + ":" + std::to_string(i)).has_value());
    }
    EXPECT_FALSE(tx.try_send("one too many").has_value());
    for (std::size_t i = 0; i < bound / 2; ++i) {
      ASSERT_EQ(rx.try_recv().value(), std::to_string(round) + ":" + std::to_string(i));
    }
    // Half the messages die with the channel; the next round must not see them.
  }
  // The segments went to the cache (up to its ceiling), so rounds 2-4 ran on
  // reused memory.
  EXPECT_GT(sluice::detail::process_chunk_cache.held(), 0u);
  EXPECT_LE(sluice::detail::process_chunk_cache.held(), chunk_cache::ceiling);
}

// The same for the unbounded flavor's regions: a channel made after one
// that held many messages takes its regions (and the stale messages in
// them) and still receives only its own, each once.
TEST(chunk_cache, an_unbounded_channel_on_reused_regions_starts_empty) {
  for (int round = 0; round < 4; ++round) {
    auto [tx, rx] = sluice::channel<std::string>();
    constexpr std::size_t n = 50'000;
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_TRUE(tx.send(std::to_string(round) + ":" + std::to_string(i)).has_value());
    }
    for (std::size_t i = 0; i < n / 2; ++i) {
      ASSERT_EQ(rx.try_recv().value(), std::to_string(round) + ":" + std::to_string(i));
    }
  }
  EXPECT_GT(sluice::detail::process_chunk_cache.held(), 0u);
  EXPECT_LE(sluice::detail::process_chunk_cache.held(), chunk_cache::ceiling);
}

// Channels made and destroyed on several threads at once share the cache.
TEST(chunk_cache, concurrent_channels_share_it) {
  std::vector<std::jthread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([tid = static_cast<std::size_t>(t)] {
      for (int round = 0; round < 20; ++round) {
        const std::size_t bound = 4096u << (round % 3);
        auto [tx, rx] = sluice::sync_channel<std::size_t>(bound);
        for (std::size_t i = 0; i < bound; ++i) ASSERT_TRUE(tx.try_send(i * 4 + tid).has_value());
        for (std::size_t i = 0; i < bound; ++i) ASSERT_EQ(rx.try_recv().value(), i * 4 + tid);
        EXPECT_FALSE(rx.try_recv().has_value());
      }
    });
  }
  threads.clear();
  EXPECT_LE(sluice::detail::process_chunk_cache.held(), chunk_cache::ceiling);
}

}  // namespace
