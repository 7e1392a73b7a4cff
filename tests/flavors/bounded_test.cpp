// Rules of bounded channels (bound >= 1): backpressure, try_send and the
// timed sends, and what blocked senders see when the receiver goes away.
#include "../support/counted.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

using namespace std::chrono_literals;

TEST(bounded, try_send_full_returns_value) {
  auto [tx, rx] = sluice::sync_channel<std::unique_ptr<int>>(1);
  ASSERT_TRUE(tx.try_send(std::make_unique<int>(1)).has_value());
  EXPECT_TRUE(tx.is_full());
  auto r = tx.try_send(std::make_unique<int>(2));
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_full());
  EXPECT_FALSE(r.error().is_disconnected());
  EXPECT_EQ(*r.error().value, 2);
  EXPECT_EQ(**rx.recv(), 1);
  EXPECT_TRUE(tx.try_send(std::make_unique<int>(3)).has_value());
}

TEST(bounded, try_send_disconnected) {
  auto [tx, rx] = sluice::sync_channel<int>(2);
  rx = {};
  auto r = tx.try_send(5);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_disconnected());
  EXPECT_EQ(r.error().value, 5);
}

TEST(bounded, len_tracks_queue_across_wraparound) {
  auto [tx, rx] = sluice::sync_channel<int>(3);
  for (int lap = 0; lap < 5; ++lap) {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(tx.try_send(i).has_value());
    EXPECT_EQ(rx.len(), 3u);
    EXPECT_TRUE(rx.is_full());
    EXPECT_EQ(*rx.recv(), 0);
    EXPECT_EQ(rx.len(), 2u);
    EXPECT_EQ(*rx.recv(), 1);
    EXPECT_EQ(*rx.recv(), 2);
    EXPECT_TRUE(rx.is_empty());
  }
}

