// Weak senders (downgrade / upgrade) and the strong and weak counts, on
// every flavor: a weak handle never keeps the channel open, upgrade() fails
// for good once the last strong sender is gone, and the channel's memory
// lives exactly as long as its last handle of any kind.
#include <sluice/sluice.hpp>

#include "../support/counted.hpp"
#include "../support/flavors.hpp"
#include "../support/scale.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using sluice_test::counted;
using sluice_test::counted_registry;

template <class F>
class weak_sender : public ::testing::Test {};
TYPED_TEST_SUITE(weak_sender, sluice_test::all_flavors, sluice_test::flavor_name);

// The weak kind of a strong sender type.
template <class Tx>
using weak_of = decltype(std::declval<const Tx&>().downgrade());

}  // namespace

static_assert(std::is_same_v<weak_of<sluice::sender<int>>, sluice::weak_sender<int>>);
static_assert(std::is_same_v<weak_of<sluice::sync_sender<int>>, sluice::weak_sync_sender<int>>);
static_assert(std::is_same_v<decltype(std::declval<sluice::weak_sender<int>&>().upgrade()),
                             std::optional<sluice::sender<int>>>);
static_assert(std::is_same_v<decltype(std::declval<sluice::weak_sync_sender<int>&>().upgrade()),
                             std::optional<sluice::sync_sender<int>>>);
static_assert(std::is_nothrow_copy_constructible_v<sluice::weak_sender<int>>);
static_assert(std::is_nothrow_move_constructible_v<sluice::weak_sync_sender<int>>);
static_assert(!std::is_convertible_v<sluice::weak_sender<int>, bool>);

TYPED_TEST(weak_sender, counts_follow_every_handle) {
  auto [tx, rx] = TypeParam::template make<int>();
  EXPECT_EQ(tx.strong_count(), 1u);
  EXPECT_EQ(rx.strong_count(), 1u);
  EXPECT_EQ(tx.weak_count(), 0u);
  auto tx2 = tx;
  auto w = tx.downgrade();
  EXPECT_TRUE(static_cast<bool>(w));
  EXPECT_EQ(rx.strong_count(), 2u);
  EXPECT_EQ(rx.weak_count(), 1u);
  auto w2 = w;
  EXPECT_EQ(tx2.weak_count(), 2u);
  EXPECT_EQ(w.strong_count(), 2u);
  EXPECT_EQ(w2.weak_count(), 2u);
  {
    auto up = w.upgrade();
    ASSERT_TRUE(up.has_value());
    EXPECT_EQ(rx.strong_count(), 3u);
    EXPECT_TRUE(up->same_channel(rx));
  }
  EXPECT_EQ(rx.strong_count(), 2u);
  auto moved = std::move(w2);
  EXPECT_FALSE(static_cast<bool>(w2));  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(w2.strong_count(), 0u);
  EXPECT_EQ(w2.weak_count(), 0u);
  EXPECT_FALSE(w2.upgrade().has_value());
  EXPECT_EQ(rx.weak_count(), 2u);
  moved = decltype(moved){};
  EXPECT_EQ(rx.weak_count(), 1u);
}

TYPED_TEST(weak_sender, empty_handles_count_zero_and_downgrade_to_empty) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto gone = std::move(tx);
  EXPECT_EQ(tx.strong_count(), 0u);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(tx.weak_count(), 0u);
  auto w = tx.downgrade();
  EXPECT_FALSE(static_cast<bool>(w));
  EXPECT_FALSE(w.upgrade().has_value());
  EXPECT_EQ(gone.weak_count(), 0u);
  weak_of<decltype(gone)> def;
  EXPECT_FALSE(def.upgrade().has_value());
}

// A weak handle does not keep the channel open: the receiver gets what was
// sent, then the disconnection, though the weak handle is alive.
TYPED_TEST(weak_sender, weak_handle_does_not_keep_channel_open) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto w = tx.downgrade();
  std::thread producer;
  if constexpr (TypeParam::buffered) {
    ASSERT_TRUE(tx.send(7).has_value());
  } else {
    producer = std::thread([s = tx] { EXPECT_TRUE(s.send(7).has_value()); });
  }
  { auto drop = std::move(tx); }
  auto got = rx.recv();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, 7);
  if (producer.joinable()) producer.join();
  EXPECT_FALSE(rx.recv().has_value());
  EXPECT_TRUE(rx.is_disconnected());
  EXPECT_EQ(w.strong_count(), 0u);
  EXPECT_EQ(w.weak_count(), 1u);
  EXPECT_FALSE(w.upgrade().has_value());
  EXPECT_EQ(w.strong_count(), 0u);  // a failed upgrade leaves no count behind
}

// An upgraded sender is a full producer: it keeps the channel open after the
// original is gone.
TYPED_TEST(weak_sender, upgraded_sender_keeps_channel_open) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto w = tx.downgrade();
  auto up = w.upgrade();
  ASSERT_TRUE(up.has_value());
  { auto drop = std::move(tx); }
  EXPECT_FALSE(rx.is_disconnected());
  EXPECT_EQ(rx.strong_count(), 1u);
  std::thread producer([s = std::move(*up)] { EXPECT_TRUE(s.send(11).has_value()); });
  auto got = rx.recv();
  producer.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, 11);
  EXPECT_FALSE(rx.recv().has_value());  // the upgraded sender is gone too
  EXPECT_FALSE(w.upgrade().has_value());
}

