// Stalled peers: what an operation does while the thread it depends on is
// stuck half-way through its own operation, inside user code (the message's
// move constructor or destructor), or re-enters the channel from there.
//
// The contract: every try_ operation returns in bounded time whatever other
// threads and user code do (full/empty is the right answer while the other
// party has not finished); every timed operation honours its deadline; a
// blocking operation that waits on another thread's progress parks after its
// spin budget (a stopped peer costs no CPU).
//
// How the tests make user code slow, deterministically: the message type
// `probe` calls a hook after each move and in each moved-from destructor. A
// test arms a one-shot trap for one thread and one kind of event; the first
// such event in that thread blocks on a gate the test opens only after it has
// checked the other side (or runs an action instead, e.g. re-enters the
// channel). An operation that must return at once gets 2 s before the test
// calls it stuck, so a bug fails the test instead of hanging it; parking is
// measured as the waiting thread's own CPU time over a ~300 ms stall. The
// probe, the trap, the timing and the task group are shared with
// slow_allocation_test.cpp (../support/peer_probe.hpp).
//
// Scenarios, with the flavors they apply to:
// - receiver_in_user_code (bounded 1, 4, 5000): a full channel whose receiver
//   has advanced its head but not yet released the slot (it runs the message's
//   moved-from destructor). Senders must see "full", not wait for the slot.
// - sender_in_user_code (unbounded, bounded 1, 4, 5000): a sender has
//   reserved a slot and runs the message's move constructor into it. The
//   receiver must see "empty", not wait for the write; also when the slot is
//   memory the channel used before (a recycled block, a ring after a lap).
// - rendezvous_in_user_code (bound 0): a paired sender and receiver, one of
//   them moving the message through the other's packet; the other parks. A
//   waiter that had already parked when it was claimed is also woken
//   spuriously (a no-op signal interrupts its futex wait, which the parker
//   allows), so that the test does not depend on when the claim came.
// Tests marked "beyond the four known bugs" check the same contract in
// places the original bug list did not name.
#include "../support/counted.hpp"
#include "../support/flavors.hpp"
#include "../support/peer_probe.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <expected>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using namespace sluice_test;  // the probe, the trap, timing, tasks, ledger (peer_probe.hpp)
using steady = std::chrono::steady_clock;
using task_group = basic_task_group<release_trap>;

// What the stalled peer sends (a buffered or rendezvous sender in user code).
constexpr int stalled_value = 7;

// A waiter that waited through a whole stall parked rather than spun; a wait
// much shorter than the stall says too little to tell.
void expect_parked_over_window(const timing& t, const char* what) {
  EXPECT_GE(t.wall, park_window * 2 / 3)
      << what << " waited only " << ms(t.wall) << " ms: too short to tell parking from spinning";
  expect_parked(t, what);
}

// A timed operation under test whose timeout of 1 ms, named `call`, expired:
// it returned on time.
void expect_short_timeout_on_time(const timing& t, const char* call) {
  EXPECT_LT(t.wall, 1ms + late_limit) << call << " took " << ms(t.wall) << " ms";
}

// A timed operation under test whose timeout of a whole park_window expired:
// it waited all of it (and no more than late_limit longer), parked.
void expect_waited_out_parked(const timing& t, const char* call) {
  EXPECT_GE(t.wall, park_window);
  EXPECT_LT(t.wall, park_window + late_limit);
  expect_parked_over_window(t, call);
}

// A receive under test found nothing while the only message was still being
// written: it failed with `expected`.
template <class Result, class Error>
void expect_nothing_received(const Result& r, Error expected, const char* got_one) {
  EXPECT_FALSE(r.has_value()) << got_one;
  if (!r) {
    EXPECT_EQ(r.error(), expected);
  }
}

// The errors a send under test may be expected to fail with.
constexpr auto is_full = [](const auto& e) { return e.is_full(); };
constexpr auto is_timeout = [](const auto& e) { return e.is_timeout(); };
constexpr auto is_disconnected = [](const auto& e) { return e.is_disconnected(); };

// A send that had to fail did, with the error `expected` tells, handing back
// `value`. Returns false (after reporting `succeeded`) if it succeeded.
template <class Result, class Expected>
[[nodiscard]] bool expect_refused(const Result& r, Expected expected, int value,
                                  const char* succeeded = "") {
  EXPECT_FALSE(r.has_value()) << succeeded;
  if (r.has_value()) return false;
  EXPECT_TRUE(expected(r.error()));
  EXPECT_EQ(r.error().value.value(), value) << "the value handed back";
  return true;
}

// --- re-entering the channel from the message's destructor ---------------------

// The channel a trap action re-enters (a global: a message type must not name
// its own channel type as a member).
std::atomic<const sluice::sync_sender<probe>*> g_reentry_tx{nullptr};

struct reentry_log {
  std::atomic<bool> done{false};
  bool sent = false;
  bool refused = false;  // failed with the error expected (full, timeout)
  int value_back = -1;
  std::chrono::nanoseconds took{};
};
reentry_log g_reentry;

