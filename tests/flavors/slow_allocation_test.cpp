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
// in thread A, then probe the channel from thread B. The timing, gates, task
// group and ledger are shared with stalled_peer_test.cpp
// (../support/peer_probe.hpp, which replaces nothing). Each test first
// empties its thread's own chunk and the process's chunk cache of 4 KiB
// chunks, so that the second segment is really allocated.
#include "../support/counted.hpp"
#include "../support/flavors.hpp"
#include "../support/peer_probe.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <expected>
#include <new>
#include <optional>
#include <thread>
#include <type_traits>
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
  sluice_test::gate entered;   // opens once a request stalls
  sluice_test::gate released;  // opening it lets the stalled request go on
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
  // Neither the wait nor the notify allocates (a futex on Linux).
  g_stall.entered.open();
  g_stall.released.wait();
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
using namespace sluice_test;  // timing, gates, tasks, ledger (peer_probe.hpp)

constexpr int segment_slots = 256;               // 4096-byte segments of 16-byte slots
constexpr int installing_value = segment_slots;  // the 257th message: first of segment 1

// A move-only counted message of 8 bytes (so a slot is 16 bytes and a
// segment of 256 slots is 4096 bytes).
using tiny = basic_counted<std::int32_t>;
static_assert(sizeof(tiny) == 8);

// The channel: sync_channel<tiny>(5000) (flavors.hpp), 20 segments of 256
// slots, each allocated on first use.
using large_bound = sluice_test::bounded_large;
static_assert(*large_bound::cap == 5000);

void arm_stall_here() noexcept {
  g_stall.entered.close();
  g_stall.entered_bytes.store(0);
  g_stall.thread.store(pthread_self());
  g_stall.armed.store(true, std::memory_order_release);
}

void release_stall() noexcept {
  g_stall.armed.store(false);
  g_stall.released.open();
}

using task_group = basic_task_group<release_stall>;

// Waits until the armed allocation stalled.
[[nodiscard]] bool allocation_stalled(const char* where) {
  if (g_stall.entered.wait_for(return_limit)) return true;
  ADD_FAILURE() << "setup: " << where << " never made an allocation of at least "
                << g_stall.min_bytes.load() << " bytes";
  return false;
}

class slow_allocation : public ::testing::Test {
 protected:
  void SetUp() override {
    // The segments of an earlier test's channel wait in the process's chunk
    // cache (memory/chunk_cache.hpp) or in this thread's own chunk
    // (memory/thread_chunk.hpp), and a cached one would be taken instead of
    // allocated: nothing would stall. Empty both for this size (the threads
    // that allocate are new for each test and keep nothing).
    using sluice::detail::chunk_cache;
    sluice::detail::give_back_thread_chunk();
    while (void* p = sluice::detail::process_chunk_cache.take(4096, chunk_cache::source::heap)) {
      chunk_cache::free_chunk(p, 4096, chunk_cache::source::heap);
    }
    g_stall.armed.store(false);
    g_stall.min_bytes.store(4096);
    g_stall.entered.close();
    g_stall.released.close();
  }
  void TearDown() override {
    release_stall();
    EXPECT_EQ(leaks_.leaked(), 0) << "messages created and destroyed do not balance";
  }

  // Fills the first segment (values 0..255), then starts the 257th send in
  // its own thread, stalled in the allocation of the second segment.
  // Returns false (after reporting) if that allocation never happened.
  [[nodiscard]] bool start_installing_sender(task_group& tasks) {
    c_.fill(segment_slots);
    if (HasFatalFailure()) return false;
    tasks.start([this] {
      arm_stall_here();
      installing_result_.emplace(c_.tx().send(tiny(installing_value)));
    });
    if (!allocation_stalled("the 257th send")) return false;
    EXPECT_EQ(c_.rx().len(), static_cast<std::size_t>(segment_slots))
        << "setup: the stalled sender should not have reserved a slot yet";
    return true;
  }

  // Once every task finished: the installing send succeeded, and every value
  // sent arrives exactly once, in order for the values of one producer.
  void check_delivery() {
    ASSERT_TRUE(installing_result_.has_value());
    EXPECT_TRUE(installing_result_->has_value()) << "the installing send failed";
    if (installing_result_->has_value()) c_.book.sent(installing_value);
    c_.drain_and_balance();
  }

