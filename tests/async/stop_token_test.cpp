// The blocking operations' std::stop_token overloads on every flavor:
// receiver::recv(stop), recv_timeout(d, stop), recv_deadline(tp, stop) and
// sync_sender::send(v, stop), send_timeout(v, d, stop), send_deadline(v, tp,
// stop).
//
// A stop request wakes the wait at once with "cancelled"; a cancelled send
// hands its value back and sent nothing; a cancelled receive took nothing.
// An operation that can complete without waiting completes even if stop was
// requested already. Races between a stop request and the operation's
// completion account for every value exactly once.
//
// Timing: nothing here asserts speed beyond a generous "did not hang" bound
// (`prompt`) between a stop request and the return it must cause; the one
// lower bound (a timeout does not fire early) is on steady_clock.

#include "../support/coro_task.hpp"
#include "../support/counted.hpp"
#include "../support/flavors.hpp"
#include "../support/stop_board.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using sluice_test::counted;
using sluice_test::leak_check;
using sluice_test::scaled;
using sluice_test::stop_board;
using sluice_test::task;
using sluice_test::task_group;
using steady = std::chrono::steady_clock;
using system_clock = std::chrono::system_clock;
using recv_err = sluice::recv_timeout_error;

namespace {

// How long after a stop request a blocked operation may take to return
// before the test calls it stuck.
constexpr std::chrono::nanoseconds prompt = sluice_test::sanitized ? 5s : 2s;

// Runs op() on its own thread; the future yields its result and when it
// returned.
template <class Op>
auto in_background(Op op) {
  return std::async(std::launch::async, [op = std::move(op)]() mutable {
    auto r = op();
    return std::pair<decltype(r), steady::time_point>(std::move(r), steady::now());
  });
}

template <class Future>
bool returned(Future& f, std::chrono::nanoseconds within = 0ns) {
  return f.wait_for(within) == std::future_status::ready;
}

// Starts `op` in the background, checks that it blocks, requests the stop,
// and checks that op returned within `prompt` of the request. If it did
// not, `unblock()` ends the wait some other way (a disconnect) so that the
// test can go on and fail. Returns op's result.
template <class Op, class Unblock>
auto stop_while_blocked(Op op, std::stop_source& stop, Unblock unblock, const char* what) {
  auto f = in_background(std::move(op));
  std::this_thread::sleep_for(20ms);  // let it block; its outcome does not depend on this
  EXPECT_FALSE(returned(f)) << what << " returned before the stop request";
  const auto requested = steady::now();
  stop.request_stop();
  if (!returned(f, prompt)) {
    ADD_FAILURE() << what << " still blocked " << std::chrono::duration<double>(prompt).count()
                  << " s after the stop request";
    unblock();
  }
  auto [r, at] = f.get();
  EXPECT_LT(at - requested, prompt) << what;
  return std::move(r);
}

// Runs `op` (which must not wait) in the background; fails the test and
// unblocks it if it does not return within `prompt`.
template <class Op, class Unblock>
auto must_return(Op op, Unblock unblock, const char* what) {
  auto f = in_background(std::move(op));
  if (!returned(f, prompt)) {
    ADD_FAILURE() << what << " blocked";
    unblock();
  }
  return std::move(f.get().first);
}

// Fills a buffered bounded channel with 0..cap-1; returns how many.
template <class F, class Tx>
std::int64_t fill(const Tx& tx) {
  if constexpr (F::bounded && F::buffered) {
    const auto cap = static_cast<std::int64_t>(*F::cap);
    for (std::int64_t i = 0; i < cap; ++i) {
      EXPECT_TRUE(tx.try_send(counted(i)).has_value()) << "setup: message " << i;
    }
    return cap;
  } else {
    return 0;
  }
}

// Receives exactly 0..n-1 without waiting, then finds nothing more.
template <class Rx>
void expect_queued_exactly(Rx& rx, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    auto r = rx.try_recv();
    ASSERT_TRUE(r.has_value()) << "queued message " << i << " missing";
    EXPECT_EQ(r->value(), i);
  }
  auto r = rx.try_recv();
  EXPECT_FALSE(r.has_value()) << "an extra message: " << r->value();
}

// Sends without waiting on a buffered flavor.
template <class Tx>
void put(const Tx& tx, std::int64_t v) {
  ASSERT_TRUE(tx.send(counted(v)).has_value());
}

