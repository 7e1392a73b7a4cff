// The unbounded flavor's huge regions (block_source.hpp): a queue spanning a
// huge page's worth of blocks takes 2 MiB regions at a huge page's
// alignment; a burst's last region, once the receiver catches up with its
// carving, gives back every group of 256 KiB with no live block (checked
// with mincore(): its pages are no longer resident), and never one that
// holds a live block (checked by the blocks' contents); regions exhausted
// as usual keep their pages until they are unmapped whole. And blocks
// acquired and released on two threads keep their contents.
#include <sluice/detail/memory/block_source.hpp>

#include <gtest/gtest.h>

#if defined(__linux__)
#  include <sys/mman.h>
#  include <unistd.h>
#endif

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

// A block as the flavor's: an `origin` member, default constructible. The
// payload is stamped with the block's number, to find any block whose
// memory was given back while it was live (it would read zero).
struct test_block {
  void* origin = nullptr;
  std::array<std::uint64_t, 64> payload{};  // 520 bytes in all

  void stamp(std::uint64_t n) { std::fill(payload.begin(), payload.end(), n + 1); }
  [[nodiscard]] bool stamped(std::uint64_t n) const {
    return std::all_of(payload.begin(), payload.end(), [&](std::uint64_t w) { return w == n + 1; });
  }
};

using source = sluice::detail::block_source<test_block>;

#if defined(__linux__)  // mincore(), /proc/self/smaps
constexpr std::size_t huge_bytes = sluice::detail::huge_page_bytes;
constexpr std::size_t page = 4096;

// Pages of [p, p + bytes) resident now.
std::size_t resident_pages(const void* p, std::size_t bytes) {
  std::vector<unsigned char> in(bytes / page);
  if (::mincore(const_cast<void*>(p), bytes, in.data()) != 0) {
    ADD_FAILURE() << "mincore failed";
    return 0;
  }
  return static_cast<std::size_t>(std::count_if(in.begin(), in.end(), [](unsigned char c) {
    return (c & 1) != 0;
  }));
}

// The huge page flags ("hg", "nh" or "") of the mapping holding `p`
// (/proc/self/smaps' VmFlags).
std::string huge_page_flags(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  std::string line;
  while (std::getline(smaps, line)) {
    unsigned long long from = 0;
    unsigned long long to = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx ", &from, &to) == 2) {
      inside = from <= at && at < to;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      if (line.find(" nh") != std::string::npos) return "nh";
      if (line.find(" hg") != std::string::npos) return "hg";
      return "";
    }
  }
  return "none found";
}

bool huge_aligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % huge_bytes == 0;
}

class block_source_huge : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!source::has_huge_regions) GTEST_SKIP() << "no huge regions on this platform";
    if (::sysconf(_SC_PAGESIZE) != static_cast<long>(page)) GTEST_SKIP() << "pages of 4 KiB only";
  }
};

TEST_F(block_source_huge, a_very_long_queue_takes_huge_regions) {
  EXPECT_GE(source::huge_queue_blocks, source::large_queue_blocks);
  EXPECT_GT(source::huge_region_blocks * sizeof(test_block), huge_bytes - 4096);
  source blocks;
  std::vector<test_block*> live;
  std::set<void*> origins;
  for (std::size_t i = 0; i < source::huge_region_blocks + 1; ++i) {
    test_block* b = blocks.acquire(source::huge_queue_blocks);
    ASSERT_NE(b->origin, nullptr);
    EXPECT_TRUE(huge_aligned(b->origin));
    b->stamp(i);
    origins.insert(b->origin);
    live.push_back(b);
  }
  EXPECT_EQ(origins.size(), 2u) << "a region holds huge_region_blocks blocks";
  for (std::size_t i = 0; i < live.size(); ++i) {
    EXPECT_TRUE(live[i]->stamped(i)) << "block " << i;
    blocks.release(live[i], live.size() - i);  // drained: the last region stops being carved
  }
  EXPECT_EQ(blocks.kept_bytes(), 0u) << "huge regions are never kept";
  // A queue just short of the threshold takes a large region, as before,
  // which (unlike a huge one) is kept once emptied.
  live.clear();
  const std::size_t per_large = (source::large_region_bytes - 1) / sizeof(test_block);
  for (std::size_t i = 0; i < per_large; ++i) {
    live.push_back(blocks.acquire(source::huge_queue_blocks - 1));
  }
  for (test_block* b : live) blocks.release(b);
  EXPECT_EQ(blocks.kept_bytes(), source::large_region_bytes);
}

