// co_await sluice::async_select(...) and co_await selector::async_select():
// the coroutine forms of select, on the same channels and the same wait
// protocol as the blocking select.
//
// - a coroutine selecting over channels fed by threads, every message
//   counted and in order per channel;
// - stop requests (cancelled, nothing taken, a send arm's value kept), the
//   resume_on scheduler, a timer arm as the time limit, biased order;
// - threads and coroutines selecting at once on the same channels, sends
//   and receives, each completing exactly one arm: what every sender's
//   select reports sent is what the receivers' selects got;
// - a thread's select and a coroutine's select on two rendezvous channels,
//   each offering a send and a receive, meeting each other.

#include "../support/coro_task.hpp"
#include "../support/counted.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using sluice_test::counted;
using sluice_test::leak_check;
using sluice_test::scaled;
using sluice_test::task;
using sluice_test::task_group;
using sluice_test::thread_pool;

namespace {

constexpr int producers = 4;
constexpr std::int64_t encode(int producer, std::int64_t seq) { return seq * producers + producer; }
constexpr int producer_of(std::int64_t v) { return static_cast<int>(v % producers); }
constexpr std::int64_t seq_of(std::int64_t v) { return v / producers; }

// The message a receive-arm outcome holds, if any.
template <class Variant>
std::optional<std::int64_t> message_of(Variant& r) {
  return std::visit(
      [](auto& e) -> std::optional<std::int64_t> {
        if constexpr (requires { e->value(); }) {
          if (e) return e->value();
        }
        return std::nullopt;
      },
      r);
}

// --- one coroutine, threads feeding it ------------------------------------------------

task select_until_closed(sluice::receiver<counted>& r0, sluice::receiver<counted>& r1,
                         std::array<std::int64_t, 2>& next) {
  std::array<bool, 2> open{true, true};
  while (open[0] || open[1]) {
    auto r = co_await sluice::async_select(sluice::recv_from(r0).only_if(open[0]),
                                           sluice::recv_from(r1).only_if(open[1]));
    const std::size_t k = r.index();
    EXPECT_TRUE(open[k]);
    auto m = message_of(r);
    if (!m) {
      open[k] = false;
      continue;
    }
    EXPECT_EQ(static_cast<std::size_t>(producer_of(*m)), k);
    EXPECT_EQ(seq_of(*m), next[k]) << "lost, duplicated or reordered";
    ++next[k];
  }
}

TEST(AsyncSelect, ACoroutineSelectsOverChannelsThreadsFeed) {
  const std::int64_t per = scaled(20'000, 2'000);
  const leak_check leaks;
  for (std::size_t cap : {0u, 1u, 64u}) {
    auto [t0, r0] = sluice::sync_channel<counted>(cap);
    auto [t1, r1] = sluice::channel<counted>();
    std::array<std::int64_t, 2> next{};
    {
      task_group tasks;
      tasks.start(select_until_closed(r0, r1, next));
      std::thread a([tx = std::move(t0), per] {
        for (std::int64_t i = 0; i < per; ++i) EXPECT_TRUE(tx.send(counted(encode(0, i))));
      });
      std::thread b([tx = std::move(t1), per] {
        for (std::int64_t i = 0; i < per; ++i) EXPECT_TRUE(tx.send(counted(encode(1, i))));
      });
      a.join();
      b.join();
    }
    EXPECT_EQ(next[0], per) << "capacity " << cap;
    EXPECT_EQ(next[1], per);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- stop, resume_on, timers, biased --------------------------------------------------

task select_with_stop(sluice::sync_sender<counted>& tx, counted& v, sluice::receiver<int>& rx,
                      std::stop_token stop, std::optional<sluice::select_timeout_error>& out) {
  auto r = co_await sluice::async_select(std::move(stop), sluice::send_to(tx, v),
                                         sluice::recv_from(rx));
  if (!r) out = r.error();
}

TEST(AsyncSelect, AStopRequestCancelsAndTakesNothing) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    auto [itx, irx] = sluice::channel<int>();
    counted v(1);
    std::stop_source src;
    std::optional<sluice::select_timeout_error> out;
    {
      task_group tasks;
      tasks.start(select_with_stop(tx, v, irx, src.get_token(), out));
      EXPECT_FALSE(tasks.all_finished()) << "nothing was ready: it must suspend";
      src.request_stop();
    }
    ASSERT_TRUE(out);
    EXPECT_EQ(*out, sluice::select_timeout_error::cancelled);
    EXPECT_TRUE(v.owns()) << "a cancelled send arm keeps its value";
    EXPECT_FALSE(rx.try_recv());
    (void)itx;
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

task select_ready_despite_stop(sluice::receiver<int>& rx, std::stop_token stop, int& got) {
  auto r = co_await sluice::async_select(std::move(stop), sluice::recv_from(rx));
  EXPECT_TRUE(r);
  if (r) got = *std::get<0>(*r);
}

TEST(AsyncSelect, AReadyArmCompletesEvenIfStopWasRequested) {
  auto [tx, rx] = sluice::channel<int>();
  ASSERT_TRUE(tx.send(5));
  std::stop_source src;
  src.request_stop();
  int got = 0;
  {
    task_group tasks;
    tasks.start(select_ready_despite_stop(rx, src.get_token(), got));
  }
  EXPECT_EQ(got, 5);
}

task select_resumed_on(thread_pool& pool, sluice::receiver<int>& rx, std::thread::id& where,
                       int& got) {
  auto r = co_await sluice::async_select(sluice::resume_on(pool.scheduler()), sluice::recv_from(rx));
  where = std::this_thread::get_id();
  got = *std::get<0>(r);
}

TEST(AsyncSelect, ResumeOnHandsTheCoroutineToTheScheduler) {
  auto [tx, rx] = sluice::channel<int>();
  thread_pool pool(1);
  std::thread::id where;
  int got = 0;
  {
    task_group tasks;
    tasks.start(select_resumed_on(pool, rx, where, got));
    ASSERT_TRUE(tx.send(3));  // completes the arm on this thread; the pool resumes
  }
  EXPECT_EQ(got, 3);
  EXPECT_NE(where, std::this_thread::get_id());
}

task select_with_timer(sluice::receiver<int>& rx, std::size_t& index) {
  sluice::timer limit = sluice::after(10ms);
  auto r = co_await sluice::async_select(sluice::recv_from(rx), sluice::recv_from(limit));
  index = r.index();
}

TEST(AsyncSelect, ATimerArmIsTheTimeLimit) {
  auto [tx, rx] = sluice::channel<int>();
  std::size_t index = 99;
  const auto t0 = std::chrono::steady_clock::now();
  {
    task_group tasks;
    tasks.start(select_with_timer(rx, index));
  }
  EXPECT_EQ(index, 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 10ms);
  (void)tx;
}

task select_biased(sluice::receiver<int>& a, sluice::receiver<int>& b, std::vector<std::size_t>& order,
                   int n) {
  for (int i = 0; i < n; ++i) {
    auto r = co_await sluice::async_select(sluice::biased, sluice::recv_from(a), sluice::recv_from(b));
    order.push_back(r.index());
  }
}

TEST(AsyncSelect, BiasedPrefersTheEarliestWrittenReadyArm) {
  auto [ta, ra] = sluice::channel<int>();
  auto [tb, rb] = sluice::channel<int>();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(ta.send(i));
    ASSERT_TRUE(tb.send(i));
  }
  std::vector<std::size_t> order;
  {
    task_group tasks;
    tasks.start(select_biased(ra, rb, order, 20));
  }
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i < 10 ? 0u : 1u);
}

TEST(AsyncSelect, EveryArmDisabledWithoutAStopTokenThrows) {
  auto [tx, rx] = sluice::channel<int>();
  EXPECT_THROW((void)sluice::async_select(sluice::recv_from(rx).only_if(false)),
               std::invalid_argument);
  sluice::selector empty;
  EXPECT_THROW((void)empty.async_select(), std::invalid_argument);
  (void)tx;
}

// --- the selector ---------------------------------------------------------------------

task drain_selector(sluice::selector& sel,
                    std::vector<sluice::select_handle<std::expected<counted, sluice::recv_error>>>& hs,
                    std::int64_t& total) {
  while (!sel.empty()) {
    const std::size_t k = co_await sel.async_select();
    if (auto m = hs[k].take()) {
      EXPECT_EQ(static_cast<std::size_t>(producer_of(m->value())), k);
      ++total;
    } else {
      sel.remove(k);
    }
  }
}

TEST(AsyncSelect, ASelectorAwaitedByACoroutine) {
  const std::int64_t per = scaled(10'000, 1'000);
  const leak_check leaks;
  {
    std::vector<sluice::receiver<counted>> receivers;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      auto [tx, rx] = sluice::sync_channel<counted>(static_cast<std::size_t>(p));
      receivers.push_back(std::move(rx));
      threads.emplace_back([sender = std::move(tx), p, per] {
        for (std::int64_t i = 0; i < per; ++i) EXPECT_TRUE(sender.send(counted(encode(p, i))));
      });
    }
    sluice::selector sel;
    std::vector<sluice::select_handle<std::expected<counted, sluice::recv_error>>> hs;
    for (auto& rx : receivers) hs.push_back(sel.add(sluice::recv_from(rx)));
    std::int64_t total = 0;
    {
      task_group tasks;
      tasks.start(drain_selector(sel, hs, total));
      for (auto& t : threads) t.join();
    }
    EXPECT_EQ(total, per * producers);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- threads and coroutines on the same channels --------------------------------------

// What each sender's selects reported sent, per channel.
using sent_table = std::array<std::array<std::int64_t, 4>, producers>;

template <class Tx>
task coroutine_sender(std::array<Tx, 4> tx, int p, std::int64_t per,
                      std::array<std::int64_t, 4>& sent) {
  for (std::int64_t i = 0; i < per; ++i) {
    counted v(encode(p, i));
    auto r = co_await sluice::async_select(sluice::send_to(tx[0], v), sluice::send_to(tx[1], v),
                                           sluice::send_to(tx[2], v), sluice::send_to(tx[3], v));
    EXPECT_TRUE(std::visit([](auto& e) { return e.has_value(); }, r));
    EXPECT_FALSE(v.owns());
    ++sent[r.index()];
  }
}

// A receiving select over channels 2 and 3 (channels 0 and 1 are the
// receiving thread's); counts per (producer, channel), order per channel.
task coroutine_receiver(sluice::receiver<counted>& r2, sluice::receiver<counted>& r3,
                        sent_table& got, std::vector<std::uint8_t>& seen) {
  std::array<bool, 2> open{true, true};
  while (open[0] || open[1]) {
    auto r = co_await sluice::async_select(sluice::recv_from(r2).only_if(open[0]),
                                           sluice::recv_from(r3).only_if(open[1]));
    auto m = message_of(r);
    if (!m) {
      open[r.index()] = false;
      continue;
    }
    ++seen[static_cast<std::size_t>(*m)];
    ++got[static_cast<std::size_t>(producer_of(*m))][2 + r.index()];
  }
}

template <std::size_t Cap>
void mixed_senders_and_receivers() {
  const std::int64_t per = scaled(Cap == 0 ? 3'000 : 10'000, 800);
  const leak_check leaks;
  {
    std::array<sluice::sync_sender<counted>, 4> tx;
    std::array<sluice::receiver<counted>, 4> rx;
    for (std::size_t c = 0; c < 4; ++c) std::tie(tx[c], rx[c]) = sluice::sync_channel<counted>(Cap);
    sent_table sent{};
    sent_table got{};
    std::vector<std::uint8_t> seen_by_thread(static_cast<std::size_t>(per * producers), 0);
    std::vector<std::uint8_t> seen_by_coroutine(static_cast<std::size_t>(per * producers), 0);
    thread_pool pool(2);
    {
      task_group tasks;
      // Receivers: the coroutine (on the pool) over channels 2 and 3 ...
      tasks.start_on(pool, coroutine_receiver(rx[2], rx[3], got, seen_by_coroutine));
      // ... a thread over channels 0 and 1.
      std::thread receiving([&rx, &got, &seen_by_thread] {
        std::array<bool, 2> open{true, true};
        while (open[0] || open[1]) {
          auto r = sluice::select(sluice::recv_from(rx[0]).only_if(open[0]),
                                  sluice::recv_from(rx[1]).only_if(open[1]));
          auto m = message_of(r);
          if (!m) {
            open[r.index()] = false;
            continue;
          }
          ++seen_by_thread[static_cast<std::size_t>(*m)];
          ++got[static_cast<std::size_t>(producer_of(*m))][r.index()];
        }
      });
      // Senders: producers 0 and 1 are coroutines, 2 and 3 threads; all
      // select a send over all four channels.
      for (int p = 0; p < 2; ++p) {
        tasks.start_on(pool, coroutine_sender(tx, p, per, sent[static_cast<std::size_t>(p)]));
      }
      std::vector<std::thread> sending;
      for (int p = 2; p < producers; ++p) {
        sending.emplace_back([tx, p, per, &mine = sent[static_cast<std::size_t>(p)]] {
          for (std::int64_t i = 0; i < per; ++i) {
            counted v(encode(p, i));
            auto r = sluice::select(sluice::send_to(tx[0], v), sluice::send_to(tx[1], v),
                                    sluice::send_to(tx[2], v), sluice::send_to(tx[3], v));
            EXPECT_TRUE(std::visit([](auto& e) { return e.has_value(); }, r));
            ++mine[r.index()];
          }
        });
      }
      for (auto& t : tx) t = {};  // the producers hold the only senders now
      for (auto& t : sending) t.join();
      receiving.join();
    }
    for (std::size_t p = 0; p < producers; ++p) {
      for (std::size_t c = 0; c < 4; ++c) {
        EXPECT_EQ(got[p][c], sent[p][c]) << "producer " << p << " channel " << c;
      }
    }
    for (std::size_t i = 0; i < seen_by_thread.size(); ++i) {
      ASSERT_EQ(seen_by_thread[i] + seen_by_coroutine[i], 1) << "message " << i;
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(AsyncSelectMixed, ThreadsAndCoroutinesSelectOnSharedRendezvousChannels) {
  mixed_senders_and_receivers<0>();
}
TEST(AsyncSelectMixed, ThreadsAndCoroutinesSelectOnSharedBoundedChannels) {
  mixed_senders_and_receivers<1>();
}

// One side a coroutine, the other a thread: each select offers a send on
// its own rendezvous channel and a receive on the other's. Every completion
// is a hand-off between the two.
task coroutine_side(const sluice::sync_sender<counted>& out, sluice::receiver<counted>& in,
                    std::int64_t rounds, std::int64_t& sent, std::int64_t& received) {
  for (std::int64_t i = 0; i < rounds; ++i) {
    counted v(sent);
    auto r = co_await sluice::async_select(sluice::send_to(out, v), sluice::recv_from(in));
    if (r.index() == 0) {
      EXPECT_TRUE(std::get<0>(r));
      ++sent;
    } else {
      EXPECT_TRUE(std::get<1>(r));
      EXPECT_TRUE(v.owns());
      if (std::get<1>(r)) {
        EXPECT_EQ(std::get<1>(r)->value(), received);
      }
      ++received;
    }
  }
}

TEST(AsyncSelectMixed, ACoroutineSelectMeetsAThreadSelectOnRendezvousChannels) {
  const std::int64_t rounds = scaled(10'000, 1'000);
  const leak_check leaks;
  {
    auto [a_tx, a_rx] = sluice::sync_channel<counted>(0);  // coroutine sends
    auto [b_tx, b_rx] = sluice::sync_channel<counted>(0);  // thread sends
    std::int64_t co_sent = 0, co_received = 0, th_sent = 0, th_received = 0;
    thread_pool pool(1);
    {
      task_group tasks;
      tasks.start_on(pool, coroutine_side(a_tx, b_rx, rounds, co_sent, co_received));
      for (std::int64_t i = 0; i < rounds; ++i) {
        counted v(th_sent);
        auto r = sluice::select(sluice::send_to(b_tx, v), sluice::recv_from(a_rx));
        // EXPECT, not ASSERT: returning early would strand the coroutine.
        if (r.index() == 0) {
          EXPECT_TRUE(std::get<0>(r));
          ++th_sent;
        } else {
          EXPECT_TRUE(std::get<1>(r));
          if (std::get<1>(r)) {
            EXPECT_EQ(std::get<1>(r)->value(), th_received);
          }
          ++th_received;
        }
      }
    }
    EXPECT_EQ(co_sent, th_received);
    EXPECT_EQ(th_sent, co_received);
    EXPECT_EQ(co_sent + co_received, rounds);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

}  // namespace