TYPED_TEST(weak_sender, upgrade_fails_after_close_and_after_receiver_is_gone) {
  {
    auto [tx, rx] = TypeParam::template make<int>();
    auto w = tx.downgrade();
    rx.close();
    EXPECT_FALSE(w.upgrade().has_value());
    EXPECT_EQ(tx.strong_count(), 1u);  // the failed upgrade gave its count back
  }
  {
    auto [tx, rx] = TypeParam::template make<int>();
    auto w = tx.downgrade();
    { auto drop = std::move(rx); }
    EXPECT_FALSE(w.upgrade().has_value());
    EXPECT_EQ(tx.strong_count(), 1u);
  }
}

// The memory lives as long as the last handle of any kind, whichever order
// they go in (AddressSanitizer checks each order for leaks and use after free).
TYPED_TEST(weak_sender, last_handle_of_any_kind_frees_the_channel) {
  for (int order = 0; order < 6; ++order) {
    const std::int64_t before = counted_registry::alive();
    {
      auto [tx, rx] = TypeParam::template make<counted>();
      auto w = tx.downgrade();
      if constexpr (TypeParam::buffered) {
        ASSERT_TRUE(tx.send(counted(order)).has_value());
      }
      auto drop_tx = [&] { auto t = std::move(tx); };
      auto drop_rx = [&] { auto r = std::move(rx); };
      auto drop_w = [&] {
        auto copy = w;
        auto x = std::move(w);
      };
      switch (order) {
        case 0: drop_tx(); drop_rx(); drop_w(); break;
        case 1: drop_tx(); drop_w(); drop_rx(); break;
        case 2: drop_rx(); drop_tx(); drop_w(); break;
        case 3: drop_rx(); drop_w(); drop_tx(); break;
        case 4: drop_w(); drop_tx(); drop_rx(); break;
        default: drop_w(); drop_rx(); drop_tx(); break;
      }
    }
    EXPECT_EQ(counted_registry::alive(), before) << "order " << order;
  }
}

// Producers upgrade and send while the last strong sender goes away. Every
// upgrade that succeeds delivers its message (nothing lost, nothing twice),
// and once an upgrade has failed because every strong sender was gone, no
// later one succeeds.
TYPED_TEST(weak_sender, upgrades_race_the_last_strong_sender) {
  const int rounds = static_cast<int>(200 * sluice_test::stress_scale());
  constexpr int producers = 3;
  for (int round = 0; round < rounds; ++round) {
    auto [tx, rx] = TypeParam::template make<std::int64_t>();
    auto w = tx.downgrade();
    std::atomic<std::int64_t> sent_sum{0};
    std::atomic<int> sent{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&, w, p] {
        while (!go.load()) std::this_thread::yield();
        bool failed = false;
        for (std::int64_t i = 0; i < 50; ++i) {
          auto up = w.upgrade();
          if (!up) {
            failed = true;
            continue;
          }
          EXPECT_FALSE(failed) << "an upgrade succeeded after one found no strong sender";
          const std::int64_t v = p * 1000 + i;
          EXPECT_TRUE(up->send(v).has_value());
          sent_sum += v;
          ++sent;
        }
      });
    }
    go = true;
    { auto drop = std::move(tx); }
    std::int64_t got_sum = 0;
    int got = 0;
    while (auto v = rx.recv()) {
      got_sum += *v;
      ++got;
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(got, sent.load());
    EXPECT_EQ(got_sum, sent_sum.load());
    EXPECT_EQ(w.strong_count(), 0u);
  }
}

// Weak handles copied, upgraded and dropped on several threads while the
// receiver goes away: counts come back to zero, and the memory is freed once
// (ThreadSanitizer and AddressSanitizer see the rest).
TYPED_TEST(weak_sender, weak_handles_race_the_receiver) {
  const int rounds = static_cast<int>(200 * sluice_test::stress_scale());
  for (int round = 0; round < rounds; ++round) {
    auto [tx, rx] = TypeParam::template make<int>();
    auto w = tx.downgrade();
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int p = 0; p < 2; ++p) {
      threads.emplace_back([&go, w] {  // NOLINT(performance-unnecessary-copy-initialization)
        while (!go.load()) std::this_thread::yield();
        for (int i = 0; i < 20; ++i) {
          auto copy = w;
          if (auto up = copy.upgrade()) {
            if constexpr (TypeParam::bounded) {
              (void)up->try_send(i);
            } else {
              (void)up->send(i);
            }
          }
        }
      });
    }
    go = true;
    { auto drop = std::move(rx); }
    for (auto& t : threads) t.join();
    EXPECT_EQ(tx.weak_count(), 1u);
    EXPECT_EQ(tx.strong_count(), 1u);
    EXPECT_FALSE(w.upgrade().has_value());
  }
}