// Sends probe_value on g_reentry_tx with `send` and logs the outcome; the
// error `expected` tells counts as refused.
template <class Send, class Expected>
void reenter(Send send, Expected expected) noexcept {
  const auto t0 = steady::now();
  auto r = send(*g_reentry_tx.load());
  g_reentry.took = steady::now() - t0;
  g_reentry.sent = r.has_value();
  if (!r) {
    g_reentry.refused = expected(r.error());
    g_reentry.value_back = r.error().value.value();
  }
  g_reentry.done.store(true);
}

void reenter_try_send() noexcept {
  reenter([](const auto& tx) { return tx.try_send(probe(probe_value)); }, is_full);
}

void reenter_send_timeout() noexcept {
  reenter([](const auto& tx) { return tx.send_timeout(probe(probe_value), 1ms); }, is_timeout);
}

// --- spurious wake-ups ---------------------------------------------------------

// Interrupts a thread's futex wait with a no-op signal handler, as the parker
// explicitly allows ("returns ... spuriously; callers always re-check").
void wake_spuriously(pthread_t thread) {
  static const bool installed = [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a futex wait returns EINTR
    return sigaction(SIGUSR1, &sa, nullptr) == 0;
  }();
  ASSERT_TRUE(installed);
  for (int i = 0; i < 5; ++i) {
    pthread_kill(thread, SIGUSR1);
    std::this_thread::sleep_for(10ms);
  }
}

class stalled_peer : public ::testing::Test {
 protected:
  void SetUp() override {
    reset_trap();
    g_reentry_tx.store(nullptr);
    g_reentry.done.store(false);
    g_reentry.sent = g_reentry.refused = false;
    g_reentry.value_back = -1;
    g_reentry.took = {};
  }
  void TearDown() override {
    release_trap();
    EXPECT_EQ(leaks_.leaked(), 0) << "messages created and destroyed do not balance";
  }

 private:
  leak_check leaks_;
};

// ================================================================================
// Sections 1 and 2 run the operation under test against a scenario: a channel
// whose peer (a receive, or a send) is stalled in user code. A scenario
// starts the stalled peer, names the end the operation under test uses
// (other_end), books what that operation did, and checks the peer's own
// result (check_peer).
// ================================================================================

// Once every task has finished: the stalled peer's own operation did what it
// should, and every message sent arrives exactly once.
template <class Scenario>
void check_peer_and_delivery(Scenario& s) {
  s.check_peer();
  s.c.drain_and_balance();
}

// Calls op(other end) while the scenario's peer stalls: it must return within
// `limit` (else `stuck`), and `check` checks its timed result if it did.
template <class Scenario, class Op, class Check>
void run_while_peer_stalls(Op op, std::chrono::nanoseconds limit, const char* stuck,
                           Check check) {
  Scenario s;
  std::optional<timed_result<std::invoke_result_t<Op&, decltype(s.other_end())>>> out;
  task_group tasks;
  if (!s.start(tasks)) return;

  expect_returns_while_stalled(tasks, out, limit, stuck, [&] { return op(s.other_end()); },
                               check);
  if (::testing::Test::HasFatalFailure()) return;
  s.book(out->result);
  check_peer_and_delivery(s);
}

// Calls op(other end), a blocking operation, while the scenario's peer
// stalls: it must wait through park_window (else `returned_early`) and
// complete once the peer is released (else `never_completed`); `check` checks
// its timed result.
template <class Scenario, class Op, class Check>
void run_blocked_by_stalled_peer(Op op, const char* returned_early, const char* never_completed,
                                 Check check) {
  Scenario s;
  std::optional<timed_result<std::invoke_result_t<Op&, decltype(s.other_end())>>> out;
  task_group tasks;
  if (!s.start(tasks)) return;

  const auto i = tasks.start_timed(out, [&] { return op(s.other_end()); });
  expect_waits_for_the_peer(tasks, i, park_window, returned_early, never_completed);
  ASSERT_TRUE(out.has_value());
  check(std::as_const(*out));
  if (::testing::Test::HasFatalFailure()) return;
  s.book(out->result);
  check_peer_and_delivery(s);
}

// Calls the scenario's timed operation (Scenario::timed_op, named
// Scenario::timed_call) with `timeout` while its peer stalls: it must return
// within `limit` (else `stuck`), having expired (Scenario::expect_expired),
// and `timing_check` checks how long it took.
template <class Scenario, class TimingCheck>
void timeout_expires_while_peer_stalls(std::chrono::nanoseconds timeout,
                                       std::chrono::nanoseconds limit, const std::string& stuck,
                                       TimingCheck timing_check) {
  run_while_peer_stalls<Scenario>(
      [timeout](auto& end) { return Scenario::timed_op(end, timeout); }, limit, stuck.c_str(),
      [&timing_check](const auto& out) {
        Scenario::expect_expired(out.result);
        if (::testing::Test::HasFatalFailure()) return;
        timing_check(out.t);
      });
}

