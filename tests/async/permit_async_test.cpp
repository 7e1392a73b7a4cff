// Permits for coroutines: co_await tx.async_reserve(), its stop_token and
// resume_on forms, on bounded and rendezvous channels, and how they meet
// threads reserving, receiving and dropping permits on the same channel.
//
// Coroutines report with EXPECT_* (ASSERT_* cannot return from a coroutine)
// into probe records that the test body checks once the coroutine has
// finished. Messages are sluice_test::counted: a leak_check proves every
// message destroyed exactly once. "No slot leaked" is checked by counting:
// once everything is given back, exactly `bound` try_reserve() succeed.
#include "../support/await_probe.hpp"
#include "../support/coro_task.hpp"
#include "../support/counted.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <mutex>
#include <ostream>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using sluice_test::counted;
using sluice_test::leak_check;
using sluice_test::manual_scheduler;
using sluice_test::observed;
using sluice_test::outcome;
using sluice_test::outcome_of;
using sluice_test::probe;
using sluice_test::scaled;
using sluice_test::task;
using sluice_test::task_group;
using sluice_test::thread_pool;

namespace {

using permit_t = sluice::permit<counted>;
using tx_t = sluice::sync_sender<counted>;
using rx_t = sluice::receiver<counted>;

// How long a receive in these tests waits before the test calls the
// operation that should have served it stuck.
constexpr auto stuck_after = sluice_test::sanitized ? 10s : 5s;

// --- probes: one awaited reservation, recorded (support/await_probe.hpp) ---------------

// What a probe does with the permit it got.
struct use {
  std::int64_t send = -1;       // >= 0: sends counted(send) through it
  permit_t* keep = nullptr;     // else, if set: moves it there (the test drops it later)
  const thread_pool* pool = nullptr;  // records whether it resumed on this pool
};

// co_await make_op() (a reservation), recorded in `out`; the permit then
// used as `how` says (by default dropped unused).
template <class MakeOp>
task probe_reserve(MakeOp make_op, probe& out, use how = {}) {
  auto op = make_op();
  observed seen(op);
  auto r = co_await seen;
  out.saw(seen);
  out.on_pool = how.pool != nullptr && how.pool->runs_here();
  if (r) {
    out.result = outcome::permit;
    EXPECT_TRUE(static_cast<bool>(*r)) << "a permit result holding no permit";
    if (how.send >= 0) {
      counted msg(how.send);
      std::move(*r).send(std::move(msg));
      EXPECT_FALSE(static_cast<bool>(*r)) << "a used permit is not empty";
    } else if (how.keep != nullptr) {
      *how.keep = std::move(*r);
    }
  } else {
    out.result = outcome_of(r.error());
  }
  out.finish();
}

// The value of the next message that needs no waiting, or -1.
std::int64_t try_value(rx_t& rx) {
  auto r = rx.try_recv();
  return r ? r->value() : -1;
}

// Exactly `bound` reservations fit now (nothing else is out or queued):
// they succeed, the next one finds the channel full; all are given back.
void expect_exactly_room_for(const tx_t& tx, std::size_t bound) {
  std::vector<permit_t> all;
  for (std::size_t i = 0; i < bound; ++i) {
    auto r = tx.try_reserve();
    ASSERT_TRUE(r.has_value()) << "only " << i << " of " << bound << " slots left: one leaked";
    all.push_back(std::move(*r));
  }
  auto extra = tx.try_reserve();
  EXPECT_FALSE(extra.has_value()) << "room for more than the bound";
  if (!extra) {
    EXPECT_EQ(extra.error(), sluice::try_reserve_error::full);
  }
  EXPECT_TRUE(tx.is_full());
}

// Stops `source` if the test is still running `limit` from now: a wait the
// library should end on its own ends with "cancelled" instead of hanging.
class watchdog {
 public:
  watchdog(std::stop_source source, std::chrono::nanoseconds limit)
      : thread_([source, limit](std::stop_token done) mutable {
          std::mutex m;
          std::condition_variable_any cv;
          std::unique_lock l(m);
          if (!cv.wait_for(l, done, limit, [] { return false; }) && !done.stop_requested()) {
            source.request_stop();
          }
        }) {}

