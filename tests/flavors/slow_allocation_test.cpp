// Slow allocation: a bounded channel whose bound spans several lazily
// allocated segments (sync_channel(5000): 4 KiB segments of 256 slots,
// allocated on first use, see array.hpp install_segment). While one sender
// allocates a segment, other senders that reach it must not wait for the
// allocator: try_send returns at once (full: the installing sender has not
// finished), send_timeout honours its deadline, a blocking send parks and
// then succeeds.
//
// This executable replaces the global operator new/new[]/delete/delete[] (all
// forms, backed by malloc/aligned_alloc/free, so it works under ASan and TSan)
// with a hook: while an atomic "stall" flag is armed for one thread, that
// thread's first request of at least 4096 bytes signals "entered" and blocks
// until the test releases it. Tests arm it so that exactly the segment
// allocation of the 257th send (the first slot of the second segment) stalls
// in thread A, then probe the channel from thread B.
#include "../support/counted.hpp"

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
#include <expected>
#include <future>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// --- the allocation hook ------------------------------------------------------------

namespace {

// Everything here is constant-initialised (no dynamic initialisation), so it
// is usable from the first operator new call, before main.
struct stall_state {
  std::atomic<bool> armed{false};
  std::atomic<pthread_t> thread{};           // only this thread stalls
  std::atomic<std::size_t> min_bytes{4096};  // only requests this large stall
  std::atomic<std::size_t> entered_bytes{0};
  std::atomic<std::uint32_t> entered{0};   // 1 once a request stalls
  std::atomic<std::uint32_t> released{0};  // 1 lets the stalled request go on
};
constinit stall_state g_stall;

void maybe_stall(std::size_t n) noexcept {
  if (!g_stall.armed.load(std::memory_order_acquire)) return;  // the fast path
  if (n < g_stall.min_bytes.load() || pthread_equal(g_stall.thread.load(), pthread_self()) == 0) {
    return;
  }
  bool expected = true;
  if (!g_stall.armed.compare_exchange_strong(expected, false)) return;  // one-shot
  g_stall.entered_bytes.store(n);
  g_stall.entered.store(1);
  g_stall.entered.notify_all();
  // Neither the wait nor the notify allocates (a futex on Linux).
  while (g_stall.released.load() == 0) g_stall.released.wait(0);
}

void* allocate(std::size_t n) {
  maybe_stall(n);
  for (;;) {
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) throw std::bad_alloc();
    h();
  }
}

void* allocate_aligned(std::size_t n, std::align_val_t al) {
  maybe_stall(n);
  std::size_t a = static_cast<std::size_t>(al);
  if (a < sizeof(void*)) a = sizeof(void*);
  if (n > SIZE_MAX - a) throw std::bad_alloc();
  // aligned_alloc wants a size that is a multiple of the alignment (ASan checks).
  const std::size_t rounded = n == 0 ? a : (n + a - 1) / a * a;
  for (;;) {
    if (void* p = std::aligned_alloc(a, rounded)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) throw std::bad_alloc();
    h();
  }
}

