// One conformance list, run on every flavor: unbounded, rendezvous,
// bounded(1), bounded(4) and a bound spanning several lazy segments.
// Flavor-specific rules (backpressure, rendezvous hand-off) are in
// bounded_test.cpp and rendezvous_test.cpp.
#include "../support/counted.hpp"
#include "../support/flavors.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sluice_test::counted;
using sluice_test::leak_check;

template <class F>
class conformance : public ::testing::Test {};

TYPED_TEST_SUITE(conformance, sluice_test::all_flavors, sluice_test::flavor_name);

// Sends `values` from a background thread (a rendezvous needs a partner).
template <class Tx>
std::jthread send_all(Tx tx, std::vector<int> values) {
  return std::jthread([sender = std::move(tx), values = std::move(values)] {
    for (int v : values) ASSERT_TRUE(sender.send(v).has_value());
  });
}

TYPED_TEST(conformance, smoke) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto t = send_all(tx, {7});
  auto r = rx.recv();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 7);
}

TYPED_TEST(conformance, capacity_and_queries) {
  auto [tx, rx] = TypeParam::template make<int>();
  EXPECT_EQ(tx.capacity(), TypeParam::cap);
  EXPECT_EQ(rx.capacity(), TypeParam::cap);
  EXPECT_EQ(rx.len(), 0u);
  EXPECT_TRUE(rx.is_empty());
  EXPECT_FALSE(tx.is_disconnected());
  EXPECT_FALSE(rx.is_disconnected());
  if constexpr (TypeParam::buffered) {
    ASSERT_TRUE(tx.send(1).has_value());
    EXPECT_EQ(tx.len(), 1u);
    EXPECT_EQ(rx.len(), 1u);
    EXPECT_FALSE(rx.is_empty());
    EXPECT_EQ(rx.is_full(), TypeParam::cap == std::optional<std::size_t>(1));
  } else {
    EXPECT_TRUE(rx.is_full());
    EXPECT_TRUE(tx.is_full());
  }
}

TYPED_TEST(conformance, fifo_order_single_producer) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::vector<int> values(200);
  for (int i = 0; i < 200; ++i) values[static_cast<std::size_t>(i)] = i;
  auto t = send_all(tx, values);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(*rx.recv(), i);
}

TYPED_TEST(conformance, try_recv_empty) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto r = rx.try_recv();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), sluice::try_recv_error::empty);
}

TYPED_TEST(conformance, try_recv_disconnected) {
  auto [tx, rx] = TypeParam::template make<int>();
  tx = {};
  auto r = rx.try_recv();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), sluice::try_recv_error::disconnected);
  EXPECT_TRUE(rx.is_disconnected());
}

TYPED_TEST(conformance, recv_disconnected) {
  auto [tx, rx] = TypeParam::template make<int>();
  tx = {};
  EXPECT_EQ(rx.recv().error(), sluice::recv_error{});
}

TYPED_TEST(conformance, recv_gets_queued_then_disconnected) {
  if constexpr (TypeParam::buffered) {
    auto [tx, rx] = TypeParam::template make<int>();
    ASSERT_TRUE(tx.send(1).has_value());
    tx = {};
    EXPECT_EQ(*rx.recv(), 1);
    EXPECT_FALSE(rx.recv().has_value());
    EXPECT_EQ(rx.try_recv().error(), sluice::try_recv_error::disconnected);
  }
}

TYPED_TEST(conformance, recv_blocks_until_send) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::atomic<bool> sent{false};
  std::jthread t([sender = tx, &sent] {
    std::this_thread::sleep_for(20ms);
    sent = true;
    ASSERT_TRUE(sender.send(5).has_value());
  });
  auto r = rx.recv();
  EXPECT_TRUE(sent.load());
  EXPECT_EQ(*r, 5);
}

TYPED_TEST(conformance, disconnect_wakes_receiver) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::jthread t([sender = std::move(tx)]() mutable {
    std::this_thread::sleep_for(20ms);
    sender = {};
  });
  EXPECT_FALSE(rx.recv().has_value());
}

TYPED_TEST(conformance, send_after_receiver_dropped_returns_value) {
  auto [tx, rx] = TypeParam::template make<std::unique_ptr<int>>();
  rx = {};
  auto p = std::make_unique<int>(42);
  int* raw = p.get();
  auto r = tx.send(std::move(p));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().value.get(), raw);  // the very same value comes back
  EXPECT_TRUE(tx.is_disconnected());
}

TYPED_TEST(conformance, recv_timeout_zero_and_negative_try_once) {
  auto [tx, rx] = TypeParam::template make<int>();
  EXPECT_EQ(rx.recv_timeout(0ms).error(), sluice::recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_timeout(-5s).error(), sluice::recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_timeout(std::chrono::duration<double>(-1.5)).error(),
            sluice::recv_timeout_error::timeout);
  if constexpr (TypeParam::buffered) {
    ASSERT_TRUE(tx.send(3).has_value());
    EXPECT_EQ(*rx.recv_timeout(0ms), 3);
  }
  tx = {};
  EXPECT_EQ(rx.recv_timeout(0ms).error(), sluice::recv_timeout_error::disconnected);
}