 private:
  std::jthread thread_;
};

}  // namespace

// --- completing without suspending -----------------------------------------------------------

TEST(permit_async, completes_without_suspending_when_there_is_room) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(5);
    manual_scheduler sched;
    std::stop_source stop;
    std::stop_source stopped;
    stopped.request_stop();
    const auto here = std::this_thread::get_id();
    probe probes[5];
    task_group tasks;
    tasks.start(probe_reserve([&] { return tx.async_reserve(); }, probes[0], {.send = 0}));
    tasks.start(probe_reserve([&, tok = stop.get_token()] { return tx.async_reserve(tok); },
                              probes[1], {.send = 1}));
    tasks.start(probe_reserve(
        [&] { return tx.async_reserve(sluice::resume_on(sched.scheduler())); }, probes[2],
        {.send = 2}));
    tasks.start(probe_reserve(
        [&, tok = stop.get_token()] {
          return tx.async_reserve(sluice::resume_on(sched.scheduler()), tok);
        },
        probes[3], {.send = 3}));
    // A stop already requested does not stop a reservation that needs no wait.
    tasks.start(probe_reserve([&, tok = stopped.get_token()] { return tx.async_reserve(tok); },
                              probes[4], {.send = 4}));
    for (int i = 0; i < 5; ++i) {
      SCOPED_TRACE(i);
      ASSERT_TRUE(probes[i].finished()) << "a reservation with room suspended";
      EXPECT_EQ(probes[i].result, outcome::permit);
      EXPECT_TRUE(probes[i].was_ready) << "await_ready() did not take the free room";
      EXPECT_FALSE(probes[i].reached_suspend);
      EXPECT_EQ(probes[i].thread, here);
    }
    EXPECT_EQ(sched.posted(), 0u) << "a ready reservation went through the scheduler";
    for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(try_value(rx), i);
    EXPECT_TRUE(rx.is_empty());
    expect_exactly_room_for(tx, 5);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(permit_async, empty_handle_completes_disconnected_without_suspending) {
  tx_t empty;
  std::stop_source stop;
  probe plain;
  probe with_stop;
  task_group tasks;
  tasks.start(probe_reserve([&] { return empty.async_reserve(); }, plain));
  tasks.start(probe_reserve([&, tok = stop.get_token()] { return empty.async_reserve(tok); },
                            with_stop));
  ASSERT_TRUE(plain.finished());
  ASSERT_TRUE(with_stop.finished());
  EXPECT_EQ(plain.result, outcome::disconnected);
  EXPECT_EQ(with_stop.result, outcome::disconnected);
}

// --- suspending while full, resuming when room comes ------------------------------------------

