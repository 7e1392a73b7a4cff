// The Asio completion-token forms (<sluice/asio.hpp>) on every flavor:
// each kind of token, where handlers run, per-operation cancellation
// through cancellation slots, the `||` timer timeout, many coroutines on
// multi-threaded executors, threads and coroutines sharing a channel, and
// shutdown with operations pending.
#include "../support/counted.hpp"
#include "../support/flavors.hpp"
#include "../support/scale.hpp"

#include <sluice/asio.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <expected>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using sluice::recv_timeout_error;
using sluice_test::counted;
using sluice_test::leak_check;

namespace {

// Only for did-not-hang checks: nothing here should take a fraction of it.
constexpr auto hang_bound = 60s;

template <class T>
using recv_result = std::expected<T, recv_timeout_error>;
template <class T>
using send_result = std::expected<void, sluice::send_timeout_error<T>>;

// Runs `ioc` on `threads` threads until it runs out of work. False if it
// is still busy after the hang bound.
bool run_until_idle(asio::io_context& ioc, int threads = 1) {
  ioc.restart();
  std::vector<std::jthread> helpers;
  for (int i = 1; i < threads; ++i) helpers.emplace_back([&] { ioc.run_for(hang_bound); });
  ioc.run_for(hang_bound);
  helpers.clear();
  return ioc.stopped();
}

// An io_context kept running on its own threads until finish().
class background_io {
 public:
  explicit background_io(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  background_io(const background_io&) = delete;
  background_io& operator=(const background_io&) = delete;
  ~background_io() { finish(); }

  asio::io_context& context() noexcept { return ioc_; }
  asio::io_context::executor_type executor() noexcept { return ioc_.get_executor(); }
  std::vector<std::thread::id> thread_ids() const {
    std::vector<std::thread::id> ids;
    for (const auto& t : threads_) ids.push_back(t.get_id());
    return ids;
  }
  // Lets run() return once the work in flight is done, and joins.
  void finish() {
    work_.reset();
    threads_.clear();
  }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
  std::vector<std::jthread> threads_;
};

// Waits for a future with the hang bound; true if it became ready.
template <class F>
bool ready_in_time(F& f) {
  return f.wait_for(hang_bound) == std::future_status::ready;
}

// Spawns an Asio coroutine that reports an escaped exception as a failure.
template <class ExecutorOrContext, class Awaitable>
void spawn(ExecutorOrContext&& ex, Awaitable&& a) {
  asio::co_spawn(std::forward<ExecutorOrContext>(ex), std::forward<Awaitable>(a),
                 [](std::exception_ptr e) {
                   if (e) ADD_FAILURE() << "coroutine ended with an exception";
                 });
}

// Value of message `seq` from producer `producer`, for per-producer order checks.
constexpr std::int64_t stride = 1'000'000;
constexpr std::int64_t tag(int producer, int seq) { return producer * stride + seq; }

// Checks per-producer FIFO order and that nothing arrives twice.
class order_check {
 public:
  explicit order_check(int producers) : next_(static_cast<std::size_t>(producers), 0) {}
  void record(std::int64_t v) {
    const auto p = static_cast<std::size_t>(v / stride);
    const auto seq = v % stride;
    ASSERT_LT(p, next_.size()) << "value " << v;
    EXPECT_EQ(seq, next_[p]) << "producer " << p << " out of order";
    next_[p] = seq + 1;
    ++total_;
  }
  [[nodiscard]] bool each_sent(std::int64_t count) const {
    for (auto n : next_) {
      if (n != count) return false;
    }
    return true;
  }
  [[nodiscard]] std::int64_t total() const { return total_; }

 private:
  std::vector<std::int64_t> next_;
  std::int64_t total_ = 0;
};

// Counts every value received, to prove each arrives exactly once.
struct tally {
  std::multiset<std::int64_t> values;
  std::int64_t timeouts = 0;
  std::int64_t cancels = 0;

  [[nodiscard]] bool exactly_once(std::int64_t n) const {
    if (values.size() != static_cast<std::size_t>(n)) return false;
    std::int64_t expect = 0;
    for (auto v : values) {
      if (v != expect++) return false;
    }
    return true;
  }
};

// ---------------------------------------------------------------- coroutines

// Sends count values tagged with `producer`, each awaited with use_awaitable.
template <class Tx>
asio::awaitable<void> produce(Tx tx, int producer, int count) {
  for (int i = 0; i < count; ++i) {
    counted msg(tag(producer, i));
    auto r = co_await tx.async_send(std::move(msg), asio::use_awaitable);
    EXPECT_TRUE(r.has_value()) << "producer " << producer << " message " << i;
  }
}

// Receives until disconnected, checking per-producer order.
asio::awaitable<void> consume(sluice::receiver<counted>& rx, order_check& check) {
  for (;;) {
    auto r = co_await rx.async_recv(asio::use_awaitable);
    if (!r) {
      EXPECT_EQ(r.error(), recv_timeout_error::disconnected);
      co_return;
    }
    check.record(r->value());
  }
}

// The same, owning its receiver.
asio::awaitable<void> consume_owned(sluice::receiver<counted> rx, int producers, int per_producer,
                                    std::atomic<std::int64_t>& received,
                                    std::atomic<int>& channels_done) {
  order_check check(producers);
  co_await consume(rx, check);
  EXPECT_TRUE(check.each_sent(per_producer));
  received += check.total();
  ++channels_done;
}

// Receives with a racing `||` timer until disconnected.
asio::awaitable<void> recv_with_timeouts(sluice::receiver<counted>& rx, tally& t,
                                         std::uint32_t seed) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::minstd_rand rng(seed);
  std::uniform_int_distribution<int> timeout_us(50, 150);
  for (;;) {
    timer.expires_after(std::chrono::microseconds(timeout_us(rng)));
    auto r = co_await (rx.async_recv(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
    if (r.index() == 1) {
      ++t.timeouts;
      continue;
    }
    auto& got = std::get<0>(r);
    if (!got) {
      if (got.error() == recv_timeout_error::disconnected) co_return;
      ADD_FAILURE() << "the receive that won the race failed: " << got.error();
      co_return;
    }
    t.values.insert(got->value());
  }
}

// Receives until disconnected while a timer on the same executor emits a
// cancellation at a random moment of each receive.
asio::awaitable<void> recv_with_racing_cancel(sluice::receiver<counted>& rx, tally& t,
                                              std::uint32_t seed) {
  auto ex = co_await asio::this_coro::executor;
  std::minstd_rand rng(seed);
  std::uniform_int_distribution<int> delay_us(0, 150);
  for (;;) {
    // Shared with the timer's handler, which may run after this receive.
    auto sig = std::make_shared<asio::cancellation_signal>();
    asio::steady_timer canceller(ex, std::chrono::microseconds(delay_us(rng)));
    canceller.async_wait([sig](std::error_code ec) {
      if (!ec) sig->emit(asio::cancellation_type::terminal);
    });
    auto r = co_await rx.async_recv(asio::bind_cancellation_slot(sig->slot(), asio::use_awaitable));
    if (r) {
      t.values.insert(r->value());
    } else if (r.error() == recv_timeout_error::cancelled) {
      ++t.cancels;
    } else {
      EXPECT_EQ(r.error(), recv_timeout_error::disconnected);
      co_return;
    }
  }
}

// Sends 0..n-1 with short random pauses, so that arrivals fall near the
// consumer's timer expiries.
template <class Tx>
std::jthread paced_sender(Tx tx, std::int64_t n, std::uint32_t seed) {
  return std::jthread([sender = std::move(tx), n, seed] {
    std::minstd_rand rng(seed);
    std::uniform_int_distribution<int> pause_us(0, 100);
    for (std::int64_t i = 0; i < n; ++i) {
      std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng)));
      EXPECT_TRUE(sender.send(counted(i)).has_value());
    }
  });
}

