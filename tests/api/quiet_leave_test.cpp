// A bounded channel's receiver that goes first, from an empty channel, hands
// its hold on the channel to the last other handle (the quiet leave,
// detail/flavors/array.hpp): whatever order the handles then go in, and
// whichever thread drops them, the channel is freed exactly once, senders
// learn at once that the receiver is gone, and nobody waiting is forgotten.
// AddressSanitizer and ThreadSanitizer check the frees; the heap check below
// counts them in every build.
#include <sluice/sluice.hpp>

#include "../support/counted.hpp"
#include "../support/scale.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLUICE_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SLUICE_TEST_SANITIZED 1
#endif
#endif

#if defined(SLUICE_TEST_SANITIZED)
// The sanitizer runtimes' own count (declared here: GCC installs no header
// for it everywhere).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

using sluice_test::counted;
using sluice_test::counted_registry;

// Bytes the heap holds for the program, or nullopt where we cannot ask.
std::optional<std::size_t> heap_in_use() {
#if defined(SLUICE_TEST_SANITIZED)
  return __sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  return mallinfo2().uordblks;
#else
  return std::nullopt;
#endif
}

// Runs `round` `n` times and checks the heap did not grow by a channel per
// round: a leaked bounded(1) channel is over 500 bytes, so 10,000 rounds
// would leave megabytes; the allocator's and the library's caches hold a
// bounded amount (measured against the first rounds, once they are warm).
template <class Round>
void expect_no_growth(int n, Round round) {
  for (int i = 0; i < 100; ++i) round(i);
  const std::optional<std::size_t> before = heap_in_use();
  for (int i = 0; i < n; ++i) round(i);
  const std::optional<std::size_t> after = heap_in_use();
  if (!before || !after) return;  // counted by the sanitizers only
  EXPECT_LT(*after, *before + 256 * 1024) << "the heap grew by " << (*after - *before)
                                          << " bytes over " << n << " rounds";
}

// The bounds that take each layout of the ring: one slot in the channel's
// own line, one segment from the thread's chunk, and a segment table of
// its own (with a sole sender).
constexpr std::array<std::size_t, 3> bounds = {1, 1024, 100'000};

}  // namespace

TEST(quiet_leave, receiver_first_then_sender_frees_the_channel) {
  for (const std::size_t bound : bounds) {
    SCOPED_TRACE(bound);
    const std::int64_t alive = counted_registry::alive();
    expect_no_growth(10'000, [bound](int i) {
      auto [tx, rx] = sluice::sync_channel<counted>(bound);
      ASSERT_TRUE(tx.send(counted(i)).has_value());
      ASSERT_EQ(rx.recv()->value(), i);
      { auto drop = std::move(rx); }
      // The sender learns at once, and gets its message back.
      EXPECT_TRUE(tx.is_disconnected());
      auto back = tx.send(counted(i + 1));
      ASSERT_FALSE(back.has_value());
      EXPECT_EQ(back.error().value.value(), i + 1);
      auto tried = tx.try_send(counted(i + 2));
      ASSERT_FALSE(tried.has_value());
      EXPECT_TRUE(tried.error().is_disconnected());
      EXPECT_FALSE(tx.try_reserve().has_value());
    });
    EXPECT_EQ(counted_registry::alive(), alive);
  }
}

// Every order of a receiver (dropped first, from an empty channel), two
// strong senders and a weak one, with an upgrade tried after the receiver
// went: the last handle frees, whichever it is.
TEST(quiet_leave, every_order_of_the_other_handles) {
  for (const std::size_t bound : bounds) {
    SCOPED_TRACE(bound);
    for (int order = 0; order < 6; ++order) {
      SCOPED_TRACE(order);
      expect_no_growth(2'000, [bound, order](int i) {
        auto [tx, rx] = sluice::sync_channel<int>(bound);
        auto tx2 = tx;
        auto w = tx.downgrade();
        ASSERT_TRUE(tx2.send(i).has_value());
        ASSERT_EQ(rx.recv(), i);
        { auto drop = std::move(rx); }
        EXPECT_FALSE(w.upgrade().has_value());
        EXPECT_EQ(w.strong_count(), 2u);
        auto drop_tx = [&] { auto t = std::move(tx); };
        auto drop_tx2 = [&] { auto t = std::move(tx2); };
        auto drop_w = [&] { auto x = std::move(w); };
        switch (order) {
          case 0: drop_tx(); drop_tx2(); drop_w(); break;
          case 1: drop_tx(); drop_w(); drop_tx2(); break;
          case 2: drop_w(); drop_tx(); drop_tx2(); break;
          case 3: drop_tx2(); drop_w(); drop_tx(); break;
          case 4: drop_w(); drop_tx2(); drop_tx(); break;
          default: drop_tx2(); drop_tx(); drop_w(); break;
        }
      });
    }
  }
}