TEST(permit_async, suspends_while_full_and_resumes_when_the_receiver_frees_a_slot) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(1);
    const auto here = std::this_thread::get_id();
    probe waiting;
    probe waiting_for_thread;
    task_group tasks;

    ASSERT_TRUE(tx.try_send(counted(0)).has_value());
    tasks.start(probe_reserve([&] { return tx.async_reserve(); }, waiting, {.send = 1}));
    ASSERT_FALSE(waiting.finished()) << "a reservation on a full channel completed";
    EXPECT_EQ(rx.len(), 1u);
    EXPECT_EQ(try_value(rx), 0);  // frees the slot: the coroutine resumes inline, here
    ASSERT_TRUE(waiting.finished()) << "try_recv returned before resuming the reservation";
    EXPECT_EQ(waiting.result, outcome::permit);
    EXPECT_FALSE(waiting.was_ready);
    EXPECT_TRUE(waiting.reached_suspend);
    EXPECT_EQ(waiting.thread, here);
    EXPECT_EQ(try_value(rx), 1);

    // The same with the receiver on another thread: resumed there.
    ASSERT_TRUE(tx.try_send(counted(2)).has_value());
    tasks.start(probe_reserve([&] { return tx.async_reserve(); }, waiting_for_thread,
                              {.send = 3}));
    ASSERT_FALSE(waiting_for_thread.finished());
    std::thread::id receiver_thread;
    std::thread t([&] {
      receiver_thread = std::this_thread::get_id();
      auto r = rx.recv();
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->value(), 2);
    });
    t.join();
    ASSERT_TRUE(waiting_for_thread.finished()) << "recv returned before resuming the reservation";
    EXPECT_EQ(waiting_for_thread.result, outcome::permit);
    EXPECT_EQ(waiting_for_thread.thread, receiver_thread) << "not resumed on the receiving thread";
    EXPECT_EQ(try_value(rx), 3);
    tasks.join();
    expect_exactly_room_for(tx, 1);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(permit_async, resumes_when_a_permit_is_dropped_elsewhere) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(2);
    const auto here = std::this_thread::get_id();
    probe first;
    probe second;
    task_group tasks;

    auto a = tx.try_reserve();
    auto b = tx.try_reserve();
    ASSERT_TRUE(a && b);
    tasks.start(probe_reserve([&] { return tx.async_reserve(); }, first, {.send = 7}));
    ASSERT_FALSE(first.finished()) << "reserved past the bound (two permits out on bound 2)";
    *a = permit_t();  // assigned over unused: the slot goes to the waiting coroutine
    ASSERT_TRUE(first.finished()) << "dropping a permit did not wake the reservation";
    EXPECT_EQ(first.result, outcome::permit);
    EXPECT_EQ(first.thread, here);
    std::move(*b).send(counted(8));
    EXPECT_EQ(try_value(rx), 7);
    EXPECT_EQ(try_value(rx), 8);

    // Dropped (destroyed) on another thread: resumed there.
    auto c = tx.try_reserve();
    auto d = tx.try_reserve();
    ASSERT_TRUE(c && d);
    tasks.start(probe_reserve([&] { return tx.async_reserve(); }, second, {.send = 9}));
    ASSERT_FALSE(second.finished());
    std::thread::id dropper;
    std::thread t([&, gone = std::move(*c)]() mutable {
      dropper = std::this_thread::get_id();
      const permit_t destroyed = std::move(gone);
    });
    t.join();
    ASSERT_TRUE(second.finished());
    EXPECT_EQ(second.result, outcome::permit);
    EXPECT_EQ(second.thread, dropper) << "not resumed on the thread that dropped the permit";
    EXPECT_EQ(try_value(rx), 9);
    *d = permit_t();
    tasks.join();
    EXPECT_TRUE(rx.is_empty());
    expect_exactly_room_for(tx, 2);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- cancellation -------------------------------------------------------------------------------

TEST(permit_async, stop_token_cancels_a_suspended_reservation_and_leaks_no_slot) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(3);
    const auto here = std::this_thread::get_id();
    manual_scheduler sched;
    std::stop_source stop;
    std::stop_source stop_via_scheduler;
    probe cancelled;
    probe cancelled_via_scheduler;
    task_group tasks;

    ASSERT_TRUE(tx.try_send(counted(0)).has_value());
    auto p1 = tx.try_reserve();
    auto p2 = tx.try_reserve();
    ASSERT_TRUE(p1 && p2);
    ASSERT_TRUE(tx.is_full());
    tasks.start(probe_reserve([&, tok = stop.get_token()] { return tx.async_reserve(tok); },
                              cancelled, {.send = 100}));
    ASSERT_FALSE(cancelled.finished());
    stop.request_stop();  // resumes the coroutine inline, in the stop callback
    ASSERT_TRUE(cancelled.finished()) << "a stop request did not end the wait";
    EXPECT_EQ(cancelled.result, outcome::cancelled);
    EXPECT_TRUE(cancelled.reached_suspend);
    EXPECT_EQ(cancelled.thread, here);
    // Nothing reserved, nothing given back: still full.
    EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);

    // Through a scheduler, stopped from another thread.
    tasks.start(probe_reserve(
        [&, tok = stop_via_scheduler.get_token()] {
          return tx.async_reserve(sluice::resume_on(sched.scheduler()), tok);
        },
        cancelled_via_scheduler, {.send = 101}));
    ASSERT_FALSE(cancelled_via_scheduler.finished());
    std::thread([&] { stop_via_scheduler.request_stop(); }).join();
    EXPECT_FALSE(cancelled_via_scheduler.finished()) << "resumed inline, not via the scheduler";
    EXPECT_EQ(sched.queued(), 1u);
    EXPECT_EQ(sched.run(), 1u);
    ASSERT_TRUE(cancelled_via_scheduler.finished());
    EXPECT_EQ(cancelled_via_scheduler.result, outcome::cancelled);
    EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);

    // Room made now goes to nobody: the cancelled reservations are gone.
    *p1 = permit_t();
    *p2 = permit_t();
    EXPECT_EQ(try_value(rx), 0);
    EXPECT_TRUE(rx.is_empty());
    tasks.join();
    expect_exactly_room_for(tx, 3);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// A stop request racing with the room that would complete the reservation:
// either outcome is fine, but the slot is never lost. The coroutine goes on
// on a pool thread; if it got the permit it drops it there.
TEST(permit_async, stop_racing_with_room_loses_no_slot) {
  const int rounds = static_cast<int>(scaled(3000, 800));
  int got_permit = 0;
  int got_cancelled = 0;
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(1);
    thread_pool pool(1);
    for (int round = 0; round < rounds; ++round) {
      SCOPED_TRACE(round);
      ASSERT_TRUE(tx.try_send(counted(round)).has_value());
      std::stop_source stop;
      probe racer;
      {
        task_group tasks;
        tasks.start(probe_reserve(
            [&, tok = stop.get_token()] {
              return tx.async_reserve(sluice::resume_on(pool.scheduler()), tok);
            },
            racer, {.pool = &pool}));
        ASSERT_FALSE(racer.finished());
        std::thread stopper([&] { stop.request_stop(); });
        if (round % 2 == 0) std::this_thread::yield();
        EXPECT_EQ(try_value(rx), round);  // the room
        stopper.join();
      }
      ASSERT_TRUE(racer.finished());
      EXPECT_TRUE(racer.on_pool) << "not resumed through the scheduler";
      if (racer.result == outcome::permit) {
        ++got_permit;
      } else {
        EXPECT_EQ(racer.result, outcome::cancelled);
        ++got_cancelled;
      }
      ASSERT_TRUE(rx.is_empty());
      expect_exactly_room_for(tx, 1);
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
  RecordProperty("got_permit", got_permit);
  RecordProperty("got_cancelled", got_cancelled);
}

// --- disconnection while suspended --------------------------------------------------------------

TEST(permit_async, receiver_gone_or_closed_while_suspended_ends_the_reservation) {
  for (const bool drop : {true, false}) {
    SCOPED_TRACE(drop ? "receiver dropped" : "receiver closed");
    const leak_check leaks;
    {
      auto [tx, rx] = sluice::sync_channel<counted>(1);
      std::stop_source stop;
      probe plain;
      probe with_stop;
      task_group tasks;
      ASSERT_TRUE(tx.try_send(counted(0)).has_value());
      tasks.start(probe_reserve([&] { return tx.async_reserve(); }, plain, {.send = 1}));
      tasks.start(probe_reserve([&, tok = stop.get_token()] { return tx.async_reserve(tok); },
                                with_stop, {.send = 2}));
      ASSERT_FALSE(plain.finished());
      ASSERT_FALSE(with_stop.finished());
      if (drop) {
        rx = rx_t();
      } else {
        rx.close();
      }
      ASSERT_TRUE(plain.finished()) << "still waiting after the receiver left";
      ASSERT_TRUE(with_stop.finished()) << "still waiting after the receiver left";
      EXPECT_EQ(plain.result, outcome::disconnected);  // reserve_error
      EXPECT_EQ(with_stop.result, outcome::disconnected);  // reserve_timeout_error::disconnected
      EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::disconnected);
      if (!drop) {
        EXPECT_EQ(try_value(rx), 0);  // queued before close(): still received
        EXPECT_EQ(rx.recv().error(), sluice::recv_error{});
      }
    }
    EXPECT_EQ(leaks.leaked(), 0);
  }
}

