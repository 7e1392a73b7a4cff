// The bounded flavor's sole sender (flavors/array.hpp, "Sole sender"): the
// first thread that sends claims its slots with plain stores, and every
// other write of the tail word ends that first. Each test checks that the
// role is held when the transition it tests begins (a receiver that polls
// with try_recv never ends it), that the transition ended it where it
// must, and that every message arrived once, each producer's in order.
// The rings: 20 segments of 256 slots, the last one short (5000), and 196
// of 512 (100,000); both retire emptied segments, a check that pairs with
// the sole sender's seq_cst store onto a segment's first slot. A ring whose
// segment table fits the channel's line has no sole sender.

#include <sluice/detail/flavors/array.hpp>
#include <sluice/detail/memory/asymmetric_fence.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {

using sluice::detail::array_channel;
using sluice::detail::deadline;

constexpr std::uint64_t producer_shift = 40;  // value = producer << shift | sequence

bool sole_senders_exist() {
  return sluice::detail::init_asymmetric_fence() == sluice::detail::fence_mode::asymmetric;
}

// Polls (never sleeps, so never ends the role) until `n` messages arrived;
// checks each producer's order; returns per-producer counts.
std::vector<std::uint64_t> poll_in_order(array_channel<std::uint64_t>& ch, std::size_t n,
                                         std::size_t producers) {
  std::vector<std::uint64_t> next(producers, 0);
  for (std::size_t got = 0; got < n;) {
    auto m = ch.try_recv();
    if (!m) {
      std::this_thread::yield();
      continue;
    }
    ++got;
    const std::uint64_t p = *m >> producer_shift;
    const std::uint64_t seq = *m & ((std::uint64_t{1} << producer_shift) - 1);
    EXPECT_LT(p, producers);
    if (p >= producers) return next;
    EXPECT_EQ(seq, next[p]) << "producer " << p;
    next[p] = seq + 1;
  }
  return next;
}

void send_all(array_channel<std::uint64_t>& ch, std::uint64_t producer, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t v = producer << producer_shift | i;
    if (!ch.send(std::move(v), deadline::never()).has_value()) {
      ADD_FAILURE() << "send failed at " << i;
      return;
    }
  }
}

class array_sole_sender : public ::testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override {
    if (!sole_senders_exist()) GTEST_SKIP() << "no membarrier here: nobody takes the role";
  }
};

