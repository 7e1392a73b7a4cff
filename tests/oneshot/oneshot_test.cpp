// oneshot<T>(): sending, receiving (blocking, try, timed, stop_token,
// coroutine), close(), async_closed(), empty handles, destruction, and races
// between every pair of events that can meet on one oneshot.
//
// Every value is a sluice_test::counted whose value names it: a test checks
// that each value ends up in exactly one place (received, handed back by a
// failed send, or destroyed with the receiver), and a leak_check that every
// value was destroyed exactly once. Where a test needs the other side to be
// really waiting before it acts, it polls the state's receiver_waiting() /
// sender_waiting() (or checks that a coroutine suspended): no sleeps.
#include "../support/coro_task.hpp"
#include "../support/counted.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

using namespace std::chrono_literals;
using sluice::oneshot_receiver;
using sluice::oneshot_sender;
using sluice::recv_error;
using sluice::recv_timeout_error;
using sluice::try_recv_error;
using sluice_test::counted;
using sluice_test::leak_check;
using sluice_test::manual_scheduler;
using sluice_test::observed;
using sluice_test::scaled;
using sluice_test::task;
using sluice_test::task_group;

namespace {

// --- compile-time facts --------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<oneshot_sender<int>>);
static_assert(!std::is_copy_constructible_v<oneshot_receiver<int>>);
static_assert(std::is_nothrow_move_constructible_v<oneshot_sender<int>>);
static_assert(std::is_nothrow_move_constructible_v<oneshot_receiver<int>>);
// A request may carry its reply's sender.
static_assert(sluice::sendable<oneshot_sender<int>>);
static_assert(sluice::sendable<oneshot_receiver<int>>);
// send() consumes the sender: it is callable on an rvalue only.
template <class S>
concept sends_on_lvalue = requires(S& s) { s.send(1); };
template <class S>
concept sends_on_rvalue = requires(S& s) { std::move(s).send(1); };
static_assert(!sends_on_lvalue<oneshot_sender<int>>);
static_assert(sends_on_rvalue<oneshot_sender<int>>);
// T is constrained like a channel's.
struct throwing_move {
  throwing_move(throwing_move&&) noexcept(false) {}
};
template <class T>
concept can_make_oneshot = requires { sluice::oneshot<T>(); };
static_assert(!can_make_oneshot<throwing_move>);
static_assert(can_make_oneshot<counted>);
// The cost target: the state word, the value and one slot per side.
static_assert(sizeof(sluice::detail::oneshot_state<int>) <= 24);
static_assert(sizeof(sluice::detail::oneshot_state<std::array<char, 64>>) <= 64 + 24);

// Spins (yielding) until `cond` holds; fails the test after a generous bound
// rather than hanging (only a did-not-hang guard, never a correctness wait).
template <class Cond>
bool eventually(Cond cond) {
  const auto limit = std::chrono::steady_clock::now() + 60s;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > limit) return false;
    std::this_thread::yield();
  }
  return true;
}

template <class T>
bool receiver_waiting(const oneshot_receiver<T>& rx) {
  return sluice::detail::oneshot_access::state(rx)->receiver_waiting();
}
template <class T>
bool sender_waiting(const oneshot_sender<T>& tx) {
  return sluice::detail::oneshot_access::state(tx)->sender_waiting();
}

// --- basics ----------------------------------------------------------------------------

TEST(oneshot, send_then_recv) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    EXPECT_TRUE(tx);
    EXPECT_TRUE(rx);
    EXPECT_FALSE(tx.is_closed());
    ASSERT_TRUE(std::move(tx).send(counted(7)));
    EXPECT_FALSE(tx);  // consumed
    auto r = rx.recv();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->value(), 7);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot, value_is_received_at_most_once) {
  auto [tx, rx] = sluice::oneshot<std::string>();
  ASSERT_TRUE(std::move(tx).send("once"));
  auto first = rx.try_recv();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, "once");
  EXPECT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
  EXPECT_FALSE(rx.recv());
  EXPECT_EQ(rx.recv_timeout(10ms).error(), recv_timeout_error::disconnected);
  EXPECT_TRUE(rx);  // still a handle; its value is used up
}

