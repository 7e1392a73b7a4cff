// recv_many: limits 0, 1, more than queued; waiting for the first message;
// disconnection; stop requests; a push_back that throws; concurrent senders
// with every message counted once, in per-producer order. Every flavor.
#include <sluice/sluice.hpp>

#include "../support/counted.hpp"
#include "../support/flavors.hpp"
#include "../support/scale.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <new>
#include <stop_token>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using sluice_test::counted;
using sluice_test::counted_registry;

template <class F>
class recv_many : public ::testing::Test {};
TYPED_TEST_SUITE(recv_many, sluice_test::all_flavors, sluice_test::flavor_name);

// Sends `values` from a thread of its own on rendezvous channels (a send
// there waits for the receiver), inline otherwise.
template <class F, class Tx, class Values>
std::thread send_all(const Tx& tx, Values values) {
  if constexpr (F::buffered) {
    for (auto v : values) EXPECT_TRUE(tx.send(v).has_value());
    return {};
  } else {
    return std::thread([tx, values] {
      for (auto v : values) EXPECT_TRUE(tx.send(v).has_value());
    });
  }
}

// A container whose push_back throws on the n-th call.
struct flaky_sink {
  std::vector<counted> items;
  int throw_at = 0;
  int calls = 0;
  void push_back(counted&& c) {
    if (++calls == throw_at) throw std::bad_alloc();
    items.push_back(std::move(c));
  }
};

}  // namespace

TYPED_TEST(recv_many, limit_zero_returns_at_once) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::vector<int> out;
  EXPECT_EQ(rx.recv_many(out, 0), 0u);  // nothing queued: does not wait
  EXPECT_TRUE(out.empty());
  std::stop_source never;
  auto r = rx.recv_many(out, 0, never.get_token());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 0u);
}

TYPED_TEST(recv_many, takes_up_to_limit_in_order) {
  if constexpr (!TypeParam::buffered) {
    GTEST_SKIP() << "a rendezvous channel queues nothing: covered by waits_for_the_first_message";
  } else {
    const int n = TypeParam::cap ? static_cast<int>(std::min<std::size_t>(*TypeParam::cap, 10)) : 10;
    auto [tx, rx] = TypeParam::template make<int>();
    for (int i = 0; i < n; ++i) ASSERT_TRUE(tx.send(i).has_value());
    std::vector<int> out{-1};  // appended to, not replaced
    const std::size_t first = rx.recv_many(out, 1);
    EXPECT_EQ(first, 1u);
    if (n > 1) {
      const std::size_t rest = rx.recv_many(out, 100);  // more than queued
      EXPECT_EQ(rest, static_cast<std::size_t>(n - 1));
    }
    ASSERT_EQ(out.size(), static_cast<std::size_t>(n + 1));
    for (int i = 0; i < n; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i) + 1], i);
    EXPECT_TRUE(rx.is_empty());
  }
}

TYPED_TEST(recv_many, works_with_any_push_back_container) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::thread t = send_all<TypeParam>(tx, std::vector<int>{5});
  std::deque<int> d;
  EXPECT_EQ(rx.recv_many(d, 3), 1u);
  if (t.joinable()) t.join();
  t = send_all<TypeParam>(tx, std::vector<int>{6});
  std::list<int> l;
  EXPECT_EQ(rx.recv_many(l, 3), 1u);
  if (t.joinable()) t.join();
  EXPECT_EQ(d.front(), 5);
  EXPECT_EQ(l.front(), 6);
}

TYPED_TEST(recv_many, waits_for_the_first_message) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::thread producer([sender = tx] {
    std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(sender.send(42).has_value());
  });
  std::vector<int> out;
  EXPECT_EQ(rx.recv_many(out, 8), 1u);
  producer.join();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], 42);
}

