// peer_probe: probing an operation while the thread it depends on is stalled
// (inside the message's user code, or in the allocator), without letting a
// bug hang the suite. Shared by the stalled-peer and slow-allocation suites.
//
// Provides:
// - the bounds every such test uses (return_limit, late_limit, park_window,
//   teardown_limit) and probe_value, what the operation under test sends;
// - measuring a wait: thread_cpu_time(), timed(f) (wall time and the calling
//   thread's CPU time), expect_parked (the waiter parked rather than spun);
// - gate: a latch threads block on, or poll with a time limit;
// - the trap and `probe`: a move-only counted message whose moves and
//   moved-from destructions are user code that a test can stall (or replace
//   by an action), for one thread and one kind of event at a time;
// - basic_task_group: tasks on their own threads, finished (their stalls
//   released, then joined) on every way out of a test, aborting rather than
//   hanging when one never finishes; and the three ways an operation under
//   test meets a stalled peer: it returns anyway
//   (expect_returns_while_stalled), it waits for it
//   (expect_waits_for_the_peer), it completes once the peer is released
//   (expect_completes_once_released);
// - ledger, book_probe_send and channel_under_test: every value sent must
//   arrive exactly once.
//
// Nothing here replaces operator new: slow_allocation_test.cpp does that in an
// executable of its own. A gate's open and wait do not allocate (a futex on
// Linux), so an allocation hook may use gates.
#pragma once

#include "counted.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice_test {

// --- bounds --------------------------------------------------------------------------

// How long an operation that must return at once may take before the test
// calls it stuck.
inline constexpr std::chrono::nanoseconds return_limit = std::chrono::seconds(2);
// How late after its deadline a timed operation may return.
inline constexpr std::chrono::nanoseconds late_limit = std::chrono::milliseconds(500);
// How long a peer stays stalled while a blocked operation's CPU is measured.
inline constexpr std::chrono::nanoseconds park_window = std::chrono::milliseconds(300);
// How long teardown waits for a task once every stall is released.
inline constexpr std::chrono::nanoseconds teardown_limit = std::chrono::seconds(10);
// A value no setup sends: what the operation under test sends. Setup values
// are below it (ledger relies on that).
inline constexpr int probe_value = 1000;

inline double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// --- measuring a wait ------------------------------------------------------------------

inline std::chrono::nanoseconds thread_cpu_time() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

struct timing {
  std::chrono::nanoseconds wall{};
  std::chrono::nanoseconds cpu{};  // of the calling thread only
};

template <class R>
struct timed_result {
  R result;
  timing t;
};

// Runs f() and measures its wall time and the calling thread's CPU time.
template <class F>
auto timed(F&& f) {
  using R = std::invoke_result_t<F&>;
  const auto cpu0 = thread_cpu_time();
  const auto wall0 = std::chrono::steady_clock::now();
  R r = f();
  const timing t{std::chrono::steady_clock::now() - wall0, thread_cpu_time() - cpu0};
  return timed_result<R>{std::move(r), t};
}

// A waiter that waited `t` for a stalled peer parked rather than spun: it was
// on a CPU for less than a quarter of the time.
inline void expect_parked(const timing& t, const char* what) {
  const double cpu_ms = ms(t.cpu);
  const double wall_ms = ms(t.wall);
  EXPECT_LT(cpu_ms, wall_ms / 4) << what << " used " << cpu_ms << " ms of CPU while waiting "
                                 << wall_ms
                                 << " ms for a stalled peer: it spins instead of parking";
}

// --- gates -----------------------------------------------------------------------------