TEST(permit_async, rendezvous_receiver_gone_while_suspended) {
  auto [tx, rx] = sluice::sync_channel<counted>(0);
  probe waiting;
  task_group tasks;
  tasks.start(probe_reserve([&] { return tx.async_reserve(); }, waiting, {.send = 1}));
  ASSERT_FALSE(waiting.finished()) << "a rendezvous reservation with no receiver completed";
  rx = rx_t();
  ASSERT_TRUE(waiting.finished());
  EXPECT_EQ(waiting.result, outcome::disconnected);
}

// --- rendezvous ---------------------------------------------------------------------------------

// A thread blocked in recv() is there first: the reservation completes at
// once, and the permit's value goes to that thread.
TEST(permit_async, rendezvous_reservation_served_by_a_thread_already_in_recv) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    std::stop_source give_up;
    const watchdog guard(give_up, stuck_after);
    std::int64_t got = -1;
    std::thread receiver([&] {
      auto r = rx.recv(give_up.get_token());
      EXPECT_TRUE(r.has_value()) << "the permit's value never reached the waiting receiver";
      if (r) got = r->value();
    });
    // A permit is granted only while a receiver waits: once try_reserve
    // succeeds, the thread is blocked in recv(). Given back at once.
    for (;;) {
      auto r = tx.try_reserve();
      if (r) break;
      std::this_thread::yield();
    }
    probe reserver;
    {
      task_group tasks;
      tasks.start(probe_reserve([&] { return tx.async_reserve(); }, reserver, {.send = 42}));
      ASSERT_TRUE(reserver.finished()) << "a receiver waits, yet the reservation did not complete";
      EXPECT_EQ(reserver.result, outcome::permit);
      EXPECT_EQ(reserver.thread, std::this_thread::get_id());
    }
    receiver.join();
    EXPECT_FALSE(give_up.stop_requested()) << "the receive was stuck until the watchdog";
    EXPECT_EQ(got, 42);
    EXPECT_EQ(rx.len(), 0u);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// The coroutine waits first, resumed through a pool; a thread then blocks in