TEST(oneshot, recv_blocks_until_a_send_from_another_thread) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    std::optional<std::expected<counted, recv_error>> got;
    std::thread receiver([&, &rx_here = rx] { got.emplace(rx_here.recv()); });
    ASSERT_TRUE(eventually([&] { return receiver_waiting(rx); }));  // really blocked
    ASSERT_TRUE(std::move(tx).send(counted(42)));
    receiver.join();
    ASSERT_TRUE(got.has_value() && *got);
    EXPECT_EQ((*got)->value(), 42);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot, sender_dropped_unused_wakes_a_blocked_receiver) {
  auto [tx, rx] = sluice::oneshot<counted>();
  std::optional<std::expected<counted, recv_error>> got;
  std::thread receiver([&, &rx_here = rx] { got.emplace(rx_here.recv()); });
  ASSERT_TRUE(eventually([&] { return receiver_waiting(rx); }));
  { auto gone = std::move(tx); }
  receiver.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(*got);
  EXPECT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
}

TEST(oneshot, sender_dropped_unused_before_recv) {
  auto [tx, rx] = sluice::oneshot<int>();
  tx = oneshot_sender<int>();  // drops the original
  EXPECT_FALSE(rx.recv());
  EXPECT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
  EXPECT_EQ(rx.recv_timeout(1s).error(), recv_timeout_error::disconnected);
}

TEST(oneshot, receiver_dropped_send_hands_the_value_back) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    { auto gone = std::move(rx); }
    EXPECT_TRUE(tx.is_closed());
    auto r = std::move(tx).send(counted(5));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().value.value(), 5);
    EXPECT_TRUE(r.error().value.owns());
    EXPECT_FALSE(tx);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot, close_then_send_fails_with_the_value_back) {
  auto [tx, rx] = sluice::oneshot<std::unique_ptr<int>>();
  rx.close();
  rx.close();  // idempotent
  EXPECT_TRUE(tx.is_closed());
  auto r = std::move(tx).send(std::make_unique<int>(3));
  ASSERT_FALSE(r);
  ASSERT_TRUE(r.error().value);
  EXPECT_EQ(*r.error().value, 3);
  EXPECT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
  EXPECT_FALSE(rx.recv());
}

TEST(oneshot, close_after_send_keeps_the_value_receivable) {
  auto [tx, rx] = sluice::oneshot<std::string>();
  ASSERT_TRUE(std::move(tx).send("kept"));
  rx.close();
  auto r = rx.try_recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "kept");
  EXPECT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
}

TEST(oneshot, close_after_send_recv_gets_the_value) {
  auto [tx, rx] = sluice::oneshot<int>();
  ASSERT_TRUE(std::move(tx).send(9));
  rx.close();
  auto r = rx.recv();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 9);
}

TEST(oneshot, close_wakes_nobody_but_a_blocked_recv_still_gets_the_value) {
  // close() by the receiver itself; the sender, still alive, fails later.
  auto [tx, rx] = sluice::oneshot<int>();
  rx.close();
  EXPECT_EQ(rx.recv_timeout(0s).error(), recv_timeout_error::disconnected);
  EXPECT_FALSE(std::move(tx).send(1));
}

TEST(oneshot, try_recv_empty_then_value_then_disconnected) {
  auto [tx, rx] = sluice::oneshot<int>();
  EXPECT_EQ(rx.try_recv().error(), try_recv_error::empty);
  EXPECT_EQ(rx.try_recv().error(), try_recv_error::empty);
  ASSERT_TRUE(std::move(tx).send(1));
  EXPECT_EQ(rx.try_recv().value(), 1);
  EXPECT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
}