// A timeout of 1 ms expires on time while the peer stalls.
template <class Scenario>
void short_timeout_expires_on_time() {
  const std::string call = std::string(Scenario::timed_call) + "(1 ms)";
  timeout_expires_while_peer_stalls<Scenario>(
      1ms, return_limit, call + " did not return within 2 s while " + Scenario::stall,
      [&call](const timing& t) { expect_short_timeout_on_time(t, call.c_str()); });
}

// A timeout of park_window (300 ms) expires while the peer stalls: the
// operation waits all of it, parked.
template <class Scenario>
void long_timeout_expires_parked() {
  timeout_expires_while_peer_stalls<Scenario>(
      park_window, park_window + return_limit,
      std::string(Scenario::timed_call) + "(300 ms) did not return within 2 s of its deadline " +
          "while " + Scenario::stall,
      [](const timing& t) { expect_waited_out_parked(t, Scenario::timed_call); });
}

// ================================================================================
// 1. A full bounded channel whose receiver is inside user code mid-receive.
// ================================================================================

template <class F>
class receiver_in_user_code : public stalled_peer {};

using bounded_flavors =
    ::testing::Types<sluice_test::bounded1, sluice_test::bounded4, sluice_test::bounded_large>;
TYPED_TEST_SUITE(receiver_in_user_code, bounded_flavors, sluice_test::flavor_name);

// A full channel whose receive stalls in the moved-from destructor of the
// message leaving its slot (head advanced, slot not yet released). The
// operation under test sends probe_value.
// Scenarios whose operation under test sends probe_value into a full
// channel: the timed operation, and its result once the timeout expired
// (refused, the channel being full); and try_send's test.
struct sends_into_full_channel {
  static constexpr const char* timed_call = "send_timeout";
  static auto timed_op(auto& tx, std::chrono::nanoseconds timeout) {
    return tx.send_timeout(probe(probe_value), timeout);
  }
  template <class R>
  static void expect_expired(const R& sent) {
    ASSERT_FALSE(sent.has_value()) << "send_timeout succeeded on a full channel";
    EXPECT_TRUE(sent.error().is_timeout());
  }
};

// try_send returns `full` at once while the scenario's peer stalls (else
// `stuck`).
template <class Scenario>
void try_send_is_full_while_peer_stalls(const char* stuck) {
  run_while_peer_stalls<Scenario>([](auto& tx) { return tx.try_send(probe(probe_value)); },
                                  return_limit, stuck, [](const auto& sent) {
                                    ASSERT_FALSE(sent.result.has_value())
                                        << "try_send succeeded on a full channel";
                                    EXPECT_TRUE(sent.result.error().is_full());
                                  });
}

template <class F>
struct receive_stalls : sends_into_full_channel {
  channel_under_test<F> c;
  std::optional<std::expected<probe, sluice::recv_error>> received;  // by the stalled receive

  // Fills the channel and starts the receive, which stalls (or runs `action`
  // instead). Returns false (after reporting) if the stall never happened.
  [[nodiscard]] bool start(task_group& tasks, action_fn action = nullptr) {
    c.fill(static_cast<int>(*F::cap));
    if (::testing::Test::HasFatalFailure()) return false;
    tasks.start([this, action] {
      arm_here(event::moved_from_destroy, action);
      received.emplace(c.rx().recv());
    });
    return peer_stalled("the receive");
  }
  auto& other_end() { return c.tx(); }
  template <class R>
  void book(const R& sent) {
    book_probe_send(c.book, sent);
  }
  // What holds up the operation under test.
  static constexpr const char* stall = "the receiver runs the message's destructor";
  // Once every task has finished: the stalled receive got the first message.
  void check_peer() {
    ASSERT_TRUE(received.has_value());
    ASSERT_TRUE(received->has_value()) << "the stalled receive failed";
    EXPECT_EQ((*received)->value(), 0);
    c.book.got((*received)->value());
  }
};

TYPED_TEST(receiver_in_user_code, try_send_reports_full_at_once) {
  try_send_is_full_while_peer_stalls<receive_stalls<TypeParam>>(
      "try_send did not return within 2 s while the receiver runs the message's destructor: it "
      "waits for the receive to finish");
}

TYPED_TEST(receiver_in_user_code, send_timeout_honours_its_deadline) {
  short_timeout_expires_on_time<receive_stalls<TypeParam>>();
}

TYPED_TEST(receiver_in_user_code, send_timeout_parks_until_its_deadline) {
  long_timeout_expires_parked<receive_stalls<TypeParam>>();
}

TYPED_TEST(receiver_in_user_code, blocking_send_parks_then_completes) {
  run_blocked_by_stalled_peer<receive_stalls<TypeParam>>(
      [](auto& tx) { return tx.send(probe(probe_value)); },
      "send returned while the channel was still full",
      "send did not complete once the receive finished", [](const auto& sent) {
        ASSERT_TRUE(sent.result.has_value()) << "send failed";
        expect_parked_over_window(sent.t, "the blocked send");
      });
}

