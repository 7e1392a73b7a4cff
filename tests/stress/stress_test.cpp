// Stress on 2 cores: many producers, every message counted (no loss, no
// duplicate, per-producer order), every destructor counted, and
// disconnects racing with traffic.
#include "../support/counted.hpp"
#include "../support/flavors.hpp"
#include "../support/scale.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sluice_test::counted;
using sluice_test::leak_check;

template <class F>
class stress : public ::testing::Test {};

TYPED_TEST_SUITE(stress, sluice_test::all_flavors, sluice_test::flavor_name);

namespace {
constexpr std::int64_t encode(std::int64_t producer, std::int64_t seq) {
  return producer * 1'000'000'000 + seq;
}

// Receives until every sender is gone, checking that each producer's
// messages (value(m) == encode(producer, seq)) arrive in order, without gap
// or duplicate; `total` counts them. A failed check stops early, leaving
// `total` short for the caller's count check.
template <class Receiver, class Value>
void drain_in_order(Receiver& rx, std::int64_t producers, Value value, std::int64_t& total) {
  std::vector<std::int64_t> next(static_cast<std::size_t>(producers), 0);
  total = 0;
  for (auto&& m : rx) {
    const std::int64_t v = value(m);
    const auto p = static_cast<std::size_t>(v / 1'000'000'000);
    ASSERT_LT(p, next.size());
    ASSERT_EQ(v % 1'000'000'000, next[p]) << "producer " << p;
    ++next[p];
    ++total;
  }
}

// Starts `producers` threads, each sending make(encode(p, i)) for i < per on
// its own copy of `tx`, drops `tx`, and drains `rx` until every sender is
// gone (drain_in_order's checks); returns how many messages arrived.
template <class Sender, class Receiver, class Make, class Value>
std::int64_t produce_and_drain(Sender& tx, Receiver& rx, std::int64_t producers, std::int64_t per,
                               Make make, Value value) {
  std::vector<std::jthread> threads;
  for (std::int64_t p = 0; p < producers; ++p) {
    threads.emplace_back([sender = tx, p, per, make] {
      for (std::int64_t i = 0; i < per; ++i) ASSERT_TRUE(sender.send(make(encode(p, i))));
    });
  }
  tx = {};
  std::int64_t total = 0;
  drain_in_order(rx, producers, value, total);
  return total;
}

constexpr auto make_counted = [](std::int64_t v) { return counted(v); };
constexpr auto value_of_counted = [](const counted& m) { return m.value(); };
}  // namespace

// 16 producers: every message arrives once, in order per producer.
TYPED_TEST(stress, many_producers_every_message_once_in_order) {
  const std::int64_t producers = 16;
  const std::int64_t per = 2000 * sluice_test::stress_scale();
  leak_check check;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    EXPECT_EQ(produce_and_drain(tx, rx, producers, per, make_counted, value_of_counted),
              producers * per);
  }
  EXPECT_EQ(check.leaked(), 0);
}

// The receiver leaves mid-stream: every value is received, handed back in
// an error, or destroyed with the channel; each destroyed exactly once.
TYPED_TEST(stress, receiver_drop_races_with_producers) {
  const int rounds = static_cast<int>(20 * sluice_test::stress_scale());
  for (int round = 0; round < rounds; ++round) {
    leak_check check;
    std::atomic<std::int64_t> accepted{0};
    std::atomic<std::int64_t> returned{0};
    std::int64_t received = 0;
    constexpr std::int64_t per = 500;
    {
      auto [tx, rx] = TypeParam::template make<counted>();
      std::vector<std::jthread> threads;
      for (int p = 0; p < 4; ++p) {
        threads.emplace_back([sender = tx, &accepted, &returned] {
          for (std::int64_t i = 0; i < per; ++i) {
            auto r = sender.send(counted(i));
            if (r) {
              ++accepted;
            } else {
              ASSERT_TRUE(r.error().value.owns());
              ++returned;
            }
          }
        });
      }
      tx = {};
      const std::int64_t stop_after = (round * 37) % (4 * per);
      while (received < stop_after) {
        auto m = rx.recv();
        if (!m) break;
        ++received;
      }
      rx = {};  // races with the producers
      threads.clear();
      EXPECT_EQ(check.leaked(), 0);  // queued messages died with the receiver
    }
    EXPECT_EQ(accepted + returned, 4 * per);
    EXPECT_GE(accepted.load(), received);
    EXPECT_EQ(check.leaked(), 0);
  }
}

// Senders come and go while the receiver blocks; the stream ends exactly
// when the last one leaves.
TYPED_TEST(stress, senders_dropped_while_receiver_blocks) {
  const int rounds = static_cast<int>(50 * sluice_test::stress_scale());
  for (int round = 0; round < rounds; ++round) {
    auto [tx, rx] = TypeParam::template make<int>();
    std::vector<std::jthread> threads;
    for (int p = 0; p < 3; ++p) {
      threads.emplace_back([sender = tx, p]() mutable {
        for (int i = 0; i < 10; ++i) ASSERT_TRUE(sender.send(p * 100 + i).has_value());
        sender = {};
      });
    }
    tx = {};
    int total = 0;
    while (rx.recv()) ++total;
    EXPECT_EQ(total, 30);
  }
}

// Timed operations racing with traffic: nothing lost to a timeout.
TYPED_TEST(stress, timeouts_race_with_sends) {
  const std::int64_t n = 3000 * sluice_test::stress_scale();
  leak_check check;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    std::jthread producer([sender = std::move(tx), n] {
      for (std::int64_t i = 0; i < n;) {
        counted c(i);
        if constexpr (TypeParam::bounded) {
          auto r = sender.send_timeout(std::move(c), 50us);
          if (r) ++i;  // a timeout hands the value back; retry it
        } else {
          ASSERT_TRUE(sender.send(std::move(c)));
          ++i;
        }
      }
    });
    std::int64_t expected = 0;
    while (expected < n) {
      auto r = rx.recv_timeout(50us);
      if (r) {
        ASSERT_EQ(r->value(), expected);
        ++expected;
      } else {
        ASSERT_EQ(r.error(), sluice::recv_timeout_error::timeout);
      }
    }
    EXPECT_FALSE(rx.recv().has_value());
  }
  EXPECT_EQ(check.leaked(), 0);
}

