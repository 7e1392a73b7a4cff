// The Asio token forms of select (<sluice/asio.hpp>):
// sluice::async_select(token, arms...), async_select(biased, token, ...) and
// selector::async_select(token), with use_awaitable, use_future and
// callbacks; per-operation cancellation through a cancellation slot (a send
// arm keeps its value; a receive arm cancelled after it took its message
// gives it back), and `||` against an Asio timer losing nothing, round
// after round, with a sender on another thread.
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
#include <thread>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using sluice_test::counted;
using sluice_test::leak_check;

namespace {

constexpr auto hang_bound = 60s;  // only a did-not-hang guard

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

using int_arm = std::expected<int, sluice::recv_error>;
using counted_arm = std::expected<counted, sluice::recv_error>;

TEST(select_asio, use_future_completes_the_arm_a_thread_makes_ready) {
  auto [t0, r0] = sluice::channel<int>();
  auto [t1, r1] = sluice::sync_channel<int>(0);
  auto f = sluice::async_select(asio::use_future, sluice::recv_from(r0), sluice::recv_from(r1));
  std::thread([&] { EXPECT_TRUE(t1.send(6)); }).join();
  ASSERT_EQ(f.wait_for(hang_bound), std::future_status::ready);
  auto r = f.get();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->index(), 1u);
  EXPECT_EQ(*std::get<1>(*r), 6);
  EXPECT_FALSE(r0.try_recv());
  (void)t0;
}