// The stalled receive runs `reenter_send` (reenter_try_send or
// reenter_send_timeout) from the moved-from destructor: a send of
// probe_value, named `call`, on the same full channel. It must be refused
// (with `refusal`) within `took_limit`, and the receive must then finish.
template <class F>
void reentrant_send_is_refused(action_fn reenter_send, const char* call, const char* refusal,
                               std::chrono::nanoseconds took_limit) {
  receive_stalls<F> s;
  task_group tasks;
  g_reentry_tx.store(&s.c.tx());
  if (!s.start(tasks, reenter_send)) return;

  // The action ran in the receiving thread; the receive returns when it does.
  const bool returned = tasks.done_within(0, return_limit);
  ASSERT_TRUE(returned) << call << " called from the moved-from destructor of the message being "
                        << "received, on the same full channel, never returns";
  tasks.finish_all();

  ASSERT_TRUE(g_reentry.done.load());
  EXPECT_FALSE(g_reentry.sent) << call << " succeeded on a full channel";
  if (g_reentry.sent) {
    s.c.book.sent(probe_value);
  } else {
    EXPECT_TRUE(g_reentry.refused) << call << " failed, but not with " << refusal;
    EXPECT_EQ(g_reentry.value_back, probe_value) << "the value handed back";
  }
  EXPECT_LT(g_reentry.took, took_limit)
      << "the re-entrant " << call << " took " << ms(g_reentry.took) << " ms";
  check_peer_and_delivery(s);
}

TYPED_TEST(receiver_in_user_code, try_send_from_the_destructor_reports_full) {
  reentrant_send_is_refused<TypeParam>(reenter_try_send, "try_send", "full", late_limit);
}

TYPED_TEST(receiver_in_user_code, send_timeout_from_the_destructor_times_out) {
  reentrant_send_is_refused<TypeParam>(reenter_send_timeout, "send_timeout(1 ms)", "timeout",
                                       1ms + late_limit);
}

// ================================================================================
// 2. A buffered channel with a sender inside user code mid-send (slot reserved,
//    message not yet written).
// ================================================================================

template <class F>
class sender_in_user_code : public stalled_peer {};

using buffered_flavors = ::testing::Types<sluice_test::unbounded, sluice_test::bounded1,
                                          sluice_test::bounded4, sluice_test::bounded_large>;
TYPED_TEST_SUITE(sender_in_user_code, buffered_flavors, sluice_test::flavor_name);

// An empty channel whose only send, of `stalled_value`, stalls in the
// message's move constructor into its reserved slot. The operation under
// test receives.
template <class F>
struct send_stalls {
  channel_under_test<F> c;
  std::optional<std::expected<void, sluice::send_error<probe>>> sent;  // by the stalled send

  // Starts the send. Returns false (after reporting) if the stall never
  // happened.
  [[nodiscard]] bool start(task_group& tasks) {
    tasks.start([this] {
      arm_here(event::move);
      sent.emplace(c.tx().send(probe(stalled_value)));
    });
    if (!peer_stalled("the send")) return false;
    EXPECT_EQ(c.rx().len(), 1u) << "setup: the stalled sender should hold a reserved slot";
    return true;
  }
  auto& other_end() { return c.rx(); }
  template <class R>
  void book(const R& got) {
    if (got) c.book.got(got->value());
  }
  // What holds up the operation under test.
  static constexpr const char* stall =
      "a sender runs the message's move constructor into its reserved slot";
  // The timed operation under test, and its result once the timeout expired:
  // nothing received, the only message being still written.
  static constexpr const char* timed_call = "recv_timeout";
  static auto timed_op(auto& rx, std::chrono::nanoseconds timeout) {
    return rx.recv_timeout(timeout);
  }
  template <class R>
  static void expect_expired(const R& got) {
    expect_nothing_received(got, sluice::recv_timeout_error::timeout,
                            "recv_timeout got a message still being written");
  }
  // Once every task has finished: the stalled send succeeded.
  void check_peer() {
    ASSERT_TRUE(sent.has_value());
    ASSERT_TRUE(sent->has_value()) << "the stalled send failed";
    c.book.sent(stalled_value);
  }
};

// As send_stalls, but first 62 messages go through one at a time, so the
// stalled send's slot is memory the channel used before: an unbounded
// channel's recycled block (its first one, reused as the spare after two
// blocks of 31), a bounded channel's ring after one or more laps. A
// message's "written" mark left from that use must not show through.
// Offset: how many more messages go through first, so that the stalled
// slot is further into the reused block (30: the block's last slot, whose
// sender installs the next block).
template <class F, int Offset = 0>
struct send_stalls_in_reused_memory : send_stalls<F> {
  static constexpr int laps_messages = 62 + Offset;
  [[nodiscard]] bool start(task_group& tasks) {
    for (int i = 0; i < laps_messages; ++i) {
      EXPECT_TRUE(this->c.tx().send(probe(i)).has_value()) << "setup: message " << i;
      auto got = this->c.rx().try_recv();
      EXPECT_TRUE(got.has_value()) << "setup: message " << i << " not received";
      if (!got) return false;
      EXPECT_EQ(got->value(), i) << "setup: out of order";
    }
    return send_stalls<F>::start(tasks);
  }
};