template <class F>
void* nothrow(F f) noexcept {
  try {
    return f();
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return nothrow([n] { return allocate(n); });
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return nothrow([n] { return allocate(n); });
}
void* operator new(std::size_t n, std::align_val_t a) { return allocate_aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate_aligned(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return nothrow([n, a] { return allocate_aligned(n, a); });
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return nothrow([n, a] { return allocate_aligned(n, a); });
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

// --- tests -------------------------------------------------------------------------

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using sluice_test::counted_registry;
using sluice_test::leak_check;

// How long an operation that must return at once may take before the test
// calls it stuck.
constexpr std::chrono::nanoseconds return_limit = 2s;
// How late after its deadline a timed operation may return.
constexpr std::chrono::nanoseconds late_limit = 500ms;
// How long the allocation stays stalled while a blocked send's CPU is measured.
constexpr std::chrono::nanoseconds park_window = 300ms;
// How long teardown waits for a task once the allocation is released.
constexpr std::chrono::nanoseconds teardown_limit = 10s;

constexpr std::size_t bound = 5000;
constexpr int segment_slots = 256;               // 4096-byte segments of 16-byte slots
constexpr int installing_value = segment_slots;  // the 257th message: first of segment 1
constexpr int probe_value = 1000;                // what the sender under test sends

double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

void arm_stall_here() noexcept {
  g_stall.entered.store(0);
  g_stall.entered_bytes.store(0);
  g_stall.thread.store(pthread_self());
  g_stall.armed.store(true, std::memory_order_release);
}

void release_stall() noexcept {
  g_stall.armed.store(false);
  g_stall.released.store(1);
  g_stall.released.notify_all();
}

// Waits until the armed allocation stalled.
[[nodiscard]] bool allocation_stalled(const char* where) {
  const auto until = steady::now() + return_limit;
  while (g_stall.entered.load() == 0) {
    if (steady::now() >= until) {
      ADD_FAILURE() << "setup: " << where << " never made an allocation of at least "
                    << g_stall.min_bytes.load() << " bytes";
      return false;
    }
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A move-only message of 8 bytes (so a slot is 16 bytes and a segment of 256
// slots is 4096 bytes), counted like sluice_test::counted.
class tiny {
 public:
  explicit tiny(int v) noexcept : value_(v), owns_(true) { counted_registry::created++; }
  tiny(tiny&& o) noexcept : value_(o.value_), owns_(std::exchange(o.owns_, false)) {}
  tiny(const tiny&) = delete;
  tiny& operator=(const tiny&) = delete;
  tiny& operator=(tiny&&) = delete;
  ~tiny() {
    if (owns_) counted_registry::destroyed++;
  }
  [[nodiscard]] int value() const noexcept { return value_; }

 private:
  std::int32_t value_;
  bool owns_;
};
static_assert(sizeof(tiny) == 8);

// --- measuring a wait ----------------------------------------------------------

std::chrono::nanoseconds thread_cpu_time() noexcept {
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

template <class F>
auto timed(F&& f) {
  using R = std::invoke_result_t<F&>;
  const auto cpu0 = thread_cpu_time();
  const auto wall0 = steady::now();
  R r = f();
  const timing t{steady::now() - wall0, thread_cpu_time() - cpu0};
  return timed_result<R>{std::move(r), t};
}

void expect_parked(const timing& t, const char* what) {
  const double cpu_ms = ms(t.cpu);
  const double wall_ms = ms(t.wall);
  EXPECT_LT(cpu_ms, wall_ms / 4) << what << " used " << cpu_ms << " ms of CPU while waiting "
                                 << wall_ms
                                 << " ms for a stalled sender: it spins instead of parking";
}

// Tasks on their own threads; destroying the group (also after a failed
// ASSERT) releases the allocation and joins every task, aborting after
// reporting if one still runs teardown_limit later (it can be neither joined
// nor detached).
class task_group {
 public:
  using id = std::size_t;

  task_group() = default;
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;
  ~task_group() { finish_all(); }

  template <class F>
  id start(F f) {
    tasks_.push_back(std::async(std::launch::async, std::move(f)));
    return tasks_.size() - 1;
  }
  bool done_within(id i, std::chrono::nanoseconds d) {
    return tasks_[i].wait_for(d) == std::future_status::ready;
  }
  bool done(id i) { return done_within(i, 0s); }

  void finish_all() {
    release_stall();
    for (auto& t : tasks_) {
      if (!t.valid()) continue;
      if (t.wait_for(teardown_limit) != std::future_status::ready) {
        std::fprintf(stderr,
                     "FATAL: a task is still running %.0f ms after the allocation was released; "
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

class slow_allocation : public ::testing::Test {
 protected:
  void SetUp() override {
    g_stall.armed.store(false);
    g_stall.min_bytes.store(4096);
    g_stall.entered.store(0);
    g_stall.released.store(0);
  }
  void TearDown() override {
    release_stall();
    EXPECT_EQ(leaks_.leaked(), 0) << "messages created and destroyed do not balance";
  }

  // Fills the first segment (values 0..255), then starts the 257th send in
  // its own thread, stalled in the allocation of the second segment.
  // Returns false (after reporting) if that allocation never happened.
  [[nodiscard]] bool start_installing_sender(task_group& tasks) {
    for (int i = 0; i < segment_slots; ++i) {
      auto r = tx().try_send(tiny(i));
      if (!r) {
        ADD_FAILURE() << "setup: message " << i << " did not fit";
        return false;
      }
      sent_.push_back(i);
    }
    tasks.start([this] {
      arm_stall_here();
      installing_result_.emplace(tx().send(tiny(installing_value)));
    });
    if (!allocation_stalled("the 257th send")) return false;
    EXPECT_EQ(rx().len(), static_cast<std::size_t>(segment_slots))
        << "setup: the stalled sender should not have reserved a slot yet";
    return true;
  }

  // Once every task finished: the installing send succeeded, and every value
  // sent arrives exactly once, in order for the values of one producer.
  void check_delivery(std::vector<int> extra_sent) {
    ASSERT_TRUE(installing_result_.has_value());
    EXPECT_TRUE(installing_result_->has_value()) << "the installing send failed";
    if (installing_result_->has_value()) sent_.push_back(installing_value);
    for (int v : extra_sent) sent_.push_back(v);
    std::vector<int> got = received_;
    while (auto r = rx().try_recv()) got.push_back(r->value());
    std::vector<int> setup;
    for (int v : got) {
      if (v <= installing_value) setup.push_back(v);
    }
    EXPECT_TRUE(std::is_sorted(setup.begin(), setup.end())) << "one producer's values out of order";
    std::vector<int> expected = sent_;
    std::sort(expected.begin(), expected.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected) << "the values received are not exactly the values sent";
  }

  sluice::sync_sender<tiny>& tx() { return ch_.first; }
  sluice::receiver<tiny>& rx() { return ch_.second; }

  leak_check leaks_;
  std::pair<sluice::sync_sender<tiny>, sluice::receiver<tiny>> ch_ =
      sluice::sync_channel<tiny>(bound);
  std::optional<std::expected<void, sluice::send_error<tiny>>> installing_result_;
  std::vector<int> sent_;
  std::vector<int> received_;  // received while a test ran
};

// The hook itself: only an armed thread's large request stalls, once.
TEST_F(slow_allocation, hook_stalls_one_large_allocation_of_the_armed_thread) {
  std::atomic<void*> sink{nullptr};
  std::atomic<bool> small_done{false};
  task_group tasks;
  const auto t = tasks.start([&] {
    arm_stall_here();
    void* small = ::operator new(g_stall.min_bytes.load() - 1);  // below the threshold
    sink.store(small);
    ::operator delete(small);
    small_done.store(true);
    void* big = ::operator new[](g_stall.min_bytes.load());  // stalls
    sink.store(big);
    ::operator delete[](big);
    void* again = ::operator new[](g_stall.min_bytes.load());  // one-shot: no stall
    sink.store(again);
    ::operator delete[](again);
  });
  ASSERT_TRUE(allocation_stalled("the armed thread"));
  EXPECT_TRUE(small_done.load());
  EXPECT_EQ(g_stall.entered_bytes.load(), g_stall.min_bytes.load());
  void* other = ::operator new[](1 << 16);  // another thread: no stall
  sink.store(other);
  ::operator delete[](other);
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(tasks.done(t)) << "the stalled allocation returned before its release";
  release_stall();
  EXPECT_TRUE(tasks.done_within(t, return_limit));
}

TEST_F(slow_allocation, try_send_reports_full_at_once_while_another_sender_installs_a_segment) {
  std::optional<timed_result<std::expected<void, sluice::try_send_error<tiny>>>> sent;
  task_group tasks;
  if (!start_installing_sender(tasks)) return;

  const auto b =
      tasks.start([&] { sent.emplace(timed([&] { return tx().try_send(tiny(probe_value)); })); });
  const bool returned = tasks.done_within(b, return_limit);
  EXPECT_TRUE(returned) << "try_send did not return within 2 s while another sender allocates the "
                           "segment it needs: it waits for the allocation";
  tasks.finish_all();

  ASSERT_TRUE(sent.has_value());
  if (returned) {
    // "full" is the expected answer (the installing sender has not finished);
    // a design in which this sender could go ahead on its own would be
    // acceptable as well, as long as it returned at once.
    if (!sent->result) {
      EXPECT_TRUE(sent->result.error().is_full());
    }
    EXPECT_LT(sent->t.wall, late_limit) << "try_send took " << ms(sent->t.wall) << " ms";
  }
  std::vector<int> extra;
  if (sent->result) {
    extra.push_back(probe_value);
  } else {
    EXPECT_EQ(sent->result.error().value.value(), probe_value) << "the value handed back";
  }
  check_delivery(extra);
}

TEST_F(slow_allocation, send_timeout_honours_its_deadline_while_another_sender_installs_a_segment) {
  std::optional<timed_result<std::expected<void, sluice::send_timeout_error<tiny>>>> sent;
  task_group tasks;
  if (!start_installing_sender(tasks)) return;

  const auto b = tasks.start(
      [&] { sent.emplace(timed([&] { return tx().send_timeout(tiny(probe_value), 1ms); })); });
  const bool returned = tasks.done_within(b, return_limit);
  EXPECT_TRUE(returned) << "send_timeout(1 ms) did not return within 2 s while another sender "
                           "allocates the segment it needs";
  tasks.finish_all();

  ASSERT_TRUE(sent.has_value());
  if (returned) {
    if (!sent->result) {
      EXPECT_TRUE(sent->result.error().is_timeout());
    }
    EXPECT_LT(sent->t.wall, 1ms + late_limit)
        << "send_timeout(1 ms) took " << ms(sent->t.wall) << " ms";
  }
  std::vector<int> extra;
  if (sent->result) {
    extra.push_back(probe_value);
  } else {
    EXPECT_EQ(sent->result.error().value.value(), probe_value) << "the value handed back";
  }
  check_delivery(extra);
}

TEST_F(slow_allocation,
       send_timeout_parks_until_its_deadline_while_another_sender_installs_a_segment) {
  std::optional<timed_result<std::expected<void, sluice::send_timeout_error<tiny>>>> sent;
  task_group tasks;
  if (!start_installing_sender(tasks)) return;

  const auto b = tasks.start([&] {
    sent.emplace(timed([&] { return tx().send_timeout(tiny(probe_value), park_window); }));
  });
  const bool returned = tasks.done_within(b, park_window + return_limit);
  EXPECT_TRUE(returned) << "send_timeout(300 ms) did not return within 2 s of its deadline while "
                           "another sender allocates the segment it needs";
  tasks.finish_all();

  ASSERT_TRUE(sent.has_value());
  if (returned) {
    EXPECT_LT(sent->t.wall, park_window + late_limit);
    if (!sent->result) {
      EXPECT_TRUE(sent->result.error().is_timeout());
      EXPECT_GE(sent->t.wall, park_window);
      expect_parked(sent->t, "send_timeout");
    }
  }
  std::vector<int> extra;
  if (sent->result) {
    extra.push_back(probe_value);
  } else {
    EXPECT_EQ(sent->result.error().value.value(), probe_value) << "the value handed back";
  }
  check_delivery(extra);
}

TEST_F(slow_allocation, blocking_send_parks_then_succeeds_once_the_segment_is_installed) {
  std::optional<timed_result<std::expected<void, sluice::send_error<tiny>>>> sent;
  task_group tasks;
  if (!start_installing_sender(tasks)) return;

  const auto b =
      tasks.start([&] { sent.emplace(timed([&] { return tx().send(tiny(probe_value)); })); });
  const bool returned_early = tasks.done_within(b, park_window);
  release_stall();
  EXPECT_TRUE(tasks.done_within(b, return_limit))
      << "send did not complete once the segment was installed";
  tasks.finish_all();

  ASSERT_TRUE(sent.has_value());
  ASSERT_TRUE(sent->result.has_value()) << "send failed";
  // A send that waited for the installing sender must have parked.
  if (!returned_early) expect_parked(sent->t, "the blocked send");
  check_delivery({probe_value});
}

// The receiver never needs the segment being installed: it is not delayed.
TEST_F(slow_allocation, receiver_is_not_delayed_while_a_sender_installs_a_segment) {
  std::optional<timed_result<std::vector<int>>> drained;
  std::optional<timed_result<std::expected<tiny, sluice::recv_timeout_error>>> timed_out;
  task_group tasks;
  if (!start_installing_sender(tasks)) return;

  const auto r = tasks.start([&] {
    drained.emplace(timed([&] {
      std::vector<int> got;
      while (auto m = rx().try_recv()) got.push_back(m->value());
      return got;
    }));
    timed_out.emplace(timed([&] { return rx().recv_timeout(1ms); }));
  });
  const bool returned = tasks.done_within(r, return_limit);
  EXPECT_TRUE(returned) << "the receiver was delayed by a sender's segment allocation";
  tasks.finish_all();

  ASSERT_TRUE(drained.has_value());
  ASSERT_TRUE(timed_out.has_value());
  EXPECT_EQ(drained->result.size(), static_cast<std::size_t>(segment_slots));
  received_ = drained->result;
  if (returned) {
    EXPECT_LT(drained->t.wall, late_limit);
    EXPECT_LT(timed_out->t.wall, 1ms + late_limit);
    EXPECT_FALSE(timed_out->result.has_value());
  }
  if (timed_out->result) received_.push_back(timed_out->result->value());
  check_delivery({});
}

}  // namespace