// A latch: closed until opened. Constant-initialisable (usable before main,
// from an allocation hook).
class gate {
 public:
  void open() noexcept {
    open_.store(1);
    open_.notify_all();
  }
  void close() noexcept { open_.store(0); }
  [[nodiscard]] bool is_open() const noexcept { return open_.load() != 0; }
  void wait() const noexcept {
    while (open_.load() == 0) open_.wait(0);
  }
  // Polls (every 1 ms) until the gate opens or `limit` has passed; a test
  // thread uses this so that a peer that never gets there fails the test
  // instead of hanging it.
  [[nodiscard]] bool wait_for(std::chrono::nanoseconds limit) const {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!is_open()) {
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

 private:
  std::atomic<std::uint32_t> open_{0};
};

// --- the trap: deterministic slow user code --------------------------------------------

enum class event : std::uint8_t { move, moved_from_destroy };
using action_fn = void (*)() noexcept;

struct trap_state {
  std::atomic<bool> armed{false};
  std::atomic<event> kind{event::move};
  std::atomic<pthread_t> thread{};
  std::atomic<action_fn> action{nullptr};  // null: block on `release`
  gate fired;                              // opens when the armed event happens
  gate release;                            // opening it lets the trapped code go on
};
inline trap_state g_trap;

// Disarms the trap and closes its gates (a test's SetUp).
inline void reset_trap() noexcept {
  g_trap.armed.store(false);
  g_trap.fired.close();
  g_trap.action.store(nullptr);
  g_trap.release.close();
}

// Disarms the trap and lets a trapped thread go on (a task group's finish,
// a test's TearDown).
inline void release_trap() noexcept {
  g_trap.armed.store(false);
  g_trap.release.open();
}

// Arms the trap for the calling thread: its next `kind` event blocks on the
// release gate (or runs `action`). One-shot.
inline void arm_here(event kind, action_fn action = nullptr) noexcept {
  g_trap.kind.store(kind);
  g_trap.thread.store(pthread_self());
  g_trap.action.store(action);
  g_trap.fired.close();
  g_trap.armed.store(true);
}

inline void on_event(event kind) noexcept {
  if (!g_trap.armed.load()) return;
  if (g_trap.kind.load() != kind || pthread_equal(g_trap.thread.load(), pthread_self()) == 0) {
    return;
  }
  bool expected = true;
  if (!g_trap.armed.compare_exchange_strong(expected, false)) return;
  const action_fn action = g_trap.action.load();
  g_trap.fired.open();
  if (action != nullptr) {
    action();
  } else {
    g_trap.release.wait();
  }
}

// Waits until the armed trap fired: the peer is now inside the trapped user
// code. Reports a setup failure naming `where` if it never gets there.
[[nodiscard]] inline bool peer_stalled(const char* where) {
  if (g_trap.fired.wait_for(return_limit)) return true;
  ADD_FAILURE() << "setup: " << where << " never reached the trapped user code";
  return false;
}

// A move-only message (8 bytes) whose moves and moved-from destructions are
// user code the trap can stall; counted like sluice_test::counted.
class probe : public basic_counted<int> {
 public:
  explicit probe(int v) noexcept : basic_counted<int>(v) {}
  probe(probe&& o) noexcept : basic_counted<int>(std::move(o)) { on_event(event::move); }
  probe(const probe&) = delete;
  probe& operator=(const probe&) = delete;
  probe& operator=(probe&&) = delete;
  ~probe() {
    if (!owns()) on_event(event::moved_from_destroy);
  }
};

// --- tasks -----------------------------------------------------------------------------

// Tasks on their own threads. Destroying the group (also on an early return
// from a failed ASSERT) calls Release, which must let every stalled task go
// on, and joins every task. A task still running teardown_limit after that
// spins or waits forever (e.g. it re-entered the channel from the message's
// destructor): it can be neither joined nor detached, so the process reports
// it and aborts rather than hang until CTest's timeout.
template <void (*Release)() noexcept>
class basic_task_group {
 public:
  using id = std::size_t;

  basic_task_group() = default;
  basic_task_group(const basic_task_group&) = delete;
  basic_task_group& operator=(const basic_task_group&) = delete;
  ~basic_task_group() { finish_all(); }

  template <class F>
  id start(F f) {
    tasks_.push_back(std::async(std::launch::async, std::move(f)));
    return tasks_.size() - 1;
  }
  // Starts op() in a task, timed; the result goes to `out`, which must
  // outlive the group.
  template <class R, class Op>
  id start_timed(std::optional<timed_result<R>>& out, Op op) {
    return start([&out, op] { out.emplace(timed(op)); });
  }

  bool done_within(id i, std::chrono::nanoseconds d) {
    return tasks_[i].wait_for(d) == std::future_status::ready;
  }
  bool done(id i) { return done_within(i, std::chrono::nanoseconds(0)); }
  bool done_by(id i, std::chrono::steady_clock::time_point t) {
    return tasks_[i].wait_until(t) == std::future_status::ready;
  }

  // Lets every stalled task go on (finish_all does this first).
  static void release() noexcept { Release(); }