TEST(oneshot, recv_timeout_times_out_then_the_value_still_arrives) {
  auto [tx, rx] = sluice::oneshot<int>();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(rx.recv_timeout(20ms).error(), recv_timeout_error::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_EQ(rx.recv_timeout(0ms).error(), recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_timeout(-5s).error(), recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_deadline(std::chrono::steady_clock::now() + 5ms).error(),
            recv_timeout_error::timeout);
  EXPECT_EQ(rx.recv_deadline(std::chrono::system_clock::now() - 1s).error(),
            recv_timeout_error::timeout);
  ASSERT_TRUE(std::move(tx).send(4));
  EXPECT_EQ(rx.recv_timeout(0ms).value(), 4);  // a zero timeout still tries once
}

TEST(oneshot, huge_timeouts_wait_for_the_value) {
  auto [tx, rx] = sluice::oneshot<int>();
  std::thread sender([&, tx_here = std::move(tx)]() mutable {
    ASSERT_TRUE(eventually([&] { return receiver_waiting(rx); }));
    ASSERT_TRUE(std::move(tx_here).send(11));
  });
  EXPECT_EQ(rx.recv_timeout(std::chrono::nanoseconds::max()).value(), 11);
  sender.join();
  auto [tx2, rx2] = sluice::oneshot<int>();
  std::thread sender2([&, tx_here = std::move(tx2)]() mutable {
    ASSERT_TRUE(eventually([&] { return receiver_waiting(rx2); }));
    ASSERT_TRUE(std::move(tx_here).send(12));
  });
  EXPECT_EQ(rx2.recv_deadline(std::chrono::system_clock::time_point::max()).value(), 12);
  sender2.join();
}

TEST(oneshot, recv_timeout_sees_the_sender_leave) {
  auto [tx, rx] = sluice::oneshot<int>();
  std::thread dropper([&, tx_here = std::move(tx)]() mutable {
    ASSERT_TRUE(eventually([&] { return receiver_waiting(rx); }));
    tx_here = oneshot_sender<int>();
  });
  EXPECT_EQ(rx.recv_timeout(60s).error(), recv_timeout_error::disconnected);
  dropper.join();
}

TEST(oneshot, stop_request_cancels_a_blocked_recv_and_the_value_stays) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    std::stop_source stop;
    std::optional<std::expected<counted, recv_timeout_error>> got;
    std::thread receiver([&, &rx_here = rx] { got.emplace(rx_here.recv(stop.get_token())); });
    ASSERT_TRUE(eventually([&] { return receiver_waiting(rx); }));
    stop.request_stop();
    receiver.join();
    ASSERT_TRUE(got.has_value());
    ASSERT_FALSE(*got);
    EXPECT_EQ(got->error(), recv_timeout_error::cancelled);
    EXPECT_FALSE(receiver_waiting(rx));  // unregistered
    ASSERT_TRUE(std::move(tx).send(counted(8)));
    auto r = rx.recv(stop.get_token());  // already stopped, but the value is there
    ASSERT_TRUE(r);
    EXPECT_EQ(r->value(), 8);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot, stop_forms_of_the_timed_receives) {
  auto [tx, rx] = sluice::oneshot<int>();
  std::stop_source stop;
  stop.request_stop();
  EXPECT_EQ(rx.recv_timeout(60s, stop.get_token()).error(), recv_timeout_error::cancelled);
  EXPECT_EQ(rx.recv_deadline(std::chrono::steady_clock::now() + 60s, stop.get_token()).error(),
            recv_timeout_error::cancelled);
  std::stop_source never;
  EXPECT_EQ(rx.recv_timeout(1ms, never.get_token()).error(), recv_timeout_error::timeout);
  ASSERT_TRUE(std::move(tx).send(2));
  EXPECT_EQ(rx.recv_timeout(60s, stop.get_token()).value(), 2);
}

TEST(oneshot, empty_handles_report_disconnected) {
  oneshot_sender<int> tx;
  oneshot_receiver<int> rx;
  EXPECT_FALSE(tx);
  EXPECT_FALSE(rx);
  EXPECT_TRUE(tx.is_closed());
  auto s = std::move(tx).send(3);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().value, 3);
  EXPECT_FALSE(rx.recv());
  EXPECT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
  EXPECT_EQ(rx.recv_timeout(1s).error(), recv_timeout_error::disconnected);
  EXPECT_EQ(rx.recv_deadline(std::chrono::steady_clock::now() + 1s).error(),
            recv_timeout_error::disconnected);
  std::stop_source stop;
  EXPECT_EQ(rx.recv(stop.get_token()).error(), recv_timeout_error::disconnected);
  rx.close();

  auto [tx2, rx2] = sluice::oneshot<int>();
  auto tx3 = std::move(tx2);
  auto rx3 = std::move(rx2);
  EXPECT_FALSE(tx2);  // NOLINT(bugprone-use-after-move): moved-from is specified
  EXPECT_FALSE(rx2);  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(tx2.is_closed());
  EXPECT_EQ(rx2.try_recv().error(), try_recv_error::disconnected);
  EXPECT_FALSE(std::move(tx2).send(1));
  ASSERT_TRUE(std::move(tx3).send(4));
  EXPECT_EQ(rx3.recv().value(), 4);
}