// The receiver goes on one thread while the last sender (and a weak handle
// upgrading) go on others, all at once: sometimes the receiver leaves
// quietly, sometimes the sender's mark comes first and it does not. Freed
// exactly once either way (the sanitizers), and never kept (the heap check).
TEST(quiet_leave, receiver_races_the_last_sender_and_a_weak_handle) {
  const int rounds = static_cast<int>(1'000 * sluice_test::stress_scale());
  for (const std::size_t bound : bounds) {
    SCOPED_TRACE(bound);
    const std::int64_t alive = counted_registry::alive();
    expect_no_growth(rounds, [bound](int i) {
      auto [tx, rx] = sluice::sync_channel<counted>(bound);
      auto w = tx.downgrade();
      ASSERT_TRUE(tx.send(counted(i)).has_value());
      ASSERT_EQ(rx.recv()->value(), i);
      std::atomic<int> ready{0};
      std::thread receiver([&ready, r = std::move(rx)]() mutable {
        ++ready;
        while (ready.load() < 3) std::this_thread::yield();
        auto drop = std::move(r);
      });
      std::thread sender([&ready, t = std::move(tx), i]() mutable {
        ++ready;
        while (ready.load() < 3) std::this_thread::yield();
        (void)t.try_send(counted(i));  // may land before the receiver goes: destroyed with it
        auto drop = std::move(t);
      });
      std::thread weak([&ready, wk = std::move(w), i]() mutable {
        ++ready;
        while (ready.load() < 3) std::this_thread::yield();
        if (auto up = wk.upgrade()) (void)up->try_send(counted(-i));
        auto drop = std::move(wk);
      });
      receiver.join();
      sender.join();
      weak.join();
    });
    EXPECT_EQ(counted_registry::alive(), alive);
  }
}

// A sender that once waited makes the receiver leave the long way, waking
// whoever still waits. Two senders wait for room on a full bounded(1)
// channel; the receiver takes one message (waking one sender), empties the
// channel and goes at once, often before the woken sender has sent: the
// channel is empty then, with the other sender still asleep. Every sender
// returns (a forgotten one would hang the test), and each message sent is
// received or destroyed with the channel.
TEST(quiet_leave, senders_waiting_for_room_are_woken) {
  const int rounds = static_cast<int>(50 * sluice_test::stress_scale());
  const std::int64_t alive = counted_registry::alive();
  for (int round = 0; round < rounds; ++round) {
    auto [tx, rx] = sluice::sync_channel<counted>(1);
    ASSERT_TRUE(tx.send(counted(0)).has_value());
    std::atomic<int> sent{0};
    std::atomic<int> refused{0};
    std::vector<std::thread> senders;
    for (int k = 1; k <= 2; ++k) {
      senders.emplace_back([&sent, &refused, t = tx, k]() mutable {
        if (t.send(counted(k)).has_value()) {
          ++sent;
        } else {
          ++refused;
        }
      });
    }
    { auto drop = std::move(tx); }
    // Time for both to block (the test holds whether or not they did).
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    int received = 0;
    if (rx.recv().has_value()) ++received;
    while (rx.try_recv().has_value()) ++received;
    { auto drop = std::move(rx); }
    for (auto& t : senders) t.join();
    EXPECT_EQ(sent.load() + refused.load(), 2);
    EXPECT_GE(received, 1);
    EXPECT_LE(received, 1 + sent.load());
  }
  EXPECT_EQ(counted_registry::alive(), alive);
}