// A burst of 2.5 huge regions, drained in order but for its last block (a
// drained channel keeps its tail block), the receiver telling the queue's
// span as it frees each block: the last region keeps its first page (the
// header), the group of the last block and at most the one before it, and
// is no longer a huge page candidate.
TEST_F(block_source_huge, a_drained_burst_gives_back_its_last_region) {
  source blocks;
  const std::size_t n = 2 * source::huge_region_blocks + source::huge_region_blocks / 2;
  std::vector<test_block*> live;
  for (std::size_t i = 0; i < n; ++i) {
    live.push_back(blocks.acquire(source::huge_queue_blocks));
    live.back()->stamp(i);
  }
  void* last_region = live.back()->origin;
  ASSERT_TRUE(huge_aligned(last_region));
  const std::size_t kept_pages = 1 + 2 * source::huge_group_bytes / page;
  // Populated whole where the kernel can; its carved half was written anyway.
  EXPECT_GT(resident_pages(last_region, huge_bytes), 2 * kept_pages);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    ASSERT_TRUE(live[i]->stamped(i)) << "block " << i << " lost its contents while live";
    blocks.release(live[i], n - i);
  }
  EXPECT_LE(resident_pages(last_region, huge_bytes), kept_pages);
  EXPECT_EQ(huge_page_flags(last_region), "nh") << "khugepaged would gather it again";
  EXPECT_TRUE(live.back()->stamped(n - 1));
  // The next block comes from a region sized for the queue now.
  test_block* next = blocks.acquire(8);
  EXPECT_NE(next->origin, last_region);
  blocks.release(next);
  blocks.release(live.back());
}

// Blocks held out of order (the flavor's spare block, a sender's block
// allocated ahead) keep their contents while the groups around them are
// given back, and their groups are given back when they go. Among them,
// the first block that straddles two groups.
TEST_F(block_source_huge, live_blocks_keep_their_groups) {
  source blocks;
  const std::size_t n = source::huge_region_blocks / 2;
  std::vector<test_block*> live;
  for (std::size_t i = 0; i < n; ++i) {
    live.push_back(blocks.acquire(source::huge_queue_blocks));
    live.back()->stamp(i);
  }
  void* region = live.front()->origin;
  ASSERT_EQ(live.back()->origin, region);
  const auto group_of = [&](const std::byte* p) {
    return static_cast<std::size_t>(p - static_cast<std::byte*>(region)) / source::huge_group_bytes;
  };
  std::size_t straddling = n;
  for (std::size_t i = 0; i < n && straddling == n; ++i) {
    const auto* first = reinterpret_cast<const std::byte*>(live[i]);
    if (group_of(first) != group_of(first + sizeof(test_block) - 1)) straddling = i;
  }
  ASSERT_LT(straddling, n);
  std::vector<std::size_t> held;
  for (std::size_t i = 0; i < n; ++i) {
    // The straddling block alone holds the second of its groups.
    if (i == 3 || i == straddling || i == n / 2 || i + 1 == n) {
      held.push_back(i);  // kept live
    } else {
      blocks.release(live[i], n - i);  // the queue grows short: carving ends
    }
  }
  ASSERT_GE(held.size(), 3u);
  for (std::size_t i : held) EXPECT_TRUE(live[i]->stamped(i)) << "held block " << i;
  // Each held block keeps at most the two groups it may overlap.
  EXPECT_LE(resident_pages(region, huge_bytes),
            1 + held.size() * 2 * source::huge_group_bytes / page);
  for (std::size_t i : held) {
    if (i + 1 != n) blocks.release(live[i], 1);
  }
  EXPECT_LE(resident_pages(region, huge_bytes), 1 + 2 * source::huge_group_bytes / page);
  EXPECT_TRUE(live[n - 1]->stamped(n - 1));
  blocks.release(live[n - 1]);
}