// close() racing with blocked and active senders: every value either
// received or handed back, nothing after the close is accepted.
TYPED_TEST(stress, close_races_with_senders) {
  const int rounds = static_cast<int>(20 * sluice_test::stress_scale());
  for (int round = 0; round < rounds; ++round) {
    leak_check check;
    std::atomic<std::int64_t> accepted{0};
    std::int64_t received = 0;
    {
      auto [tx, rx] = TypeParam::template make<counted>();
      std::vector<std::jthread> threads;
      for (int p = 0; p < 4; ++p) {
        threads.emplace_back([sender = tx, &accepted] {
          for (int i = 0; i < 300; ++i) {
            if (sender.send(counted(i))) ++accepted;
          }
        });
      }
      tx = {};
      for (int i = 0; i < round * 7; ++i) {
        if (!rx.recv()) break;
        ++received;
      }
      rx.close();
      while (rx.recv()) ++received;  // drains what was accepted before close
      threads.clear();
      EXPECT_EQ(received, accepted.load());
    }
    EXPECT_EQ(check.leaked(), 0);
  }
}

// Many senders reach each segment boundary of a fresh bounded channel at
// once: exactly one of them installs the segment (here a mapped one: 16 slots
// of 4 KiB messages), the others wait for it; every message arrives once, in
// order per producer, and is destroyed once.
TEST(stress_bounded_segments, senders_race_to_install_mapped_segments) {
  struct page_message {
    counted c;
    std::array<std::byte, 4080> pad{};
    explicit page_message(std::int64_t v) : c(v) {}
  };
  const int rounds = static_cast<int>(10 * sluice_test::stress_scale());
  const std::int64_t producers = 16;
  constexpr std::int64_t per = 32;  // 512 messages: two laps of a 256-slot ring
  leak_check check;
  for (int r = 0; r < rounds; ++r) {
    auto [tx, rx] = sluice::sync_channel<page_message>(256);
    ASSERT_EQ(produce_and_drain(
                  tx, rx, producers, per, [](std::int64_t v) { return page_message(v); },
                  [](const page_message& m) { return m.c.value(); }),
              producers * per);
  }
  EXPECT_EQ(check.leaked(), 0);
}