  // Calls send(tx) (of probe_value, the sender under test) while another
  // sender allocates the segment it needs: it must return within `limit`
  // (else `stuck`), and `check` checks its timed result if it did.
  template <class Send, class Check>
  void send_while_installing(Send send, std::chrono::nanoseconds limit, const char* stuck,
                             Check check) {
    std::optional<timed_result<std::invoke_result_t<Send&, decltype(c_.tx())>>> sent;
    task_group tasks;
    if (!start_installing_sender(tasks)) return;

    expect_returns_while_stalled(tasks, sent, limit, stuck, [&] { return send(c_.tx()); }, check);
    if (HasFatalFailure()) return;
    book_probe_send(c_.book, sent->result);
    check_delivery();
  }

  leak_check leaks_;
  channel_under_test<large_bound, tiny> c_;  // the book: values sent and received
  std::optional<std::expected<void, sluice::send_error<tiny>>> installing_result_;
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
  send_while_installing(
      [](auto& tx) { return tx.try_send(tiny(probe_value)); }, return_limit,
      "try_send did not return within 2 s while another sender allocates the segment it needs: "
      "it waits for the allocation",
      [](const auto& sent) {
        // "full" is the expected answer (the installing sender has not
        // finished); a design in which this sender could go ahead on its own
        // would be acceptable as well, as long as it returned at once.
        if (!sent.result) {
          EXPECT_TRUE(sent.result.error().is_full());
        }
        EXPECT_LT(sent.t.wall, late_limit) << "try_send took " << ms(sent.t.wall) << " ms";
      });
}

TEST_F(slow_allocation, send_timeout_honours_its_deadline_while_another_sender_installs_a_segment) {
  send_while_installing(
      [](auto& tx) { return tx.send_timeout(tiny(probe_value), 1ms); }, return_limit,
      "send_timeout(1 ms) did not return within 2 s while another sender allocates the segment "
      "it needs",
      [](const auto& sent) {
        if (!sent.result) {
          EXPECT_TRUE(sent.result.error().is_timeout());
        }
        EXPECT_LT(sent.t.wall, 1ms + late_limit)
            << "send_timeout(1 ms) took " << ms(sent.t.wall) << " ms";
      });
}

TEST_F(slow_allocation,
       send_timeout_parks_until_its_deadline_while_another_sender_installs_a_segment) {
  send_while_installing(
      [](auto& tx) { return tx.send_timeout(tiny(probe_value), park_window); },
      park_window + return_limit,
      "send_timeout(300 ms) did not return within 2 s of its deadline while another sender "
      "allocates the segment it needs",
      [](const auto& sent) {
        EXPECT_LT(sent.t.wall, park_window + late_limit);
        if (!sent.result) {
          EXPECT_TRUE(sent.result.error().is_timeout());
          EXPECT_GE(sent.t.wall, park_window);
          expect_parked(sent.t, "send_timeout");
        }
      });
}

TEST_F(slow_allocation, blocking_send_parks_then_succeeds_once_the_segment_is_installed) {
  std::optional<timed_result<std::expected<void, sluice::send_error<tiny>>>> sent;
  task_group tasks;
  if (!start_installing_sender(tasks)) return;

  const auto b = tasks.start_timed(sent, [&] { return c_.tx().send(tiny(probe_value)); });
  const bool returned_early = tasks.done_within(b, park_window);
  expect_completes_once_released(tasks, b, "send did not complete once the segment was installed");

  ASSERT_TRUE(sent.has_value());
  ASSERT_TRUE(sent->result.has_value()) << "send failed";
  // A send that waited for the installing sender must have parked.
  if (!returned_early) expect_parked(sent->t, "the blocked send");
  c_.book.sent(probe_value);
  check_delivery();
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
      while (auto m = c_.rx().try_recv()) got.push_back(m->value());
      return got;
    }));
    timed_out.emplace(timed([&] { return c_.rx().recv_timeout(1ms); }));
  });
  const bool returned = tasks.done_within(r, return_limit);
  EXPECT_TRUE(returned) << "the receiver was delayed by a sender's segment allocation";
  tasks.finish_all();

  ASSERT_TRUE(drained.has_value());
  ASSERT_TRUE(timed_out.has_value());
  EXPECT_EQ(drained->result.size(), static_cast<std::size_t>(segment_slots));
  for (int v : drained->result) c_.book.got(v);  // received while the test ran
  if (returned) {
    EXPECT_LT(drained->t.wall, late_limit);
    EXPECT_LT(timed_out->t.wall, 1ms + late_limit);
    EXPECT_FALSE(timed_out->result.has_value());
  }
  if (timed_out->result) c_.book.got(timed_out->result->value());
  check_delivery();
}

}  // namespace