TYPED_TEST(recv_many, zero_only_when_disconnected_and_empty) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::thread t = send_all<TypeParam>(tx, std::vector<int>{1});
  std::vector<int> out;
  EXPECT_EQ(rx.recv_many(out, 4), 1u);
  if (t.joinable()) t.join();
  { auto drop = std::move(tx); }
  EXPECT_EQ(rx.recv_many(out, 4), 0u);
  std::stop_source never;
  auto r = rx.recv_many(out, 4, never.get_token());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 0u);
  EXPECT_EQ(out.size(), 1u);
  auto gone = std::move(rx);
  EXPECT_EQ(rx.recv_many(out, 4), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
}

TYPED_TEST(recv_many, a_stop_request_ends_the_wait_and_takes_nothing) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  std::vector<int> out;
  auto r = rx.recv_many(out, 4, stop.get_token());
  stopper.join();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), sluice::recv_timeout_error::cancelled);
  EXPECT_TRUE(out.empty());
  // The channel still works: a later message arrives.
  std::thread t = send_all<TypeParam>(tx, std::vector<int>{9});
  EXPECT_EQ(rx.recv_many(out, 4), 1u);
  if (t.joinable()) t.join();
  EXPECT_EQ(out.at(0), 9);
}

// A push_back that throws gives its message back: the next receive returns
// it first, and nothing is lost or destroyed twice.
TYPED_TEST(recv_many, throwing_push_back_gives_the_message_back) {
  if constexpr (!TypeParam::buffered) {
    GTEST_SKIP() << "needs queued messages";
  } else {
    const std::int64_t before = counted_registry::alive();
    {
      const int n = TypeParam::cap ? static_cast<int>(std::min<std::size_t>(*TypeParam::cap, 4)) : 4;
      auto [tx, rx] = TypeParam::template make<counted>();
      for (int i = 0; i < n; ++i) ASSERT_TRUE(tx.send(counted(i)).has_value());
      flaky_sink sink;
      sink.throw_at = n >= 2 ? 2 : 1;  // the second message (the only one, on bounded1)
      EXPECT_THROW(rx.recv_many(sink, 10), std::bad_alloc);
      const std::size_t kept = sink.items.size();
      ASSERT_EQ(kept, static_cast<std::size_t>(sink.throw_at - 1));
      EXPECT_EQ(rx.len(), static_cast<std::size_t>(n) - kept);  // the message went back
      sink.throw_at = 0;
      EXPECT_EQ(rx.recv_many(sink, 10), static_cast<std::size_t>(n) - kept);
      ASSERT_EQ(sink.items.size(), static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) EXPECT_EQ(sink.items[static_cast<std::size_t>(i)].value(), i);
    }
    EXPECT_EQ(counted_registry::alive(), before);
  }
}

// Producers send while the receiver takes batches: every message exactly
// once, each producer's in order, and no batch larger than the limit.
TYPED_TEST(recv_many, concurrent_senders_lose_nothing) {
  constexpr int producers = 3;
  const std::int64_t per = 3000 * sluice_test::stress_scale();
  auto [tx, rx] = TypeParam::template make<std::int64_t>();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([sender = tx, p, per] {
      for (std::int64_t i = 0; i < per; ++i) EXPECT_TRUE(sender.send(p * per + i).has_value());
    });
  }
  { auto drop = std::move(tx); }
  std::vector<std::int64_t> next(producers, 0);
  std::vector<std::int64_t> batch;
  std::int64_t total = 0;
  std::size_t limit = 1;
  for (;;) {
    batch.clear();
    const std::size_t n = rx.recv_many(batch, limit);
    if (n == 0) break;
    EXPECT_LE(n, limit);
    EXPECT_EQ(batch.size(), n);
    for (std::int64_t v : batch) {
      const auto p = static_cast<std::size_t>(v / per);
      ASSERT_LT(p, static_cast<std::size_t>(producers));
      EXPECT_EQ(v % per, next[p]) << "producer " << p << " out of order or duplicated";
      next[p] = v % per + 1;
    }
    total += static_cast<std::int64_t>(n);
    limit = limit % 7 + 1;  // 1..7
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(total, producers * per);
  for (int p = 0; p < producers; ++p) EXPECT_EQ(next[static_cast<std::size_t>(p)], per);
}
