// The sole sender of a bounded channel (flavors/array.hpp, "Sole sender";
// memory/sole_writer.hpp): the first thread that sends claims its slots
// with plain stores until another write of the tail word ends that. These
// tests end it in every way, mid-stream, while the sole sender streams:
// another producer joining, the receiver leaving or closing, the receiver
// going to sleep on an empty channel, a permit sent or dropped on another
// thread. Each runs on rings with a segment table of their own (the only
// ones with a sole sender), whose receivers retire emptied segments: the
// Dekker pair whose senders' half the sole sender's segment-boundary store
// is.
//
// Every message is a sluice_test::counted whose value names its producer
// and its sequence number: the receiver checks each producer's order, and
// that every message sent arrived exactly once; a leak_check that every
// message was destroyed exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <sluice/detail/memory/sole_writer.hpp>
#include <sluice/sluice.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../support/coro_task.hpp"  // scaled(): smaller counts under sanitizers
#include "../support/counted.hpp"

namespace {

using sluice_test::counted;
using sluice_test::leak_check;

constexpr std::int64_t producer_shift = 40;  // value = producer << shift | sequence

std::int64_t value_of(std::int64_t producer, std::int64_t seq) {
  return producer << producer_shift | seq;
}

// Receives until disconnected; checks each producer's order; returns how
// many messages each producer's arrived.
std::vector<std::int64_t> drain_in_order(sluice::receiver<counted>& rx, std::size_t producers) {
  std::vector<std::int64_t> next(producers, 0);
  for (;;) {
    auto m = rx.recv();
    if (!m) break;
    const std::int64_t p = m->value() >> producer_shift;
    const std::int64_t seq = m->value() & ((std::int64_t{1} << producer_shift) - 1);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, static_cast<std::int64_t>(producers));
    if (p < 0 || p >= static_cast<std::int64_t>(producers)) break;
    EXPECT_EQ(seq, next[static_cast<std::size_t>(p)]) << "producer " << p;
    next[static_cast<std::size_t>(p)] = seq + 1;
  }
  return next;
}

// Runs f(tx, rx) on a fresh channel of that bound.
template <class F>
void with_channel(std::size_t bound, F&& f) {
  auto [tx, rx] = sluice::sync_channel<counted>(bound);
  f(tx, rx);
}

class sole_sender : public ::testing::TestWithParam<std::size_t> {};

