// co_await rx.async_recv_many(out, limit): thread producers feeding a
// coroutine that takes batches (every message once, per-producer order, no
// batch over the limit), limit 0, disconnection, and the stop and
// resume_on forms. Every flavor.
#include "../support/coro_task.hpp"
#include "../support/flavors.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <stop_token>
#include <thread>
#include <vector>

using sluice_test::scaled;
using sluice_test::task;
using sluice_test::task_group;
using sluice_test::thread_pool;

namespace {

template <class F>
class async_recv_many : public ::testing::Test {};
TYPED_TEST_SUITE(async_recv_many, sluice_test::all_flavors, sluice_test::flavor_name);

struct tally {
  std::vector<std::int64_t> next;
  std::int64_t total = 0;
  std::int64_t errors = 0;
  bool ended = false;
};

std::size_t count_of(std::size_t n) { return n; }
std::size_t count_of(const std::expected<std::size_t, sluice::recv_timeout_error>& r) {
  EXPECT_TRUE(r.has_value()) << "cancelled without a stop request";
  return r.value_or(0);
}

// Takes batches of 1..5 until the channel is disconnected, checking order.
template <class Rx, class Make>
task consume_batches(Rx& rx, std::int64_t per, tally& t, Make make_op) {
  std::vector<std::int64_t> batch;
  std::size_t limit = 1;
  for (;;) {
    batch.clear();
    const std::size_t n = count_of(co_await make_op(rx, batch, limit));
    if (n == 0) break;
    if (n > limit || batch.size() != n) ++t.errors;
    for (std::int64_t v : batch) {
      const auto p = static_cast<std::size_t>(v / per);
      if (p >= t.next.size() || v % per != t.next[p]) {
        ++t.errors;
        continue;
      }
      t.next[p] = v % per + 1;
    }
    t.total += static_cast<std::int64_t>(n);
    limit = limit % 5 + 1;
  }
  t.ended = true;
}

template <class F, class Make>
void run_producers_into_batches(Make make_op, thread_pool* pool) {
  constexpr int producers = 3;
  const std::int64_t per = scaled(3000, 500);
  auto [tx, rx] = F::template make<std::int64_t>();
  tally t;
  t.next.assign(producers, 0);
  std::vector<std::thread> threads;
  {
    task_group tasks;
    if (pool != nullptr) {
      tasks.start_on(*pool, consume_batches(rx, per, t, make_op));
    } else {
      tasks.start(consume_batches(rx, per, t, make_op));
    }
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([sender = tx, p, per] {
        for (std::int64_t i = 0; i < per; ++i) EXPECT_TRUE(sender.send(p * per + i).has_value());
      });
    }
    { auto drop = std::move(tx); }
    for (auto& th : threads) th.join();
  }
  EXPECT_TRUE(t.ended);
  EXPECT_EQ(t.errors, 0);
  EXPECT_EQ(t.total, producers * per);
  for (std::int64_t n : t.next) EXPECT_EQ(n, per);
}

}  // namespace

TYPED_TEST(async_recv_many, thread_producers_feed_a_coroutine_in_batches) {
  run_producers_into_batches<TypeParam>(
      [](auto& rx, auto& out, std::size_t limit) { return rx.async_recv_many(out, limit); },
      nullptr);
}

TYPED_TEST(async_recv_many, resume_on_a_pool_and_stop_form) {
  thread_pool pool(2);
  std::stop_source never;
  run_producers_into_batches<TypeParam>(
      [&](auto& rx, auto& out, std::size_t limit) {
        return rx.async_recv_many(out, limit, sluice::resume_on(pool.scheduler()),
                                  never.get_token());
      },
      &pool);
}

TYPED_TEST(async_recv_many, limit_zero_and_disconnected) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::vector<int> out;
  std::atomic<int> checks{0};
  auto body = [&]() -> task {
    const std::size_t zero = co_await rx.async_recv_many(out, 0);  // nothing queued: no wait
    EXPECT_EQ(zero, 0u);
    ++checks;
    const std::size_t none = co_await rx.async_recv_many(out, 4);  // disconnected below
    EXPECT_EQ(none, 0u);
    ++checks;
  };
  {
    task_group tasks;
    tasks.start(body());
    EXPECT_EQ(checks.load(), 1);
    { auto drop = std::move(tx); }
  }
  EXPECT_EQ(checks.load(), 2);
  EXPECT_TRUE(out.empty());
}

// A stop request ends a suspended async_recv_many with cancelled; nothing
// is taken, and a later message is still received.
TYPED_TEST(async_recv_many, stop_request_cancels_and_takes_nothing) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::vector<int> out;
  std::stop_source stop;
  std::expected<std::size_t, sluice::recv_timeout_error> result = 99;
  auto body = [&]() -> task { result = co_await rx.async_recv_many(out, 4, stop.get_token()); };
  {
    task_group tasks;
    tasks.start(body());
    stop.request_stop();
  }
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error(), sluice::recv_timeout_error::cancelled);
  EXPECT_TRUE(out.empty());
  std::thread producer([sender = tx] { EXPECT_TRUE(sender.send(3).has_value()); });
  EXPECT_EQ(rx.recv_many(out, 4), 1u);
  producer.join();
  EXPECT_EQ(out.at(0), 3);
}