// A minimal coroutine type with no await_transform, for the core
// (non-Asio) awaitables.
struct detached_task {
  struct promise_type {
    detached_task get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { ADD_FAILURE() << "exception in detached_task"; }
  };
};

// ------------------------------------------------------------------ flavors

using flavors = ::testing::Types<sluice_test::unbounded, sluice_test::rendezvous,
                                 sluice_test::bounded1, sluice_test::bounded4>;
using waiting_send_flavors =
    ::testing::Types<sluice_test::rendezvous, sluice_test::bounded1, sluice_test::bounded4>;

// Fills a bounded channel so that the next send waits (rendezvous: nothing
// to do, a send always waits for a receiver). Returns how many it queued.
template <class Tx>
std::int64_t fill(const Tx& tx, std::int64_t first_value) {
  std::int64_t n = 0;
  while (tx.try_send(counted(first_value + n)).has_value()) ++n;
  return n;
}

template <class F>
class asio_tokens : public ::testing::Test {};
TYPED_TEST_SUITE(asio_tokens, flavors, sluice_test::flavor_name);

template <class F>
class asio_cancellation : public ::testing::Test {};
TYPED_TEST_SUITE(asio_cancellation, flavors, sluice_test::flavor_name);

template <class F>
class asio_waiting_send : public ::testing::Test {};
TYPED_TEST_SUITE(asio_waiting_send, waiting_send_flavors, sluice_test::flavor_name);

template <class F>
class asio_concurrency : public ::testing::Test {};
TYPED_TEST_SUITE(asio_concurrency, flavors, sluice_test::flavor_name);

template <class F>
class asio_shutdown : public ::testing::Test {};
TYPED_TEST_SUITE(asio_shutdown, flavors, sluice_test::flavor_name);

// ------------------------------------------------------------------- tokens

TYPED_TEST(asio_tokens, use_awaitable_send_and_recv) {
  leak_check leaks;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    order_check check(1);
    asio::io_context ioc;
    spawn(ioc, produce(std::move(tx), 0, 100));
    spawn(ioc, consume(rx, check));
    ASSERT_TRUE(run_until_idle(ioc));
    EXPECT_TRUE(check.each_sent(100));
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TYPED_TEST(asio_tokens, as_tuple_use_awaitable) {
  auto [tx, rx] = TypeParam::template make<int>();
  asio::io_context ioc;
  bool done = false;
  auto receiving = [](sluice::receiver<int>& r, bool& finished) -> asio::awaitable<void> {
    auto [got] = co_await r.async_recv(asio::experimental::as_tuple(asio::use_awaitable));
    static_assert(std::is_same_v<decltype(got), recv_result<int>>);
    EXPECT_EQ(got, recv_result<int>(5));
    r.close();
    finished = true;
  };
  auto sending = [](auto s) -> asio::awaitable<void> {
    auto [sent] = co_await s.async_send(5, asio::experimental::as_tuple(asio::use_awaitable));
    EXPECT_TRUE(sent.has_value());
    auto [closed] = co_await s.async_closed(asio::experimental::as_tuple(asio::use_awaitable));
    EXPECT_TRUE(closed);
  };
  spawn(ioc, receiving(rx, done));
  spawn(ioc, sending(tx));
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_TRUE(done);
}

TYPED_TEST(asio_tokens, deferred_starts_only_when_invoked) {
  auto [tx, rx] = TypeParam::template make<int>();
  asio::io_context ioc;

  auto send_op = tx.async_send(8, asio::experimental::deferred);
  auto recv_op = rx.async_recv(asio::experimental::deferred);
  // Neither has started: nothing was sent (not even to a waiting receiver).
  EXPECT_EQ(rx.try_recv(), std::unexpected(sluice::try_recv_error::empty));

  std::optional<send_result<int>> sent;
  std::optional<recv_result<int>> got;
  std::move(send_op)(
      asio::bind_executor(ioc, [&](send_result<int> r) { sent.emplace(std::move(r)); }));
  std::move(recv_op)(
      asio::bind_executor(ioc, [&](recv_result<int> r) { got.emplace(std::move(r)); }));
  ASSERT_TRUE(run_until_idle(ioc));
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(sent->has_value());
  EXPECT_EQ(got, std::optional(recv_result<int>(8)));

  // A deferred operation given use_awaitable is co_awaited as usual.
  auto closing = [](sluice::receiver<int>& r) -> asio::awaitable<void> {
    auto op = r.async_recv(asio::experimental::deferred);
    r.close();
    auto res = co_await std::move(op)(asio::use_awaitable);
    EXPECT_EQ(res, std::unexpected(recv_timeout_error::disconnected));
  };
  auto closed_op = tx.async_closed(asio::experimental::deferred);
  spawn(ioc, closing(rx));
  bool closed = false;
  std::move(closed_op)(asio::bind_executor(ioc, [&](bool c) { closed = c; }));
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_TRUE(closed);
}

TYPED_TEST(asio_tokens, use_future_without_an_io_context) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto sent = tx.async_send(3, asio::use_future);
  auto got = rx.async_recv(asio::use_future);
  ASSERT_TRUE(ready_in_time(got));
  EXPECT_EQ(got.get(), recv_result<int>(3));
  ASSERT_TRUE(ready_in_time(sent));
  EXPECT_TRUE(sent.get().has_value());

  auto closed = tx.async_closed(asio::use_future);
  rx.close();
  ASSERT_TRUE(ready_in_time(closed));
  EXPECT_TRUE(closed.get());

  auto refused = tx.async_send(4, asio::use_future);
  ASSERT_TRUE(ready_in_time(refused));
  auto r = refused.get();
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_disconnected());
  EXPECT_EQ(r.error().value, 4);
}