TYPED_TEST(sender_in_user_code, try_recv_reports_empty_at_once) {
  run_while_peer_stalls<send_stalls<TypeParam>>(
      [](auto& rx) { return rx.try_recv(); }, return_limit,
      "try_recv did not return within 2 s while a sender runs the message's move constructor into "
      "its reserved slot: it waits for the write",
      [](const auto& got) {
        expect_nothing_received(got.result, sluice::try_recv_error::empty,
                                "try_recv got a message that was still being written");
      });
}

// try_recv while a send into a reused slot stalls: empty at once.
template <class Scenario>
void try_recv_reports_empty_in_reused_memory(const char* stuck) {
  run_while_peer_stalls<Scenario>(
      [](auto& rx) { return rx.try_recv(); }, return_limit, stuck, [](const auto& got) {
        expect_nothing_received(got.result, sluice::try_recv_error::empty,
                                "try_recv got a message still being written into a reused slot");
      });
}

TYPED_TEST(sender_in_user_code, try_recv_reports_empty_at_once_in_reused_memory) {
  try_recv_reports_empty_in_reused_memory<send_stalls_in_reused_memory<TypeParam>>(
      "try_recv did not return within 2 s while a sender runs the message's move constructor into "
      "its reserved slot, in memory the channel used before");
}

TYPED_TEST(sender_in_user_code, try_recv_reports_empty_at_once_at_a_reused_blocks_end) {
  try_recv_reports_empty_in_reused_memory<send_stalls_in_reused_memory<TypeParam, 30>>(
      "try_recv did not return within 2 s while a sender runs the message's move constructor into "
      "the last slot of a reused block");
}

TYPED_TEST(sender_in_user_code, recv_timeout_honours_its_deadline) {
  short_timeout_expires_on_time<send_stalls<TypeParam>>();
}

TYPED_TEST(sender_in_user_code, recv_timeout_parks_until_its_deadline) {
  long_timeout_expires_parked<send_stalls<TypeParam>>();
}

TYPED_TEST(sender_in_user_code, blocking_recv_parks_then_gets_the_message) {
  run_blocked_by_stalled_peer<send_stalls<TypeParam>>(
      [](auto& rx) { return rx.recv(); },
      "recv returned while the only message was still being written",
      "recv did not complete once the send finished", [](const auto& got) {
        ASSERT_TRUE(got.result.has_value()) << "recv failed";
        EXPECT_EQ(got.result->value(), stalled_value);
        expect_parked_over_window(got.t, "the blocked recv");
      });
}

// Beyond the four known bugs: dropping the receiver destroys queued messages
// and waits for the ones still being written. It may return at once (leaving
// the in-flight message to be destroyed later, exactly once) or wait, but it
// must not spin while it waits.
TYPED_TEST(sender_in_user_code, receiver_drop_does_not_spin_while_a_message_is_written) {
  send_stalls<TypeParam> s;
  std::optional<timing> dropped;
  task_group tasks;
  if (!s.start(tasks)) return;

  const auto drop = [&] {
    s.c.rx() = {};
    return 0;
  };
  const auto d = tasks.start([&] { dropped.emplace(timed(drop).t); });
  const bool returned_early = tasks.done_within(d, park_window);
  expect_completes_once_released(tasks, d, "the receiver's drop did not finish once the send did");

  ASSERT_TRUE(dropped.has_value());
  if (!returned_early) expect_parked_over_window(*dropped, "the receiver's drop");
  ASSERT_TRUE(s.sent.has_value());
  // The slot was reserved before the drop: sent (then destroyed with the
  // queue), or handed back; either way destroyed exactly once (TearDown).
  if (!s.sent->has_value()) {
    EXPECT_EQ(s.sent->error().value.value(), stalled_value);
  }
}

// ================================================================================
// 2b. A bounded channel made full by a sender still writing its last slot
//     (reserved, not written): the next lap's senders meet a slot whose
//     previous-lap sender has not finished.
// ================================================================================

template <class F>
class last_sender_in_user_code : public stalled_peer {};

// The stalled value (7) must arrive after the fill in FIFO order (the
// ledger's check), so the fill stays below it: small bounds only.
using small_bounded_flavors = ::testing::Types<sluice_test::bounded1, sluice_test::bounded4>;
TYPED_TEST_SUITE(last_sender_in_user_code, small_bounded_flavors, sluice_test::flavor_name);

// Fills all but one slot, then sends `stalled_value`, which stalls in the
// message's move constructor into the last slot (or runs `action`). The
// operation under test sends probe_value.
template <class F>
struct last_send_stalls : sends_into_full_channel {
  channel_under_test<F> c;
  std::optional<std::expected<void, sluice::send_error<probe>>> sent;  // by the stalled send