// The same on a ring whose segment table lives in the channel and whose
// segments come from the heap (bounded(1024) of counted values: 4 segments
// of 256 slots): every sender that finds a segment missing allocates one, a
// compare-exchange installs the first, and the others give theirs back (a
// segment lost or freed twice shows under the sanitizers).
TEST(stress_bounded_segments, senders_race_to_install_heap_segments) {
  const int rounds = static_cast<int>(40 * sluice_test::stress_scale());
  constexpr std::int64_t producers = 8;
  constexpr std::int64_t per = 300;  // 2,400 messages: over two laps of 1,024 slots
  leak_check check;
  for (int r = 0; r < rounds; ++r) {
    auto [tx, rx] = sluice::sync_channel<counted>(1024);
    ASSERT_EQ(produce_and_drain(tx, rx, producers, per, make_counted, value_of_counted),
              producers * per);
  }
  EXPECT_EQ(check.leaked(), 0);
}

// try_send reports full only when the channel is: senders racing into a
// fresh ring's missing segments all find room (none is told "full" because
// another sender is still installing the segment), and every message
// arrives.
TEST(stress_bounded_segments, try_send_finds_room_while_segments_are_installed) {
  const int rounds = static_cast<int>(200 * sluice_test::stress_scale());
  constexpr std::int64_t producers = 4;
  constexpr std::int64_t per = 250;  // 1,000 messages into 1,024 slots: never full
  for (int r = 0; r < rounds; ++r) {
    auto [tx, rx] = sluice::sync_channel<std::int64_t>(1024);
    std::atomic<int> ready{0};
    std::vector<std::jthread> threads;
    for (std::int64_t p = 0; p < producers; ++p) {
      threads.emplace_back([&ready, sender = tx, p] {
        ready.fetch_add(1);
        while (ready.load() < static_cast<int>(producers)) std::this_thread::yield();
        for (std::int64_t i = 0; i < per; ++i) {
          ASSERT_TRUE(sender.try_send(encode(p, i))) << "producer " << p << ", message " << i;
        }
      });
    }
    tx = {};
    threads.clear();  // joins: every try_send is done before the receiver looks
    std::int64_t total = 0;
    drain_in_order(rx, producers, [](std::int64_t v) { return v; }, total);
    ASSERT_EQ(total, producers * per);
  }
}