  void finish_all() {
    Release();
    for (auto& t : tasks_) {
      if (!t.valid()) continue;
      if (t.wait_for(teardown_limit) != std::future_status::ready) {
        std::fprintf(stderr,
                     "FATAL: a task is still running %.0f ms after every stall was released (it "
                     "spins forever, e.g. re-entered the channel from the message's destructor); "
                     "it can be neither joined nor detached: aborting.\n",
                     ms(teardown_limit));
        std::fflush(nullptr);
        std::abort();
      }
      t.get();
    }
  }

 private:
  std::vector<std::future<void>> tasks_;
};

// Runs op() (the operation under test, timed) in a task while the peer stays
// stalled: it must return within `limit`, else `stuck` is reported. Then
// finishes every task, which releases the peer, and, if op had returned in
// time, checks its timed result with `check`. A caller goes on only without a
// fatal failure (::testing::Test::HasFatalFailure()).
template <class Group, class R, class Op, class Check>
void expect_returns_while_stalled(Group& tasks, std::optional<timed_result<R>>& out,
                                  std::chrono::nanoseconds limit, const char* stuck, Op op,
                                  Check check) {
  const auto i = tasks.start_timed(out, op);
  const bool returned = tasks.done_within(i, limit);
  EXPECT_TRUE(returned) << stuck;
  tasks.finish_all();
  ASSERT_TRUE(out.has_value());
  if (returned) check(std::as_const(*out));
}

// Releases the peer: task `i` must then complete within return_limit
// (`never_completed` otherwise). Finishes every task.
template <class Group>
void expect_completes_once_released(Group& tasks, typename Group::id i,
                                    const char* never_completed) {
  Group::release();
  EXPECT_TRUE(tasks.done_within(i, return_limit)) << never_completed;
  tasks.finish_all();
}

// Waits `stall` while the peer stays stalled: the blocked task `i` must not
// return (`returned_early` otherwise). Then releases the peer: the task must
// complete within return_limit (`never_completed` otherwise). Finishes every
// task.
template <class Group>
void expect_waits_for_the_peer(Group& tasks, typename Group::id i, std::chrono::nanoseconds stall,
                               const char* returned_early, const char* never_completed) {
  std::this_thread::sleep_for(stall);
  EXPECT_FALSE(tasks.done(i)) << returned_early;
  expect_completes_once_released(tasks, i, never_completed);
}

// --- bookkeeping -----------------------------------------------------------------------

// Values sent and received; at the end each value sent arrived exactly once.
class ledger {
 public:
  void sent(int v) {
    std::lock_guard g(m_);
    sent_.push_back(v);
  }
  void got(int v) {
    std::lock_guard g(m_);
    got_.push_back(v);
  }
  void expect_balanced() {
    std::lock_guard g(m_);
    // Setup values (< probe_value) come from one producer: FIFO.
    std::vector<int> setup;
    for (int v : got_) {
      if (v < probe_value) setup.push_back(v);
    }
    EXPECT_TRUE(std::is_sorted(setup.begin(), setup.end())) << "one producer's values out of order";
    std::vector<int> all_sent = sent_;
    std::vector<int> all_got = got_;
    std::sort(all_sent.begin(), all_sent.end());
    std::sort(all_got.begin(), all_got.end());
    EXPECT_EQ(all_sent, all_got) << "the values received are not exactly the values sent";
  }

 private:
  std::mutex m_;
  std::vector<int> sent_;
  std::vector<int> got_;
};

// After a send of probe_value under test: books it if it was sent, else
// checks the value came back with the error.
template <class Result>
void book_probe_send(ledger& book, const Result& r) {
  if (r) {
    book.sent(probe_value);
  } else {
    EXPECT_EQ(r.error().value.value(), probe_value) << "the value handed back";
  }
}

// A channel of M (made by flavor F, see flavors.hpp) with its ledger.
template <class F, class M = probe>
struct channel_under_test {
  decltype(F::template make<M>()) ch = F::template make<M>();
  ledger book;

  auto& tx() { return ch.first; }
  auto& rx() { return ch.second; }

  // Sends 0..n-1 without waiting; each must fit.
  void fill(int n) {
    for (int i = 0; i < n; ++i) {
      auto r = tx().try_send(M(i));
      ASSERT_TRUE(r.has_value()) << "setup: message " << i << " did not fit";
      book.sent(i);
    }
  }
  // Receives what is queued, then checks that every value sent arrived
  // exactly once (call once every task has finished).
  void drain_and_balance() {
    while (auto r = rx().try_recv()) book.got(r->value());
    book.expect_balanced();
  }
};

}  // namespace sluice_test
