// Selects under contention, every message counted: no loss, no duplicate,
// per-producer order within a channel, every destructor exactly once (the
// messages are `counted`), and exactly one arm per select - checked from
// both ends where a select's outcome says what its peer must have seen.
//
// - fan-in: 4 producers, each on its own channel, one selecting consumer;
// - send arms: 4 producers each select a send over 4 shared bounded or
//   rendezvous channels, one consumer selects over the 4 receivers;
// - select against select on rendezvous channels (a send arm of one meets a
//   receive arm of the other), including two selects that each offer both;
// - disconnects racing selects, on receive and on send arms;
// - a selector over 16 channels from 4 producers.
//
// Sizes shrink under sanitizers (sluice_test::scaled); SLUICE_STRESS_SCALE
// multiplies them.

#include "../support/coro_task.hpp"
#include "../support/counted.hpp"
#include "../support/flavors.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

using sluice_test::counted;
using sluice_test::leak_check;
using sluice_test::scaled;

namespace {

constexpr int producers = 4;

// A message's value: which producer sent it, and its sequence number.
constexpr std::int64_t encode(int producer, std::int64_t seq) { return seq * producers + producer; }
constexpr int producer_of(std::int64_t v) { return static_cast<int>(v % producers); }
constexpr std::int64_t seq_of(std::int64_t v) { return v / producers; }

template <class F>
class SelectStress : public ::testing::Test {};
using stress_flavors = ::testing::Types<sluice_test::unbounded, sluice_test::rendezvous,
                                        sluice_test::bounded1, sluice_test::bounded4>;
TYPED_TEST_SUITE(SelectStress, stress_flavors, sluice_test::flavor_name);

// 4 producers, each on its own channel; one consumer selects over the four
// receivers, disabling an arm once its channel reports the disconnect.
TYPED_TEST(SelectStress, FourProducersOneSelectingConsumer) {
  const std::int64_t per = scaled(TypeParam::buffered ? 50'000 : 5'000, 2'000);
  const leak_check leaks;
  {
    using channel_pair = decltype(TypeParam::template make<counted>());
    std::vector<channel_pair> ch;
    for (int p = 0; p < producers; ++p) ch.push_back(TypeParam::template make<counted>());
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([tx = std::move(ch[static_cast<std::size_t>(p)].first), p, per]() mutable {
        for (std::int64_t i = 0; i < per; ++i) EXPECT_TRUE(tx.send(counted(encode(p, i))));
      });  // tx is destroyed with the thread's lambda: the disconnect
    }
    std::array<bool, producers> open{true, true, true, true};
    std::array<std::int64_t, producers> next{};
    int still_open = producers;
    while (still_open > 0) {
      auto r = sluice::select(sluice::recv_from(ch[0].second).only_if(open[0]),
                              sluice::recv_from(ch[1].second).only_if(open[1]),
                              sluice::recv_from(ch[2].second).only_if(open[2]),
                              sluice::recv_from(ch[3].second).only_if(open[3]));
      const std::size_t k = r.index();
      ASSERT_TRUE(open[k]) << "a disabled arm completed";
      auto msg = std::visit([](auto& e) -> std::optional<std::int64_t> {
        if (e) return e->value();
        return std::nullopt;
      }, r);
      if (!msg) {
        open[k] = false;
        --still_open;
        continue;
      }
      ASSERT_EQ(producer_of(*msg), static_cast<int>(k)) << "a message from another channel";
      ASSERT_EQ(seq_of(*msg), next[k]) << "lost, duplicated or reordered";
      ++next[k];
    }
    for (auto& t : threads) t.join();
    for (int p = 0; p < producers; ++p) EXPECT_EQ(next[static_cast<std::size_t>(p)], per);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// Every producer selects a send over the same 4 channels (bounded: often
// full; rendezvous: a receive must meet it); one consumer selects over the
// 4 receivers. A producer records which channel its select sent on; the
// consumer must have received exactly that, in order per (producer,
// channel).
TYPED_TEST(SelectStress, SendArmsOntoSharedChannels) {
  if constexpr (!TypeParam::bounded) {
    GTEST_SKIP() << "unbounded send arms never wait (covered by the fan-in)";
  } else {
    const std::int64_t per = scaled(TypeParam::cap.value_or(0) == 0 ? 5'000 : 20'000, 1'500);
    const leak_check leaks;
    {
      using channel_pair = decltype(TypeParam::template make<counted>());
      std::vector<channel_pair> ch;
      for (int c = 0; c < 4; ++c) ch.push_back(TypeParam::template make<counted>());
      // sent_on[p][c]: how many of producer p's messages its selects sent on c.
      std::array<std::array<std::int64_t, 4>, producers> sent_on{};
      std::vector<std::thread> threads;
      for (int p = 0; p < producers; ++p) {
        auto t0 = ch[0].first;
        auto t1 = ch[1].first;
        auto t2 = ch[2].first;
        auto t3 = ch[3].first;
        threads.emplace_back([t0 = std::move(t0), t1 = std::move(t1), t2 = std::move(t2),
                              t3 = std::move(t3), p, per, &sent = sent_on[static_cast<std::size_t>(p)]] {
          for (std::int64_t i = 0; i < per; ++i) {
            counted v(encode(p, i));
            auto r = sluice::select(sluice::send_to(t0, v), sluice::send_to(t1, v),
                                    sluice::send_to(t2, v), sluice::send_to(t3, v));
            EXPECT_TRUE(std::visit([](auto& e) { return e.has_value(); }, r));
            EXPECT_FALSE(v.owns()) << "the value was not sent";
            ++sent[r.index()];
          }
        });
      }
      for (auto& c : ch) c.first = {};  // only the producers' clones remain
      std::array<std::array<std::int64_t, 4>, producers> got_on{};
      std::array<std::array<std::int64_t, 4>, producers> last_seq{};
      for (auto& row : last_seq) row.fill(-1);
      std::vector<bool> seen(static_cast<std::size_t>(per * producers), false);
      std::array<bool, 4> open{true, true, true, true};
      int still_open = 4;
      while (still_open > 0) {
        auto r = sluice::select(sluice::recv_from(ch[0].second).only_if(open[0]),
                                sluice::recv_from(ch[1].second).only_if(open[1]),
                                sluice::recv_from(ch[2].second).only_if(open[2]),
                                sluice::recv_from(ch[3].second).only_if(open[3]));
        const std::size_t c = r.index();
        auto msg = std::visit([](auto& e) -> std::optional<std::int64_t> {
          if (e) return e->value();
          return std::nullopt;
        }, r);
        if (!msg) {
          open[c] = false;
          --still_open;
          continue;
        }
        const auto p = static_cast<std::size_t>(producer_of(*msg));
        ASSERT_FALSE(seen[static_cast<std::size_t>(*msg)]) << "duplicate " << *msg;
        seen[static_cast<std::size_t>(*msg)] = true;
        ASSERT_GT(seq_of(*msg), last_seq[p][c]) << "reordered within a channel";
        last_seq[p][c] = seq_of(*msg);
        ++got_on[p][c];
      }
      for (auto& t : threads) t.join();
      for (std::size_t p = 0; p < producers; ++p) {
        for (std::size_t c = 0; c < 4; ++c) {
          EXPECT_EQ(got_on[p][c], sent_on[p][c]) << "producer " << p << " channel " << c;
        }
      }
      for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_TRUE(seen[i]) << "lost " << i;
    }
    EXPECT_EQ(leaks.leaked(), 0);
  }
}

// Two threads each select {send on mine, receive on theirs} over two
// rendezvous channels: every completion is a hand-off between the two
// selects, so each select's outcome names its partner's. Both sides run the
// same number of selects; what one sent, the other received, in order.
TEST(SelectStressRendezvous, TwoSelectsEachOfferingSendAndReceive) {
  const std::int64_t rounds = scaled(20'000, 2'000);
  const leak_check leaks;
  {
    auto [a_tx, a_rx] = sluice::sync_channel<counted>(0);  // x sends, y receives
    auto [b_tx, b_rx] = sluice::sync_channel<counted>(0);  // y sends, x receives
    struct tally {
      std::int64_t sent = 0;
      std::int64_t received = 0;
    };
    auto side = [rounds](const sluice::sync_sender<counted>& out, sluice::receiver<counted>& in,
                         tally& t) {
      std::int64_t next_in = 0;
      for (std::int64_t i = 0; i < rounds; ++i) {
        counted v(t.sent);
        auto r = sluice::select(sluice::send_to(out, v), sluice::recv_from(in));
        if (r.index() == 0) {
          EXPECT_TRUE(std::get<0>(r));
          EXPECT_FALSE(v.owns());
          ++t.sent;
        } else {
          auto& m = std::get<1>(r);
          EXPECT_TRUE(m);
          if (m) {
            EXPECT_EQ(m->value(), next_in++) << "lost, duplicated or reordered";
          }
          EXPECT_TRUE(v.owns()) << "a losing send arm gave its value away";
          ++t.received;
        }
      }
    };
    tally x, y;
    std::thread tx_thread([&] { side(a_tx, b_rx, x); });
    side(b_tx, a_rx, y);
    tx_thread.join();
    EXPECT_EQ(x.sent, y.received);
    EXPECT_EQ(y.sent, x.received);
    EXPECT_EQ(x.sent + x.received, rounds);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// Two sending selects against one receiving select on two rendezvous
// channels, the receiver also holding a timer arm that never fires.
TEST(SelectStressRendezvous, SendingSelectsMeetAReceivingSelect) {
  const std::int64_t per = scaled(20'000, 2'000);
  const leak_check leaks;
  {
    auto [c0, r0] = sluice::sync_channel<counted>(0);
    auto [c1, r1] = sluice::sync_channel<counted>(0);
    std::vector<std::thread> senders;
    for (int p = 0; p < 2; ++p) {
      senders.emplace_back([s0 = c0, s1 = c1, p, per] {
        for (std::int64_t i = 0; i < per; ++i) {
          counted v(encode(p, i));
          auto r = sluice::select(sluice::send_to(s0, v), sluice::send_to(s1, v));
          EXPECT_TRUE(std::visit([](auto& e) { return e.has_value(); }, r));
        }
      });
    }
    c0 = {};
    c1 = {};
    sluice::timer never = sluice::never();
    std::array<std::int64_t, 2> next{};
    std::array<bool, 2> open{true, true};
    while (open[0] || open[1]) {
      auto r = sluice::select(sluice::recv_from(r0).only_if(open[0]),
                              sluice::recv_from(r1).only_if(open[1]), sluice::recv_from(never));
      ASSERT_NE(r.index(), 2u) << "never() ticked";
      auto& m = r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
      if (!m) {
        open[r.index()] = false;
        continue;
      }
      const auto p = static_cast<std::size_t>(producer_of(m->value()));
      ASSERT_EQ(seq_of(m->value()), next[p]) << "a producer's selects complete in order";
      ++next[p];
    }
    for (auto& t : senders) t.join();
    EXPECT_EQ(next[0], per);
    EXPECT_EQ(next[1], per);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A selecting receiver races the senders' disconnect: whatever was sent is
// received, then both arms report the disconnect; nothing is left.
TEST(SelectStressDisconnect, ReceiveArmsRaceTheLastSendersDrop) {
  const int iterations = static_cast<int>(scaled(3'000, 400));
  const leak_check leaks;
  std::mt19937 rng(12345);
  for (int it = 0; it < iterations; ++it) {
    const auto cap = static_cast<std::size_t>(it % 3);  // rendezvous, 1, 2
    auto [t0, r0] = sluice::sync_channel<counted>(cap);
    auto [t1, r1] = sluice::channel<counted>();
    const int to_send = static_cast<int>(rng() % 4);
    std::thread producer([s0 = std::move(t0), s1 = std::move(t1), to_send]() mutable {
      for (int i = 0; i < to_send; ++i) {
        if (i % 2 == 0) {
          EXPECT_TRUE(s0.send(counted(i)));
        } else {
          EXPECT_TRUE(s1.send(counted(i)));
        }
      }
      // Drop one handle, then the other, while the consumer selects.
      s0 = {};
      std::this_thread::yield();
      s1 = {};
    });
    int received = 0;
    std::array<bool, 2> open{true, true};
    while (open[0] || open[1]) {
      auto r = sluice::select(sluice::recv_from(r0).only_if(open[0]),
                              sluice::recv_from(r1).only_if(open[1]));
      auto& m = r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
      if (m) {
        ++received;
      } else {
        open[r.index()] = false;
      }
    }
    producer.join();
    ASSERT_EQ(received, to_send) << "iteration " << it;
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// Selecting senders race the receivers' drop: each value is either
// delivered (and received or destroyed with the channel) or handed back in
// the send arm's error - never both, never neither.
TEST(SelectStressDisconnect, SendArmsRaceTheReceiversDrop) {
  const int iterations = static_cast<int>(scaled(3'000, 400));
  const leak_check leaks;
  for (int it = 0; it < iterations; ++it) {
    const auto cap = static_cast<std::size_t>(it % 3);
    auto [t0, r0] = sluice::sync_channel<counted>(cap);
    auto [t1, r1] = sluice::sync_channel<counted>(cap);
    std::atomic<int> received{0};
    std::thread consumer([q0 = std::move(r0), q1 = std::move(r1), &received, it]() mutable {
      // Take a few, then drop both receivers.
      for (int i = 0; i < it % 4; ++i) {
        auto r = sluice::select_timeout(std::chrono::milliseconds(50), sluice::recv_from(q0),
                                        sluice::recv_from(q1));
        if (r) ++received;
      }
      q0 = {};
      q1 = {};
    });
    int sent = 0;
    int returned = 0;
    for (int i = 0; i < 8; ++i) {
      counted v(i);
      auto r = sluice::select(sluice::send_to(t0, v), sluice::send_to(t1, v));
      const bool ok = std::visit([](auto& e) { return e.has_value(); }, r);
      if (ok) {
        ++sent;
        EXPECT_FALSE(v.owns());
      } else {
        ++returned;
        // The value is in the error, not in v.
        const auto& err = r.index() == 0 ? std::get<0>(r).error() : std::get<1>(r).error();
        EXPECT_EQ(err.value.value(), i);
        EXPECT_FALSE(v.owns());
        break;  // both receivers are gone once one is (they drop together)
      }
    }
    consumer.join();
    EXPECT_LE(received.load(), sent);
    EXPECT_LE(returned, 1);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A selector over 16 channels (4 per producer, mixed capacities), arms
// removed as their channels disconnect.
TEST(SelectStressSelector, SixteenChannelsFourProducers) {
  constexpr int per_producer_channels = 4;
  constexpr int channels = producers * per_producer_channels;
  const std::int64_t per = scaled(20'000, 2'000);  // per producer
  const leak_check leaks;
  {
    std::vector<sluice::receiver<counted>> receivers;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      std::vector<sluice::sync_sender<counted>> mine;
      for (int c = 0; c < per_producer_channels; ++c) {
        auto [tx, rx] = sluice::sync_channel<counted>(static_cast<std::size_t>(c));
        mine.push_back(std::move(tx));
        receivers.push_back(std::move(rx));
      }
      threads.emplace_back([mine = std::move(mine), p, per] {
        for (std::int64_t i = 0; i < per; ++i) {
          EXPECT_TRUE(mine[static_cast<std::size_t>(i % per_producer_channels)].send(
              counted(encode(p, i))));
        }
      });
    }
    sluice::selector sel;
    std::vector<sluice::select_handle<std::expected<counted, sluice::recv_error>>> handles;
    for (auto& rx : receivers) handles.push_back(sel.add(sluice::recv_from(rx)));
    std::array<std::int64_t, channels> next{};
    std::int64_t total = 0;
    while (!sel.empty()) {
      const std::size_t k = sel.select();
      auto m = handles[k].take();
      if (!m) {
        sel.remove(k);
        continue;
      }
      const int p = producer_of(m->value());
      ASSERT_EQ(static_cast<std::size_t>(p), k / per_producer_channels);
      // Channel k carries producer p's sequence numbers i with i % 4 == k % 4.
      const std::int64_t expected = next[k] * per_producer_channels +
                                    static_cast<std::int64_t>(k % per_producer_channels);
      ASSERT_EQ(seq_of(m->value()), expected) << "channel " << k;
      ++next[k];
      ++total;
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(total, per * producers);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

}  // namespace