TEST(oneshot, move_assignment_releases_the_old_pair) {
  leak_check leaks;
  {
    auto [tx1, rx1] = sluice::oneshot<counted>();
    auto [tx2, rx2] = sluice::oneshot<counted>();
    ASSERT_TRUE(std::move(tx1).send(counted(1)));
    EXPECT_EQ(leaks.leaked(), 1);
    rx1 = std::move(rx2);  // destroys the unreceived 1
    EXPECT_EQ(leaks.leaked(), 0);
    tx1 = std::move(tx2);
    ASSERT_TRUE(std::move(tx1).send(counted(2)));
    EXPECT_EQ(rx1.recv()->value(), 2);
    swap(rx1, rx2);
    EXPECT_FALSE(rx1);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot, receiver_dropped_destroys_an_unreceived_value_once) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    ASSERT_TRUE(std::move(tx).send(counted(1)));
    EXPECT_EQ(leaks.leaked(), 1);
    { auto gone = std::move(rx); }
    EXPECT_EQ(leaks.leaked(), 0);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// An Asio receive cancelled after it took the value gives it back through
// its steps (receive_stash's role on a channel): the next receive gets it.
TEST(oneshot, a_value_given_back_is_received_next) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    ASSERT_TRUE(std::move(tx).send(counted(5)));
    using steps = sluice::detail::oneshot_state<counted>::recv_steps<recv_timeout_error>;
    std::expected<counted, recv_timeout_error> r(std::unexpect, recv_timeout_error::timeout);
    steps st(*sluice::detail::oneshot_access::state(rx), r, recv_timeout_error::timeout,
             recv_timeout_error::disconnected);
    ASSERT_TRUE(st.attempt());
    ASSERT_TRUE(r);
    EXPECT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
    st.give_back(std::move(*r));
    EXPECT_EQ(rx.try_recv()->value(), 5);
    EXPECT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot, oneshot_sender_inside_a_channel_message) {
  struct request {
    int x;
    oneshot_sender<int> reply;
  };
  auto [tx, rx] = sluice::channel<request>();
  auto [reply_tx, reply_rx] = sluice::oneshot<int>();
  ASSERT_TRUE(tx.send(request{20, std::move(reply_tx)}));
  std::thread worker([&rx_here = rx] {
    auto req = rx_here.recv();
    ASSERT_TRUE(req);
    ASSERT_TRUE(std::move(req->reply).send(req->x + 1));
  });
  EXPECT_EQ(reply_rx.recv().value(), 21);
  worker.join();
}

// --- coroutines ------------------------------------------------------------------------

template <class T, class E>
struct outcome {
  std::optional<std::expected<T, E>> result;
  bool suspended = false;
};

task recv_into(oneshot_receiver<counted>& rx, outcome<counted, recv_error>& out) {
  auto op = rx.async_recv();
  observed seen(op);
  auto r = co_await seen;
  out.suspended = seen.reached_suspend() && !seen.was_ready();
  out.result.emplace(std::move(r));
}

task recv_into_stoppable(oneshot_receiver<counted>& rx, std::stop_token stop,
                         outcome<counted, recv_timeout_error>& out) {
  auto r = co_await rx.async_recv(std::move(stop));
  out.result.emplace(std::move(r));
}

TEST(oneshot_async, async_recv_completes_at_once_when_the_value_is_there) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    ASSERT_TRUE(std::move(tx).send(counted(3)));
    outcome<counted, recv_error> out;
    {
      task_group group;
      group.start(recv_into(rx, out));
    }
    ASSERT_TRUE(out.result.has_value());
    ASSERT_TRUE(*out.result);
    EXPECT_EQ((*out.result)->value(), 3);
    EXPECT_FALSE(out.suspended);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot_async, async_recv_suspends_then_a_thread_completes_it) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    outcome<counted, recv_error> out;
    {
      task_group group;
      group.start(recv_into(rx, out));
      EXPECT_FALSE(out.result.has_value());  // suspended
      EXPECT_TRUE(receiver_waiting(rx));
      std::thread sender([tx_here = std::move(tx)]() mutable {
        ASSERT_TRUE(std::move(tx_here).send(counted(10)));
      });
      sender.join();  // the coroutine ran to its end on the sender's thread
      EXPECT_TRUE(group.all_finished());
    }
    ASSERT_TRUE(out.result.has_value());
    ASSERT_TRUE(*out.result);
    EXPECT_EQ((*out.result)->value(), 10);
    EXPECT_TRUE(out.suspended);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot_async, async_recv_sees_the_sender_leave) {
  auto [tx, rx] = sluice::oneshot<counted>();
  outcome<counted, recv_error> out;
  {
    task_group group;
    group.start(recv_into(rx, out));
    std::thread dropper(
        [tx_here = std::move(tx)]() mutable { tx_here = oneshot_sender<counted>(); });
    dropper.join();
  }
  ASSERT_TRUE(out.result.has_value());
  EXPECT_FALSE(*out.result);
}

