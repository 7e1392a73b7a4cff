// The bounded flavor's recycled segments: a ring whose segment table is an
// array of its own retires each segment its receiver empties onto a spare
// stack, unless its senders have come round to that segment in the next lap,
// and a sender that needs a segment takes a spare first. So a large channel
// holds memory for what is queued, not for how far its positions went, and
// every message still arrives once, in order, through laps, full rings and
// permits.
#include <sluice/detail/flavors/array.hpp>
#include <sluice/sluice.hpp>

#include "../support/counted.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

namespace {

using sluice::detail::array_channel;
using sluice::detail::deadline;
// 8 bytes, as the messages above: bound 5000 has 20 segments for it too.
using counted = sluice_test::basic_counted<std::int32_t>;
using sluice_test::leak_check;

// 8-byte messages: 16-byte slots, 256 to a segment up to bounds of 65536
// (array.hpp's sizing), so bound 5000 has 20 segments (the last short) and a
// table of its own; bound 1'000'000 has segments of 4096 slots.
constexpr std::size_t small_bound = 5000;
constexpr std::size_t small_segments = 20;

TEST(array_recycling, streaming_holds_segments_for_what_is_queued) {
  array_channel<std::uint64_t> ch(1'000'000);
  // In lockstep: 300'000 positions cross 73 segments of 4096 slots; one or
  // two are held at a time.
  for (std::uint64_t i = 0; i < 300'000; ++i) {
    std::uint64_t v = i;
    ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
    ASSERT_EQ(ch.try_recv().value(), i);
  }
  EXPECT_LE(ch.segments_held_for_testing(), 2u);
  // With 20'000 queued all along: the queue's five or six segments, and a
  // spare or two.
  std::uint64_t next_sent = 300'000;
  std::uint64_t next_received = 300'000;
  for (int i = 0; i < 20'000; ++i) {
    std::uint64_t v = next_sent++;
    ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
  }
  for (int i = 0; i < 300'000; ++i) {
    std::uint64_t v = next_sent++;
    ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
    ASSERT_EQ(ch.try_recv().value(), next_received++);
  }
  EXPECT_LE(ch.segments_held_for_testing(), 20'000u / 4096 + 3);
  while (next_received < next_sent) ASSERT_EQ(ch.try_recv().value(), next_received++);
  EXPECT_FALSE(ch.try_recv().has_value());
}

// Fills to varying depths, sometimes the whole bound (the senders' front then
// reaches the segment the receiver has just emptied, which stays in place),
// and drains to varying depths, for many laps: every message once, in order,
// and never more segments than the table has entries.
TEST(array_recycling, laps_through_recycled_segments_keep_order_and_count) {
  leak_check leaks;
  {
    array_channel<counted> ch(small_bound);
    std::int32_t next_sent = 0;
    std::int32_t next_received = 0;
    std::uint64_t mix = 12345;
    for (int round = 0; round < 600; ++round) {
      mix = mix * 6364136223846793005u + 1442695040888963407u;
      const std::size_t queued = ch.len();
      // Every fourth round fills the ring exactly.
      const std::size_t room = small_bound - queued;
      const std::size_t to_send = round % 4 == 0 ? room : (mix >> 33) % (room + 1);
      for (std::size_t i = 0; i < to_send; ++i) {
        counted c(next_sent++);
        ASSERT_TRUE(ch.try_send(std::move(c)).has_value()) << "round " << round;
      }
      if (round % 4 == 0) {
        counted extra(-1);
        EXPECT_FALSE(ch.try_send(std::move(extra)).has_value()) << "full at the bound";
      }
      const std::size_t to_receive = (mix >> 17) % (ch.len() + 1);
      for (std::size_t i = 0; i < to_receive; ++i) {
        auto r = ch.try_recv();
        ASSERT_TRUE(r.has_value()) << "round " << round;
        ASSERT_EQ(r->value(), next_received++);
      }
      ASSERT_LE(ch.segments_held_for_testing(), small_segments) << "round " << round;
    }
    EXPECT_GT(next_sent, static_cast<std::int32_t>(small_bound) * 20) << "many laps";
    // Dropped with messages queued, some in recycled segments.
    EXPECT_GT(ch.len(), 0u);
    ch.disconnect_receivers();
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A ring filled to its bound; then, segment by segment, all but the last
// message of a segment received and as many sent (they go into that
// segment's next lap), then the last one received: the senders' front is
// inside the segment, which holds their messages, so it is not retired.
TEST(array_recycling, a_full_ring_keeps_the_segment_its_senders_reached) {
  array_channel<std::uint64_t> ch(small_bound);
  std::uint64_t next_sent = 0;
  std::uint64_t next_received = 0;
  for (std::size_t i = 0; i < small_bound; ++i) {
    std::uint64_t v = next_sent++;
    ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
  }
  EXPECT_EQ(ch.segments_held_for_testing(), small_segments);
  for (int lap = 0; lap < 5; ++lap) {
    for (std::size_t seg = 0; seg < small_segments - 1; ++seg) {
      for (int part : {255, 1}) {
        for (int i = 0; i < part; ++i) ASSERT_EQ(ch.try_recv().value(), next_received++);
        for (int i = 0; i < part; ++i) {
          std::uint64_t v = next_sent++;
          ASSERT_TRUE(ch.try_send(std::move(v)).has_value()) << "lap " << lap << " seg " << seg;
        }
      }
      std::uint64_t extra = 0;
      EXPECT_FALSE(ch.try_send(std::move(extra)).has_value());
      EXPECT_EQ(ch.segments_held_for_testing(), small_segments);
    }
    // The short last segment (136 slots).
    for (std::size_t i = 0; i < small_bound - 19 * 256; ++i) {
      ASSERT_EQ(ch.try_recv().value(), next_received++);
      std::uint64_t v = next_sent++;
      ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
    }
  }
  while (next_received < next_sent) ASSERT_EQ(ch.try_recv().value(), next_received++);
}

// Permits hold slots across segment boundaries while the receiver retires
// the segments behind them: each permit's send lands where it was reserved.
TEST(array_recycling, permits_span_recycled_segments) {
  constexpr std::uint64_t plain = 1'000'000'000;  // the plain sends' values
  array_channel<std::uint64_t> ch(small_bound);
  std::uint64_t next_sent = 0;
  std::uint64_t next_received = 0;
  for (int round = 0; round < 200; ++round) {
    // 300 permits: over a segment boundary wherever the tail stands.
    for (int i = 0; i < 300; ++i) ASSERT_TRUE(ch.try_reserve().has_value());
    for (int i = 0; i < 100; ++i) ch.send_reserved(std::uint64_t{next_sent++});
    // Plain sends go past the 200 held slots.
    for (int i = 0; i < 150; ++i) {
      std::uint64_t v = plain + static_cast<std::uint64_t>(i);
      ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
    }
    for (int i = 0; i < 100; ++i) ASSERT_EQ(ch.try_recv().value(), next_received++);
    for (int i = 0; i < 200; ++i) ch.send_reserved(std::uint64_t{next_sent++});
    for (int i = 0; i < 150; ++i) {
      ASSERT_EQ(ch.try_recv().value(), plain + static_cast<std::uint64_t>(i));
    }
    for (int i = 0; i < 200; ++i) ASSERT_EQ(ch.try_recv().value(), next_received++);
    next_received = next_sent;
    ASSERT_FALSE(ch.try_recv().has_value());
  }
  EXPECT_LE(ch.segments_held_for_testing(), small_segments);
}

// A permit dropped unused moves the senders' front back a slot, so a tail
// word a sender read may come back, and with it a claim on a segment the
// receiver has retired meanwhile: from the first such drop on, the channel
// retires nothing. Its segments stay in place (held as by a channel
// without recycling), and messages still go through in order.
TEST(array_recycling, a_dropped_permit_ends_recycling) {
  array_channel<std::uint64_t> ch(1'000'000);
  ASSERT_TRUE(ch.try_reserve().has_value());
  ch.release_reserved();
  for (std::uint64_t i = 0; i < 300'000; ++i) {
    std::uint64_t v = i;
    ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
    ASSERT_EQ(ch.try_recv().value(), i);
  }
  EXPECT_GE(ch.segments_held_for_testing(), 300'000u / 4096);
}

// A message whose moved-from destructor receives the rest of its segment
// and sends more: the receive that empties the segment runs inside the one
// still moving the first message out of the segment, so it must not retire
// the segment (a send would take it as a spare, write into the slot being
// vacated, and the outer receive would then mark that slot empty: a message
// lost).
struct reentrant_message {
  static inline array_channel<reentrant_message>* channel = nullptr;
  static inline std::int32_t trigger = -1;

  explicit reentrant_message(std::int32_t v) : value(v) {}
  reentrant_message(reentrant_message&& o) noexcept : value(o.value) { o.moved_from = true; }
  reentrant_message& operator=(reentrant_message&&) = delete;
  ~reentrant_message() {
    if (!moved_from || value != trigger) return;
    trigger = -1;
    for (std::int32_t i = value + 1; i < 256; ++i) {  // the rest of segment 0
      auto r = channel->try_recv();
      EXPECT_TRUE(r.has_value() && r->value == i) << i;
    }
    for (std::int32_t i = 0; i < 11; ++i) {  // into segment 1, never installed
      reentrant_message m(1000 + i);
      EXPECT_TRUE(channel->try_send(std::move(m)).has_value());
    }
  }

  std::int32_t value;
  bool moved_from = false;
};
static_assert(sizeof(reentrant_message) == 8, "as the messages above: 256 slots a segment");

TEST(array_recycling, a_receive_inside_a_receive_retires_nothing) {
  array_channel<reentrant_message> ch(small_bound);
  reentrant_message::channel = &ch;
  for (std::int32_t i = 0; i < 256; ++i) {
    reentrant_message m(i);
    ASSERT_TRUE(ch.try_send(std::move(m)).has_value());
  }
  for (std::int32_t i = 0; i < 10; ++i) ASSERT_EQ(ch.try_recv().value().value, i);
  reentrant_message::trigger = 10;
  ASSERT_EQ(ch.try_recv().value().value, 10);
  EXPECT_EQ(ch.len(), 11u);
  for (std::int32_t i = 0; i < 11; ++i) {
    auto r = ch.try_recv();
    ASSERT_TRUE(r.has_value()) << "message " << 1000 + i << " lost";
    EXPECT_EQ(r->value, 1000 + i);
  }
  EXPECT_FALSE(ch.try_recv().has_value());
  reentrant_message::channel = nullptr;
}

// The outer side of the same case: a ring filled to its bound, and the
// message in the last slot of segment 0 receives the next two messages and
// sends one from its moved-from destructor. That send goes into segment 0's
// next lap; the outer receive, emptying segment 0 after the nested ones
// moved head on, would measure the senders' front from there and miss it
// (a message lost). It must retire nothing either.
struct message_that_receives_two {
  static inline array_channel<message_that_receives_two>* channel = nullptr;
  static inline std::int32_t trigger = -1;

  explicit message_that_receives_two(std::int32_t v) : value(v) {}
  message_that_receives_two(message_that_receives_two&& o) noexcept : value(o.value) {
    o.moved_from = true;
  }
  message_that_receives_two& operator=(message_that_receives_two&&) = delete;
  ~message_that_receives_two() {
    if (!moved_from || value != trigger) return;
    trigger = -1;
    for (std::int32_t i = value + 1; i < value + 3; ++i) {
      auto r = channel->try_recv();
      EXPECT_TRUE(r.has_value() && r->value == i) << i;
    }
    message_that_receives_two m(10'000);
    EXPECT_TRUE(channel->try_send(std::move(m)).has_value());
  }

  std::int32_t value;
  bool moved_from = false;
};
static_assert(sizeof(message_that_receives_two) == 8);

TEST(array_recycling, a_receive_that_receives_inside_retires_nothing) {
  array_channel<message_that_receives_two> ch(small_bound);
  message_that_receives_two::channel = &ch;
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(small_bound); ++i) {
    message_that_receives_two m(i);
    ASSERT_TRUE(ch.try_send(std::move(m)).has_value());
  }
  for (std::int32_t i = 0; i < 255; ++i) ASSERT_EQ(ch.try_recv().value().value, i);
  message_that_receives_two::trigger = 255;
  ASSERT_EQ(ch.try_recv().value().value, 255);
  for (std::int32_t i = 258; i < static_cast<std::int32_t>(small_bound); ++i) {
    ASSERT_EQ(ch.try_recv().value().value, i);
  }
  auto last = ch.try_recv();
  ASSERT_TRUE(last.has_value()) << "the message sent from inside the receive was lost";
  EXPECT_EQ(last->value, 10'000);
  EXPECT_FALSE(ch.try_recv().has_value());
  message_that_receives_two::channel = nullptr;
}

// Threads: four producers (plain sends, try_send and permits) and a receiver
// that stops now and then, so that the ring fills and its senders' front
// comes round to segments just emptied, racing the receiver's check. Every
// message once, in order per producer, each destroyed once.
TEST(array_recycling, racing_senders_and_a_pausing_receiver) {
  constexpr int producers = 4;
  constexpr std::int32_t per_producer = 60'000;
  leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(small_bound);
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([sender = tx, p] {
        for (std::int32_t i = 0; i < per_producer; ++i) {
          const std::int32_t v = p * per_producer + i;
          if (i % 3 == 0) {
            auto permit = sender.reserve();
            ASSERT_TRUE(permit.has_value());
            counted c(v);
            std::move(*permit).send(std::move(c));
          } else if (i % 3 == 1) {
            // try_send until there is room; a full channel hands the
            // message back each time.
            std::optional<counted> c(std::in_place, v);
            for (;;) {
              auto r = sender.try_send(std::move(*c));
              if (r) break;
              ASSERT_TRUE(r.error().is_full());
              c.emplace(std::move(r.error().value));
              std::this_thread::yield();
            }
          } else {
            counted c(v);
            ASSERT_TRUE(sender.send(std::move(c)).has_value());
          }
        }
      });
    }
    tx = {};
    std::vector<std::int32_t> next(producers, 0);
    std::int32_t received = 0;
    for (;;) {
      auto r = rx.recv();
      if (!r) break;
      const std::int32_t v = r->value();
      const auto p = static_cast<std::size_t>(v / per_producer);
      ASSERT_LT(p, next.size());
      ASSERT_EQ(v % per_producer, next[p]++) << "producer " << p;
      if (++received % 20'000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(received, producers * per_producer);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A recycled channel's segments go back to the chunk caches when it is
// dropped; the next channel of that size gets them clean.
TEST(array_recycling, a_dropped_recycled_channel_hands_on_clean_memory) {
  {
    array_channel<std::uint64_t> ch(small_bound);
    for (std::uint64_t i = 0; i < 3 * small_bound; ++i) {
      std::uint64_t v = i;
      ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
      ASSERT_EQ(ch.try_recv().value(), i);
    }
    for (std::uint64_t i = 0; i < 700; ++i) {
      std::uint64_t v = i;
      ASSERT_TRUE(ch.try_send(std::move(v)).has_value());
    }
    ch.disconnect_receivers();
  }
  array_channel<std::uint64_t> next(small_bound);
  EXPECT_FALSE(next.try_recv().has_value());
  for (std::uint64_t i = 0; i < small_bound; ++i) {
    std::uint64_t v = i;
    ASSERT_TRUE(next.try_send(std::move(v)).has_value()) << i;
  }
  for (std::uint64_t i = 0; i < small_bound; ++i) ASSERT_EQ(next.try_recv().value(), i);
  EXPECT_FALSE(next.try_recv().has_value());
}

}  // namespace