TEST(bounded, send_blocks_while_full_and_resumes_after_recv) {
  auto [tx, rx] = sluice::sync_channel<int>(2);
  ASSERT_TRUE(tx.send(1).has_value());
  ASSERT_TRUE(tx.send(2).has_value());
  std::atomic<bool> third_sent{false};
  std::jthread t([&, sender = tx] {
    ASSERT_TRUE(sender.send(3).has_value());
    third_sent = true;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(third_sent.load());  // backpressure: the channel is full
  EXPECT_EQ(*rx.recv(), 1);
  t.join();
  EXPECT_TRUE(third_sent.load());
  EXPECT_EQ(*rx.recv(), 2);
  EXPECT_EQ(*rx.recv(), 3);
}

TEST(bounded, send_timeout_full_returns_value) {
  auto [tx, rx] = sluice::sync_channel<std::unique_ptr<int>>(1);
  ASSERT_TRUE(tx.send(std::make_unique<int>(1)).has_value());
  const auto start = std::chrono::steady_clock::now();
  auto r = tx.send_timeout(std::make_unique<int>(2), 30ms);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_timeout());
  EXPECT_EQ(*r.error().value, 2);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST(bounded, send_timeout_zero_and_negative_try_once) {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  EXPECT_TRUE(tx.send_timeout(1, 0ms).has_value());
  auto r = tx.send_timeout(2, -1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_timeout());
  EXPECT_EQ(r.error().value, 2);
  rx = {};
  auto d = tx.send_timeout(3, 0ms);
  ASSERT_FALSE(d.has_value());
  EXPECT_TRUE(d.error().is_disconnected());
}

TEST(bounded, send_timeout_max_waits_for_room) {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  ASSERT_TRUE(tx.send(1).has_value());
  std::jthread t([receiver = std::move(rx)]() mutable {
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(*receiver.recv(), 1);
    EXPECT_EQ(*receiver.recv(), 2);
  });
  EXPECT_TRUE(tx.send_timeout(2, std::chrono::seconds::max()).has_value());
}

TEST(bounded, send_deadline_clocks) {
  using steady = std::chrono::steady_clock;
  using system = std::chrono::system_clock;
  auto [tx, rx] = sluice::sync_channel<int>(1);
  ASSERT_TRUE(tx.send(0).has_value());
  EXPECT_TRUE(tx.send_deadline(1, steady::now() + 10ms).error().is_timeout());
  EXPECT_TRUE(tx.send_deadline(2, system::now() + 10ms).error().is_timeout());
  EXPECT_TRUE(tx.send_deadline(3, steady::time_point::min()).error().is_timeout());
  EXPECT_TRUE(tx.send_deadline(4, system::now() - 1h).error().is_timeout());
  std::jthread t([receiver = std::move(rx)]() mutable {
    for (int expected : {0, 5, 6}) EXPECT_EQ(*receiver.recv(), expected);
  });
  EXPECT_TRUE(tx.send_deadline(5, steady::time_point::max()).has_value());
  EXPECT_TRUE(tx.send_deadline(6, system::time_point::max()).has_value());
}

TEST(bounded, receiver_drop_wakes_blocked_sender_with_value) {
  auto [tx, rx] = sluice::sync_channel<std::unique_ptr<int>>(1);
  ASSERT_TRUE(tx.send(std::make_unique<int>(1)).has_value());
  std::jthread dropper([receiver = std::move(rx)]() mutable {
    std::this_thread::sleep_for(20ms);
    receiver = {};
  });
  auto r = tx.send(std::make_unique<int>(2));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(*r.error().value, 2);
}

TEST(bounded, close_wakes_blocked_sender_with_value) {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  ASSERT_TRUE(tx.send(1).has_value());
  std::jthread blocked([sender = tx] {
    auto r = sender.send_timeout(2, 10s);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is_disconnected());
    EXPECT_EQ(r.error().value, 2);
  });
  std::this_thread::sleep_for(20ms);
  rx.close();
  blocked.join();
  EXPECT_EQ(*rx.recv(), 1);  // queued before close: still delivered
  EXPECT_FALSE(rx.recv().has_value());
}

TEST(bounded, huge_bounds_throw) {
  EXPECT_THROW(sluice::sync_channel<int>(SIZE_MAX), std::length_error);
  try {
    (void)sluice::sync_channel<int>(SIZE_MAX / 2);
    ADD_FAILURE() << "no exception";
  } catch (const std::length_error&) {
  } catch (const std::bad_alloc&) {
  }
  struct big {
    char bytes[1 << 20];
  };
  try {
    (void)sluice::sync_channel<big>(std::size_t{1} << 30);  // a petabyte
    ADD_FAILURE() << "no exception";
  } catch (const std::length_error&) {
  } catch (const std::bad_alloc&) {
  }
}

TEST(bounded, large_bound_allocates_lazily_and_works) {
  // 2^30 slots would be 16 GiB up front; lazily it is one 1 MiB segment
  // (and a 128 KiB segment table).
  auto [tx, rx] = sluice::sync_channel<std::size_t>(std::size_t{1} << 30);
  EXPECT_EQ(rx.capacity(), std::size_t{1} << 30);
  for (std::size_t i = 0; i < 10000; ++i) ASSERT_TRUE(tx.try_send(i).has_value());
  EXPECT_EQ(rx.len(), 10000u);
  for (std::size_t i = 0; i < 10000; ++i) ASSERT_EQ(*rx.try_recv(), i);
}

TEST(bounded, queued_counted_messages_destroyed_once_across_segments) {
  sluice_test::leak_check check;
  {
    auto [tx, rx] = sluice::sync_channel<sluice_test::counted>(3000);
    for (int i = 0; i < 2500; ++i) ASSERT_TRUE(tx.try_send(sluice_test::counted(i)).has_value());
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(rx.recv()->value(), i);
    EXPECT_EQ(check.leaked(), 1500);
  }
  EXPECT_EQ(check.leaked(), 0);
}

namespace {

// Fills a bounded(cap) channel to its bound and drains it, lap after lap,
// then leaves part of a lap queued when the channel is dropped: every
// message arrives once, in order, and is destroyed once.
template <class V>
void fill_drain_and_drop(std::size_t cap, int laps) {
  using msg = sluice_test::basic_counted<V>;
  sluice_test::leak_check check;
  {
    auto [tx, rx] = sluice::sync_channel<msg>(cap);
    V next_sent = 0;
    V next_received = 0;
    for (int lap = 0; lap < laps; ++lap) {
      for (std::size_t i = 0; i < cap; ++i) {
        ASSERT_TRUE(tx.try_send(msg(next_sent++)).has_value()) << "cap " << cap << " slot " << i;
      }
      auto full = tx.try_send(msg(-1));
      ASSERT_FALSE(full.has_value()) << "cap " << cap;
      EXPECT_TRUE(full.error().is_full());
      for (std::size_t i = 0; i < cap; ++i) ASSERT_EQ(rx.try_recv()->value(), next_received++);
      EXPECT_FALSE(rx.try_recv().has_value());
    }
    for (std::size_t i = 0; i < cap / 2 + 1; ++i) ASSERT_TRUE(tx.try_send(msg(0)).has_value());
    EXPECT_EQ(check.leaked(), static_cast<std::int64_t>(cap / 2 + 1));
  }
  EXPECT_EQ(check.leaked(), 0) << "cap " << cap;
}

}  // namespace

// A ring whose slots fit in one cache line lives in the channel itself, a
// larger one on the heap: bounds on both sides of that line, for 16-byte
// slots (8-byte messages) and 24-byte slots (16-byte messages).
TEST(bounded, rings_on_both_sides_of_the_in_channel_limit_keep_every_message) {
  for (std::size_t cap = 1; cap <= SLUICE_CACHE_LINE / 16 + 2; ++cap) {
    fill_drain_and_drop<std::int32_t>(cap, 4);
    fill_drain_and_drop<std::int64_t>(cap, 4);
  }
}

// A segment table of up to a cache line of entries lives in the channel
// (16 with 128-byte lines): that many segments of 256 16-byte slots, and one
// slot more (a table on the heap), and the same with 128 24-byte slots.
TEST(bounded, segment_tables_on_both_sides_of_the_in_channel_limit_keep_every_message) {
  constexpr std::size_t entries = SLUICE_CACHE_LINE / sizeof(void*);
  for (std::size_t cap : {entries * 256 - 1, entries * 256, entries * 256 + 1}) {
    fill_drain_and_drop<std::int32_t>(cap, 2);
  }
  for (std::size_t cap : {entries * 128 - 1, entries * 128, entries * 128 + 1}) {
    fill_drain_and_drop<std::int64_t>(cap, 2);
  }
}