// 24-byte slots: 40 segments of 128, the last one short (5000); 128 of 128
// (16384); 196 of 1024 (200,000). Most receivers here block, so the role
// often ends early; tests/detail/array_sole_sender_test.cpp checks each
// transition with the role held.
INSTANTIATE_TEST_SUITE_P(bounds, sole_sender, ::testing::Values(5000, 16384, 200'000),
                         [](const auto& p) { return "bound_" + std::to_string(p.param); });

TEST_P(sole_sender, a_second_producer_joins_a_streaming_one) {
  const leak_check leaks;
  const std::int64_t n = sluice_test::scaled(60'000, 15'000);
  for (int round = 0; round < 4; ++round) {
    with_channel(GetParam(), [&](auto& tx, auto& rx) {
      std::atomic<std::int64_t> first_sent{0};
      std::jthread first([&, tx = tx] {
        for (std::int64_t i = 0; i < n; ++i) {
          if (!tx.send(counted(value_of(0, i)))) {
            ADD_FAILURE() << "send failed at " << i;
            first_sent.store(n, std::memory_order_relaxed);  // the other thread must not wait
            return;
          }
          first_sent.store(i + 1, std::memory_order_relaxed);
        }
      });
      std::jthread second([&, tx = tx] {
        // Joins after the first has sent a few laps' worth alone.
        while (first_sent.load(std::memory_order_relaxed) < n / 4 * round / 3) {
          std::this_thread::yield();
        }
        for (std::int64_t i = 0; i < n; ++i) {
          ASSERT_TRUE(tx.send(counted(value_of(1, i))).has_value());
        }
      });
      { auto drop = std::move(tx); }
      const auto got = drain_in_order(rx, 2);
      EXPECT_EQ(got[0], n);
      EXPECT_EQ(got[1], n);
    });
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST_P(sole_sender, the_receiver_leaves_while_the_sole_sender_streams) {
  const leak_check leaks;
  const std::int64_t n = sluice_test::scaled(40'000, 10'000);
  for (int round = 0; round < 6; ++round) {
    with_channel(GetParam(), [&](auto& tx, auto& rx) {
      std::int64_t sent = 0;
      std::int64_t given_back = 0;
      std::jthread producer([&, tx = std::move(tx)] {
        for (std::int64_t i = 0;; ++i) {
          auto r = tx.send(counted(value_of(0, i)));
          if (!r) {
            EXPECT_EQ(r.error().value.value(), value_of(0, i));  // the value comes back
            ++given_back;
            return;
          }
          ++sent;
        }
      });
      std::int64_t received = 0;
      const std::int64_t keep = n / 6 * round;
      for (; received < keep; ++received) {
        auto m = rx.recv();
        ASSERT_TRUE(m.has_value());
        EXPECT_EQ(m->value(), value_of(0, received));
      }
      { auto drop = std::move(rx); }  // the rest queued is destroyed here
      producer.join();
      EXPECT_EQ(given_back, 1);
      EXPECT_GE(sent, received);
      EXPECT_LE(sent, received + static_cast<std::int64_t>(GetParam()));
    });
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST_P(sole_sender, close_while_the_sole_sender_streams) {
  const leak_check leaks;
  const std::int64_t n = sluice_test::scaled(40'000, 10'000);
  for (int round = 0; round < 6; ++round) {
    with_channel(GetParam(), [&](auto& tx, auto& rx) {
      std::atomic<std::int64_t> sent{0};
      std::jthread producer([&, tx = std::move(tx)] {
        for (std::int64_t i = 0;; ++i) {
          if (!tx.send(counted(value_of(0, i)))) return;
          sent.store(i + 1, std::memory_order_relaxed);
        }
      });
      std::int64_t received = 0;
      for (; received < n / 6 * round; ++received) {
        auto m = rx.recv();
        ASSERT_TRUE(m.has_value());
        EXPECT_EQ(m->value(), value_of(0, received));
      }
      rx.close();
      // Everything sent before the close is still received, in order.
      for (;; ++received) {
        auto m = rx.recv();
        if (!m) break;
        EXPECT_EQ(m->value(), value_of(0, received));
      }
      producer.join();
      EXPECT_EQ(received, sent.load());
    });
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// The receiver drains faster than the sole sender sends, so it keeps going
// to sleep on an empty channel: its first sleep ends the role (its re-check
// comes after the sole sender's plain tail stores), the later ones pair
// with the compare-exchange again, and none may miss the message that
// follows.
TEST_P(sole_sender, a_receiver_sleeping_on_an_empty_channel_is_woken) {
  const leak_check leaks;
  const std::int64_t n = sluice_test::scaled(20'000, 5'000);
  for (int round = 0; round < 3; ++round) {
    with_channel(GetParam(), [&](auto& tx, auto& rx) {
      std::jthread producer([&, tx = std::move(tx)] {
        for (std::int64_t i = 0; i < n; ++i) {
          ASSERT_TRUE(tx.send(counted(value_of(0, i))).has_value());
          if (i % 64 == round) std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
      });
      const auto got = drain_in_order(rx, 1);
      EXPECT_EQ(got[0], n);
    });
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// The sole sender reserves; another thread sends with the permit or drops
// it, while the sole sender keeps sending.
TEST_P(sole_sender, permits_used_on_another_thread) {
  const leak_check leaks;
  const std::int64_t n = sluice_test::scaled(20'000, 5'000);
  for (int round = 0; round < 3; ++round) {
    auto [tx, rx] = sluice::sync_channel<counted>(GetParam());
    std::atomic<std::int64_t> permits_used{0};
    std::jthread owner([&, sender = std::move(tx)] {
      std::vector<std::jthread> users;
      std::int64_t seq = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(sender.send(counted(value_of(0, seq++))).has_value());
        if (i % 1000 == 999) {
          auto reserved = sender.reserve();
          ASSERT_TRUE(reserved.has_value());
          const bool use = (i / 1000) % 2 == 0;
          users.emplace_back([&, permit = std::move(*reserved), use, k = i / 1000]() mutable {
            if (use) {
              std::move(permit).send(counted(value_of(1, k)));
              permits_used.fetch_add(1, std::memory_order_relaxed);
            }  // else dropped unused: its slot comes back
          });
        }
      }
    });
    std::int64_t from_owner = 0;
    std::int64_t from_permits = 0;
    for (;;) {
      auto m = rx.recv();
      if (!m) break;
      if ((m->value() >> producer_shift) == 0) {
        EXPECT_EQ(m->value(), value_of(0, from_owner));
        ++from_owner;
      } else {
        ++from_permits;
      }
    }
    EXPECT_EQ(from_owner, n);
    EXPECT_EQ(from_permits, permits_used.load());
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

}  // namespace

// The hand-over itself: a writer's end() returns only after the sole
// writer's open section closed, and the sole writer's enter() fails once
// end() began.
TEST(sole_writer, end_waits_for_the_open_section) {
  if (sluice::detail::init_asymmetric_fence() != sluice::detail::fence_mode::asymmetric) {
    GTEST_SKIP() << "no membarrier here: nobody becomes the sole writer";
  }
  sluice::detail::sole_writer w;
  std::atomic<bool> inside{false};
  std::atomic<bool> ended{false};
  std::atomic<bool> leave{false};
  std::jthread owner([&] {
    const bool took = w.take();
    EXPECT_TRUE(took);
    EXPECT_TRUE(w.held_here());
    const bool entered = w.enter();
    EXPECT_TRUE(entered);
    inside.store(true);
    if (!took || !entered) return;
    while (!leave.load()) std::this_thread::yield();
    EXPECT_FALSE(ended.load());  // end() has not returned while we are inside
    w.leave();
    // end() began (leave was set after it started): no section opens again.
    while (!ended.load()) std::this_thread::yield();
    EXPECT_FALSE(w.enter());
    EXPECT_FALSE(w.held_here());
  });
  while (!inside.load()) std::this_thread::yield();
  std::jthread other([&] {
    EXPECT_FALSE(w.held_here());
    w.end();
    ended.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  leave.store(true);
}

TEST(sole_writer, only_one_thread_takes_it_and_end_is_final) {
  for (int round = 0; round < 200; ++round) {
    sluice::detail::sole_writer w;
    std::atomic<int> took{0};
    std::latch go(3);
    std::vector<std::jthread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&] {
        go.arrive_and_wait();
        if (w.take()) {
          took.fetch_add(1);
          if (w.enter()) w.leave();
        } else {
          w.end();
          EXPECT_FALSE(w.take());
        }
      });
    }
    threads.clear();
    EXPECT_LE(took.load(), 1);
    w.end();
    EXPECT_FALSE(w.take());
    EXPECT_FALSE(w.enter());
  }
}
