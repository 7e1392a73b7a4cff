// The bounded flavor's positions wrap at 48 bits (the tail word keeps the
// permit count in its low 16): a channel started at its last lap goes on
// into lap 0 with sends, permits, receives and waiting all intact.
#include <sluice/detail/flavors/array.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <thread>

namespace {

using sluice::detail::array_channel;
using sluice::detail::deadline;

TEST(array_positions, sends_and_permits_cross_the_wrap) {
  for (std::size_t cap : {1u, 2u, 3u, 5u, 8u}) {
    array_channel<int> ch(cap);
    ch.start_at_last_lap_for_testing();
    int next_sent = 0;
    int next_received = 0;
    for (int round = 0; round < 50; ++round) {
      // Fill: one permit held, the rest plain sends.
      ASSERT_TRUE(ch.try_reserve().has_value());
      for (std::size_t i = 1; i < cap; ++i) {
        int v = next_sent++;
        ASSERT_TRUE(ch.try_send(std::move(v)).has_value()) << "cap " << cap;
      }
      EXPECT_TRUE(ch.is_full());
      EXPECT_EQ(ch.len(), cap - 1);
      int extra = -1;
      EXPECT_FALSE(ch.try_send(std::move(extra)).has_value());
      EXPECT_FALSE(ch.try_reserve().has_value());
      ch.send_reserved(next_sent++);
      EXPECT_EQ(ch.len(), cap);
      for (std::size_t i = 0; i < cap; ++i) EXPECT_EQ(ch.try_recv().value(), next_received++);
      EXPECT_FALSE(ch.try_recv().has_value());
      EXPECT_TRUE(ch.is_empty());
      // A permit given back leaves the whole bound free.
      ASSERT_TRUE(ch.try_reserve().has_value());
      ch.release_reserved();
      EXPECT_FALSE(ch.is_full());
    }
  }
}

TEST(array_positions, blocking_hand_off_across_the_wrap) {
  array_channel<int> ch(2);
  ch.start_at_last_lap_for_testing();
  constexpr int n = 10000;
  std::thread producer([&] {
    for (int i = 0; i < n; ++i) {
      if (i % 2 == 0) {
        ASSERT_TRUE(ch.reserve(deadline::never()).has_value());
        ch.send_reserved(int{i});
      } else {
        ASSERT_TRUE(ch.send(int{i}, deadline::never()).has_value());
      }
    }
    ch.disconnect_senders();
  });
  int expected = 0;
  for (;;) {
    auto r = ch.recv_as(deadline::never(), {}, sluice::try_recv_error::empty,
                        sluice::try_recv_error::disconnected, sluice::try_recv_error::empty);
    if (!r) {
      EXPECT_EQ(r.error(), sluice::try_recv_error::disconnected);
      break;
    }
    EXPECT_EQ(*r, expected++);
  }
  producer.join();
  EXPECT_EQ(expected, n);
}

}  // namespace