  [[nodiscard]] bool start(task_group& tasks, action_fn action = nullptr) {
    c.fill(static_cast<int>(*F::cap) - 1);
    if (::testing::Test::HasFatalFailure()) return false;
    tasks.start([this, action] {
      arm_here(event::move, action);
      sent.emplace(c.tx().send(probe(stalled_value)));
    });
    return peer_stalled("the last send");
  }
  auto& other_end() { return c.tx(); }
  template <class R>
  void book(const R& sent_now) {
    book_probe_send(c.book, sent_now);
  }
  static constexpr const char* stall =
      "a sender runs the message's move constructor into the channel's last free slot";
  // Once every task has finished: the stalled send succeeded.
  void check_peer() {
    ASSERT_TRUE(sent.has_value());
    ASSERT_TRUE(sent->has_value()) << "the stalled send failed";
    c.book.sent(stalled_value);
  }
};

TYPED_TEST(last_sender_in_user_code, try_send_reports_full_at_once) {
  try_send_is_full_while_peer_stalls<last_send_stalls<TypeParam>>(
      "try_send did not return within 2 s while another sender writes the last free slot: it "
      "waits for that write");
}

TYPED_TEST(last_sender_in_user_code, send_timeout_honours_its_deadline) {
  short_timeout_expires_on_time<last_send_stalls<TypeParam>>();
}

TYPED_TEST(last_sender_in_user_code, send_timeout_parks_until_its_deadline) {
  long_timeout_expires_parked<last_send_stalls<TypeParam>>();
}

// A blocking send waits, parked, through the stall and after it (the channel
// is full either way), and completes once the receiver takes a message.
TYPED_TEST(last_sender_in_user_code, blocking_send_parks_then_completes_after_a_receive) {
  last_send_stalls<TypeParam> s;
  std::optional<timed_result<std::expected<void, sluice::send_error<probe>>>> out;
  task_group tasks;
  if (!s.start(tasks)) return;
  const auto i = tasks.start_timed(out, [&] { return s.c.tx().send(probe(probe_value)); });
  EXPECT_FALSE(tasks.done_within(i, park_window)) << "send returned while the channel was full";
  release_trap();
  EXPECT_FALSE(tasks.done_within(i, 50ms)) << "send returned while the channel was still full";
  auto first = s.c.rx().recv();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->value(), *TypeParam::cap == 1 ? stalled_value : 0);  // the oldest
  s.c.book.got(first->value());
  ASSERT_TRUE(tasks.done_within(i, return_limit)) << "send did not complete after a receive";
  tasks.finish_all();
  ASSERT_TRUE(out.has_value());
  ASSERT_TRUE(out->result.has_value()) << "send failed";
  expect_parked(out->t, "the blocked send");
  s.book(out->result);
  check_peer_and_delivery(s);
}

// The stalled sender's own move constructor calls try_send on the same
// channel, now full: it must be refused at once (not wait for itself).
TYPED_TEST(last_sender_in_user_code, try_send_from_the_senders_own_move_reports_full) {
  last_send_stalls<TypeParam> s;
  task_group tasks;
  g_reentry_tx.store(&s.c.tx());
  if (!s.start(tasks, reenter_try_send)) return;
  ASSERT_TRUE(tasks.done_within(0, return_limit))
      << "try_send called from the message's move constructor, on the channel it is being sent "
         "into, never returns";
  tasks.finish_all();
  ASSERT_TRUE(g_reentry.done.load());
  EXPECT_FALSE(g_reentry.sent) << "try_send succeeded on a full channel";
  if (g_reentry.sent) {
    s.c.book.sent(probe_value);
  } else {
    EXPECT_TRUE(g_reentry.refused) << "try_send failed, but not with full";
    EXPECT_EQ(g_reentry.value_back, probe_value) << "the value handed back";
  }
  EXPECT_LT(g_reentry.took, late_limit);
  check_peer_and_delivery(s);
}

// ================================================================================
// 2c. A receive re-entered from the message's own destructor, on the same
//     thread: it reads the next message, not the one being received.
// ================================================================================

template <class F>
class receive_reentered : public stalled_peer {};

// Room for three queued messages.
using roomy_flavors =
    ::testing::Types<sluice_test::unbounded, sluice_test::bounded4, sluice_test::bounded_large>;
TYPED_TEST_SUITE(receive_reentered, roomy_flavors, sluice_test::flavor_name);

std::atomic<sluice::receiver<probe>*> g_reentry_rx{nullptr};
std::vector<int> g_reentry_got;  // written by the receiving thread only

void reenter_try_recv() noexcept {
  while (auto r = g_reentry_rx.load()->try_recv()) g_reentry_got.push_back(r->value());
}

TYPED_TEST(receive_reentered, try_recv_from_the_destructor_takes_the_next_messages) {
  channel_under_test<TypeParam> c;
  for (int i = 0; i < 3; ++i) {  // send(): unbounded senders have no try_send
    ASSERT_TRUE(c.tx().send(probe(i)).has_value());
    c.book.sent(i);
  }
  g_reentry_got.clear();
  g_reentry_rx.store(&c.rx());
  arm_here(event::moved_from_destroy, reenter_try_recv);
  auto first = c.rx().recv();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->value(), 0);
  c.book.got(first->value());
  EXPECT_EQ(g_reentry_got, (std::vector<int>{1, 2}))
      << "the re-entrant receive must see the messages after the one being received, once each";
  for (int v : g_reentry_got) c.book.got(v);
  c.drain_and_balance();
}

