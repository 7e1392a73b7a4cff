// Unbounded-flavor specifics: block boundaries, memory going back after a
// burst (blocks past the first few come from OS-mapped regions), and exact
// destruction when the receiver leaves in the middle of many regions.
#include "../support/counted.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

using sluice_test::counted;
using sluice_test::leak_check;

TEST(unbounded, len_across_block_boundaries) {
  auto [tx, rx] = sluice::channel<int>();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(tx.send(i).has_value());
    ASSERT_EQ(rx.len(), static_cast<std::size_t>(i + 1));
  }
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(*rx.try_recv(), i);
    ASSERT_EQ(rx.len(), static_cast<std::size_t>(99 - i));
  }
  EXPECT_TRUE(rx.is_empty());
}

TEST(unbounded, burst_through_many_regions_in_order) {
  auto [tx, rx] = sluice::channel<std::uint64_t>();
  constexpr std::uint64_t n = 300'000;  // ~10,000 blocks, dozens of regions
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_TRUE(tx.send(i).has_value());
  EXPECT_EQ(rx.len(), n);
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(*rx.try_recv(), i);
  // Refill after the drain: regions are reused or mapped again.
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_TRUE(tx.send(i).has_value());
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(*rx.try_recv(), i);
}

TEST(unbounded, receiver_drop_mid_burst_destroys_each_message_once) {
  leak_check check;
  {
    auto [tx, rx] = sluice::channel<counted>();
    for (int i = 0; i < 50'000; ++i) ASSERT_TRUE(tx.send(counted(i)).has_value());
    for (int i = 0; i < 20'000; ++i) ASSERT_EQ(rx.recv()->value(), i);
    EXPECT_EQ(check.leaked(), 30'000);
    rx = {};
    EXPECT_EQ(check.leaked(), 0);
  }
  EXPECT_EQ(check.leaked(), 0);
}

TEST(unbounded, concurrent_burst_with_slow_consumer) {
  leak_check check;
  {
    auto [tx, rx] = sluice::channel<counted>();
    std::jthread producer([sender = std::move(tx)] {
      for (int i = 0; i < 100'000; ++i) ASSERT_TRUE(sender.send(counted(i)).has_value());
    });
    int expected = 0;
    for (auto&& m : rx) ASSERT_EQ(m.value(), expected++);
    EXPECT_EQ(expected, 100'000);
  }
  EXPECT_EQ(check.leaked(), 0);
}
