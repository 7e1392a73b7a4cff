// The process's chunk cache: what destroyed bounded channels give back is
// kept up to the ceiling and handed to the next channel of the same segment
// size, whose slots then read as empty; nothing beyond the ceiling is kept.
#include <sluice/detail/memory/chunk_cache.hpp>
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

using sluice::detail::chunk_cache;

struct raw_chunk {
  void* p;
  std::size_t bytes;
};

TEST(chunk_cache, takes_back_only_what_was_given_of_that_size) {
  chunk_cache cache;
  EXPECT_EQ(cache.take(4096), nullptr);
  void* a = ::operator new(4096);
  void* b = ::operator new(8192);
  ASSERT_TRUE(cache.give(a, 4096));
  ASSERT_TRUE(cache.give(b, 8192));
  EXPECT_EQ(cache.held(), 4096u + 8192u);
  EXPECT_EQ(cache.take(16384), nullptr);
  EXPECT_EQ(cache.take(8192), b);
  EXPECT_EQ(cache.take(8192), nullptr);
  EXPECT_EQ(cache.take(4096), a);
  EXPECT_EQ(cache.held(), 0u);
  ::operator delete(a);
  ::operator delete(b);
}

TEST(chunk_cache, keeps_nothing_beyond_its_ceiling) {
  chunk_cache cache;
  std::vector<raw_chunk> refused;
  std::size_t kept = 0;
  constexpr std::size_t chunk = 64 * 1024;
  for (std::size_t i = 0; i < chunk_cache::ceiling / chunk + 3; ++i) {
    void* p = ::operator new(chunk);
    if (cache.give(p, chunk)) {
      ++kept;
    } else {
      refused.push_back({p, chunk});
    }
  }
  EXPECT_EQ(kept, chunk_cache::ceiling / chunk);
  EXPECT_EQ(refused.size(), 3u);
  EXPECT_EQ(cache.held(), chunk_cache::ceiling);
  void* huge = ::operator new(chunk_cache::ceiling + 1);
  EXPECT_FALSE(chunk_cache{}.give(huge, chunk_cache::ceiling + 1));
  ::operator delete(huge);
  for (const raw_chunk& r : refused) ::operator delete(r.p);
  while (void* p = cache.take(chunk)) ::operator delete(p);
  EXPECT_EQ(cache.held(), 0u);
}

TEST(chunk_cache, a_full_set_of_sizes_refuses_a_new_one) {
  chunk_cache cache;
  std::vector<raw_chunk> given;
  std::size_t size = 64;
  for (;; size *= 2) {
    void* p = ::operator new(size);
    if (!cache.give(p, size)) {
      ::operator delete(p);
      break;
    }
    given.push_back({p, size});
  }
  EXPECT_EQ(given.size(), 8u);  // one bucket per size
  for (const raw_chunk& r : given) EXPECT_EQ(cache.take(r.bytes), r.p);
  for (const raw_chunk& r : given) ::operator delete(r.p);
}

// A bounded channel made after one that used the same segment size reads
// every slot as empty, whatever the memory held before (the reused chunk
// still holds the old channel's stamps and messages), and counts each
// message's destructor exactly once.
TEST(chunk_cache, a_channel_on_reused_memory_starts_empty) {
  constexpr std::size_t bound = 100'000;
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