// ================================================================================
// 3. Rendezvous: a paired sender and receiver, one of them moving the message
//    through the other's packet.
// ================================================================================

class rendezvous_in_user_code : public stalled_peer {};

using timed_send = std::optional<timed_result<std::expected<void, sluice::send_error<probe>>>>;
using timed_try_send =
    std::optional<timed_result<std::expected<void, sluice::try_send_error<probe>>>>;
using timed_try_recv = std::optional<timed_result<std::expected<probe, sluice::try_recv_error>>>;

// The receiver (result in `got`, a failure reported as `recv_failed`) has
// claimed the sender (task `s`) and stalls moving the message out of its
// packet: the sender keeps waiting through `stall`, completes once the move
// is released, and has parked meanwhile.
template <class Got>
void expect_claimed_sender_waits(task_group& tasks, task_group::id s,
                                 std::chrono::nanoseconds stall, const std::optional<Got>& got,
                                 const char* recv_failed, const timed_send& sent) {
  expect_waits_for_the_peer(tasks, s, stall,
                            "send returned while its message was still being moved out",
                            "send did not complete once the receiver had the message");

  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->has_value()) << recv_failed;
  EXPECT_EQ((*got)->value(), stalled_value);
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(sent->result.has_value()) << "send failed";
  expect_parked_over_window(sent->t, "the claimed sender");
}

// Two operations that must both return at once (by one shared deadline),
// each reported as stuck with its own message. Returns whether each did.
std::pair<bool, bool> expect_both_return(task_group& tasks, task_group::id a, const char* a_stuck,
                                         task_group::id b, const char* b_stuck) {
  const auto until = steady::now() + return_limit;
  const bool a_returned = tasks.done_by(a, until);
  const bool b_returned = tasks.done_by(b, until);
  EXPECT_TRUE(a_returned) << a_stuck;
  EXPECT_TRUE(b_returned) << b_stuck;
  return {a_returned, b_returned};
}

// A sender blocked in send() is claimed by a receiver polling try_recv (so
// the claim comes while the sender still spins before parking); the
// receiver's move of the message out of the sender's packet stalls.
TEST_F(rendezvous_in_user_code,
       sender_claimed_by_polling_receiver_parks_while_the_message_moves_out) {
  auto ch = sluice::sync_channel<probe>(0);
  std::optional<std::expected<probe, sluice::try_recv_error>> got;
  timed_send sent;
  task_group tasks;

  tasks.start([&] {
    arm_here(event::move);  // the first move in this thread: out of the claimed packet
    const auto until = steady::now() + 5s;
    for (;;) {
      auto r = ch.second.try_recv();
      if (r || r.error() != sluice::try_recv_error::empty || steady::now() >= until) {
        got.emplace(std::move(r));
        return;
      }
    }
  });
  const auto s = tasks.start_timed(sent, [&] { return ch.first.send(probe(stalled_value)); });
  if (!peer_stalled("the receiver taking the message")) return;

  expect_claimed_sender_waits(tasks, s, park_window, got, "try_recv failed", sent);
}

// As above, but the sender has long parked when a blocking recv claims it,
// and is then woken spuriously while the receiver's move-out stalls.
TEST_F(rendezvous_in_user_code, sender_claimed_by_recv_parks_while_the_message_moves_out) {
  auto ch = sluice::sync_channel<probe>(0);
  std::optional<std::expected<probe, sluice::recv_error>> got;
  timed_send sent;
  std::atomic<pthread_t> sender_thread{};
  task_group tasks;

  const auto s = tasks.start([&] {
    sender_thread.store(pthread_self());
    sent.emplace(timed([&] { return ch.first.send(probe(stalled_value)); }));
  });
  std::this_thread::sleep_for(50ms);  // the sender registers and parks
  tasks.start([&] {
    arm_here(event::move);
    got.emplace(ch.second.recv());
  });
  if (!peer_stalled("the receiver taking the message")) return;

  wake_spuriously(sender_thread.load());
  expect_claimed_sender_waits(tasks, s, park_window - 50ms, got, "recv failed", sent);
}