// recv(): the reservation completes and its value reaches that thread.
TEST(permit_async, rendezvous_reservation_on_a_pool_waits_for_a_thread_in_recv) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    thread_pool pool(1);
    std::stop_source give_up;
    const watchdog guard(give_up, stuck_after);
    probe reserver;
    std::int64_t got = -1;
    {
      task_group tasks;
      tasks.start(probe_reserve(
          [&] { return tx.async_reserve(sluice::resume_on(pool.scheduler())); }, reserver,
          {.send = 43, .pool = &pool}));
      ASSERT_FALSE(reserver.finished()) << "reserved with no receiver waiting";
      std::thread receiver([&] {
        auto r = rx.recv(give_up.get_token());
        EXPECT_TRUE(r.has_value()) << "the permit's value never reached the waiting receiver";
        if (r) got = r->value();
      });
      receiver.join();
    }
    EXPECT_FALSE(give_up.stop_requested()) << "the receive was stuck until the watchdog";
    ASSERT_TRUE(reserver.finished());
    EXPECT_EQ(reserver.result, outcome::permit);
    EXPECT_TRUE(reserver.on_pool);
    EXPECT_EQ(got, 43);
    EXPECT_EQ(rx.len(), 0u) << "the value was parked instead of handed to the waiting receiver";
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// The coroutine waits first with the default (inline) resumption; a thread
// then blocks in recv(). The receiver's registration resumes the coroutine
// inline on the receiver's own thread, and the permit's send must reach
// that same waiting receive.
TEST(permit_async, rendezvous_reservation_resumed_inline_by_a_thread_in_recv) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    std::stop_source give_up;
    const watchdog guard(give_up, stuck_after);
    probe reserver;
    std::int64_t got = -1;
    bool receive_ended_by_watchdog = false;
    {
      task_group tasks;
      tasks.start(probe_reserve([&] { return tx.async_reserve(); }, reserver, {.send = 44}));
      ASSERT_FALSE(reserver.finished()) << "reserved with no receiver waiting";
      std::thread::id receiver_thread;
      std::thread receiver([&] {
        receiver_thread = std::this_thread::get_id();
        auto r = rx.recv(give_up.get_token());
        if (r) {
          got = r->value();
        } else {
          receive_ended_by_watchdog = r.error() == sluice::recv_timeout_error::cancelled;
        }
      });
      receiver.join();
      ASSERT_TRUE(reserver.finished());
      EXPECT_EQ(reserver.result, outcome::permit);
      EXPECT_EQ(reserver.thread, receiver_thread);
    }
    EXPECT_FALSE(give_up.stop_requested())
        << "recv() was stuck until the watchdog stopped it " << stuck_after.count() << " s later";
    EXPECT_FALSE(receive_ended_by_watchdog)
        << "recv() never returned the permit's value: the coroutine, resumed inline on the "
           "receiver's thread, sent while that thread was registered as the waiting receiver; "
           "the hand-off skipped it as the same owner and parked the value instead";
    EXPECT_EQ(got, 44);
    if (got != 44) {
      // Where the value went instead.
      EXPECT_EQ(rx.len(), 1u);
      EXPECT_EQ(try_value(rx), 44);
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// One permit at a time: with a receiver (a coroutine) waiting and a permit
// out, a second reservation waits; the first permit dropped, it completes.
TEST(permit_async, rendezvous_one_permit_at_a_time) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    permit_t held;
    probe receiver;
    probe first;
    probe second;
    std::int64_t got = -1;
    task_group tasks;
    auto recv_into = [](rx_t& from, probe& out, std::int64_t& value) -> task {
      auto r = co_await from.async_recv();
      out.result = r ? outcome::permit : outcome::disconnected;
      if (r) value = r->value();
      out.finish();
    };
    tasks.start(recv_into(rx, receiver, got));
    ASSERT_FALSE(receiver.finished());
    tasks.start(probe_reserve([&] { return tx.async_reserve(); }, first, {.keep = &held}));
    ASSERT_TRUE(first.finished()) << "a receiver waits, yet the reservation waited";
    EXPECT_EQ(first.result, outcome::permit);
    ASSERT_TRUE(static_cast<bool>(held));
    tasks.start(probe_reserve([&] { return tx.async_reserve(); }, second, {.send = 5}));
    EXPECT_FALSE(second.finished()) << "two rendezvous permits out at once";
    EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);
    held = permit_t();  // given back: the second reservation gets the hand-off
    ASSERT_TRUE(second.finished());
    EXPECT_EQ(second.result, outcome::permit);
    ASSERT_TRUE(receiver.finished()) << "the second permit's value did not reach the receiver";
    EXPECT_EQ(got, 5);
    EXPECT_EQ(rx.len(), 0u);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- coroutines and threads on one channel ----------------------------------------------------