// A coroutine peer that waits, deterministically registered, on a
// rendezvous channel: after start() returns it is suspended in the
// channel's queue.
template <class Tx>
task send_one(Tx tx, std::int64_t v, std::atomic<int>& state) {
  counted msg(v);
  auto r = co_await tx.async_send(std::move(msg));
  state.store(r ? 1 : 2);
}
template <class Rx>
task recv_one(Rx& rx, std::atomic<std::int64_t>& got) {
  auto r = co_await rx.async_recv();
  got.store(r ? r->value() : -2);
}

template <class Tx>
constexpr bool is_sync_sender = requires(const Tx& tx, counted m, std::stop_token t) {
  tx.send(std::move(m), t);
};

}  // namespace

template <class F>
class stop_overloads : public ::testing::Test {};

TYPED_TEST_SUITE(stop_overloads, sluice_test::all_flavors, sluice_test::flavor_name);

// --- a stop request wakes a blocked operation -----------------------------------------------

TYPED_TEST(stop_overloads, stop_wakes_a_blocked_recv_and_loses_nothing) {
  const leak_check leaks;
  {
    auto ch = TypeParam::template make<counted>();
    auto& tx = ch.first;
    auto& rx = ch.second;
    auto unblock = [&tx] { tx = {}; };
    {
      std::stop_source stop;
      auto r = stop_while_blocked([&rx, t = stop.get_token()] { return rx.recv(t); }, stop,
                                  unblock, "recv(stop)");
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), recv_err::cancelled);
    }
    {
      std::stop_source stop;
      auto r = stop_while_blocked([&rx, t = stop.get_token()] { return rx.recv_timeout(1h, t); },
                                  stop, unblock, "recv_timeout(1h, stop)");
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), recv_err::cancelled);
    }
    {
      std::stop_source stop;
      const auto deadline = system_clock::now() + 1h;
      auto r = stop_while_blocked(
          [&rx, deadline, t = stop.get_token()] { return rx.recv_deadline(deadline, t); }, stop,
          unblock, "recv_deadline(system_clock + 1h, stop)");
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), recv_err::cancelled);
    }
    {
      std::stop_source stop;
      const auto deadline = steady::now() + 1h;
      auto r = stop_while_blocked(
          [&rx, deadline, t = stop.get_token()] { return rx.recv_deadline(deadline, t); }, stop,
          unblock, "recv_deadline(steady_clock + 1h, stop)");
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), recv_err::cancelled);
    }
    // The cancelled receives took nothing: what is sent next arrives, in order.
    std::thread sender([s = tx] {
      for (std::int64_t i = 0; i < 3; ++i) EXPECT_TRUE(s.send(counted(i)).has_value());
    });
    for (std::int64_t i = 0; i < 3; ++i) {
      auto r = rx.recv();
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->value(), i);
    }
    sender.join();
    EXPECT_FALSE(rx.try_recv().has_value());
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TYPED_TEST(stop_overloads, stop_wakes_a_blocked_send_and_hands_the_value_back) {
  if constexpr (!TypeParam::bounded) {
    GTEST_SKIP() << "an unbounded send never blocks";
  } else {
    const leak_check leaks;
    {
      auto ch = TypeParam::template make<counted>();
      auto& tx = ch.first;
      auto& rx = ch.second;
      const std::int64_t filled = fill<TypeParam>(tx);
      auto unblock = [&rx] { rx = {}; };
      auto check = [](const auto& r, std::int64_t v, const char* what) {
        ASSERT_FALSE(r.has_value()) << what << " sent into a full channel";
        EXPECT_TRUE(r.error().is_cancelled()) << what << ": " << r.error();
        EXPECT_FALSE(r.error().is_timeout());
        EXPECT_FALSE(r.error().is_disconnected());
        EXPECT_EQ(r.error().value.value(), v) << what << ": the value handed back";
        EXPECT_TRUE(r.error().value.owns());
      };
      {
        std::stop_source stop;
        auto r = stop_while_blocked(
            [&tx, t = stop.get_token()] { return tx.send(counted(100), t); }, stop, unblock,
            "send(v, stop)");
        check(r, 100, "send(v, stop)");
      }
      {
        std::stop_source stop;
        auto r = stop_while_blocked(
            [&tx, t = stop.get_token()] { return tx.send_timeout(counted(101), 1h, t); }, stop,
            unblock, "send_timeout(v, 1h, stop)");
        check(r, 101, "send_timeout(v, 1h, stop)");
      }
      {
        std::stop_source stop;
        const auto deadline = system_clock::now() + 1h;
        auto r = stop_while_blocked(
            [&tx, deadline, t = stop.get_token()] {
              return tx.send_deadline(counted(102), deadline, t);
            },
            stop, unblock, "send_deadline(v, system_clock + 1h, stop)");
        check(r, 102, "send_deadline(v, system_clock + 1h, stop)");
      }
      {
        std::stop_source stop;
        const auto deadline = steady::now() + 1h;
        auto r = stop_while_blocked(
            [&tx, deadline, t = stop.get_token()] {
              return tx.send_deadline(counted(103), deadline, t);
            },
            stop, unblock, "send_deadline(v, steady_clock + 1h, stop)");
        check(r, 103, "send_deadline(v, steady_clock + 1h, stop)");
      }
      // Nothing cancelled was sent; what was queued is intact.
      expect_queued_exactly(rx, filled);
      EXPECT_FALSE(rx.is_disconnected());
    }
    EXPECT_EQ(leaks.leaked(), 0);
  }
}

