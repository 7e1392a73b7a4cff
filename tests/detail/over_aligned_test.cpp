// allocate_over_aligned: every block is aligned as asked, holds the bytes
// asked for (written whole: AddressSanitizer checks the bounds), and
// free_over_aligned gives back the block the allocator handed out: this
// program replaces the global operator new and delete to count blocks, so
// every test checks that what was allocated was freed (and a wrong pointer
// would be an invalid free under AddressSanitizer). Channels use it through
// their shared allocation, including when a constructor throws.
#include <sluice/detail/memory/over_aligned.hpp>
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

// Counting replacements of the plain global forms (the aligned forms are
// not used for channels any more, and keep the library's own).
namespace {
std::atomic<long> g_blocks_live{0};
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    g_blocks_live.fetch_add(1, std::memory_order_relaxed);
    return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  g_blocks_live.fetch_sub(1, std::memory_order_relaxed);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }

namespace {

using sluice::detail::allocate_over_aligned;
using sluice::detail::free_over_aligned;

TEST(over_aligned, blocks_are_aligned_and_whole) {
  for (const std::size_t align : {8u, 16u, 32u, 64u, 128u, 256u, 4096u}) {
    std::vector<void*> blocks;
    blocks.reserve(6);
    const long live = g_blocks_live.load();
    for (std::size_t bytes : {1u, 8u, 100u, 384u, 1000u, 5000u}) {
      void* p = allocate_over_aligned(bytes, std::align_val_t{align});
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u) << bytes << " bytes at " << align;
      std::memset(p, 0xab, bytes);
      blocks.push_back(p);
    }
    EXPECT_EQ(g_blocks_live.load() - live, 6);  // one plain block each
    for (void* p : blocks) free_over_aligned(p);
    EXPECT_EQ(g_blocks_live.load(), live);
  }
}

TEST(over_aligned, an_impossible_size_throws_bad_alloc) {
  EXPECT_THROW((void)allocate_over_aligned(SIZE_MAX - 8, std::align_val_t{128}), std::bad_alloc);
}

// Many channels of every flavor, alive at once and dropped in a different
// order than made: each shared allocation is freed exactly once.
TEST(over_aligned, channels_made_and_dropped_in_any_order) {
  const long live = g_blocks_live.load();
  {
    std::vector<sluice::receiver<int>> receivers;
    for (int i = 0; i < 300; ++i) {
      if (i % 3 == 0) {
        auto [tx, rx] = sluice::channel<int>();
        ASSERT_TRUE(tx.send(i));
        receivers.push_back(std::move(rx));
      } else {
        auto [tx, rx] = sluice::sync_channel<int>(i % 3 == 1 ? 0 : 1024);
        if (i % 3 == 2) {
          ASSERT_TRUE(tx.try_send(i));
        }
        receivers.push_back(std::move(rx));
      }
    }
    for (std::size_t i = 1; i < receivers.size(); i += 2) receivers[i] = sluice::receiver<int>();
    for (std::size_t i = 0; i < receivers.size(); i += 2) {
      const auto v = receivers[i].try_recv();
      if (i % 3 != 1) {
        ASSERT_TRUE(v.has_value()) << i;
        EXPECT_EQ(*v, static_cast<int>(i));
      }
    }
  }
  EXPECT_EQ(g_blocks_live.load(), live);
}

// A bound that cannot be represented throws from the channel's constructor
// after its shared allocation was made: the allocation goes back.
TEST(over_aligned, a_throwing_channel_constructor_frees_its_allocation) {
  const long live = g_blocks_live.load();
  bool threw = false;
  try {
    (void)sluice::sync_channel<int>(SIZE_MAX);
  } catch (const std::length_error&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  EXPECT_EQ(g_blocks_live.load(), live);
}

}  // namespace