// A coroutine suspended in async_reserve and a thread blocked in reserve()
// wait for the same room: each slot freed goes to exactly one of them.
TEST(permit_async, a_coroutine_and_a_thread_wait_for_the_same_room) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(1);
    std::stop_source give_up;
    const watchdog guard(give_up, stuck_after);
    probe coro;
    std::atomic<bool> thread_done{false};
    {
      task_group tasks;
      ASSERT_TRUE(tx.try_send(counted(0)).has_value());
      tasks.start(probe_reserve([&] { return tx.async_reserve(); }, coro, {.send = 1}));
      ASSERT_FALSE(coro.finished());
      std::thread reserver([&] {
        auto r = tx.reserve(give_up.get_token());
        EXPECT_TRUE(r.has_value()) << "the thread never got room";
        if (r) std::move(*r).send(counted(2));
        thread_done.store(true);
      });
      // Receives 0, then the two values in whichever order the room went.
      std::vector<std::int64_t> got;
      for (int i = 0; i < 3; ++i) {
        auto r = rx.recv_timeout(stuck_after);
        ASSERT_TRUE(r.has_value()) << "message " << i << " never came";
        got.push_back(r->value());
        // At most one permit or message at a time: the bound holds.
        EXPECT_LE(rx.len(), 1u);
      }
      reserver.join();
      EXPECT_EQ(got[0], 0);
      EXPECT_TRUE((got[1] == 1 && got[2] == 2) || (got[1] == 2 && got[2] == 1))
          << got[1] << ", " << got[2];
    }
    EXPECT_FALSE(give_up.stop_requested()) << "the thread's reserve was stuck";
    EXPECT_TRUE(coro.finished());
    EXPECT_EQ(coro.result, outcome::permit);
    EXPECT_TRUE(thread_done.load());
    EXPECT_TRUE(rx.is_empty());
    expect_exactly_room_for(tx, 1);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

namespace {

constexpr std::int64_t stride = std::int64_t{1} << 32;

// Per-producer arrivals: each producer's values in increasing order, and in
// the end exactly those it sent.
struct arrivals {
  explicit arrivals(std::size_t producers) : got(producers) {}
  std::vector<std::vector<std::int64_t>> got;
  std::int64_t disorder = 0;
  std::int64_t strays = 0;
  void add(std::int64_t v) {
    const std::int64_t p = v / stride;
    if (p < 0 || p >= static_cast<std::int64_t>(got.size())) {
      ++strays;
      return;
    }
    auto& seq = got[static_cast<std::size_t>(p)];
    if (!seq.empty() && seq.back() >= v % stride) ++disorder;
    seq.push_back(v % stride);
  }
};

// The values producer p sends: iteration i unless i % 3 == 2 (dropped).
std::vector<std::int64_t> sent_by_one(std::int64_t per) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < per; ++i) {
    if (i % 3 != 2) v.push_back(i);
  }
  return v;
}

// A coroutine producer: `per` reservations, alternating the inline and the
// resume_on(pool) forms (only the latter on a rendezvous channel), every
// third permit dropped unused, the others sending (p, i).
task reserving_producer(tx_t tx, std::int64_t p, std::int64_t per, bool inline_too,
                        thread_pool& pool, std::atomic<std::int64_t>& failures) {
  for (std::int64_t i = 0; i < per; ++i) {
    std::expected<permit_t, sluice::reserve_error> r;
    if (inline_too && i % 2 == 0) {
      auto op = tx.async_reserve();
      r = co_await op;
    } else {
      auto op = tx.async_reserve(sluice::resume_on(pool.scheduler()));
      r = co_await op;
    }
    if (!r) {
      failures.fetch_add(1);
      co_return;
    }
    if (i % 3 == 2) continue;  // dropped unused
    counted msg(p * stride + i);
    std::move(*r).send(std::move(msg));
  }
}

}  // namespace

class permit_async_mix : public ::testing::TestWithParam<std::size_t> {};

INSTANTIATE_TEST_SUITE_P(caps, permit_async_mix,
                         ::testing::Values(std::size_t{0}, std::size_t{1}, std::size_t{3}),
                         [](const ::testing::TestParamInfo<std::size_t>& param_info) {
                           return "cap" + std::to_string(param_info.param);
                         });