// recv_many on an unbounded channel reads the tail once per batch. A batch
// that read it while a sender was stepping over a block's end, and then took
// that block's last message, must not mistake the next block for a full one
// (it then stopped reading the tail, and recv_many never saw the
// disconnection: a hang). Short rounds end right after a block boundary (31
// slots a block), with a sink slow enough for the senders to move on during
// a batch. The window is a few instructions wide: under ThreadSanitizer,
// the code before the fix hung in one run of three.
TEST(stress_unbounded_batches, recv_many_sees_the_disconnection_after_a_block_boundary) {
  struct slow_sink {
    std::vector<std::int64_t> items;
    void push_back(std::int64_t&& v) {
      items.push_back(v);
      std::this_thread::yield();
    }
  };
  const int rounds = static_cast<int>(3000 * sluice_test::stress_scale());
  constexpr std::int64_t producers = 4;
  constexpr std::int64_t per = 10;  // 40 messages: the second block
  for (int r = 0; r < rounds; ++r) {
    auto [tx, rx] = sluice::channel<std::int64_t>();
    std::vector<std::jthread> threads;
    for (std::int64_t p = 0; p < producers; ++p) {
      threads.emplace_back([sender = tx, p] {
        for (std::int64_t i = 0; i < per; ++i) ASSERT_TRUE(sender.send(encode(p, i)));
      });
    }
    tx = {};
    slow_sink sink;
    while (rx.recv_many(sink, 64) != 0) {
    }
    ASSERT_EQ(sink.items.size(), static_cast<std::size_t>(producers * per)) << "round " << r;
    std::vector<std::int64_t> next(static_cast<std::size_t>(producers), 0);
    for (const std::int64_t v : sink.items) {
      const auto p = static_cast<std::size_t>(v / 1'000'000'000);
      ASSERT_EQ(v % 1'000'000'000, next[p]++) << "producer " << p;
    }
  }
}

// An unbounded channel's first block is installed by the sender that
// reserves the first slot, with plain stores; senders that find the tail
// moved but no block wait for them. Fresh channels whose producers start
// together race for that slot, while the receiver receives (even rounds) or
// leaves at once, discarding what was sent (odd rounds): every message
// arrives once and in order per producer, or is handed back or destroyed
// with the channel, exactly once. The window in which a sender waits is a
// few instructions wide: in release builds about one round in a thousand
// hits it.
TEST(stress_unbounded_first_block, senders_racing_for_the_first_slot) {
  const int rounds = static_cast<int>(2000 * sluice_test::stress_scale());
  constexpr std::int64_t producers = 4;
  constexpr std::int64_t per = 3;
  for (int r = 0; r < rounds; ++r) {
    leak_check check;
    std::atomic<std::int64_t> accepted{0};
    {
      auto [tx, rx] = sluice::channel<counted>();
      std::latch start(producers + 1);
      std::vector<std::jthread> threads;
      for (std::int64_t p = 0; p < producers; ++p) {
        threads.emplace_back([sender = tx, p, &start, &accepted] {
          start.arrive_and_wait();
          for (std::int64_t i = 0; i < per; ++i) {
            if (sender.send(counted(encode(p, i)))) ++accepted;
          }
        });
      }
      tx = {};
      start.arrive_and_wait();
      if (r % 2 == 0) {
        std::int64_t total = 0;
        drain_in_order(rx, producers, value_of_counted, total);
        ASSERT_EQ(total, producers * per) << "round " << r;
      } else {
        rx = {};  // races with the first block's install
      }
    }
    ASSERT_EQ(check.leaked(), 0) << "round " << r;
    if (r % 2 == 0) {
      ASSERT_EQ(accepted.load(), producers * per);
    }
  }
}

// An unbounded queue that swings between short and long takes its blocks
// from the heap, from small regions, and from large ones past 1 MiB of
// blocks, and keeps emptied regions of both sizes for reuse (block_source).
// Producers outrun a receiver that stalls every 40,000 messages, so the
// queue grows past the large regions' threshold and drains back, again and
// again, while senders carve, and the receiver frees, regions at once.
// Every message arrives once, in order per producer, and is destroyed once.
TEST(stress_unbounded_regions, a_queue_swinging_past_large_regions_loses_nothing) {
  const auto per = static_cast<std::int64_t>(100'000 * sluice_test::stress_scale());
  constexpr std::int64_t producers = 4;
  leak_check check;
  {
    auto [tx, rx] = sluice::channel<counted>();
    std::vector<std::jthread> threads;
    for (std::int64_t p = 0; p < producers; ++p) {
      threads.emplace_back([sender = tx, p, per] {
        for (std::int64_t i = 0; i < per; ++i) ASSERT_TRUE(sender.send(counted(encode(p, i))));
      });
    }
    tx = {};
    std::vector<std::int64_t> next(static_cast<std::size_t>(producers), 0);
    std::int64_t total = 0;
    while (auto m = rx.recv()) {
      const std::int64_t v = m->value();
      const auto p = static_cast<std::size_t>(v / 1'000'000'000);
      ASSERT_LT(p, next.size());
      ASSERT_EQ(v % 1'000'000'000, next[p]++) << "producer " << p;
      if (++total % 40'000 == 0) std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(total, producers * per);
  }
  EXPECT_EQ(check.leaked(), 0);
}

// A receive frees its slot with a release head store until a sender first
// waits for room (the light head, array.hpp), and with a seq_cst one from
// then on: no wake-up may be lost on either side of that switch. Producers
// outrun a receiver that stalls every 200 messages (so they sleep on the
// full ring again and again) and that alternates recv, try_recv and
// recv_many; every message arrives once, in order per producer, and is
// destroyed once. A lost wake-up hangs the test.
TEST(stress_bounded_light_head, senders_sleeping_on_a_full_ring_are_woken) {
  for (const std::size_t cap : {std::size_t{256}, std::size_t{300}}) {
    const std::int64_t producers = 4;
    const std::int64_t per = 5000 * sluice_test::stress_scale();
    leak_check check;
    {
      auto [tx, rx] = sluice::sync_channel<counted>(cap);
      std::vector<std::jthread> threads;
      for (std::int64_t p = 0; p < producers; ++p) {
        threads.emplace_back([sender = tx, p, per] {
          for (std::int64_t i = 0; i < per; ++i) {
            ASSERT_TRUE(sender.send(counted(encode(p, i))));
          }
        });
      }
      tx = {};
      std::vector<std::int64_t> next(static_cast<std::size_t>(producers), 0);
      std::int64_t total = 0;
      const auto take = [&](const counted& m) {
        const std::int64_t v = m.value();
        const auto p = static_cast<std::size_t>(v / 1'000'000'000);
        ASSERT_LT(p, next.size());
        ASSERT_EQ(v % 1'000'000'000, next[p]) << "producer " << p;
        ++next[p];
        ++total;
      };
      for (std::int64_t round = 0;; ++round) {
        if (round % 200 == 0) std::this_thread::sleep_for(200us);  // the senders fill the ring
        if (round % 3 == 0) {
          auto m = rx.recv();
          if (!m) break;
          take(*m);
        } else if (round % 3 == 1) {
          if (auto m = rx.try_recv()) take(*m);
        } else {
          std::vector<counted> batch;
          rx.recv_many(batch, 7);
          for (const counted& m : batch) take(m);
        }
        if (::testing::Test::HasFatalFailure()) break;
      }
      EXPECT_EQ(total, producers * per) << "capacity " << cap;
    }
    EXPECT_EQ(check.leaked(), 0);
  }
}

// The switch itself, many times: each new channel starts light, and its
// first sender to wait for room asks for the seq_cst store while receives
// run. Channels of 1, 2, 5 and 64 slots, three producers each, a receiver
// that starts late (the senders fill the ring and wait at once); every
// message once, in order per producer. A wake-up lost around the switch
// hangs the test.
TEST(stress_bounded_light_head, the_switch_to_seq_cst_loses_no_wake_up) {
  const std::int64_t channels = 400 * sluice_test::stress_scale();
  constexpr std::int64_t producers = 3;
  constexpr std::int64_t per = 200;
  leak_check check;
  for (std::int64_t c = 0; c < channels; ++c) {
    constexpr std::array<std::size_t, 4> caps{1, 2, 5, 64};
    const std::size_t cap = caps[static_cast<std::size_t>(c % 4)];
    auto [tx, rx] = sluice::sync_channel<counted>(cap);
    std::vector<std::jthread> threads;
    for (std::int64_t p = 0; p < producers; ++p) {
      threads.emplace_back([sender = tx, p] {
        for (std::int64_t i = 0; i < per; ++i) ASSERT_TRUE(sender.send(counted(encode(p, i))));
      });
    }
    tx = {};
    if (c % 2 == 0) std::this_thread::sleep_for(100us);
    SCOPED_TRACE(::testing::Message() << "channel " << c);
    std::int64_t total = 0;
    drain_in_order(rx, producers, value_of_counted, total);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    ASSERT_EQ(total, producers * per);
  }
  EXPECT_EQ(check.leaked(), 0);
}
