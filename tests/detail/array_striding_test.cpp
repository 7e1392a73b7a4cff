// The bounded flavor's line-strided segments: once several threads write a
// ring with a table of its own, the segments installed from then on keep
// neighbouring indices in different lines, so their written slots are not
// a prefix. A channel that reuses a segment a shorter-lived channel wrote a
// few slots of (the thread's chunk, the process's chunk cache) must find
// every slot empty, whichever layout either used; messages keep their
// order through every lap, whatever the bound and the slot size (4, 2 or 1
// slots a line, the last never strided).
#include <sluice/detail/flavors/array.hpp>
#include <sluice/detail/memory/asymmetric_fence.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace {

using sluice::detail::array_channel;
using sluice::detail::deadline;

// A message of `Words` 8-byte words, each holding the same value.
template <std::size_t Words>
struct wide {
  std::array<std::uint64_t, Words> w{};
  static wide of(std::uint64_t v) {
    wide m;
    m.w.fill(v);
    return m;
  }
  [[nodiscard]] std::uint64_t value() const {
    for (std::uint64_t x : w) {
      if (x != w[0]) return ~std::uint64_t{0};  // torn: never a sent value
    }
    return w[0];
  }
};

// Sends and receives one message from another thread, then one from this
// one: the ring has had two writers, so segments installed from now on are
// strided (where the slot size allows).
template <class T>
void share(array_channel<T>& ch) {
  ASSERT_TRUE(ch.try_send(T::of(0)).has_value());
  std::thread([&ch] { ASSERT_TRUE(ch.try_send(T::of(1)).has_value()); }).join();
  ASSERT_EQ(ch.try_recv().value().value(), 0u);
  ASSERT_EQ(ch.try_recv().value().value(), 1u);
}

using word = wide<1>;
// One segment (never strided), a table in the channel, a table of its own.
constexpr std::size_t caps[] = {4, 17, 1000, 1024, 4100, 100000};

// Without membarrier nobody takes the sole sender's role: every segment of
// a ring with a table of its own strides from the first send on.
bool sole_senders_exist() {
  return sluice::detail::init_asymmetric_fence() == sluice::detail::fence_mode::asymmetric;
}

TEST(array_striding, segments_stride_once_two_threads_have_sent) {
  if (!sole_senders_exist()) GTEST_SKIP() << "no membarrier here: nobody takes the role";
  array_channel<word> alone(100000);
  for (std::uint64_t i = 0; i < 5000; ++i) ASSERT_TRUE(alone.try_send(word::of(i)).has_value());
  EXPECT_EQ(alone.strided_segments_for_testing(), 0u);  // one thread: index order

  array_channel<word> shared(100000);
  share(shared);
  for (std::uint64_t i = 0; i < 5000; ++i) ASSERT_TRUE(shared.try_send(word::of(i)).has_value());
  // Ten segments of 512 slots: all but the first, installed before the
  // second sender came.
  EXPECT_EQ(shared.strided_segments_for_testing(), 9u);
  for (std::uint64_t i = 0; i < 5000; ++i) ASSERT_EQ(shared.try_recv().value().value(), i);

  array_channel<wide<7>> wide_slots(100000);  // 64-byte slots: nothing to stride
  share(wide_slots);
  for (std::uint64_t i = 0; i < 5000; ++i) {
    ASSERT_TRUE(wide_slots.try_send(wide<7>::of(i)).has_value());
  }
  EXPECT_EQ(wide_slots.strided_segments_for_testing(), 0u);
}

TEST(array_striding, a_reused_segment_is_empty_in_every_slot) {
  for (std::size_t cap : caps) {
    for (int layout = 0; layout < 4; ++layout) {  // first shared?, next shared?
      for (std::size_t written = 1; written <= 40 && written <= cap; ++written) {
        // Large rings: a few written counts around the group size (each
        // refills the whole bound).
        if (cap > 4096 && written != 1 && written != 5 && written % 16 > 1) continue;
        {
          // Writes half its bound and `written` slots more, empties them,
          // gives its segments back. A permit given back first stops
          // recycling, so its segments go back with their written prefixes
          // (all but the first strided when shared). Unshared, the permit
          // comes from the thread that already sends alone, which keeps
          // its role.
          array_channel<word> first(cap);
          if ((layout & 1) != 0 && cap > 2) share(first);
          ASSERT_TRUE(first.try_send(word::of(99)).has_value());
          ASSERT_TRUE(first.try_reserve().has_value());
          first.release_reserved();
          ASSERT_EQ(first.try_recv().value().value(), 99u);
          if ((layout & 1) == 0 && cap > 4096 && sole_senders_exist()) {
            ASSERT_TRUE(first.sole_sender_for_testing());
          }
          const std::size_t n = std::min(cap, cap / 2 + written);
          for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(first.try_send(word::of(i)).has_value());
          for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(first.try_recv().value().value(), i);
        }
        // Takes them back: the whole bound is free, and order holds.
        array_channel<word> next(cap);
        if ((layout & 2) != 0 && cap > 2) share(next);
        for (std::size_t i = 0; i < cap; ++i) {
          ASSERT_TRUE(next.try_send(word::of(i + 7)).has_value())
              << "cap " << cap << ", layout " << layout << ", slot " << i << ", first wrote "
              << written;
        }
        EXPECT_FALSE(next.try_send(word::of(0)).has_value());
        for (std::size_t i = 0; i < cap; ++i) ASSERT_EQ(next.try_recv().value().value(), i + 7);
        EXPECT_FALSE(next.try_recv().has_value());
      }
    }
  }
}