TYPED_TEST(asio_tokens, plain_callback_runs_on_the_system_executor) {
  auto [tx, rx] = TypeParam::template make<int>();
  std::promise<std::pair<recv_result<int>, std::thread::id>> got;
  std::promise<std::pair<send_result<int>, std::thread::id>> sent;
  rx.async_recv([&](recv_result<int> r) {
    got.set_value({std::move(r), std::this_thread::get_id()});
  });
  tx.async_send(11, [&](send_result<int> r) {
    sent.set_value({std::move(r), std::this_thread::get_id()});
  });
  auto got_f = got.get_future();
  auto sent_f = sent.get_future();
  ASSERT_TRUE(ready_in_time(got_f));
  ASSERT_TRUE(ready_in_time(sent_f));
  auto [r, recv_thread] = got_f.get();
  auto [s, send_thread] = sent_f.get();
  EXPECT_EQ(r, recv_result<int>(11));
  EXPECT_TRUE(s.has_value());
  // Posted to the system executor: never run inline on the caller's thread.
  EXPECT_NE(recv_thread, std::this_thread::get_id());
  EXPECT_NE(send_thread, std::this_thread::get_id());

  std::promise<bool> closed;
  tx.async_closed([&](bool c) { closed.set_value(c); });
  rx.close();
  auto closed_f = closed.get_future();
  ASSERT_TRUE(ready_in_time(closed_f));
  EXPECT_TRUE(closed_f.get());
}

TYPED_TEST(asio_tokens, bound_callback_runs_on_its_strand) {
  auto [tx, rx] = TypeParam::template make<int>();
  background_io io(2);
  auto strand = asio::make_strand(io.context());
  std::promise<bool> recv_on_strand;
  std::promise<bool> send_on_strand;
  std::promise<bool> closed_on_strand;
  rx.async_recv(asio::bind_executor(strand, [&](recv_result<int> r) {
    EXPECT_EQ(r, recv_result<int>(1));
    recv_on_strand.set_value(strand.running_in_this_thread());
  }));
  tx.async_send(1, asio::bind_executor(strand, [&](send_result<int> r) {
                  EXPECT_TRUE(r.has_value());
                  send_on_strand.set_value(strand.running_in_this_thread());
                }));
  auto recv_f = recv_on_strand.get_future();
  auto send_f = send_on_strand.get_future();
  ASSERT_TRUE(ready_in_time(recv_f));
  ASSERT_TRUE(ready_in_time(send_f));
  EXPECT_TRUE(recv_f.get());
  EXPECT_TRUE(send_f.get());

  tx.async_closed(asio::bind_executor(strand, [&](bool c) {
    EXPECT_TRUE(c);
    closed_on_strand.set_value(strand.running_in_this_thread());
  }));
  rx.close();
  auto closed_f = closed_on_strand.get_future();
  ASSERT_TRUE(ready_in_time(closed_f));
  EXPECT_TRUE(closed_f.get());
}

TYPED_TEST(asio_tokens, bound_callback_runs_on_the_io_context_thread) {
  auto [tx, rx] = TypeParam::template make<int>();
  background_io io(1);
  const auto io_thread = io.thread_ids().at(0);
  std::promise<std::thread::id> recv_thread;
  std::promise<std::thread::id> send_thread;
  // The operations complete on this thread; the handlers must not.
  rx.async_recv(asio::bind_executor(
      io.executor(), [&](recv_result<int>) { recv_thread.set_value(std::this_thread::get_id()); }));
  tx.async_send(2, asio::bind_executor(io.executor(), [&](send_result<int>) {
                  send_thread.set_value(std::this_thread::get_id());
                }));
  auto recv_f = recv_thread.get_future();
  auto send_f = send_thread.get_future();
  ASSERT_TRUE(ready_in_time(recv_f));
  ASSERT_TRUE(ready_in_time(send_f));
  EXPECT_EQ(recv_f.get(), io_thread);
  EXPECT_EQ(send_f.get(), io_thread);
}

