// Unbounded-flavor specifics: block boundaries, memory going back after a
// burst (blocks past the first few come from OS-mapped regions), and exact
// destruction when the receiver leaves in the middle of many regions.
#include "../support/counted.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

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

// Queues spanning 2 MiB of blocks or more take huge regions (2 MiB each);
// the one a drained burst ends in gives back what holds no live block. The
// messages must not notice: order, exactly-once destruction, a receiver
// leaving in the middle of one, a stream going on after a drain.
TEST(unbounded, receiver_drop_in_a_huge_region_destroys_each_message_once) {
  leak_check check;
  {
    auto [tx, rx] = sluice::channel<counted>();
    constexpr int n = 400'000;  // 16-byte messages: huge regions past ~120,000 queued
    for (int i = 0; i < n; ++i) ASSERT_TRUE(tx.send(counted(i)).has_value());
    for (int i = 0; i < 300'000; ++i) ASSERT_EQ(rx.recv()->value(), i);
    EXPECT_EQ(check.leaked(), n - 300'000);
    rx = {};
    EXPECT_EQ(check.leaked(), 0);
  }
  EXPECT_EQ(check.leaked(), 0);
}

TEST(unbounded, a_stream_goes_on_after_a_burst_drained_in_a_huge_region) {
  auto [tx, rx] = sluice::channel<std::uint64_t>();
  std::uint64_t next_sent = 0;
  std::uint64_t next_received = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 400'000; ++i) ASSERT_TRUE(tx.send(next_sent++).has_value());
    // Drained down to a few messages: the receiver reaches the end of what
    // was carved of the last region, which then gives back its dead parts.
    while (next_sent - next_received > 3) ASSERT_EQ(*rx.try_recv(), next_received++);
    // A steady trickle: blocks from small regions again, and the last few
    // blocks of the huge region drained among them.
    for (int i = 0; i < 5'000; ++i) {
      ASSERT_TRUE(tx.send(next_sent++).has_value());
      ASSERT_EQ(*rx.try_recv(), next_received++);
    }
  }
  while (next_received < next_sent) ASSERT_EQ(*rx.try_recv(), next_received++);
  EXPECT_TRUE(rx.is_empty());
}

TEST(unbounded, producers_burst_into_huge_regions_while_the_receiver_lags) {
  leak_check check;
  {
    auto [tx, rx] = sluice::channel<counted>();
    constexpr int producers = 4;
    constexpr int per = 100'000;
    std::atomic<int> finished{0};
    std::vector<std::jthread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([sender = tx, p, &finished] {
        for (int i = 0; i < per; ++i) {
          ASSERT_TRUE(sender.send(counted(std::int64_t{p} * per + i)).has_value());
        }
        finished.fetch_add(1);
      });
    }
    tx = {};
    // Let the queue grow past the huge threshold before draining.
    while (rx.len() < 200'000 && finished.load() < producers) std::this_thread::yield();
    std::vector<int> next(producers, 0);
    int received = 0;
    for (auto&& m : rx) {
      const auto p = static_cast<std::size_t>(m.value() / per);
      ASSERT_LT(p, static_cast<std::size_t>(producers));
      ASSERT_EQ(m.value() % per, next[p]) << "producer " << p << " out of order";
      ++next[p];
      ++received;
    }
    EXPECT_EQ(received, producers * per);
  }
  EXPECT_EQ(check.leaked(), 0);
}
