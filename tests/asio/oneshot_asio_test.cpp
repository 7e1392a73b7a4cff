// The Asio completion-token forms of a oneshot (<sluice/asio.hpp>):
// rx.async_recv(token) and tx.async_closed(token) with use_awaitable,
// use_future and callbacks; per-operation cancellation through cancellation
// slots, including `||` against a timer, losing nothing; empty handles.
#include "../support/counted.hpp"
#include "../support/scale.hpp"

#include <sluice/asio.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <expected>
#include <future>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using sluice::oneshot_receiver;
using sluice::oneshot_sender;
using sluice::recv_timeout_error;
using sluice_test::counted;
using sluice_test::leak_check;

namespace {

constexpr auto hang_bound = 60s;  // only a did-not-hang guard

template <class T>
using recv_result = std::expected<T, recv_timeout_error>;

bool run_until_idle(asio::io_context& ioc) {
  ioc.restart();
  ioc.run_for(hang_bound);
  return ioc.stopped();
}

template <class Awaitable>
void spawn(asio::io_context& ioc, Awaitable&& a) {
  asio::co_spawn(ioc, std::forward<Awaitable>(a), [](std::exception_ptr e) {
    if (e) ADD_FAILURE() << "coroutine ended with an exception";
  });
}

TEST(oneshot_asio, use_awaitable_receives_a_value_sent_from_a_thread) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    asio::io_context ioc;
    std::optional<recv_result<counted>> got;
    spawn(ioc, [](oneshot_receiver<counted>& r,
                  std::optional<recv_result<counted>>& out) -> asio::awaitable<void> {
      out.emplace(co_await r.async_recv(asio::use_awaitable));
    }(rx, got));
    ioc.poll();  // the receive is now pending
    EXPECT_FALSE(got.has_value());
    std::thread([tx_here = std::move(tx)]() mutable {
      EXPECT_TRUE(std::move(tx_here).send(counted(3)));
    }).join();
    ASSERT_TRUE(run_until_idle(ioc));
    ASSERT_TRUE(got.has_value() && got->has_value());
    EXPECT_EQ((*got)->value(), 3);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot_asio, callback_completes_on_its_executor_never_inline) {
  auto [tx, rx] = sluice::oneshot<int>();
  ASSERT_TRUE(std::move(tx).send(4));
  asio::io_context ioc;
  std::optional<recv_result<int>> got;
  rx.async_recv(asio::bind_executor(ioc, [&](recv_result<int> r) { got.emplace(r); }));
  EXPECT_FALSE(got.has_value());  // ready at once, but still posted
  ASSERT_TRUE(run_until_idle(ioc));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->value(), 4);
  EXPECT_EQ(rx.try_recv().error(), sluice::try_recv_error::disconnected);
}

TEST(oneshot_asio, use_future_and_the_sender_leaving) {
  auto [tx, rx] = sluice::oneshot<int>();
  auto f = rx.async_recv(asio::use_future);
  tx = oneshot_sender<int>();
  ASSERT_EQ(f.wait_for(hang_bound), std::future_status::ready);
  EXPECT_EQ(f.get().error(), recv_timeout_error::disconnected);
}

TEST(oneshot_asio, empty_handles_complete_at_once) {
  oneshot_receiver<int> rx;
  oneshot_sender<int> tx;
  auto r = rx.async_recv(asio::use_future);
  auto c = tx.async_closed(asio::use_future);
  ASSERT_EQ(r.wait_for(hang_bound), std::future_status::ready);
  ASSERT_EQ(c.wait_for(hang_bound), std::future_status::ready);
  EXPECT_EQ(r.get().error(), recv_timeout_error::disconnected);
  EXPECT_TRUE(c.get());
}

TEST(oneshot_asio, pending_recv_cancelled_takes_nothing) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    asio::io_context ioc;
    asio::cancellation_signal sig;
    std::optional<recv_result<counted>> got;
    rx.async_recv(asio::bind_cancellation_slot(
        sig.slot(),
        asio::bind_executor(ioc, [&](recv_result<counted> r) { got.emplace(std::move(r)); })));
    sig.emit(asio::cancellation_type::terminal);
    ASSERT_TRUE(run_until_idle(ioc));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->error(), recv_timeout_error::cancelled);
    ASSERT_TRUE(std::move(tx).send(counted(9)));
    EXPECT_EQ(rx.recv()->value(), 9);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// The sender claims the pending receive, then the cancellation comes before