TEST(oneshot_async, async_recv_on_an_empty_handle_is_disconnected) {
  oneshot_receiver<counted> rx;
  outcome<counted, recv_error> out;
  {
    task_group group;
    group.start(recv_into(rx, out));
  }
  ASSERT_TRUE(out.result.has_value());  // completed within start(): never left suspended
  EXPECT_FALSE(*out.result);
}

TEST(oneshot_async, stop_cancels_async_recv_and_the_value_stays) {
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    outcome<counted, recv_timeout_error> out;
    std::stop_source stop;
    {
      task_group group;
      group.start(recv_into_stoppable(rx, stop.get_token(), out));
      EXPECT_FALSE(out.result.has_value());
      stop.request_stop();  // resumes it inline, here
      EXPECT_TRUE(group.all_finished());
    }
    ASSERT_TRUE(out.result.has_value());
    ASSERT_FALSE(*out.result);
    EXPECT_EQ(out.result->error(), recv_timeout_error::cancelled);
    ASSERT_TRUE(std::move(tx).send(counted(6)));
    EXPECT_EQ(rx.try_recv()->value(), 6);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

task recv_resume_on(oneshot_receiver<int>& rx, manual_scheduler& sched,
                    std::optional<std::expected<int, recv_error>>& out) {
  out.emplace(co_await rx.async_recv(sluice::resume_on(sched.scheduler())));
}

TEST(oneshot_async, resume_on_hands_the_coroutine_to_the_scheduler) {
  auto [tx, rx] = sluice::oneshot<int>();
  manual_scheduler sched;
  std::optional<std::expected<int, recv_error>> out;
  task_group group;
  group.start(recv_resume_on(rx, sched, out));
  ASSERT_TRUE(std::move(tx).send(5));
  EXPECT_FALSE(out.has_value());  // not resumed inline
  EXPECT_EQ(sched.queued(), 1u);
  EXPECT_EQ(sched.run(), 1u);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->value(), 5);
}

task wait_closed(const oneshot_sender<int>& tx, bool& done) {
  co_await tx.async_closed();
  done = true;
}

task wait_closed_stoppable(const oneshot_sender<int>& tx, std::stop_token stop,
                           std::optional<bool>& out) {
  out = co_await tx.async_closed(std::move(stop));
}

TEST(oneshot_async, async_closed_completes_when_the_receiver_is_dropped) {
  auto [tx, rx] = sluice::oneshot<int>();
  bool done = false;
  task_group group;
  group.start(wait_closed(tx, done));
  EXPECT_FALSE(done);
  EXPECT_TRUE(sender_waiting(tx));
  std::thread dropper([rx_here = std::move(rx)]() mutable { rx_here = oneshot_receiver<int>(); });
  dropper.join();
  EXPECT_TRUE(group.wait_for(60s));
  EXPECT_TRUE(done);
  EXPECT_TRUE(tx.is_closed());
  EXPECT_FALSE(std::move(tx).send(1));
}

TEST(oneshot_async, async_closed_completes_on_close_and_a_value_sent_before_stays) {
  auto [tx, rx] = sluice::oneshot<int>();
  bool done = false;
  {
    task_group group;
    group.start(wait_closed(tx, done));
    EXPECT_FALSE(done);
    rx.close();
    EXPECT_TRUE(done);  // resumed inline by close()
  }
  // Once closed, a new wait completes at once.
  bool again = false;
  {
    task_group group;
    group.start(wait_closed(tx, again));
    EXPECT_TRUE(again);
  }
  EXPECT_FALSE(std::move(tx).send(1));
}