// A completion is posted, never run inside the initiating call, even when
// the operation completes at once.
TYPED_TEST(asio_tokens, completion_never_inline) {
  auto [tx, rx] = TypeParam::template make<int>();
  asio::io_context ioc;  // not running until run_until_idle
  bool sent = false;
  bool got = false;
  // Buffered: completes at once. Rendezvous: waits for the receive below.
  tx.async_send(1, asio::bind_executor(ioc, [&](send_result<int> r) {
                  EXPECT_TRUE(r.has_value());
                  sent = true;
                }));
  EXPECT_FALSE(sent);
  // A message is queued (rendezvous: a sender is waiting): completes at once.
  rx.async_recv(asio::bind_executor(ioc, [&](recv_result<int> r) {
    EXPECT_EQ(r, recv_result<int>(1));
    got = true;
  }));
  EXPECT_FALSE(got);
  EXPECT_FALSE(sent);
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_TRUE(sent);
  EXPECT_TRUE(got);

  rx.close();
  bool closed = false;
  tx.async_closed(asio::bind_executor(ioc, [&](bool c) { closed = c; }));
  EXPECT_FALSE(closed);
  bool refused = false;
  tx.async_send(2, asio::bind_executor(ioc, [&](send_result<int> r) {
                  EXPECT_TRUE(!r && r.error().is_disconnected() && r.error().value == 2);
                  refused = true;
                }));
  EXPECT_FALSE(refused);
  bool empty_after_close = false;
  rx.async_recv(asio::bind_executor(ioc, [&](recv_result<int> r) {
    EXPECT_EQ(r, std::unexpected(recv_timeout_error::disconnected));
    empty_after_close = true;
  }));
  EXPECT_FALSE(empty_after_close);
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_TRUE(closed);
  EXPECT_TRUE(refused);
  EXPECT_TRUE(empty_after_close);
}

// Empty (moved-from) handles report disconnected through the handler,
// posted like any other completion.
TYPED_TEST(asio_tokens, empty_handles_complete_disconnected) {
  auto [tx, rx] = TypeParam::template make<int>();
  auto tx2 = std::move(tx);
  auto rx2 = std::move(rx);
  asio::io_context ioc;
  int ran = 0;
  rx.async_recv(asio::bind_executor(ioc, [&](recv_result<int> r) {
    EXPECT_EQ(r, std::unexpected(recv_timeout_error::disconnected));
    ++ran;
  }));
  tx.async_send(6, asio::bind_executor(ioc, [&](send_result<int> r) {
                  ASSERT_FALSE(r.has_value());
                  EXPECT_TRUE(r.error().is_disconnected());
                  EXPECT_EQ(r.error().value, 6);
                  ++ran;
                }));
  tx.async_closed(asio::bind_executor(ioc, [&](bool c) {
    EXPECT_TRUE(c);
    ++ran;
  }));
  EXPECT_EQ(ran, 0);
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(ran, 3);
}

// The operation keeps its handler's executor busy: run() does not return
// while a receive is pending.
TYPED_TEST(asio_tokens, pending_operation_keeps_the_io_context_running) {
  auto [tx, rx] = TypeParam::template make<int>();
  asio::io_context ioc;
  std::atomic<bool> got{false};
  rx.async_recv(asio::bind_executor(ioc, [&](recv_result<int> r) {
    EXPECT_EQ(r, recv_result<int>(9));
    got = true;
  }));
  std::jthread runner([&] { ioc.run_for(hang_bound); });
  std::this_thread::sleep_for(10ms);  // let run() find the pending work
  ASSERT_TRUE(tx.send(9).has_value());
  runner.join();
  EXPECT_TRUE(got);
}

// The core awaitables (no token) in a coroutine type of one's own, resumed
// on an Asio strand through resume_on.
TYPED_TEST(asio_tokens, core_awaitable_resumes_through_an_asio_strand) {
  auto [tx, rx] = TypeParam::template make<int>();
  background_io io(2);
  auto strand = asio::make_strand(io.context());
  using outcome = std::pair<std::expected<int, sluice::recv_error>, bool>;
  std::promise<outcome> out;
  auto task = [](sluice::receiver<int>& r, decltype(strand) s,
                 std::promise<outcome>& p) -> detached_task {
    // Built in a statement of its own: GCC 12 destroys a capturing lambda
    // (like an aggregate) built inside a co_await expression twice.
    auto on_strand = sluice::resume_on([s](std::coroutine_handle<> h) { asio::post(s, h); });
    auto got = co_await r.async_recv(std::move(on_strand));
    p.set_value({std::move(got), s.running_in_this_thread()});
  };
  // Nothing is queued and no sender waits: the coroutine suspends here.
  task(rx, strand, out);
  std::jthread sender([&] { EXPECT_TRUE(tx.send(12).has_value()); });
  auto f = out.get_future();
  ASSERT_TRUE(ready_in_time(f));
  auto [got, on_strand] = f.get();
  EXPECT_EQ(got, (std::expected<int, sluice::recv_error>(12)));
  EXPECT_TRUE(on_strand);
}

// ------------------------------------------------------------- cancellation

TYPED_TEST(asio_cancellation, pending_recv_cancelled_takes_nothing) {
  leak_check leaks;
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                    asio::cancellation_type::total}) {
    auto [tx, rx] = TypeParam::template make<counted>();
    asio::io_context ioc;
    asio::cancellation_signal sig;
    std::optional<recv_result<counted>> got;
    rx.async_recv(asio::bind_cancellation_slot(
        sig.slot(),
        asio::bind_executor(ioc, [&](recv_result<counted> r) { got.emplace(std::move(r)); })));
    // The io_context is not running: no completion can run concurrently.
    sig.emit(type);
    ASSERT_TRUE(run_until_idle(ioc));
    ASSERT_TRUE(got.has_value());
    ASSERT_FALSE(got->has_value());
    EXPECT_EQ(got->error(), recv_timeout_error::cancelled);

    // Nothing of the cancelled receive is left registered: a message sent
    // afterwards goes to the next receive.
    std::jthread sender([&] { EXPECT_TRUE(tx.send(counted(42)).has_value()); });
    auto next = rx.recv();
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(next->value(), 42);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// Cancellations emitted after both operations met (the receive took the
// value, the send handed it over) but before either handler ran: whichever
// way each reports, value 5 exists exactly once - received, still in the
// channel for the next receive, or handed back to the sender.
TYPED_TEST(asio_cancellation, cancel_after_the_hand_over_loses_nothing) {
  auto [tx, rx] = TypeParam::template make<int>();
  asio::io_context ioc;
  asio::cancellation_signal recv_sig;
  asio::cancellation_signal send_sig;
  std::optional<recv_result<int>> got;
  std::optional<send_result<int>> sent;
  tx.async_send(5, asio::bind_cancellation_slot(send_sig.slot(),
                                                asio::bind_executor(ioc, [&](send_result<int> r) {
                                                  sent.emplace(std::move(r));
                                                })));
  rx.async_recv(asio::bind_cancellation_slot(
      recv_sig.slot(),
      asio::bind_executor(ioc, [&](recv_result<int> r) { got.emplace(std::move(r)); })));
  // The io_context is not running: no handler has run, none runs meanwhile.
  send_sig.emit(asio::cancellation_type::terminal);
  recv_sig.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until_idle(ioc));
  ASSERT_TRUE(sent.has_value());
  ASSERT_TRUE(got.has_value());
  int copies = 0;
  if (got->has_value()) {
    EXPECT_EQ(**got, 5);
    ++copies;
  } else {
    EXPECT_EQ(got->error(), recv_timeout_error::cancelled);
  }
  if (auto left = rx.try_recv()) {
    EXPECT_EQ(*left, 5);
    ++copies;
  }
  if (!sent->has_value()) {
    EXPECT_TRUE(sent->error().is_cancelled());
    EXPECT_EQ(sent->error().value, 5);
    ++copies;
  }
  EXPECT_EQ(copies, 1);
}