// A disconnect while blocked with a stop token reports disconnected, not
// cancelled.
TYPED_TEST(stop_overloads, disconnect_while_blocked_is_not_a_cancellation) {
  const leak_check leaks;
  {
    auto ch = TypeParam::template make<counted>();
    std::stop_source stop;
    auto f = in_background([&rx = ch.second, t = stop.get_token()] { return rx.recv(t); });
    std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(returned(f));
    ch.first = {};
    ASSERT_TRUE(returned(f, prompt)) << "dropping the last sender did not wake recv(stop)";
    auto r = std::move(f.get().first);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), recv_err::disconnected);
  }
  if constexpr (TypeParam::bounded) {
    auto ch = TypeParam::template make<counted>();
    fill<TypeParam>(ch.first);
    std::stop_source stop;
    auto f = in_background(
        [&tx = ch.first, t = stop.get_token()] { return tx.send(counted(7), t); });
    std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(returned(f));
    ch.second = {};
    ASSERT_TRUE(returned(f, prompt)) << "dropping the receiver did not wake send(v, stop)";
    auto r = std::move(f.get().first);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is_disconnected());
    EXPECT_EQ(r.error().value.value(), 7);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- timed forms with a stop token: whichever comes first --------------------------------------

TYPED_TEST(stop_overloads, timed_forms_time_out_when_no_stop_comes) {
  const leak_check leaks;
  {
    auto ch = TypeParam::template make<counted>();
    auto& tx = ch.first;
    auto& rx = ch.second;
    std::stop_source never;  // stop_possible(), never requested
    const auto t = never.get_token();
    {
      const auto start = steady::now();
      auto r = rx.recv_timeout(30ms, t);
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), recv_err::timeout);
      EXPECT_GE(steady::now() - start, 30ms);
    }
    {
      const auto start = steady::now();
      auto r = rx.recv_deadline(start + 30ms, t);
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), recv_err::timeout);
      EXPECT_GE(steady::now() - start, 30ms);
    }
    {
      auto r = rx.recv_deadline(system_clock::now() + 30ms, t);
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), recv_err::timeout);
    }
    // A message that comes before either.
    {
      std::thread sender([s = tx] {
        std::this_thread::sleep_for(20ms);
        EXPECT_TRUE(s.send(counted(5)).has_value());
      });
      auto r = rx.recv_timeout(1h, t);
      sender.join();
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->value(), 5);
    }
    if constexpr (TypeParam::bounded) {
      const std::int64_t filled = fill<TypeParam>(tx);
      {
        const auto start = steady::now();
        auto r = tx.send_timeout(counted(50), 30ms, t);
        ASSERT_FALSE(r.has_value());
        EXPECT_TRUE(r.error().is_timeout());
        EXPECT_EQ(r.error().value.value(), 50);
        EXPECT_GE(steady::now() - start, 30ms);
      }
      {
        const auto start = steady::now();
        auto r = tx.send_deadline(counted(51), start + 30ms, t);
        ASSERT_FALSE(r.has_value());
        EXPECT_TRUE(r.error().is_timeout());
        EXPECT_EQ(r.error().value.value(), 51);
      }
      {
        auto r = tx.send_deadline(counted(52), system_clock::now() + 30ms, t);
        ASSERT_FALSE(r.has_value());
        EXPECT_TRUE(r.error().is_timeout());
        EXPECT_EQ(r.error().value.value(), 52);
      }
      expect_queued_exactly(rx, filled);
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- a stop requested before the call ----------------------------------------------------------

TYPED_TEST(stop_overloads, already_stopped_recv_completes_if_it_can) {
  const leak_check leaks;
  {
    auto ch = TypeParam::template make<counted>();
    auto& tx = ch.first;
    auto& rx = ch.second;
    std::stop_source stop;
    stop.request_stop();
    const auto stopped = stop.get_token();
    auto unblock = [&tx] { tx = {}; };

    // Nothing there: cancelled, at once.
    {
      auto r = must_return([&rx, stopped] { return rx.recv(stopped); }, unblock,
                           "recv(stopped) on an empty channel");
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), recv_err::cancelled);
    }
    {
      auto r = must_return([&rx, stopped] { return rx.recv_timeout(1h, stopped); }, unblock,
                           "recv_timeout(1h, stopped) on an empty channel");
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), recv_err::cancelled);
    }
    {
      auto r = rx.recv_timeout(0ms, stopped);  // one try, which finds nothing
      ASSERT_FALSE(r.has_value());
      EXPECT_NE(r.error(), recv_err::disconnected);
    }

    // A message there (rendezvous: a sender waiting): received.
    std::vector<std::atomic<int>> senders(3);
    task_group tasks;
    for (std::int64_t i = 0; i < 3; ++i) {
      auto& state = senders[static_cast<std::size_t>(i)];
      if constexpr (TypeParam::buffered) {
        put(tx, 10 + i);
      } else {
        tasks.start(send_one(tx, 10 + i, state));
        ASSERT_EQ(state.load(), 0) << "setup: a rendezvous send completed with no receiver";
      }
      auto r = must_return(
          [&rx, stopped, i]() -> std::expected<counted, recv_err> {
            if (i == 0) return rx.recv(stopped);
            if (i == 1) return rx.recv_timeout(1h, stopped);
            return rx.recv_deadline(system_clock::now() + 1h, stopped);
          },
          unblock, "a receive with a stopped token and a message ready");
      EXPECT_TRUE(r.has_value()) << "form " << i << ": a message was ready, yet: " << r.error();
      if (r) {
        EXPECT_EQ(r->value(), 10 + i);
      } else {
        auto late = rx.recv();  // take it anyway (rendezvous: releases the waiting sender)
        EXPECT_TRUE(late.has_value());
      }
      if constexpr (!TypeParam::buffered) {
        EXPECT_EQ(state.load(), 1) << "the waiting sender did not complete";
      }
    }

    // Disconnected and empty: disconnected (completes without waiting).
    tx = {};
    auto r = rx.recv(stopped);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), recv_err::disconnected);
    tasks.join();
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TYPED_TEST(stop_overloads, already_stopped_send_completes_if_it_can) {
  if constexpr (!TypeParam::bounded) {
    GTEST_SKIP() << "an unbounded send never blocks (no send(value, stop))";
  } else {
    const leak_check leaks;
    {
      auto ch = TypeParam::template make<counted>();
      auto& tx = ch.first;
      auto& rx = ch.second;
      std::stop_source stop;
      stop.request_stop();
      const auto stopped = stop.get_token();
      auto unblock = [&rx] { rx = {}; };
      std::vector<std::atomic<std::int64_t>> receivers(3);
      for (auto& g : receivers) g.store(-1);
      task_group tasks;

      // Room (rendezvous: a receiver waiting): sent.
      for (std::int64_t i = 0; i < 3; ++i) {
        auto& got = receivers[static_cast<std::size_t>(i)];
        if constexpr (!TypeParam::buffered) {
          tasks.start(recv_one(rx, got));
          ASSERT_EQ(got.load(), -1) << "setup: a rendezvous receive completed with no sender";
        }
        auto r = must_return(
            [&tx, stopped, i]() -> std::expected<void, sluice::send_timeout_error<counted>> {
              if (i == 0) return tx.send(counted(20), stopped);
              if (i == 1) return tx.send_timeout(counted(21), 1h, stopped);
              return tx.send_deadline(counted(22), system_clock::now() + 1h, stopped);
            },
            unblock, "a send with a stopped token and room");
        EXPECT_TRUE(r.has_value()) << "form " << i << ": there was room, yet: " << r.error();
        if (!r) {
          // Send it anyway (rendezvous: releases the waiting receiver).
          ASSERT_TRUE(tx.send(counted(20 + i)).has_value());
        }
        if constexpr (TypeParam::buffered) {
          auto m = rx.try_recv();
          ASSERT_TRUE(m.has_value());
          EXPECT_EQ(m->value(), 20 + i);
        } else {
          EXPECT_EQ(got.load(), 20 + i) << "the waiting receiver did not get the value";
        }
      }

      // No room: cancelled at once, the value handed back, nothing sent.
      const std::int64_t filled = fill<TypeParam>(tx);
      {
        auto r = must_return([&tx, stopped] { return tx.send(counted(30), stopped); }, unblock,
                             "send(v, stopped) into a full channel");
        ASSERT_FALSE(r.has_value());
        EXPECT_TRUE(r.error().is_cancelled()) << r.error();
        EXPECT_EQ(r.error().value.value(), 30);
      }
      {
        auto r = must_return(
            [&tx, stopped] { return tx.send_timeout(counted(31), 1h, stopped); }, unblock,
            "send_timeout(v, 1h, stopped) into a full channel");
        ASSERT_FALSE(r.has_value());
        EXPECT_TRUE(r.error().is_cancelled()) << r.error();
        EXPECT_EQ(r.error().value.value(), 31);
      }
      expect_queued_exactly(rx, filled);

      // The receiver gone: disconnected, the value handed back.
      rx = {};
      auto r = tx.send(counted(40), stopped);
      ASSERT_FALSE(r.has_value());
      EXPECT_TRUE(r.error().is_disconnected());
      EXPECT_EQ(r.error().value.value(), 40);
      tasks.join();
    }
    EXPECT_EQ(leaks.leaked(), 0);
  }
}

