// Rendezvous (sync_channel(0)) rules, as crossbeam's zero flavor.
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

using namespace std::chrono_literals;

TEST(rendezvous, queries) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  EXPECT_EQ(tx.capacity(), std::optional<std::size_t>(0));
  EXPECT_EQ(rx.len(), 0u);
  EXPECT_TRUE(rx.is_empty());
  EXPECT_TRUE(rx.is_full());
  EXPECT_TRUE(tx.is_empty());
  EXPECT_TRUE(tx.is_full());
}

TEST(rendezvous, try_send_without_waiting_receiver_is_full) {
  auto [tx, rx] = sluice::sync_channel<std::unique_ptr<int>>(0);
  auto r = tx.try_send(std::make_unique<int>(1));
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_full());
  EXPECT_EQ(*r.error().value, 1);
}

TEST(rendezvous, try_send_succeeds_when_receiver_waits) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  std::jthread consumer([receiver = std::move(rx)]() mutable { EXPECT_EQ(*receiver.recv(), 7); });
  // Retry until the receiver is parked in recv(): then try_send must succeed.
  int value = 7;
  for (;;) {
    auto r = tx.try_send(value);
    if (r) break;
    ASSERT_TRUE(r.error().is_full());
    std::this_thread::sleep_for(1ms);
  }
}

TEST(rendezvous, try_recv_takes_from_blocked_sender) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  std::atomic<bool> done{false};
  std::jthread producer([&, sender = tx] {
    ASSERT_TRUE(sender.send(5).has_value());
    done = true;
  });
  std::expected<int, sluice::try_recv_error> r;
  do {
    std::this_thread::sleep_for(1ms);
    r = rx.try_recv();
  } while (!r && r.error() == sluice::try_recv_error::empty);
  EXPECT_EQ(*r, 5);
  producer.join();
  EXPECT_TRUE(done.load());
}

TEST(rendezvous, zero_recv_timeout_takes_from_blocked_sender) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  std::jthread producer([sender = tx] { ASSERT_TRUE(sender.send(6).has_value()); });
  std::expected<int, sluice::recv_timeout_error> r;
  do {
    std::this_thread::sleep_for(1ms);
    r = rx.recv_timeout(0ms);
  } while (!r && r.error() == sluice::recv_timeout_error::timeout);
  EXPECT_EQ(*r, 6);
}

TEST(rendezvous, send_completes_only_when_received) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  std::atomic<bool> sent{false};
  std::jthread producer([&, sender = tx] {
    ASSERT_TRUE(sender.send(1).has_value());
    sent = true;
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(sent.load());
  EXPECT_EQ(*rx.recv(), 1);
  producer.join();
  EXPECT_TRUE(sent.load());
}

TEST(rendezvous, send_timeout_without_receiver_returns_value) {
  auto [tx, rx] = sluice::sync_channel<std::unique_ptr<int>>(0);
  auto r = tx.send_timeout(std::make_unique<int>(3), 20ms);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_timeout());
  EXPECT_EQ(*r.error().value, 3);
}

TEST(rendezvous, receiver_drop_wakes_blocked_sender_with_value) {
  auto [tx, rx] = sluice::sync_channel<std::unique_ptr<int>>(0);
  std::jthread dropper([receiver = std::move(rx)]() mutable {
    std::this_thread::sleep_for(20ms);
    receiver = {};
  });
  auto r = tx.send(std::make_unique<int>(4));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(*r.error().value, 4);
}

TEST(rendezvous, close_wakes_blocked_sender_with_value) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  std::jthread closer([&rx] {
    std::this_thread::sleep_for(20ms);
    rx.close();
  });
  auto r = tx.send(9);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().value, 9);
  closer.join();
  EXPECT_TRUE(tx.is_disconnected());
  EXPECT_FALSE(rx.recv().has_value());
}