TYPED_TEST(conformance, recv_timeout_small_times_out) {
  auto [tx, rx] = TypeParam::template make<int>();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(rx.recv_timeout(30ms).error(), sluice::recv_timeout_error::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TYPED_TEST(conformance, recv_timeout_fractional_and_coarse_units) {
  auto [tx, rx] = TypeParam::template make<int>();
  EXPECT_EQ(rx.recv_timeout(std::chrono::duration<double, std::milli>(1.5)).error(),
            sluice::recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_timeout(std::chrono::nanoseconds(1)).error(),
            sluice::recv_timeout_error::timeout);
}

TYPED_TEST(conformance, recv_timeout_max_waits_for_message) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto t = send_all(tx, {9});
  EXPECT_EQ(*rx.recv_timeout(std::chrono::nanoseconds::max()), 9);
  auto t2 = send_all(tx, {10});
  EXPECT_EQ(*rx.recv_timeout(std::chrono::hours::max()), 10);
  auto t3 = send_all(tx, {11});
  EXPECT_EQ(*rx.recv_timeout(std::chrono::duration<double>::max()), 11);
}

TYPED_TEST(conformance, recv_timeout_disconnected_while_waiting) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::jthread t([sender = std::move(tx)]() mutable {
    std::this_thread::sleep_for(20ms);
    sender = {};
  });
  EXPECT_EQ(rx.recv_timeout(10s).error(), sluice::recv_timeout_error::disconnected);
}

TYPED_TEST(conformance, recv_deadline_clocks) {
  auto [tx, rx] = TypeParam::template make<int>();
  using steady = std::chrono::steady_clock;
  using system = std::chrono::system_clock;
  EXPECT_EQ(rx.recv_deadline(steady::now() + 10ms).error(), sluice::recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_deadline(system::now() + 10ms).error(), sluice::recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_deadline(steady::now() - 1s).error(), sluice::recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_deadline(steady::time_point::min()).error(),
            sluice::recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_deadline(system::time_point::min()).error(),
            sluice::recv_timeout_error::timeout);
  auto t = send_all(tx, {1, 2});
  EXPECT_EQ(*rx.recv_deadline(steady::time_point::max()), 1);
  EXPECT_EQ(*rx.recv_deadline(system::time_point::max()), 2);
}

TYPED_TEST(conformance, iteration_ends_at_disconnect) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto t = send_all(std::move(tx), {1, 2, 3});  // the thread's copy is the last sender
  std::vector<int> got;
  for (auto&& v : rx) got.push_back(v);
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
}

TYPED_TEST(conformance, iteration_over_move_only_values) {
  auto [tx, rx] = TypeParam::template make<std::unique_ptr<int>>();
  std::jthread t([sender = std::move(tx)] {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(sender.send(std::make_unique<int>(i)).has_value());
  });
  int expected = 0;
  for (auto&& p : rx) {
    std::unique_ptr<int> mine = std::move(p);
    EXPECT_EQ(*mine, expected++);
  }
  EXPECT_EQ(expected, 3);
}

TYPED_TEST(conformance, try_iter_yields_only_ready) {
  auto [tx, rx] = TypeParam::template make<int>();
  int n = 0;
  for (auto&& v : rx.try_iter()) n += v;
  EXPECT_EQ(n, 0);
  if constexpr (TypeParam::buffered) {
    ASSERT_TRUE(tx.send(1).has_value());
    std::vector<int> got;
    for (auto&& v : rx.try_iter()) got.push_back(v);
    EXPECT_EQ(got, std::vector<int>{1});
  }
}

TYPED_TEST(conformance, close_fails_later_sends_and_keeps_queued) {
  auto [tx, rx] = TypeParam::template make<std::unique_ptr<int>>();
  if constexpr (TypeParam::buffered) {
    ASSERT_TRUE(tx.send(std::make_unique<int>(1)).has_value());
  }
  rx.close();
  EXPECT_TRUE(rx.is_disconnected());
  EXPECT_TRUE(tx.is_disconnected());
  auto r = tx.send(std::make_unique<int>(2));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(*r.error().value, 2);
  if constexpr (TypeParam::buffered) {
    EXPECT_EQ(**rx.recv(), 1);
  }
  EXPECT_FALSE(rx.recv().has_value());
  rx.close();  // idempotent
  EXPECT_EQ(rx.try_recv().error(), sluice::try_recv_error::disconnected);
}

TYPED_TEST(conformance, sender_copies_keep_channel_open) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto copy = tx;
  tx = {};
  EXPECT_FALSE(rx.is_disconnected());
  auto t = send_all(copy, {4});
  EXPECT_EQ(*rx.recv(), 4);
  t.join();
  copy = {};
  EXPECT_TRUE(rx.is_disconnected());
  EXPECT_FALSE(rx.recv().has_value());
}