template <class T>
class array_striding_laps : public ::testing::Test {};
using slot_sizes = ::testing::Types<wide<1>, wide<3>, wide<7>>;  // 4, 2, 1 slots a line
TYPED_TEST_SUITE(array_striding_laps, slot_sizes);

TYPED_TEST(array_striding_laps, order_holds_through_laps_at_every_fill) {
  for (std::size_t cap : caps) {
    for (bool shared : {false, true}) {
      array_channel<TypeParam> ch(cap);
      if (shared) share(ch);
      std::uint64_t sent = 0;
      std::uint64_t received = 0;
      // Fills to a different depth each round, so the tail and head meet
      // every slot of a group at every offset, and segments retire and
      // come back (rings with a table of their own).
      for (std::size_t round = 0; round < 3 * 17 && sent < 4 * cap + 100; ++round) {
        const std::size_t depth = 1 + (round * 7919) % cap;
        for (std::size_t i = 0; i < depth; ++i) {
          ASSERT_TRUE(ch.try_send(TypeParam::of(sent)).has_value()) << "cap " << cap;
          ++sent;
        }
        for (std::size_t i = 0; i < depth; ++i) {
          ASSERT_EQ(ch.try_recv().value().value(), received++);
        }
      }
      EXPECT_FALSE(ch.try_recv().has_value());
    }
  }
}

// Senders on neighbouring slots of strided groups, a receiver freeing the
// slot before theirs: every message once, in each sender's order.
TEST(array_striding, concurrent_senders_keep_their_order) {
  constexpr std::size_t senders = 3;
  constexpr std::uint64_t per_sender = 50000;
  for (std::size_t cap : {16u, 1000u, 4100u, 100000u}) {
    array_channel<word> ch(cap);
    // Shared before the senders start: a segment installed before the
    // second sender came keeps index order for as long as the senders stay
    // a lap ahead of its retirement (a full ring retires nothing).
    share(ch);
    std::array<std::thread, senders> threads;
    for (std::size_t s = 0; s < senders; ++s) {
      threads[s] = std::thread([&ch, s] {
        for (std::uint64_t i = 0; i < per_sender; ++i) {
          ASSERT_TRUE(ch.send(word::of(s << 32 | i), deadline::never()).has_value());
        }
      });
    }
    std::array<std::uint64_t, senders> next{};
    for (std::uint64_t n = 0; n < senders * per_sender; ++n) {
      // A lost message fails the test (after a minute) instead of hanging it.
      auto r = ch.recv_as(deadline::after(std::chrono::seconds(60)), {},
                          sluice::try_recv_error::empty, sluice::try_recv_error::disconnected,
                          sluice::try_recv_error::empty);
      if (!r.has_value()) {
        ch.disconnect_receivers();  // frees blocked senders, so the joins return
        for (std::thread& t : threads) t.join();
        FAIL() << "message " << n << " never came, cap " << cap;
      }
      const std::uint64_t v = r->value();
      const std::size_t s = static_cast<std::size_t>(v >> 32);
      ASSERT_LT(s, senders);
      ASSERT_EQ(v & 0xffffffffu, next[s]) << "cap " << cap << ", sender " << s;
      ++next[s];
    }
    for (std::thread& t : threads) t.join();
    EXPECT_FALSE(ch.try_recv().has_value());
    // The head's segment (mid-segment at the end: 150,002 messages) was
    // installed after share(), so it is strided.
    if (cap >= 4100) {
      EXPECT_GT(ch.strided_segments_for_testing(), 0u) << "cap " << cap;
    }
  }
}

}  // namespace