// --- several blocked senders, some of them stopped --------------------------------------------

TYPED_TEST(stop_overloads, stopping_some_blocked_senders_leaves_the_others_waiting) {
  if constexpr (!TypeParam::bounded) {
    GTEST_SKIP() << "an unbounded send never blocks";
  } else {
    const leak_check leaks;
    {
      auto ch = TypeParam::template make<counted>();
      auto& tx = ch.first;
      auto& rx = ch.second;
      const std::int64_t filled = fill<TypeParam>(tx);
      constexpr std::int64_t senders = 8;
      std::vector<std::stop_source> stops(static_cast<std::size_t>(senders));
      using result = std::expected<void, sluice::send_timeout_error<counted>>;
      std::vector<std::future<result>> blocked;
      for (std::int64_t i = 0; i < senders; ++i) {
        blocked.push_back(std::async(
            std::launch::async,
            [s = tx, i, t = stops[static_cast<std::size_t>(i)].get_token()] {
              return s.send(counted(1000 + i), t);
            }));
      }
      std::this_thread::sleep_for(30ms);
      for (auto& f : blocked) EXPECT_FALSE(returned(f)) << "a send into a full channel returned";
      for (std::int64_t i = 0; i < senders; i += 2) stops[static_cast<std::size_t>(i)].request_stop();
      for (std::int64_t i = 0; i < senders; i += 2) {
        auto& f = blocked[static_cast<std::size_t>(i)];
        if (!returned(f, prompt)) {
          ADD_FAILURE() << "stopped sender " << i << " still blocked";
          rx = {};
        }
        auto r = f.get();
        ASSERT_FALSE(r.has_value()) << "stopped sender " << i << " sent into a full channel";
        EXPECT_TRUE(r.error().is_cancelled());
        EXPECT_EQ(r.error().value.value(), 1000 + i);
      }
      for (std::int64_t i = 1; i < senders; i += 2) {
        EXPECT_FALSE(returned(blocked[static_cast<std::size_t>(i)]))
            << "sender " << i << " returned without being stopped or served";
      }
      // Receive everything: the queued values in order, then exactly the
      // values of the senders not stopped.
      std::vector<std::int64_t> got;
      for (std::int64_t i = 0; i < filled + senders / 2; ++i) {
        auto r = rx.recv_timeout(10s);
        ASSERT_TRUE(r.has_value()) << "message " << i << " missing";
        got.push_back(r->value());
      }
      for (std::int64_t i = 1; i < senders; i += 2) {
        auto& f = blocked[static_cast<std::size_t>(i)];
        ASSERT_TRUE(returned(f, prompt));
        EXPECT_TRUE(f.get().has_value());
      }
      for (std::int64_t i = 0; i < filled; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i);
      std::vector<std::int64_t> tail(got.begin() + filled, got.end());
      std::sort(tail.begin(), tail.end());
      std::vector<std::int64_t> expected;
      for (std::int64_t i = 1; i < senders; i += 2) expected.push_back(1000 + i);
      EXPECT_EQ(tail, expected);
      EXPECT_FALSE(rx.try_recv().has_value());
    }
    EXPECT_EQ(leaks.leaked(), 0);
  }
}