TYPED_TEST(conformance, moved_from_handles_are_empty) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto tx2 = std::move(tx);
  auto rx2 = std::move(rx);
  EXPECT_FALSE(static_cast<bool>(tx));
  EXPECT_FALSE(static_cast<bool>(rx));
  EXPECT_TRUE(static_cast<bool>(tx2));
  EXPECT_TRUE(static_cast<bool>(rx2));
  EXPECT_EQ(tx.send(1).error().value, 1);
  EXPECT_FALSE(rx.recv().has_value());
  EXPECT_EQ(rx.try_recv().error(), sluice::try_recv_error::disconnected);
  EXPECT_EQ(rx.recv_timeout(1s).error(), sluice::recv_timeout_error::disconnected);
  EXPECT_EQ(rx.len(), 0u);
  EXPECT_EQ(tx.len(), 0u);
  EXPECT_TRUE(rx.is_disconnected());
  EXPECT_TRUE(tx.is_disconnected());
  EXPECT_TRUE(rx.is_empty());
  EXPECT_FALSE(tx.same_channel(tx));
  EXPECT_FALSE(tx.same_channel(tx2));
  EXPECT_FALSE(rx.same_channel(rx2));
  rx.close();  // no effect, no crash
  for (auto&& v : rx) {
    ADD_FAILURE() << v;
  }
  // The live handles still work.
  auto t = send_all(tx2, {8});
  EXPECT_EQ(*rx2.recv(), 8);
}

TYPED_TEST(conformance, same_channel) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto [tx_other, rx_other] = TypeParam::template make<int>();
  auto copy = tx;
  EXPECT_TRUE(tx.same_channel(copy));
  EXPECT_TRUE(tx.same_channel(rx));
  EXPECT_TRUE(rx.same_channel(tx));
  EXPECT_FALSE(tx.same_channel(tx_other));
  EXPECT_FALSE(rx.same_channel(rx_other));
}

TYPED_TEST(conformance, queued_messages_destroyed_when_receiver_dropped) {
  leak_check check;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    if constexpr (TypeParam::buffered) {
      ASSERT_TRUE(tx.send(counted(1)).has_value());
      EXPECT_EQ(check.leaked(), 1);
    }
    rx = {};  // destroys what is queued, before the senders are gone
    EXPECT_EQ(check.leaked(), 0);
    auto r = tx.send(counted(2));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().value.value(), 2);
  }
  EXPECT_EQ(check.leaked(), 0);
}

// The usual order: every sender leaves first (what is queued stays
// receivable), then the receiver's drop destroys what is left, exactly
// once. A weak sender that outlives both cannot upgrade, and frees the
// channel's memory when it goes (the leak checkers see it otherwise).
TYPED_TEST(conformance, queued_messages_destroyed_when_receiver_dropped_after_senders) {
  leak_check check;
  auto [tx, rx] = TypeParam::template make<counted>();
  if constexpr (TypeParam::buffered) {
    ASSERT_TRUE(tx.send(counted(1)).has_value());
  }
  auto weak = tx.downgrade();
  tx = {};
  EXPECT_EQ(check.leaked(), TypeParam::buffered ? 1 : 0);
  EXPECT_FALSE(weak.upgrade().has_value());
  rx = {};
  EXPECT_EQ(check.leaked(), 0);
  EXPECT_FALSE(weak.upgrade().has_value());
  weak = {};
}

TYPED_TEST(conformance, drops_every_message_exactly_once) {
  leak_check check;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    std::jthread producer([sender = std::move(tx)] {
      for (int i = 0; i < 1000; ++i) {
        if (!sender.send(counted(i))) return;  // receiver gone: the value came back and died
      }
    });
    for (int i = 0; i < 300; ++i) ASSERT_EQ(rx.recv()->value(), i);
    rx = {};
  }
  EXPECT_EQ(check.leaked(), 0);
}

TYPED_TEST(conformance, non_default_constructible_non_assignable_values) {
  struct pinned_value {
    explicit pinned_value(int x) : v(x) {}
    pinned_value(pinned_value&&) noexcept = default;
    pinned_value& operator=(const pinned_value&) = delete;
    pinned_value& operator=(pinned_value&&) = delete;
    int v;
  };
  auto [tx, rx] = TypeParam::template make<pinned_value>();
  std::jthread t([sender = std::move(tx)] { ASSERT_TRUE(sender.send(pinned_value(3)).has_value()); });
  EXPECT_EQ(rx.recv()->v, 3);
  for (auto&& p : rx) {
    ADD_FAILURE() << p.v;
  }
}

TYPED_TEST(conformance, mpsc_per_producer_order) {
  constexpr int producers = 4;
  constexpr int per = 2000;
  auto [tx, rx] = TypeParam::template make<std::pair<int, int>>();
  std::vector<std::jthread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([sender = tx, p] {
      for (int i = 0; i < per; ++i) ASSERT_TRUE(sender.send({p, i}).has_value());
    });
  }
  tx = {};
  std::vector<int> next(producers, 0);
  int total = 0;
  for (auto&& [p, i] : rx) {
    ASSERT_EQ(i, next[static_cast<std::size_t>(p)]++);
    ++total;
  }
  EXPECT_EQ(total, producers * per);
}