INSTANTIATE_TEST_SUITE_P(bounds, array_sole_sender, ::testing::Values(5000, 100'000),
                         [](const auto& p) { return "bound_" + std::to_string(p.param); });

TEST(array_sole_sender_small, a_ring_whose_table_fits_the_line_has_none) {
  for (const std::size_t bound : {std::size_t{1}, std::size_t{64}, std::size_t{1024}}) {
    array_channel<std::uint64_t> ch(bound);
    std::uint64_t v = 1;
    ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
    EXPECT_FALSE(ch.sole_sender_for_testing()) << bound;
    EXPECT_EQ(ch.try_recv().value(), 1u);
  }
}

TEST_P(array_sole_sender, one_thread_streaming_keeps_the_role) {
  array_channel<std::uint64_t> ch(GetParam());
  constexpr std::uint64_t n = 200'000;  // 40 laps of the large ring
  std::jthread producer([&] { send_all(ch, 0, n); });
  const auto got = poll_in_order(ch, n, 1);
  producer.join();
  EXPECT_EQ(got[0], n);
  EXPECT_TRUE(ch.sole_sender_for_testing());
}

TEST_P(array_sole_sender, a_second_producer_ends_the_role) {
  array_channel<std::uint64_t> ch(GetParam());
  constexpr std::uint64_t n = 50'000;
  std::atomic<bool> first_half{false};
  std::jthread first([&] {
    send_all(ch, 0, n / 2);
    first_half.store(true);
    send_all(ch, 0, n / 2);  // the second half, from sequence 0 again
  });
  // The first n/2 messages arrive from the sole sender alone.
  auto got = poll_in_order(ch, n / 2, 1);
  EXPECT_EQ(got[0], n / 2);
  while (!first_half.load()) std::this_thread::yield();
  EXPECT_TRUE(ch.sole_sender_for_testing());
  std::jthread second([&] { send_all(ch, 1, n); });
  // Then both streams, the first one restarting its numbering.
  got = poll_in_order(ch, n / 2 + n, 2);
  EXPECT_EQ(got[0], n / 2);
  EXPECT_EQ(got[1], n);
  EXPECT_FALSE(ch.sole_sender_for_testing());
}

TEST_P(array_sole_sender, a_receiver_going_to_sleep_ends_the_role_and_is_woken) {
  array_channel<std::uint64_t> ch(GetParam());
  std::atomic<bool> go_on{false};
  std::jthread producer([&] {
    send_all(ch, 0, 1000);
    while (!go_on.load()) std::this_thread::yield();
    // Only the receiver's registration ends the role here: wait for it.
    while (ch.sole_sender_for_testing()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::uint64_t v = 1000;
    EXPECT_TRUE(ch.send(std::move(v), deadline::never()).has_value());
  });
  EXPECT_EQ(poll_in_order(ch, 1000, 1)[0], 1000u);
  EXPECT_TRUE(ch.sole_sender_for_testing());
  go_on.store(true);
  auto m = ch.recv_as(deadline::never(), {}, sluice::recv_error{}, sluice::recv_error{},
                      sluice::recv_error{});
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(*m, 1000u);
  EXPECT_FALSE(ch.sole_sender_for_testing());
}

TEST_P(array_sole_sender, a_receiver_asleep_before_the_first_send_leaves_the_role_to_take) {
  array_channel<std::uint64_t> ch(GetParam());
  std::jthread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the receiver sleeps meanwhile
    send_all(ch, 0, 50);  // fits the ring
  });
  auto m = ch.recv_as(deadline::never(), {}, sluice::recv_error{}, sluice::recv_error{},
                      sluice::recv_error{});
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(*m, 0u);
  producer.join();
  EXPECT_TRUE(ch.sole_sender_for_testing());
  for (std::uint64_t i = 1; i < 50; ++i) EXPECT_EQ(ch.try_recv().value(), i);
}

TEST_P(array_sole_sender, a_permit_used_on_another_thread_ends_the_role) {
  array_channel<std::uint64_t> ch(GetParam());
  std::atomic<int> stage{0};
  std::jthread owner([&] {
    send_all(ch, 0, 30);  // fits the ring: nobody receives yet
    const bool reserved = ch.try_reserve().has_value();
    EXPECT_TRUE(reserved);
    stage.store(reserved ? 1 : 3);
    if (!reserved) return;
    while (stage.load() != 2) std::this_thread::yield();
    for (std::uint64_t i = 30; i < 200; ++i) {
      std::uint64_t v = i;
      EXPECT_TRUE(ch.send(std::move(v), deadline::never()).has_value());
    }
  });
  while (stage.load() == 0) std::this_thread::yield();
  ASSERT_EQ(stage.load(), 1);
  EXPECT_TRUE(ch.sole_sender_for_testing());
  std::jthread user([&] { ch.send_reserved(std::uint64_t{1} << producer_shift); });
  user.join();
  EXPECT_FALSE(ch.sole_sender_for_testing());
  stage.store(2);
  const auto got = poll_in_order(ch, 201, 2);
  EXPECT_EQ(got[0], 200u);
  EXPECT_EQ(got[1], 1u);
}

TEST_P(array_sole_sender, close_ends_the_role_and_keeps_what_was_sent) {
  array_channel<std::uint64_t> ch(GetParam());
  std::atomic<std::uint64_t> sent{0};
  std::jthread producer([&] {
    for (std::uint64_t i = 0;; ++i) {
      std::uint64_t v = i;
      if (!ch.send(std::move(v), deadline::never()).has_value()) return;
      sent.store(i + 1);
    }
  });
  EXPECT_EQ(poll_in_order(ch, 10'000, 1)[0], 10'000u);
  EXPECT_TRUE(ch.sole_sender_for_testing());
  ch.close();
  EXPECT_FALSE(ch.sole_sender_for_testing());
  producer.join();
  std::uint64_t received = 10'000;
  while (auto m = ch.try_recv()) EXPECT_EQ(*m, received++);
  EXPECT_EQ(received, sent.load());
}

}  // namespace