// `a || b` where the other arm completes first while the receive has
// already taken a message whose completion is still queued: that message
// must not be lost (it is either the result, or still in the channel).
// Deterministic: one io_context thread, completions queued in a known order.
TYPED_TEST(asio_cancellation, or_lost_race_keeps_a_taken_message) {
  leak_check leaks;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    auto [wake_tx, wake_rx] = sluice::channel<int>();
    asio::io_context ioc;
    std::optional<std::size_t> winner;
    std::optional<std::int64_t> value;
    auto racing = [](sluice::receiver<counted>& r, sluice::receiver<int>& other,
                     std::optional<std::size_t>& won,
                     std::optional<std::int64_t>& v) -> asio::awaitable<void> {
      auto res =
          co_await (r.async_recv(asio::use_awaitable) || other.async_recv(asio::use_awaitable));
      won = res.index();
      if (res.index() == 0 && std::get<0>(res).has_value()) v = std::get<0>(res)->value();
    };
    spawn(ioc, racing(rx, wake_rx, winner, value));
    ioc.poll();  // both receives are now pending
    // The other arm completes first (its completion is queued first), then
    // the receive takes a message (its completion is queued second).
    ASSERT_TRUE(wake_tx.send(1).has_value());
    std::jthread([&] { EXPECT_TRUE(tx.send(counted(7)).has_value()); }).join();
    ASSERT_TRUE(run_until_idle(ioc));
    ASSERT_TRUE(winner.has_value());
    if (*winner == 0) {
      EXPECT_EQ(value, std::optional<std::int64_t>(7));
    } else {
      auto left = rx.try_recv();
      ASSERT_TRUE(left.has_value()) << "the other arm won and message 7 is gone";
      EXPECT_EQ(left->value(), 7);
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A closed wait on a live channel stays pending until the receiving side
// stops.
TYPED_TEST(asio_shutdown, closed_wait_pending_while_the_receiver_lives) {
  auto [tx, rx] = TypeParam::template make<int>();
  asio::io_context ioc;
  std::optional<bool> closed;
  tx.async_closed(asio::bind_executor(ioc, [&](bool c) { closed = c; }));
  ioc.poll();
  EXPECT_FALSE(closed.has_value()) << "completed while the receiver is alive and open";
  rx.close();
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(closed, std::optional(true));
}

TYPED_TEST(asio_cancellation, pending_closed_wait_cancelled_yields_false) {
  auto [tx, rx] = TypeParam::template make<int>();
  asio::io_context ioc;
  asio::cancellation_signal sig;
  std::optional<bool> closed;
  tx.async_closed(asio::bind_cancellation_slot(
      sig.slot(), asio::bind_executor(ioc, [&](bool c) { closed = c; })));
  sig.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(closed, std::optional(false));
  EXPECT_FALSE(tx.is_disconnected());

  tx.async_closed(asio::bind_executor(ioc, [&](bool c) { closed = c; }));
  rx.close();
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(closed, std::optional(true));
}

// Cancellations land at random moments of each receive while a thread
// sends: every message is received exactly once.
TYPED_TEST(asio_cancellation, cancel_racing_delivery_loses_nothing) {
  leak_check leaks;
  const std::int64_t n = 2000 * sluice_test::stress_scale();
  tally t;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    asio::io_context ioc;
    spawn(ioc, recv_with_racing_cancel(rx, t, 7));
    auto sender = paced_sender(std::move(tx), n, 11);
    ASSERT_TRUE(run_until_idle(ioc));
  }
  EXPECT_TRUE(t.exactly_once(n)) << t.values.size() << " distinct receipts of " << n;
  EXPECT_EQ(leaks.leaked(), 0);
}

// `co_await (rx.async_recv(use_awaitable) || timer.async_wait(use_awaitable))`
// as a timeout, messages arriving near each expiry: none is lost.
TYPED_TEST(asio_cancellation, timer_race_loses_nothing) {
  leak_check leaks;
  const std::int64_t n = 3000 * sluice_test::stress_scale();
  tally t;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    asio::io_context ioc;
    spawn(ioc, recv_with_timeouts(rx, t, 3));
    auto sender = paced_sender(std::move(tx), n, 5);
    ASSERT_TRUE(run_until_idle(ioc));
  }
  EXPECT_EQ(t.values.size(), static_cast<std::size_t>(n))
      << "messages received of " << n << " (" << t.timeouts << " timeouts)";
  EXPECT_TRUE(t.exactly_once(n));
  EXPECT_EQ(leaks.leaked(), 0);
}