TEST(oneshot_async, async_closed_cancelled_then_send_works) {
  auto [tx, rx] = sluice::oneshot<int>();
  std::optional<bool> out;
  std::stop_source stop;
  {
    task_group group;
    group.start(wait_closed_stoppable(tx, stop.get_token(), out));
    EXPECT_FALSE(out.has_value());
    stop.request_stop();
  }
  ASSERT_TRUE(out.has_value());
  EXPECT_FALSE(*out);  // cancelled
  EXPECT_FALSE(sender_waiting(tx));
  ASSERT_TRUE(std::move(tx).send(3));
  EXPECT_EQ(rx.recv().value(), 3);
}

TEST(oneshot_async, async_closed_on_an_empty_handle_completes_at_once) {
  oneshot_sender<int> tx;
  bool done = false;
  task_group group;
  group.start(wait_closed(tx, done));
  EXPECT_TRUE(done);
}

task wait_closed_counted(const oneshot_sender<counted>& tx, bool& done) {
  co_await tx.async_closed();
  done = true;
}

TEST(oneshot_async, both_sides_wait_at_once) {
  // The receiver awaits the value while the sender awaits closing (one slot
  // per side): close() ends the sender's wait only; the failed send that
  // follows ends the receiver's, with "disconnected".
  leak_check leaks;
  {
    auto [tx, rx] = sluice::oneshot<counted>();
    bool closed = false;
    outcome<counted, recv_error> out;
    {
      task_group group;
      group.start(recv_into(rx, out));
      group.start(wait_closed_counted(tx, closed));
      EXPECT_TRUE(receiver_waiting(rx));
      EXPECT_TRUE(sender_waiting(tx));
      std::thread closer([&rx_here = rx] { rx_here.close(); });
      closer.join();
      EXPECT_TRUE(closed);
      EXPECT_FALSE(out.result.has_value());  // the receive still waits
      auto r = std::move(tx).send(counted(1));
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().value.value(), 1);
      EXPECT_TRUE(group.all_finished());
    }
    ASSERT_TRUE(out.result.has_value());
    EXPECT_FALSE(*out.result);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- races -----------------------------------------------------------------------------

std::int64_t race_rounds() { return scaled(3000, 300); }

// Runs `f` on a thread that, once started, waits for go() and then spins
// `delay` pause steps: go() returns when the thread is ready, so both sides
// act at nearly the same moment, and the delays (random per round) shift
// which one acts first across the rounds.
void pause_steps(unsigned n) {
  for (unsigned i = 0; i < n; ++i) sluice::detail::cpu_relax();
}

class racer {
 public:
  template <class F>
  explicit racer(F f, unsigned delay = 0)
      : thread_([this, delay, f = std::move(f)]() mutable {
          ready_.store(true, std::memory_order_release);
          // Yielding: a new thread starts on its parent's core, where a
          // plain spin would keep the parent from calling go().
          while (!go_.load(std::memory_order_acquire)) std::this_thread::yield();
          pause_steps(delay);
          f();
        }) {}
  void go() {
    while (!ready_.load(std::memory_order_acquire)) std::this_thread::yield();
    go_.store(true, std::memory_order_release);
  }
  void join() { thread_.join(); }

 private:
  std::atomic<bool> ready_{false};
  std::atomic<bool> go_{false};
  std::thread thread_;
};

// Random pause steps for one side of a race (a few microseconds at most).
unsigned jitter() {
  static thread_local std::mt19937 rng(2024);
  return static_cast<unsigned>(rng() % 3000);
}

TEST(oneshot_race, send_vs_receiver_drop) {
  leak_check leaks;
  std::int64_t sent = 0;
  std::int64_t returned = 0;
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    std::optional<std::expected<void, sluice::send_error<counted>>> r;
    racer t(
        [&, tx_here = std::move(tx), i]() mutable {
          r.emplace(std::move(tx_here).send(counted(i)));
        },
        jitter());
    t.go();
    pause_steps(jitter());
    { auto gone = std::move(rx); }
    t.join();
    ASSERT_TRUE(r.has_value());
    if (*r) {
      ++sent;
    } else {
      ++returned;
      ASSERT_EQ(r->error().value.value(), i);
    }
    r.reset();
    ASSERT_EQ(leaks.leaked(), 0) << "round " << i;
  }
  EXPECT_EQ(sent + returned, race_rounds());
}