// --- a stop request racing the operation's completion ------------------------------------------

namespace {

void spin_for(std::chrono::nanoseconds d) {
  const auto until = steady::now() + d;
  while (steady::now() < until) {
  }
}

std::chrono::nanoseconds random_delay(std::minstd_rand& rng) {
  return std::chrono::microseconds(rng() % 100);
}

// Lines the racing threads up so that their random delays count from one
// moment rather than from when each thread happened to start.
class starting_line {
 public:
  void ready() { ready_.fetch_add(1); }
  void wait_go() const {
    while (!go_.load()) std::this_thread::yield();
  }
  void go_when_ready(int threads) {
    while (ready_.load() < threads) std::this_thread::yield();
    go_.store(true);
  }

 private:
  std::atomic<int> ready_{0};
  std::atomic<bool> go_{false};
};

}  // namespace

// A receiver blocked in recv(stop); a sender and a stop request come at
// about the same moment. Either the receiver got the value, or it was
// cancelled and the value is still there for the next receive: never both,
// never neither.
TYPED_TEST(stop_overloads, stop_racing_a_send_to_a_blocked_recv) {
  const leak_check leaks;
  {
    const std::int64_t rounds = scaled(400, 200);
    std::minstd_rand rng(2024);
    std::int64_t cancelled = 0;
    for (std::int64_t round = 0; round < rounds; ++round) {
      auto ch = TypeParam::template make<counted>();
      auto& rx = ch.second;
      std::stop_source stop;
      const auto send_delay = random_delay(rng);
      const auto stop_delay = random_delay(rng);
      std::optional<std::expected<counted, recv_err>> received;
      starting_line line;
      std::thread receiver([&rx, &received, &line, t = stop.get_token()] {
        line.ready();
        received.emplace(rx.recv(t));
      });
      std::thread sender([s = std::move(ch.first), round, send_delay, &line] {
        line.ready();
        line.wait_go();
        spin_for(send_delay);
        EXPECT_TRUE(s.send(counted(round)).has_value());
      });
      line.go_when_ready(2);
      spin_for(stop_delay);
      stop.request_stop();
      receiver.join();
      ASSERT_TRUE(received.has_value());
      auto& first = *received;
      std::int64_t seen = 0;
      if (first) {
        EXPECT_EQ(first->value(), round);
        ++seen;
      } else {
        EXPECT_EQ(first.error(), recv_err::cancelled) << "round " << round;
        ++cancelled;
      }
      // Whatever the receiver did not take is still there (rendezvous: the
      // sender still waits); after it, the end.
      for (;;) {
        auto r = rx.recv();
        if (!r) break;
        EXPECT_EQ(r->value(), round);
        ++seen;
      }
      sender.join();
      ASSERT_EQ(seen, 1) << "round " << round << ": the value arrived " << seen << " times";
    }
    // Both outcomes are possible; which ones happened is not asserted.
    ::testing::Test::RecordProperty("cancelled_rounds", static_cast<int>(cancelled));
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A sender blocked in send(v, stop) on a full channel (rendezvous: no
// receiver); a receive and a stop request come at about the same moment.
// Either the value was sent (and is received exactly once), or it was
// cancelled, handed back, and never arrives.
TYPED_TEST(stop_overloads, stop_racing_a_recv_that_frees_a_blocked_send) {
  if constexpr (!TypeParam::bounded) {
    GTEST_SKIP() << "an unbounded send never blocks";
  } else {
    const leak_check leaks;
    {
      const std::int64_t rounds = scaled(400, 200);
      constexpr std::int64_t value = 1'000'000;
      std::minstd_rand rng(7);
      std::int64_t cancelled = 0;
      for (std::int64_t round = 0; round < rounds; ++round) {
        auto ch = TypeParam::template make<counted>();
        auto& rx = ch.second;
        const std::int64_t filled = fill<TypeParam>(ch.first);
        std::stop_source stop;
        const auto recv_delay = random_delay(rng);
        const auto stop_delay = random_delay(rng);
        std::optional<std::expected<void, sluice::send_timeout_error<counted>>> outcome;
        starting_line line;
        std::thread sender([&outcome, &line, s = std::move(ch.first), t = stop.get_token()] {
          line.ready();
          outcome.emplace(s.send(counted(value), t));
        });  // the only sender: once it is done, the channel is disconnected
        std::vector<std::int64_t> got;
        std::thread receiver([&rx, &got, &line, recv_delay] {
          line.ready();
          line.wait_go();
          spin_for(recv_delay);
          if (auto r = rx.recv()) got.push_back(r->value());
        });
        line.go_when_ready(2);
        spin_for(stop_delay);
        stop.request_stop();
        sender.join();
        receiver.join();
        while (auto r = rx.try_recv()) got.push_back(r->value());
        ASSERT_TRUE(outcome.has_value());
        const auto& sent = *outcome;
        const auto arrived = std::count(got.begin(), got.end(), value);
        if (sent) {
          ASSERT_EQ(arrived, 1) << "round " << round << ": sent, but arrived " << arrived
                                << " times";
        } else {
          ++cancelled;
          ASSERT_TRUE(sent.error().is_cancelled()) << sent.error();
          EXPECT_EQ(sent.error().value.value(), value) << "the value handed back";
          ASSERT_EQ(arrived, 0) << "round " << round << ": cancelled, yet delivered";
        }
        // The queued values, each once, in order.
        std::vector<std::int64_t> queued;
        for (auto v : got) {
          if (v != value) queued.push_back(v);
        }
        ASSERT_EQ(static_cast<std::int64_t>(queued.size()), filled);
        for (std::int64_t i = 0; i < filled; ++i) {
          EXPECT_EQ(queued[static_cast<std::size_t>(i)], i);
        }
      }
      ::testing::Test::RecordProperty("cancelled_rounds", static_cast<int>(cancelled));
    }
    EXPECT_EQ(leaks.leaked(), 0);
  }
}

// Producer threads (send(v, stop) where the flavor has it) and a consumer
// thread (recv(stop), retried when cancelled), every operation with its own
// stop source, a stopper thread requesting stops at random: every value is
// received exactly once or handed back exactly once, and each producer's
// received values keep their order.
TYPED_TEST(stop_overloads, blocking_cancellation_storm) {
  const leak_check leaks;
  {
    auto ch = TypeParam::template make<counted>();
    constexpr std::int64_t producers = 3;
    const std::int64_t n = scaled(20000, 8000);
    const auto values = static_cast<std::size_t>(producers * n);
    stop_board board(static_cast<std::size_t>(producers) + 1);
    std::vector<std::atomic<int>> received(values);
    std::vector<std::atomic<int>> handed_back(values);
    std::atomic<std::int64_t> wrong_value_back{0};
    std::atomic<std::int64_t> disconnected{0};
    std::atomic<std::int64_t> disorder{0};
    std::atomic<bool> over{false};
    std::thread stopper([&] {
      std::minstd_rand rng(99);
      while (!over.load(std::memory_order_relaxed)) {
        board.stop_one(rng() % board.size());
        const auto pause = rng() % 64;
        for (std::uint_fast32_t i = 0; i < pause; ++i) std::this_thread::yield();
      }
    });
    std::atomic<std::int64_t> cancelled_recvs{0};
    std::thread consumer([&rx = ch.second, &board, &received, &disorder, &cancelled_recvs, n] {
      std::vector<std::int64_t> last(static_cast<std::size_t>(producers), -1);
      for (std::int64_t k = 1;; ++k) {
        // Now and then fall behind, so that the producers fill the channel
        // and wait: stops then find sends waiting.
        if (k % 256 == 0) std::this_thread::sleep_for(100us);
        auto r = rx.recv(board.fresh(static_cast<std::size_t>(producers)));
        if (!r) {
          if (r.error() == recv_err::cancelled) {
            cancelled_recvs.fetch_add(1);
            continue;
          }
          break;
        }
        const std::int64_t v = r->value();
        if (v < 0 || v >= producers * n) continue;
        received[static_cast<std::size_t>(v)].fetch_add(1);
        auto& l = last[static_cast<std::size_t>(v / n)];
        if (v <= l) disorder.fetch_add(1);
        l = v;
      }
    });
    std::vector<std::thread> threads;
    for (std::int64_t p = 0; p < producers; ++p) {
      // (& default: some captures serve only the sync_sender branch.)
      threads.emplace_back([&, tx = ch.first, p] {
        for (std::int64_t i = 0; i < n; ++i) {
          const std::int64_t v = p * n + i;
          // Now and then fall behind, so that the consumer empties the
          // channel and waits: stops then find the receive waiting.
          if (i % 128 == 64) std::this_thread::sleep_for(300us);
          if constexpr (is_sync_sender<std::remove_cvref_t<decltype(tx)>>) {
            auto r = tx.send(counted(v), board.fresh(static_cast<std::size_t>(p)));
            if (r) continue;
            if (r.error().value.value() != v) wrong_value_back.fetch_add(1);
            if (r.error().is_cancelled()) {
              handed_back[static_cast<std::size_t>(v)].fetch_add(1);
            } else {
              disconnected.fetch_add(1);
            }
          } else {
            if (!tx.send(counted(v))) disconnected.fetch_add(1);
          }
        }
      });
    }
    ch.first = {};
    for (auto& t : threads) t.join();
    consumer.join();
    over.store(true);
    stopper.join();
    EXPECT_EQ(wrong_value_back.load(), 0);
    EXPECT_EQ(disconnected.load(), 0);
    EXPECT_EQ(disorder.load(), 0) << "per-producer order broken";
    std::int64_t bad = 0;
    std::size_t first_bad = 0;
    for (std::size_t i = 0; i < values; ++i) {
      if (received[i].load() + handed_back[i].load() != 1 && bad++ == 0) first_bad = i;
    }
    EXPECT_EQ(bad, 0) << "values not accounted for exactly once; first: " << first_bad
                      << " received " << received[first_bad].load() << " times, handed back "
                      << handed_back[first_bad].load() << " times";
    EXPECT_FALSE(ch.second.try_recv().has_value());
    std::int64_t sends_cancelled = 0;
    for (const auto& b : handed_back) sends_cancelled += b.load();
    // How much was cancelled depends on timing; recorded, not asserted.
    ::testing::Test::RecordProperty("sends_cancelled", static_cast<int>(sends_cancelled));
    ::testing::Test::RecordProperty("receives_cancelled",
                                    static_cast<int>(cancelled_recvs.load()));
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- a stop request between the driver's check and its registration ----------------------------

namespace {

// A clock frozen at its epoch whose now() is user code the test controls:
// every reading takes 1 ms (so a deadline on it is re-read at each check),
// and reading number `trigger` pauses until the test lets it go. A waiting
// operation reads a clock other than steady_clock only through its deadline
// checks, so the test can act exactly between two steps of the wait.
struct hook_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<hook_clock>;
  [[maybe_unused]] static constexpr bool is_steady = false;

  static inline std::atomic<int> reads{0};
  static inline std::atomic<int> trigger{-1};
  static inline std::atomic<bool> paused{false};
  static inline std::atomic<bool> go{false};

  static void arm(int at) {
    reads.store(0);
    paused.store(false);
    go.store(false);
    trigger.store(at);
  }
  static time_point now() noexcept {
    if (reads.fetch_add(1) + 1 == trigger.load()) {
      paused.store(true);
      paused.notify_all();
      go.wait(false);
    }
    std::this_thread::sleep_for(1ms);
    return time_point(duration(0));
  }
};

// For each of the first `readings` readings of the deadline's clock: blocks
// op (whose deadline, 1 ns after the frozen clock's epoch, never passes) until
// that reading, requests the stop from this thread while op is paused inside
// it, and checks that op then returns `cancelled` promptly. A request that
// lands between the driver's stop check and its registration must not be
// lost.
template <class Op, class Check, class Unblock>
void stop_at_each_clock_reading(int readings, Op op, Check check, Unblock unblock) {
  bool lost = false;
  for (int at = 1; at <= readings && !lost; ++at) {
    hook_clock::arm(at);
    std::stop_source stop;
    auto f = in_background([&op, t = stop.get_token()] { return op(t); });
    const auto until = steady::now() + prompt;
    while (!hook_clock::paused.load() && steady::now() < until) std::this_thread::yield();
    EXPECT_TRUE(hook_clock::paused.load()) << "reading " << at << " of the clock never came";
    stop.request_stop();  // the stop callback runs here, while op is paused in the clock
    hook_clock::go.store(true);
    hook_clock::go.notify_all();
    if (!returned(f, prompt)) {
      ADD_FAILURE() << "the stop request made during reading " << at
                    << " of the deadline's clock was lost: the wait goes on";
      unblock();  // the channel is disconnected from here on: no more trials
      lost = true;
    }
    auto r = std::move(f.get().first);
    if (!lost) check(r, at);
    hook_clock::arm(-1);
  }
}

}  // namespace

TYPED_TEST(stop_overloads, stop_request_during_a_deadline_check_is_not_lost) {
  const leak_check leaks;
  {
    auto ch = TypeParam::template make<counted>();
    auto& tx = ch.first;
    auto& rx = ch.second;
    const hook_clock::time_point never_reached(hook_clock::duration(1));
    stop_at_each_clock_reading(
        8, [&rx, never_reached](std::stop_token t) { return rx.recv_deadline(never_reached, t); },
        [](const auto& r, int at) {
          ASSERT_FALSE(r.has_value());
          EXPECT_EQ(r.error(), recv_err::cancelled) << "recv_deadline, stop at reading " << at;
        },
        [&tx] { tx = {}; });
    if constexpr (TypeParam::bounded) {
      if (!tx) return;  // an earlier failure disconnected the channel
      const std::int64_t filled = fill<TypeParam>(tx);
      stop_at_each_clock_reading(
          8,
          [&tx, never_reached](std::stop_token t) {
            return tx.send_deadline(counted(77), never_reached, t);
          },
          [](const auto& r, int at) {
            ASSERT_FALSE(r.has_value());
            EXPECT_TRUE(r.error().is_cancelled()) << "send_deadline, stop at reading " << at
                                                  << ": " << r.error();
            EXPECT_EQ(r.error().value.value(), 77);
          },
          [&rx] { rx = {}; });
      if (rx) expect_queued_exactly(rx, filled);
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}