// A receiver blocked in recv() is claimed by an arriving send whose move of
// the message into the receiver's packet stalls. Meanwhile a third party's
// try_send finds no receiver waiting and reports full at once.
void receiver_claimed_by_send(bool spurious_wakeups) {
  auto ch = sluice::sync_channel<probe>(0);
  std::optional<timed_result<std::expected<probe, sluice::recv_error>>> got;
  std::optional<std::expected<void, sluice::send_error<probe>>> sent;
  timed_try_send third;
  std::atomic<pthread_t> receiver_thread{};
  task_group tasks;

  const auto r = tasks.start([&] {
    receiver_thread.store(pthread_self());
    got.emplace(timed([&] { return ch.second.recv(); }));
  });
  std::this_thread::sleep_for(50ms);  // the receiver registers and parks
  tasks.start([&] {
    arm_here(event::move);  // the first move in this thread: into the claimed packet
    sent.emplace(ch.first.send(probe(stalled_value)));
  });
  if (!peer_stalled("the sender handing its message over")) return;

  const auto t =
      tasks.start_timed(third, [&] { return ch.first.try_send(probe(probe_value)); });
  const bool third_returned = tasks.done_within(t, return_limit);
  EXPECT_TRUE(third_returned) << "a third party's try_send did not return within 2 s during a "
                                 "stalled hand-off";
  if (spurious_wakeups) wake_spuriously(receiver_thread.load());
  expect_waits_for_the_peer(tasks, r, park_window - 50ms,
                            "recv returned while its message was still being moved in",
                            "recv did not complete once the sender finished");

  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->result.has_value()) << "recv failed";
  EXPECT_EQ(got->result->value(), stalled_value);
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(sent->has_value()) << "send failed";
  ASSERT_TRUE(third.has_value());
  if (third_returned) {
    if (!expect_refused(third->result, is_full, probe_value,
                        "try_send paired with a receiver already claimed")) {
      return;
    }
  }
  expect_parked_over_window(got->t, "the claimed receiver");
}

TEST_F(rendezvous_in_user_code, receiver_claimed_by_send_parks_while_the_message_moves_in) {
  receiver_claimed_by_send(false);
}

TEST_F(rendezvous_in_user_code, receiver_claimed_by_send_parks_even_if_woken_spuriously) {
  receiver_claimed_by_send(true);
}

// Beyond the four known bugs: a send that finds no receiver lends its
// message where it is (the packet points at it) and runs no user code before
// a receiver comes; the receiver moves it out once, in its own thread. So
// try_recv takes it at once, and another sender's try_send is refused.
TEST_F(rendezvous_in_user_code, a_waiting_sender_runs_no_user_code_until_a_receiver_takes_it) {
  auto ch = sluice::sync_channel<probe>(0);
  std::optional<std::expected<void, sluice::send_error<probe>>> sent;
  std::atomic<bool> sending{false};
  task_group tasks;

  const auto s = tasks.start([&] {
    arm_here(event::move);  // any move in the sender's own thread would stall it here
    sending.store(true);
    sent.emplace(ch.first.send(probe(stalled_value)));
  });
  while (!sending.load()) std::this_thread::yield();
  EXPECT_FALSE(g_trap.fired.wait_for(100ms)) << "the waiting sender moved its own message";
  EXPECT_FALSE(tasks.done(s)) << "the send returned with no receiver";

  auto other = ch.first.try_send(probe(probe_value));
  ASSERT_FALSE(other.has_value()) << "try_send succeeded with no receiver waiting";
  EXPECT_TRUE(other.error().is_full());

  // The sender may not have registered yet: a few tries, each returning at once.
  std::optional<std::expected<probe, sluice::try_recv_error>> got;
  for (int i = 0; i < 2000 && !(got && got->has_value()); ++i) {
    got.emplace(ch.second.try_recv());
    if (!got->has_value()) std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(got && got->has_value()) << "the waiting sender's message never arrived";
  EXPECT_EQ((*got)->value(), stalled_value);
  release_trap();
  ASSERT_TRUE(tasks.done_within(s, return_limit));
  tasks.finish_all();
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(sent->has_value()) << "send failed";
  EXPECT_FALSE(g_trap.fired.wait_for(0ms)) << "the sender moved its own message";
}

TEST_F(rendezvous_in_user_code, try_ops_return_at_once_while_a_sender_takes_its_value_back) {
  auto ch = sluice::sync_channel<probe>(0);
  ch.second.close();
  std::optional<std::expected<void, sluice::try_send_error<probe>>> first;
  timed_try_send other;
  timed_try_recv got;
  task_group tasks;

  tasks.start([&] {
    arm_here(event::move);  // the first move in this thread: the value into the error
    first.emplace(ch.first.try_send(probe(stalled_value)));
  });
  if (!peer_stalled("the sender taking its value back")) return;

  const auto o = tasks.start_timed(other, [&] { return ch.first.try_send(probe(probe_value)); });
  const auto r = tasks.start_timed(got, [&] { return ch.second.try_recv(); });
  const auto [o_returned, r_returned] = expect_both_return(
      tasks, o,
      "try_send on a closed channel did not return within 2 s while another sender's value is "
      "moved back to it",
      r,
      "try_recv on a closed channel did not return within 2 s while a sender's value is moved "
      "back to it");
  tasks.finish_all();

  ASSERT_TRUE(first.has_value());
  if (!expect_refused(*first, is_disconnected, stalled_value)) return;
  ASSERT_TRUE(other.has_value());
  if (!expect_refused(other->result, is_disconnected, probe_value)) return;
  ASSERT_TRUE(got.has_value());
  ASSERT_FALSE(got->result.has_value());
  EXPECT_EQ(got->result.error(), sluice::try_recv_error::disconnected);
  if (o_returned) {
    EXPECT_LT(other->t.wall, late_limit);
  }
  if (r_returned) {
    EXPECT_LT(got->t.wall, late_limit);
  }
}

}  // namespace