// A block freed out of order while the queue is long (a sender's block
// allocated ahead and given back comes from the end of what was carved)
// does not end the region's carving; the queue's span decides.
TEST_F(block_source_huge, only_a_short_queue_ends_the_carving) {
  source blocks;
  std::vector<test_block*> live;
  for (std::size_t i = 0; i < 1000; ++i) live.push_back(blocks.acquire(source::huge_queue_blocks));
  void* region = live.back()->origin;
  blocks.release(live.back());  // span unknown
  live.pop_back();
  blocks.release(live.back(), source::huge_queue_blocks);  // a long queue
  live.pop_back();
  live.push_back(blocks.acquire(source::huge_queue_blocks));
  EXPECT_EQ(live.back()->origin, region) << "carving went on";
  // A short queue ends it even when the freed block lies elsewhere (none).
  blocks.release(nullptr, 1);
  live.push_back(blocks.acquire(source::huge_queue_blocks));
  EXPECT_NE(live.back()->origin, region) << "a new region once carving ended";
  for (test_block* b : live) blocks.release(b);
}

// A queue that shrinks and grows again: regions whose carving ended early
// and regions exhausted as usual, acquired on one thread and released on
// another, some held back for a while; every block keeps its contents.
TEST_F(block_source_huge, two_threads_keep_every_block) {
  source blocks;
  std::mutex m;
  std::deque<std::pair<test_block*, std::uint64_t>> queue;
  bool done = false;
  constexpr std::uint64_t total = 6 * 4096;
  std::uint64_t bad = 0;
  std::jthread consumer([&] {
    std::vector<std::pair<test_block*, std::uint64_t>> held;
    for (;;) {
      std::pair<test_block*, std::uint64_t> item{nullptr, 0};
      std::size_t span = 0;  // the queue's span, told as a receiver does
      {
        std::lock_guard g(m);
        if (!queue.empty()) {
          item = queue.front();
          queue.pop_front();
          span = queue.size() + 1;
        } else if (done) {
          break;
        }
      }
      if (item.first == nullptr) {
        std::this_thread::yield();
        continue;
      }
      if (!item.first->stamped(item.second)) ++bad;
      if (item.second % 97 == 0) {
        held.push_back(item);  // released later, out of order
      } else {
        blocks.release(item.first, span);
      }
      if (held.size() > 16) {
        for (auto& [b, n] : held) {
          if (!b->stamped(n)) ++bad;
          blocks.release(b);
        }
        held.clear();
      }
    }
    for (auto& [b, n] : held) {
      if (!b->stamped(n)) ++bad;
      blocks.release(b);
    }
  });
  for (std::uint64_t i = 0; i < total; ++i) {
    // The queue the producer reports swings between long and short.
    const std::size_t span = (i / 3000) % 2 == 0 ? source::huge_queue_blocks : 64;
    test_block* b = blocks.acquire(span);
    b->stamp(i);
    std::lock_guard g(m);
    queue.emplace_back(b, i);
  }
  {
    std::lock_guard g(m);
    done = true;
  }
  consumer.join();
  EXPECT_EQ(bad, 0u);
}

#endif  // defined(__linux__)

// Blocks over 4 KiB never take huge regions (a region would hold too few).
TEST(block_source_huge_sizes, blocks_over_4_KiB_take_none) {
  struct big_block {
    void* origin = nullptr;
    std::array<std::byte, 8192> payload;
  };
  static_assert(!sluice::detail::block_source<big_block>::has_huge_regions);
  static_assert(sluice::detail::block_source<test_block>::has_huge_regions ==
                (sluice::detail::maps_huge_pages && SLUICE_HUGE_PAGES != 0));
}

}  // namespace