// The same on an io_context run by two threads, the coroutine on a strand.
TYPED_TEST(asio_cancellation, timer_race_on_a_strand_loses_nothing) {
  leak_check leaks;
  const std::int64_t n = 3000 * sluice_test::stress_scale();
  tally t;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    asio::io_context ioc;
    spawn(asio::make_strand(ioc), recv_with_timeouts(rx, t, 13));
    auto sender = paced_sender(std::move(tx), n, 17);
    ASSERT_TRUE(run_until_idle(ioc, 2));
  }
  EXPECT_EQ(t.values.size(), static_cast<std::size_t>(n))
      << "messages received of " << n << " (" << t.timeouts << " timeouts)";
  EXPECT_TRUE(t.exactly_once(n));
  EXPECT_EQ(leaks.leaked(), 0);
}

TYPED_TEST(asio_waiting_send, pending_send_cancelled_hands_value_back) {
  leak_check leaks;
  for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                    asio::cancellation_type::total}) {
    auto [tx, rx] = TypeParam::template make<counted>();
    const std::int64_t queued = fill(tx, 0);
    asio::io_context ioc;
    asio::cancellation_signal sig;
    std::optional<send_result<counted>> sent;
    tx.async_send(counted(99),
                  asio::bind_cancellation_slot(
                      sig.slot(), asio::bind_executor(ioc, [&](send_result<counted> r) {
                        sent.emplace(std::move(r));
                      })));
    sig.emit(type);
    ASSERT_TRUE(run_until_idle(ioc));
    ASSERT_TRUE(sent.has_value());
    ASSERT_FALSE(sent->has_value());
    EXPECT_TRUE(sent->error().is_cancelled());
    EXPECT_EQ(sent->error().value.value(), 99);
    EXPECT_TRUE(sent->error().value.owns());
    // Nothing was sent: the channel holds what filled it, no more.
    for (std::int64_t i = 0; i < queued; ++i) {
      auto r = rx.try_recv();
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->value(), i);
    }
    auto none = rx.try_recv();
    ASSERT_FALSE(none.has_value());
    EXPECT_EQ(none.error(), sluice::try_recv_error::empty);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A cancellation emitted from the handler's executor while the io_context
// runs, racing receives made on another thread that free room.
TYPED_TEST(asio_waiting_send, send_cancel_racing_room_loses_nothing) {
  leak_check leaks;
  const int n = 1000 * static_cast<int>(sluice_test::stress_scale());
  std::set<std::int64_t> accounted;  // sent, or handed back
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    const std::int64_t queued = fill(tx, stride);
    background_io io(1);
    std::mutex m;
    std::vector<std::int64_t> handed_back;
    std::jthread receiver([&] {
      std::minstd_rand rng(23);
      for (;;) {
        if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 100));
        auto r = rx.recv();
        if (!r) return;
        const std::scoped_lock lock(m);
        accounted.insert(r->value());
      }
    });
    std::minstd_rand rng(29);
    for (int i = 0; i < n; ++i) {
      auto sig = std::make_shared<asio::cancellation_signal>();
      std::promise<void> done;
      tx.async_send(counted(i), asio::bind_cancellation_slot(
                                    sig->slot(),
                                    asio::bind_executor(io.executor(), [&](send_result<counted> r) {
                                      if (!r) {
                                        EXPECT_TRUE(r.error().is_cancelled());
                                        const std::scoped_lock lock(m);
                                        handed_back.push_back(r.error().value.value());
                                      }
                                      done.set_value();
                                    })));
      // The cancellation is emitted on the io_context's thread, where the
      // completion runs. The timer lives until its handler ran.
      const auto delay = std::chrono::microseconds(rng() % 100);
      asio::post(io.executor(), [sig, delay, ex = io.executor()] {
        auto timer = std::make_shared<asio::steady_timer>(ex, delay);
        timer->async_wait([sig, timer](std::error_code ec) {
          if (!ec) sig->emit(asio::cancellation_type::terminal);
        });
      });
      auto f = done.get_future();
      ASSERT_TRUE(ready_in_time(f));
    }
    tx = {};
    receiver.join();
    io.finish();
    for (auto v : handed_back)
      EXPECT_TRUE(accounted.insert(v).second) << v << " sent and handed back";
    for (std::int64_t i = 0; i < queued; ++i) EXPECT_TRUE(accounted.erase(stride + i) == 1);
  }
  EXPECT_EQ(accounted.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(leaks.leaked(), 0);
}

// -------------------------------------------------------------- concurrency

// Thousands of coroutines over many channels of every flavor.
template <class Executor>
void many_coroutines(const Executor& ex, int channels, int producers, int per_producer,
                     std::atomic<std::int64_t>& received, std::atomic<int>& channels_done) {
  for (int c = 0; c < channels; ++c) {
    auto start = [&](auto ch) {
      auto& [tx, rx] = ch;
      for (int p = 0; p < producers; ++p) spawn(ex, produce(tx, p, per_producer));
      tx = {};
      spawn(ex, consume_owned(std::move(rx), producers, per_producer, received, channels_done));
    };
    switch (c % 4) {
      case 0:
        start(sluice::channel<counted>());
        break;
      case 1:
        start(sluice::sync_channel<counted>(0));
        break;
      case 2:
        start(sluice::sync_channel<counted>(1));
        break;
      default:
        start(sluice::sync_channel<counted>(4));
        break;
    }
  }
}