TEST(oneshot_race, send_vs_close) {
  leak_check leaks;
  std::int64_t before = 0;
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    std::optional<std::expected<void, sluice::send_error<counted>>> r;
    racer t(
        [&, tx_here = std::move(tx), i]() mutable {
          r.emplace(std::move(tx_here).send(counted(i)));
        },
        jitter());
    t.go();
    pause_steps(jitter());
    rx.close();
    t.join();
    auto got = rx.try_recv();
    ASSERT_TRUE(r.has_value());
    if (*r) {
      ++before;  // sent before close: still receivable, exactly once
      ASSERT_TRUE(got) << "round " << i;
      ASSERT_EQ(got->value(), i);
    } else {
      ASSERT_EQ(got.error(), try_recv_error::disconnected);
      ASSERT_EQ(r->error().value.value(), i);
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
  RecordProperty("sent_before_close", std::to_string(before));
}

TEST(oneshot_race, send_vs_recv_timeout) {
  leak_check leaks;
  std::mt19937 rng(12345);
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    const auto wait = std::chrono::microseconds(rng() % 50);
    std::optional<std::expected<void, sluice::send_error<counted>>> r;
    racer t(
        [&, tx_here = std::move(tx), i]() mutable {
          r.emplace(std::move(tx_here).send(counted(i)));
        },
        jitter());
    t.go();
    pause_steps(jitter());
    auto got = rx.recv_timeout(wait);
    t.join();
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(*r);  // the receiver never went away
    if (got) {
      ASSERT_EQ(got->value(), i);
    } else {
      ASSERT_EQ(got.error(), recv_timeout_error::timeout);
      auto later = rx.recv_timeout(0s);  // the value is there now, exactly once
      ASSERT_TRUE(later) << "round " << i;
      ASSERT_EQ(later->value(), i);
    }
    ASSERT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot_race, send_vs_stop_request) {
  leak_check leaks;
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    std::stop_source stop;
    racer sender(
        [tx_here = std::move(tx), i]() mutable { (void)std::move(tx_here).send(counted(i)); },
        jitter());
    racer stopper([&stop] { stop.request_stop(); }, jitter());
    sender.go();
    stopper.go();
    pause_steps(jitter());
    auto got = rx.recv(stop.get_token());
    sender.join();
    stopper.join();
    if (got) {
      ASSERT_EQ(got->value(), i);
    } else {
      ASSERT_EQ(got.error(), recv_timeout_error::cancelled) << "round " << i;
      auto later = rx.recv(stop.get_token());  // sent by now: returned despite the stop
      ASSERT_TRUE(later) << "round " << i;
      ASSERT_EQ(later->value(), i);
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot_race, sender_drop_vs_blocked_recv) {
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    racer t([tx_here = std::move(tx)]() mutable { tx_here = oneshot_sender<counted>(); }, jitter());
    t.go();
    pause_steps(jitter());
    auto got = rx.recv();
    t.join();
    ASSERT_FALSE(got) << "round " << i;
  }
}

TEST(oneshot_race, sender_drop_vs_receiver_drop) {
  leak_check leaks;
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    const bool send_first = (i % 2) == 0;
    if (send_first) {
      ASSERT_TRUE(std::move(tx).send(counted(i)));
    }
    racer t([tx_here = std::move(tx)]() mutable { tx_here = oneshot_sender<counted>(); }, jitter());
    t.go();
    pause_steps(jitter());
    rx = oneshot_receiver<counted>();
    t.join();
    ASSERT_EQ(leaks.leaked(), 0) << "round " << i;  // freed once, value destroyed once
  }
}

