// Receiving from two threads at once is a precondition violation; with
// SLUICE_CHECK_RECEIVER (on by default without NDEBUG, forced on here) it
// aborts with a message naming the mistake instead of corrupting the channel.
#define SLUICE_CHECK_RECEIVER 1
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <utility>

using namespace std::chrono_literals;

namespace {

// One thread blocks in recv() (nothing is ever sent); another keeps calling
// try_recv() on the same receiver until the two overlap.
template <class Make>
void receive_from_two_threads(Make make) {
  auto [tx, rx] = make();
  std::thread blocked([&rx] { (void)rx.recv(); });
  for (;;) {
    (void)rx.try_recv();
    std::this_thread::sleep_for(1ms);
  }
}

TEST(receiver_misuse_death_test, unbounded_two_receiving_threads_abort_with_a_message) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(receive_from_two_threads([] { return sluice::channel<int>(); }),
               "two threads used one receiver at once");
}

TEST(receiver_misuse_death_test, bounded_two_receiving_threads_abort_with_a_message) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(receive_from_two_threads([] { return sluice::sync_channel<int>(4); }),
               "two threads used one receiver at once");
}

TEST(receiver_misuse_death_test, rendezvous_two_receiving_threads_abort_with_a_message) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(receive_from_two_threads([] { return sluice::sync_channel<int>(0); }),
               "two threads used one receiver at once");
}

// Taking turns is fine: the receiver moves between threads, or threads use
// it one after another.
TEST(receiver_misuse, receiving_in_turns_from_several_threads_is_allowed) {
  auto [tx, rx] = sluice::sync_channel<int>(8);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(tx.send(i).has_value());
  int expected = 0;
  for (int round = 0; round < 3; ++round) {
    std::thread t([&] {
      for (int k = 0; k < 2; ++k) {
        auto r = rx.recv();
        ASSERT_TRUE(r.has_value());
        EXPECT_EQ(*r, expected++);
      }
    });
    t.join();
  }
  EXPECT_EQ(expected, 6);
  EXPECT_EQ(rx.try_recv().error(), sluice::try_recv_error::empty);
}

}  // namespace