TEST(asio_scale, thousands_of_coroutines_on_an_io_context_with_two_threads) {
  leak_check leaks;
  constexpr int channels = 128;
  constexpr int producers = 16;
  const int per_producer = 16 * static_cast<int>(sluice_test::stress_scale());
  std::atomic<std::int64_t> received{0};
  std::atomic<int> channels_done{0};
  {
    asio::io_context ioc;
    many_coroutines(ioc.get_executor(), channels, producers, per_producer, received, channels_done);
    ASSERT_TRUE(run_until_idle(ioc, 2));
  }
  EXPECT_EQ(channels_done, channels);
  EXPECT_EQ(received, std::int64_t{channels} * producers * per_producer);
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(asio_scale, thousands_of_coroutines_on_a_thread_pool) {
  leak_check leaks;
  constexpr int channels = 128;
  constexpr int producers = 16;
  const int per_producer = 16 * static_cast<int>(sluice_test::stress_scale());
  std::atomic<std::int64_t> received{0};
  std::atomic<int> channels_done{0};
  {
    asio::thread_pool pool(2);
    many_coroutines(pool.get_executor(), channels, producers, per_producer, received,
                    channels_done);
    pool.join();  // returns once every coroutine has finished
  }
  EXPECT_EQ(channels_done, channels);
  EXPECT_EQ(received, std::int64_t{channels} * producers * per_producer);
  EXPECT_EQ(leaks.leaked(), 0);
}

// Thread producers (blocking send) and coroutine producers on one channel,
// received by a coroutine: per-producer order holds across both kinds.
TYPED_TEST(asio_concurrency, threads_and_coroutines_send_to_a_coroutine) {
  leak_check leaks;
  constexpr int per_producer = 500;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    order_check check(4);
    asio::io_context ioc;
    spawn(ioc, produce(tx, 0, per_producer));
    spawn(ioc, produce(tx, 1, per_producer));
    spawn(ioc, consume(rx, check));
    std::vector<std::jthread> threads;
    for (int p = 2; p < 4; ++p) {
      threads.emplace_back([sender = tx, p] {
        for (int i = 0; i < per_producer; ++i) {
          EXPECT_TRUE(sender.send(counted(tag(p, i))).has_value());
        }
      });
    }
    tx = {};
    ASSERT_TRUE(run_until_idle(ioc, 2));
    threads.clear();
    EXPECT_TRUE(check.each_sent(per_producer));
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// Coroutine producers on two io_context threads and a thread producer,
// received by a blocking thread.
TYPED_TEST(asio_concurrency, threads_and_coroutines_send_to_a_thread) {
  leak_check leaks;
  constexpr int per_producer = 500;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    order_check check(3);
    background_io io(2);
    spawn(io.executor(), produce(tx, 0, per_producer));
    spawn(io.executor(), produce(tx, 1, per_producer));
    std::jthread thread_producer([sender = std::move(tx)] {
      for (int i = 0; i < per_producer; ++i) {
        EXPECT_TRUE(sender.send(counted(tag(2, i))).has_value());
      }
    });
    for (auto&& msg : rx) check.record(msg.value());
    EXPECT_TRUE(check.each_sent(per_producer));
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// ----------------------------------------------------------------- shutdown

TYPED_TEST(asio_waiting_send, receiver_destroyed_hands_pending_sends_back) {
  leak_check leaks;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    fill(tx, stride);
    asio::io_context ioc;
    std::vector<std::int64_t> handed_back;
    for (int i = 0; i < 8; ++i) {
      tx.async_send(counted(i), asio::bind_executor(ioc, [&](send_result<counted> r) {
                      ASSERT_FALSE(r.has_value());
                      EXPECT_TRUE(r.error().is_disconnected());
                      handed_back.push_back(r.error().value.value());
                    }));
    }
    { auto gone = std::move(rx); }
    ASSERT_TRUE(run_until_idle(ioc));
    std::sort(handed_back.begin(), handed_back.end());
    EXPECT_EQ(handed_back, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TYPED_TEST(asio_waiting_send, close_hands_pending_sends_back_and_keeps_the_queue) {
  leak_check leaks;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    const std::int64_t queued = fill(tx, stride);
    asio::io_context ioc;
    std::vector<std::int64_t> handed_back;
    for (int i = 0; i < 8; ++i) {
      tx.async_send(counted(i), asio::bind_executor(ioc, [&](send_result<counted> r) {
                      ASSERT_FALSE(r.has_value());
                      EXPECT_TRUE(r.error().is_disconnected());
                      handed_back.push_back(r.error().value.value());
                    }));
    }
    rx.close();
    ASSERT_TRUE(run_until_idle(ioc));
    EXPECT_EQ(handed_back.size(), 8U);
    std::int64_t drained = 0;
    while (auto r = rx.recv()) EXPECT_EQ(r->value(), stride + drained++);
    EXPECT_EQ(drained, queued);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TYPED_TEST(asio_shutdown, pending_recv_sees_the_last_sender_go) {
  auto [tx, rx] = TypeParam::template make<int>();
  asio::io_context ioc;
  std::optional<recv_result<int>> got;
  rx.async_recv(asio::bind_executor(ioc, [&](recv_result<int> r) { got.emplace(std::move(r)); }));
  tx = {};
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(got, std::optional(recv_result<int>(std::unexpect, recv_timeout_error::disconnected)));
}

TYPED_TEST(asio_shutdown, closed_wait_woken_by_close) {
  auto [tx, rx] = TypeParam::template make<int>();
  background_io io(2);
  std::promise<void> waiting;
  std::promise<bool> result;
  auto waiter = [](auto s, std::promise<void>& w,
                   std::promise<bool>& res) -> asio::awaitable<void> {
    w.set_value();
    res.set_value(co_await s.async_closed(asio::use_awaitable));
  };
  spawn(io.executor(), waiter(tx, waiting, result));
  waiting.get_future().wait();
  rx.close();
  auto f = result.get_future();
  ASSERT_TRUE(ready_in_time(f));
  EXPECT_TRUE(f.get());
  EXPECT_TRUE(tx.is_disconnected());

  // Registered before the close (the io_context plays no part in that).
  std::promise<bool> late;
  auto [tx2, rx2] = TypeParam::template make<int>();
  tx2.async_closed(asio::bind_executor(io.executor(), [&](bool c) { late.set_value(c); }));
  std::jthread closer([&] { rx2.close(); });
  auto lf = late.get_future();
  ASSERT_TRUE(ready_in_time(lf));
  EXPECT_TRUE(lf.get());
}

TYPED_TEST(asio_shutdown, closed_wait_woken_by_receiver_destruction) {
  auto [tx, rx] = TypeParam::template make<int>();
  asio::io_context ioc;
  std::optional<bool> closed;
  tx.async_closed(asio::bind_executor(ioc, [&](bool c) { closed = c; }));
  { auto gone = std::move(rx); }
  ASSERT_TRUE(run_until_idle(ioc));
  EXPECT_EQ(closed, std::optional(true));
}

// An io_context stopped with operations pending: the operations complete
// (their channels shut down), their completions wait in the stopped
// io_context, and run after restart.
TYPED_TEST(asio_shutdown, stopped_io_context_runs_completions_after_restart) {
  leak_check leaks;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    asio::io_context ioc;
    std::optional<recv_result<counted>> got;
    rx.async_recv(
        asio::bind_executor(ioc, [&](recv_result<counted> r) { got.emplace(std::move(r)); }));
    ioc.stop();
    ioc.run();  // stopped: runs nothing
    std::jthread([&] { EXPECT_TRUE(tx.send(counted(5)).has_value()); }).join();
    EXPECT_FALSE(got.has_value());
    ASSERT_TRUE(run_until_idle(ioc));
    ASSERT_TRUE(got.has_value() && got->has_value());
    EXPECT_EQ((*got)->value(), 5);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// An io_context destroyed with completions still queued (never run):
// whatever the operations held - a received message, a value handed back,
// the handler and the coroutine frame it owns - is destroyed, not leaked,
// as Asio does for its own operations.
TYPED_TEST(asio_shutdown, io_context_destroyed_with_a_received_message_queued) {
  leak_check leaks;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    {
      asio::io_context ioc;
      rx.async_recv(asio::bind_executor(
          ioc, [](recv_result<counted>) { ADD_FAILURE() << "the io_context never runs"; }));
      // The message moves into the operation; its completion is posted to
      // the io_context, which is destroyed without running it.
      std::jthread([&] { EXPECT_TRUE(tx.send(counted(1)).has_value()); }).join();
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TYPED_TEST(asio_shutdown, io_context_destroyed_with_a_handed_back_value_queued) {
  leak_check leaks;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    if constexpr (TypeParam::bounded) fill(tx, stride);
    {
      asio::io_context ioc;
      tx.async_send(counted(2), asio::bind_executor(ioc, [](send_result<counted>) {
                      ADD_FAILURE() << "the io_context never runs";
                    }));
      // Bounded: the send fails, and its completion, holding the value, is
      // queued. Unbounded: it completed at once, and its completion is
      // queued already.
      rx = {};
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TYPED_TEST(asio_shutdown, io_context_destroyed_with_suspended_coroutines) {
  leak_check leaks;
  {
    auto [tx, rx] = TypeParam::template make<counted>();
    auto [tx2, rx2] = TypeParam::template make<counted>();
    if constexpr (TypeParam::bounded) fill(tx2, stride);
    {
      asio::io_context ioc;
      // One coroutine waits to receive and, on a bounded channel, one to
      // send; each holds a message in its frame.
      auto receiving = [](sluice::receiver<counted>& r) -> asio::awaitable<void> {
        const counted held(10);
        [[maybe_unused]] auto got = co_await r.async_recv(asio::use_awaitable);
        ADD_FAILURE() << "resumed after the io_context stopped";
      };
      auto sending = [](auto s) -> asio::awaitable<void> {
        const counted held(11);
        counted msg(12);
        [[maybe_unused]] auto sent = co_await s.async_send(std::move(msg), asio::use_awaitable);
        ADD_FAILURE() << "resumed after the io_context stopped";
      };
      spawn(ioc, receiving(rx));
      if constexpr (TypeParam::bounded) spawn(ioc, sending(tx2));
      ioc.poll();  // runs the coroutines until they suspend in their operations
      ioc.stop();
      tx = {};   // the receive completes, disconnected
      rx2 = {};  // the send fails, handing its value back
      // ~io_context destroys the queued completions without running them.
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// An io_context destroyed while operations still wait in channels that
// live on: the operations (their messages, handlers and coroutine frames)
// are destroyed, and the channels carry on without them.
TYPED_TEST(asio_shutdown, io_context_destroyed_with_operations_still_pending) {
  leak_check leaks;
  {
    auto [tx, rx] = TypeParam::template make<counted>();    // a receive waits
    auto [tx2, rx2] = TypeParam::template make<counted>();  // a send waits (bounded)
    auto [tx3, rx3] = TypeParam::template make<counted>();  // a coroutine waits to receive
    std::int64_t queued = 0;
    if constexpr (TypeParam::bounded) queued = fill(tx2, stride);
    {
      asio::io_context ioc;
      rx.async_recv(asio::bind_executor(
          ioc, [](recv_result<counted>) { ADD_FAILURE() << "the io_context never runs"; }));
      if constexpr (TypeParam::bounded) {
        tx2.async_send(counted(3), asio::bind_executor(ioc, [](send_result<counted>) {
                         ADD_FAILURE() << "the io_context never runs";
                       }));
      }
      tx.async_closed(
          asio::bind_executor(ioc, [](bool) { ADD_FAILURE() << "the io_context never runs"; }));
      auto receiving = [](sluice::receiver<counted>& r) -> asio::awaitable<void> {
        const counted held(10);
        [[maybe_unused]] auto got = co_await r.async_recv(asio::use_awaitable);
        ADD_FAILURE() << "resumed after the io_context was destroyed";
      };
      spawn(ioc, receiving(rx3));
      ioc.poll();  // the coroutine now waits in its receive
    }
    // A message sent now goes to the next receive, not to a dropped one.
    std::jthread sender([&] { EXPECT_TRUE(tx.send(counted(7)).has_value()); });
    auto got = rx.recv_timeout(hang_bound);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->value(), 7);
    sender.join();
    // The dropped send delivered nothing: only what filled the channel.
    for (std::int64_t i = 0; i < queued; ++i) {
      auto r = rx2.try_recv();
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->value(), stride + i);
    }
    auto none = rx2.try_recv();
    ASSERT_FALSE(none.has_value());
    EXPECT_EQ(none.error(), sluice::try_recv_error::empty);
    std::jthread sender3([&] { EXPECT_TRUE(tx3.send(counted(8)).has_value()); });
    auto got3 = rx3.recv_timeout(hang_bound);
    ASSERT_TRUE(got3.has_value());
    EXPECT_EQ(got3->value(), 8);
    sender3.join();
    rx.close();  // wakes no dropped closed wait
    EXPECT_TRUE(tx.is_disconnected());
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

}  // namespace
