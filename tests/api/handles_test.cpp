// Compile-time properties of the public types, and handle semantics that do
// not depend on the flavor.
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <concepts>
#include <iterator>
#include <memory>
#include <ranges>
#include <type_traits>

namespace {

struct throwing_move {
  throwing_move() = default;
  throwing_move(throwing_move&&) noexcept(false) {}
};
struct move_only {
  explicit move_only(int) {}
  move_only(move_only&&) noexcept = default;
  move_only& operator=(move_only&&) = delete;
};

template <class T>
concept channel_makeable = requires { sluice::channel<T>(); };
template <class T>
concept sync_channel_makeable = requires { sluice::sync_channel<T>(1); };

}  // namespace

// T must be nothrow move constructible; the rejection is a constraint, so
// it is visible to requires-expressions (no hard error).
static_assert(!sluice::sendable<throwing_move>);
static_assert(!channel_makeable<throwing_move>);
static_assert(!sync_channel_makeable<throwing_move>);
static_assert(channel_makeable<std::unique_ptr<throwing_move>>);
static_assert(channel_makeable<move_only>);
static_assert(sync_channel_makeable<move_only>);
static_assert(!sluice::sendable<const int>);
static_assert(!sluice::sendable<int&>);

// Handle kinds: senders copy, the receiver only moves.
static_assert(std::is_copy_constructible_v<sluice::sender<int>>);
static_assert(std::is_copy_assignable_v<sluice::sync_sender<int>>);
static_assert(std::is_nothrow_move_constructible_v<sluice::sender<int>>);
static_assert(!std::is_copy_constructible_v<sluice::receiver<int>>);
static_assert(!std::is_copy_assignable_v<sluice::receiver<int>>);
static_assert(std::is_nothrow_move_constructible_v<sluice::receiver<int>>);
static_assert(std::is_nothrow_move_assignable_v<sluice::receiver<int>>);
static_assert(!std::is_convertible_v<sluice::sender<int>, bool>);  // explicit bool

// Receiving is a range; so is try_iter(), even for move-only payloads.
static_assert(std::ranges::input_range<sluice::receiver<int>>);
static_assert(std::ranges::input_range<sluice::receiver<move_only>>);
static_assert(std::ranges::input_range<decltype(std::declval<sluice::receiver<int>&>().try_iter())>);
static_assert(std::same_as<std::ranges::range_value_t<sluice::receiver<int>>, int>);

// Results are std::expected with the contract's error types.
static_assert(std::same_as<decltype(std::declval<sluice::sender<int>&>().send(1)),
                           std::expected<void, sluice::send_error<int>>>);
static_assert(std::same_as<decltype(std::declval<sluice::sync_sender<int>&>().try_send(1)),
                           std::expected<void, sluice::try_send_error<int>>>);
static_assert(std::same_as<decltype(std::declval<sluice::receiver<int>&>().recv()),
                           std::expected<int, sluice::recv_error>>);
static_assert(std::same_as<decltype(std::declval<sluice::receiver<int>&>().try_recv()),
                           std::expected<int, sluice::try_recv_error>>);

TEST(handles, default_constructed_are_empty) {
  sluice::sender<int> tx;
  sluice::sync_sender<int> stx;
  sluice::receiver<int> rx;
  EXPECT_FALSE(tx);
  EXPECT_FALSE(stx);
  EXPECT_FALSE(rx);
  EXPECT_EQ(tx.send(1).error().value, 1);
  EXPECT_TRUE(stx.try_send(2).error().is_disconnected());
  EXPECT_TRUE(stx.send_timeout(3, std::chrono::seconds(1)).error().is_disconnected());
  EXPECT_EQ(stx.send(4).error().value, 4);
  EXPECT_EQ(rx.try_recv().error(), sluice::try_recv_error::disconnected);
  EXPECT_EQ(tx.capacity(), std::nullopt);
  EXPECT_FALSE(tx.is_full());
}

TEST(handles, copy_assignment_and_swap) {
  auto [tx1, rx1] = sluice::channel<int>();
  auto [tx2, rx2] = sluice::channel<int>();
  sluice::sender<int> a = tx1;
  a = tx2;  // releases its hold on channel 1
  EXPECT_TRUE(a.same_channel(rx2));
  auto& alias = a;
  a = alias;  // self-assignment keeps the handle
  EXPECT_TRUE(a.same_channel(rx2));
  swap(a, tx1);
  EXPECT_TRUE(a.same_channel(rx1));
  EXPECT_TRUE(tx1.same_channel(rx2));
  tx1 = {};
  a = {};
  EXPECT_TRUE(rx1.is_disconnected());
  EXPECT_FALSE(rx2.is_disconnected());  // tx2 still alive
}

TEST(handles, receiver_move_assignment_drops_old_channel) {
  auto [tx1, rx1] = sluice::channel<int>();
  auto [tx2, rx2] = sluice::channel<int>();
  ASSERT_TRUE(tx1.send(1).has_value());
  rx1 = std::move(rx2);  // channel 1 loses its receiver
  EXPECT_TRUE(tx1.is_disconnected());
  EXPECT_FALSE(tx1.send(2).has_value());
  EXPECT_TRUE(rx1.same_channel(tx2));
}

TEST(handles, send_error_value_is_the_sent_object) {
  auto [tx, rx] = sluice::sync_channel<std::unique_ptr<int>>(3);
  rx = {};
  auto p = std::make_unique<int>(1);
  auto* raw = p.get();
  auto r = tx.send(std::move(p));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().value.get(), raw);
}