// the receive's step runs on the (not running) io_context: the value is
// either the result or still there for the next receive.
TEST(oneshot_asio, cancel_after_the_send_loses_nothing) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    asio::io_context ioc;
    asio::cancellation_signal sig;
    std::optional<recv_result<counted>> got;
    rx.async_recv(asio::bind_cancellation_slot(
        sig.slot(),
        asio::bind_executor(ioc, [&](recv_result<counted> r) { got.emplace(std::move(r)); })));
    ASSERT_TRUE(std::move(tx).send(counted(5)));
    sig.emit(asio::cancellation_type::terminal);
    ASSERT_TRUE(run_until_idle(ioc));
    ASSERT_TRUE(got.has_value());
    int copies = 0;
    if (got->has_value()) {
      EXPECT_EQ((*got)->value(), 5);
      ++copies;
    } else {
      EXPECT_EQ(got->error(), recv_timeout_error::cancelled);
    }
    if (auto left = rx.try_recv()) {
      EXPECT_EQ(left->value(), 5);
      ++copies;
    }
    EXPECT_EQ(copies, 1);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot_asio, timer_or_recv_times_out_then_the_value_arrives) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    asio::io_context ioc;
    std::optional<std::size_t> first_winner;
    std::optional<std::int64_t> second;
    spawn(ioc, [](oneshot_receiver<counted>& r, oneshot_sender<counted>& s,
                  std::optional<std::size_t>& w1,
                  std::optional<std::int64_t>& v) -> asio::awaitable<void> {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(5ms);
      auto first = co_await (r.async_recv(asio::use_awaitable) ||
                             timer.async_wait(asio::use_awaitable));
      w1 = first.index();
      EXPECT_TRUE(std::move(s).send(counted(8)));
      timer.expires_after(hang_bound);
      auto again = co_await (r.async_recv(asio::use_awaitable) ||
                             timer.async_wait(asio::use_awaitable));
      if (again.index() == 0 && std::get<0>(again)) v = std::get<0>(again)->value();
    }(rx, tx, first_winner, second));
    ASSERT_TRUE(run_until_idle(ioc));
    EXPECT_EQ(first_winner, std::optional<std::size_t>(1));  // the timer
    EXPECT_EQ(second, std::optional<std::int64_t>(8));
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A sender on another thread sends near the timer's expiry, round after
// round: the value is received once, by the race or by the receive after.
TEST(oneshot_asio, timer_race_loses_nothing) {
  leak_check leaks;
  const std::int64_t rounds = 300 * sluice_test::stress_scale();
  std::mt19937 rng(99);
  std::int64_t timeouts = 0;
  for (std::int64_t i = 0; i < rounds; ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    asio::io_context ioc;
    std::optional<std::size_t> winner;
    std::optional<std::int64_t> value;
    const auto expiry = std::chrono::microseconds(rng() % 100);
    const auto delay = static_cast<unsigned>(rng() % 3000);
    spawn(ioc, [](oneshot_receiver<counted>& r, std::chrono::microseconds e,
                  std::optional<std::size_t>& w,
                  std::optional<std::int64_t>& v) -> asio::awaitable<void> {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(e);
      auto res = co_await (r.async_recv(asio::use_awaitable) ||
                           timer.async_wait(asio::use_awaitable));
      w = res.index();
      if (res.index() == 0) {
        EXPECT_TRUE(std::get<0>(res).has_value());
        if (std::get<0>(res)) v = std::get<0>(res)->value();
      }
    }(rx, expiry, winner, value));
    ioc.poll();  // the receive is pending, the timer running
    std::thread sender([tx_here = std::move(tx), i, delay]() mutable {
      for (unsigned k = 0; k < delay; ++k) sluice::detail::cpu_relax();
      EXPECT_TRUE(std::move(tx_here).send(counted(i)));
    });
    ASSERT_TRUE(run_until_idle(ioc));
    sender.join();
    ASSERT_TRUE(winner.has_value());
    if (*winner == 0) {
      ASSERT_EQ(value, std::optional<std::int64_t>(i));
      ASSERT_EQ(rx.try_recv().error(), sluice::try_recv_error::disconnected);
    } else {
      ++timeouts;
      auto left = rx.try_recv();
      ASSERT_TRUE(left) << "round " << i << ": the timer won and the value is gone";
      ASSERT_EQ(left->value(), i);
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
  RecordProperty("timeouts", std::to_string(timeouts));
}

TEST(oneshot_asio, async_closed_completes_when_the_receiver_goes) {
  auto [tx, rx] = sluice::oneshot<int>();
  asio::io_context ioc;
  std::optional<bool> closed;
  tx.async_closed(asio::bind_executor(ioc, [&](bool c) { closed = c; }));
  ioc.poll();
  EXPECT_FALSE(closed.has_value());
  std::thread([rx_here = std::move(rx)]() mutable { rx_here = oneshot_receiver<int>(); }).join();
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(closed, std::optional<bool>(true));
  EXPECT_FALSE(std::move(tx).send(1));
}

TEST(oneshot_asio, async_closed_use_awaitable_on_close) {
  auto [tx, rx] = sluice::oneshot<int>();
  asio::io_context ioc;
  std::optional<bool> closed;
  spawn(ioc, [](oneshot_sender<int>& s, std::optional<bool>& out) -> asio::awaitable<void> {
    out = co_await s.async_closed(asio::use_awaitable);
  }(tx, closed));
  ioc.poll();
  EXPECT_FALSE(closed.has_value());
  rx.close();
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(closed, std::optional<bool>(true));
}

TEST(oneshot_asio, async_closed_cancelled_yields_false_and_send_still_works) {
  auto [tx, rx] = sluice::oneshot<int>();
  asio::io_context ioc;
  asio::cancellation_signal sig;
  std::optional<bool> closed;
  tx.async_closed(asio::bind_cancellation_slot(
      sig.slot(), asio::bind_executor(ioc, [&](bool c) { closed = c; })));
  sig.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(closed, std::optional<bool>(false));
  ASSERT_TRUE(std::move(tx).send(2));
  EXPECT_EQ(rx.recv().value(), 2);
}

}  // namespace