// Two coroutine producers (async_reserve) and two thread producers
// (reserve / reserve_timeout), every third permit dropped; one thread
// receives. Everything sent arrives once, in order per producer.
TEST_P(permit_async_mix, coroutines_and_threads_reserving_on_one_channel) {
  const std::size_t bound = GetParam();
  const std::int64_t per = scaled(8000, 2500);
  constexpr std::size_t coros = 2;
  constexpr std::size_t producers = 4;
  const leak_check leaks;
  arrivals seen(producers);
  std::atomic<std::int64_t> failures{0};
  {
    auto [tx, rx] = sluice::sync_channel<counted>(bound);
    thread_pool pool(1);
    {
      task_group tasks;
      std::thread consumer([&] {
        while (auto r = rx.recv()) seen.add(r->value());
      });
      for (std::size_t p = 0; p < coros; ++p) {
        tasks.start_on(pool, reserving_producer(tx, static_cast<std::int64_t>(p), per,
                                                /*inline_too=*/bound != 0, pool, failures));
      }
      std::vector<std::thread> threads;
      for (std::size_t p = coros; p < producers; ++p) {
        threads.emplace_back([&, sender = tx, p] {
          for (std::int64_t i = 0; i < per; ++i) {
            permit_t perm;
            if (i % 2 == 0) {
              auto r = sender.reserve();
              if (r) perm = std::move(*r);
            } else {
              while (!perm) {
                auto r = sender.reserve_timeout(500us);
                if (r) {
                  perm = std::move(*r);
                } else if (r.error() != sluice::reserve_timeout_error::timeout) {
                  break;
                }
              }
            }
            if (!perm) {
              failures.fetch_add(1);
              return;
            }
            if (i % 3 == 2) continue;
            std::move(perm).send(counted(static_cast<std::int64_t>(p) * stride + i));
          }
        });
      }
      tx = {};  // the producers hold the only senders: the consumer ends after them
      for (auto& t : threads) t.join();
      tasks.join();
      consumer.join();
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(seen.strays, 0);
  EXPECT_EQ(seen.disorder, 0) << "per-producer order broken, or a duplicate";
  const auto want = sent_by_one(per);
  for (std::size_t p = 0; p < producers; ++p) {
    EXPECT_EQ(seen.got[p], want) << "producer " << p << ": not exactly the values it sent";
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- resume_on ---------------------------------------------------------------------------------

TEST(permit_async, resume_on_hands_the_coroutine_to_the_scheduler) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(1);
    manual_scheduler sched;
    thread_pool pool(1);
    probe via_manual;
    probe via_pool;
    {
      task_group tasks;
      ASSERT_TRUE(tx.try_send(counted(0)).has_value());
      tasks.start(probe_reserve(
          [&] { return tx.async_reserve(sluice::resume_on(sched.scheduler())); }, via_manual,
          {.send = 1}));
      ASSERT_FALSE(via_manual.finished());
      std::thread([&] { EXPECT_EQ(try_value(rx), 0); }).join();
      EXPECT_FALSE(via_manual.finished()) << "resumed inline instead of through the scheduler";
      EXPECT_EQ(sched.queued(), 1u);
      // The slot is the coroutine's already: nobody else gets it meanwhile.
      EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);
      EXPECT_EQ(sched.run(), 1u);
      ASSERT_TRUE(via_manual.finished());
      EXPECT_EQ(via_manual.result, outcome::permit);
      EXPECT_EQ(via_manual.thread, std::this_thread::get_id());
      EXPECT_EQ(try_value(rx), 1);

      // A pool: the coroutine goes on on the pool's thread.
      ASSERT_TRUE(tx.try_send(counted(2)).has_value());
      tasks.start(probe_reserve(
          [&] { return tx.async_reserve(sluice::resume_on(pool.scheduler())); }, via_pool,
          {.send = 3, .pool = &pool}));
      ASSERT_FALSE(via_pool.finished());
      EXPECT_EQ(try_value(rx), 2);
      tasks.join();
    }
    ASSERT_TRUE(via_pool.finished());
    EXPECT_EQ(via_pool.result, outcome::permit);
    EXPECT_TRUE(via_pool.on_pool) << "not resumed on the pool";
    EXPECT_EQ(try_value(rx), 3);
    EXPECT_EQ(sched.posted(), 1u);
    expect_exactly_room_for(tx, 1);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}