TEST(oneshot_race, send_vs_timeout_vs_close_vs_stop) {
  // All four at once: a send, a timed stoppable receive, a close and a stop
  // request. The value ends in exactly one place.
  leak_check leaks;
  std::mt19937 rng(777);
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    std::stop_source stop;
    std::optional<std::expected<void, sluice::send_error<counted>>> sent;
    std::atomic<bool> closed{false};
    racer sender([&, tx_here = std::move(tx), i]() mutable {
      sent.emplace(std::move(tx_here).send(counted(i)));
    }, jitter());
    racer stopper([&] { stop.request_stop(); }, jitter());
    const auto wait = std::chrono::microseconds(rng() % 30);
    const bool close_too = (rng() % 2) == 0;
    sender.go();
    stopper.go();
    pause_steps(jitter());
    auto got = rx.recv_timeout(wait, stop.get_token());
    if (close_too) {
      rx.close();
      closed = true;
    }
    sender.join();
    stopper.join();
    ASSERT_TRUE(sent.has_value());
    int places = 0;
    if (got) {
      ASSERT_EQ(got->value(), i);
      ++places;
    } else {
      ASSERT_NE(got.error(), recv_timeout_error::disconnected) << "round " << i;
    }
    auto later = rx.try_recv();
    if (later) {
      ASSERT_EQ(later->value(), i);
      ++places;
    }
    if (!*sent) {
      ASSERT_TRUE(close_too);
      ASSERT_EQ(sent->error().value.value(), i);
      ++places;
    }
    ASSERT_EQ(places, 1) << "round " << i;
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot_race, async_recv_vs_send_from_a_thread) {
  leak_check leaks;
  std::int64_t suspended = 0;
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    outcome<counted, recv_error> out;
    racer t(
        [tx_here = std::move(tx), i]() mutable {
          ASSERT_TRUE(std::move(tx_here).send(counted(i)));
        },
        jitter());
    {
      task_group group;
      t.go();
      pause_steps(jitter());
      group.start(recv_into(rx, out));
      t.join();
    }
    ASSERT_TRUE(out.result.has_value());
    ASSERT_TRUE(*out.result) << "round " << i;
    ASSERT_EQ((*out.result)->value(), i);
    suspended += out.suspended ? 1 : 0;
  }
  EXPECT_EQ(leaks.leaked(), 0);
  RecordProperty("suspended", std::to_string(suspended));
}

TEST(oneshot_race, async_recv_vs_stop_vs_send) {
  leak_check leaks;
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<counted>();
    outcome<counted, recv_timeout_error> out;
    std::stop_source stop;
    racer sender(
        [tx_here = std::move(tx), i]() mutable {
          ASSERT_TRUE(std::move(tx_here).send(counted(i)));
        },
        jitter());
    racer stopper([&stop] { stop.request_stop(); }, jitter());
    {
      task_group group;
      sender.go();
      stopper.go();
      pause_steps(jitter());
      group.start(recv_into_stoppable(rx, stop.get_token(), out));
      sender.join();
      stopper.join();
    }
    ASSERT_TRUE(out.result.has_value());
    if (*out.result) {
      ASSERT_EQ((*out.result)->value(), i);
      ASSERT_EQ(rx.try_recv().error(), try_recv_error::disconnected);
    } else {
      ASSERT_EQ(out.result->error(), recv_timeout_error::cancelled) << "round " << i;
      auto later = rx.try_recv();
      ASSERT_TRUE(later) << "round " << i;
      ASSERT_EQ(later->value(), i);
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(oneshot_race, async_closed_vs_receiver_drop_or_close) {
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<int>();
    bool done = false;
    const bool drop = (i % 2) == 0;
    racer t([&, rx_here = std::move(rx)]() mutable {
      if (drop) {
        rx_here = oneshot_receiver<int>();
      } else {
        rx_here.close();
      }
    }, jitter());
    {
      task_group group;
      t.go();
      pause_steps(jitter());
      group.start(wait_closed(tx, done));
      t.join();
      ASSERT_TRUE(group.wait_for(60s));
    }
    ASSERT_TRUE(done) << "round " << i;
    ASSERT_FALSE(std::move(tx).send(1));
  }
}

TEST(oneshot_race, async_closed_stop_vs_close) {
  for (std::int64_t i = 0; i < race_rounds(); ++i) {
    auto [tx, rx] = sluice::oneshot<int>();
    std::optional<bool> out;
    std::stop_source stop;
    racer closer([&rx_here = rx] { rx_here.close(); }, jitter());
    racer stopper([&stop] { stop.request_stop(); }, jitter());
    {
      task_group group;
      closer.go();
      stopper.go();
      pause_steps(jitter());
      group.start(wait_closed_stoppable(tx, stop.get_token(), out));
      closer.join();
      stopper.join();
      ASSERT_TRUE(group.wait_for(60s));
    }
    ASSERT_TRUE(out.has_value());
    // Either way the sender now sees the close.
    ASSERT_TRUE(tx.is_closed()) << "round " << i;
  }
}

}  // namespace