TEST(select_asio, use_awaitable_in_a_loop_until_both_channels_close) {
  const leak_check leaks;
  {
    auto [t0, r0] = sluice::sync_channel<counted>(1);
    auto [t1, r1] = sluice::channel<counted>();
    asio::io_context ioc;
    std::int64_t received = 0;
    spawn(ioc, [](sluice::receiver<counted>& a, sluice::receiver<counted>& b,
                  std::int64_t& n) -> asio::awaitable<void> {
      bool open_a = true, open_b = true;
      while (open_a || open_b) {
        auto r = co_await sluice::async_select(asio::use_awaitable,
                                               sluice::recv_from(a).only_if(open_a),
                                               sluice::recv_from(b).only_if(open_b));
        EXPECT_TRUE(r);
        if (!r) co_return;
        auto& arm = r->index() == 0 ? std::get<0>(*r) : std::get<1>(*r);
        if (arm) {
          ++n;
        } else {
          (r->index() == 0 ? open_a : open_b) = false;
        }
      }
    }(r0, r1, received));
    const std::int64_t per = sluice_test::stress_scale() * 2'000;
    std::thread p0([tx = std::move(t0), per] {
      for (std::int64_t i = 0; i < per; ++i) EXPECT_TRUE(tx.send(counted(i)));
    });
    std::thread p1([tx = std::move(t1), per] {
      for (std::int64_t i = 0; i < per; ++i) EXPECT_TRUE(tx.send(counted(i)));
    });
    ASSERT_TRUE(run_until_idle(ioc));
    p0.join();
    p1.join();
    EXPECT_EQ(received, 2 * per);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(select_asio, callback_runs_on_its_executor_and_biased_prefers_the_first_arm) {
  auto [t0, r0] = sluice::channel<int>();
  auto [t1, r1] = sluice::channel<int>();
  ASSERT_TRUE(t0.send(1));
  ASSERT_TRUE(t1.send(2));
  asio::io_context ioc;
  std::optional<std::size_t> index;
  using result = std::expected<std::variant<int_arm, int_arm>, sluice::select_timeout_error>;
  sluice::async_select(sluice::biased,
                       asio::bind_executor(ioc, [&](result r) { index = r ? r->index() : 99; }),
                       sluice::recv_from(r1), sluice::recv_from(r0));
  EXPECT_FALSE(index.has_value()) << "ready at once, but still posted";
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(index, std::optional<std::size_t>(0));
  EXPECT_EQ(*r0.try_recv(), 1);
}

TEST(select_asio, cancelling_a_pending_select_takes_and_sends_nothing) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    auto [t1, r1] = sluice::channel<counted>();
    asio::io_context ioc;
    asio::cancellation_signal sig;
    counted v(4);
    std::optional<sluice::select_timeout_error> error;
    using result =
        std::expected<std::variant<std::expected<void, sluice::send_error<counted>>, counted_arm>,
                      sluice::select_timeout_error>;
    sluice::async_select(
        asio::bind_cancellation_slot(sig.slot(), asio::bind_executor(ioc, [&](result r) {
                                       if (!r) error = r.error();
                                     })),
        sluice::send_to(tx, v), sluice::recv_from(r1));
    sig.emit(asio::cancellation_type::terminal);
    ASSERT_TRUE(run_until_idle(ioc));
    EXPECT_EQ(error, std::optional(sluice::select_timeout_error::cancelled));
    EXPECT_TRUE(v.owns()) << "a cancelled send arm keeps its value";
    EXPECT_FALSE(rx.try_recv());
    ASSERT_TRUE(t1.send(counted(1)));
    EXPECT_EQ(r1.try_recv()->value(), 1) << "the cancelled receive arm took nothing";
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A sender on another thread sends near the timer's expiry, round after
// round: each message is received once, by the select or by the try_recv
// after a timer win (a receive arm that took a message and is then
// cancelled gives it back).
TEST(select_asio, or_against_a_timer_loses_nothing) {
  const leak_check leaks;
  {
    const int rounds = static_cast<int>(sluice_test::stress_scale()) * 300;
    auto [tx, rx] = sluice::channel<counted>();
    auto [t1, r1] = sluice::channel<counted>();  // never sent on
    asio::io_context ioc;
    int by_select = 0, after_timer = 0;
    std::thread sender([&, rounds] {
      for (int i = 0; i < rounds; ++i) {
        std::this_thread::sleep_for(std::chrono::microseconds(50 + (i % 7) * 40));
        EXPECT_TRUE(tx.send(counted(i)));
      }
    });
    spawn(ioc, [](sluice::receiver<counted>& a, sluice::receiver<counted>& b, int n, int& sel,
                  int& late) -> asio::awaitable<void> {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      int next = 0;
      while (next < n) {
        timer.expires_after(std::chrono::microseconds((next % 4) * 40));
        auto r = co_await (sluice::async_select(asio::use_awaitable, sluice::recv_from(a),
                                                sluice::recv_from(b)) ||
                           timer.async_wait(asio::use_awaitable));
        if (r.index() == 0) {
          auto& s = std::get<0>(r);
          EXPECT_TRUE(s);
          if (s) {
            EXPECT_EQ(s->index(), 0u);
            EXPECT_EQ(std::get<0>(*s)->value(), next);
          }
          ++next;
          ++sel;
        } else {
          while (auto m = a.try_recv()) {
            EXPECT_EQ(m->value(), next);
            ++next;
            ++late;
          }
        }
      }
    }(rx, r1, rounds, by_select, after_timer));
    ASSERT_TRUE(run_until_idle(ioc));
    sender.join();
    EXPECT_EQ(by_select + after_timer, rounds);
    EXPECT_FALSE(rx.try_recv());
    (void)t1;
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(select_asio, a_selector_with_a_token) {
  auto [t0, r0] = sluice::channel<int>();
  auto [t1, r1] = sluice::channel<int>();
  sluice::selector sel;
  auto h0 = sel.add(sluice::recv_from(r0));
  auto h1 = sel.add(sluice::recv_from(r1));
  auto f = sel.async_select(asio::use_future);
  ASSERT_TRUE(t1.send(3));
  ASSERT_EQ(f.wait_for(hang_bound), std::future_status::ready);
  auto k = f.get();
  ASSERT_TRUE(k);
  EXPECT_EQ(*k, 1u);
  EXPECT_EQ(*h1.take(), 3);
  ASSERT_TRUE(t0.send(4));
  ASSERT_TRUE(t1.send(5));
  auto g = sel.async_select(sluice::biased, asio::use_future);
  ASSERT_EQ(g.wait_for(hang_bound), std::future_status::ready);
  EXPECT_EQ(*g.get(), 0u);
  EXPECT_EQ(*h0.take(), 4);
  sluice::selector empty;
  EXPECT_THROW((void)empty.async_select(asio::use_future), std::invalid_argument);
}

}  // namespace
