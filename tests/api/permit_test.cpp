// Permits (sync_sender::reserve and friends): the blocking and non-blocking
// forms, on bounded and rendezvous channels.
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stop_token>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

TEST(Permit, ReserveThenSendDelivers) {
  auto [tx, rx] = sluice::sync_channel<int>(2);
  auto p = tx.reserve();
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(static_cast<bool>(*p));
  EXPECT_EQ(rx.try_recv().error(), sluice::try_recv_error::empty);
  std::move(*p).send(7);
  EXPECT_FALSE(static_cast<bool>(*p));
  EXPECT_EQ(rx.recv().value(), 7);
}

TEST(Permit, PermitsCountAgainstCapacity) {
  auto [tx, rx] = sluice::sync_channel<int>(3);
  auto a = tx.try_reserve();
  auto b = tx.try_reserve();
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(tx.try_send(1).has_value());
  EXPECT_TRUE(tx.is_full());
  EXPECT_EQ(tx.try_send(2).error().reason, sluice::try_send_error<int>::reason_t::full);
  EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);
  EXPECT_EQ(rx.len(), 1u);
  std::move(*b).send(3);
  std::move(*a).send(2);
  // Plain send first (it claimed its position first), then the permits' in
  // the order they sent.
  EXPECT_EQ(rx.recv().value(), 1);
  EXPECT_EQ(rx.recv().value(), 3);
  EXPECT_EQ(rx.recv().value(), 2);
  EXPECT_TRUE(rx.is_empty());
}

TEST(Permit, DroppedPermitGivesItsSlotBack) {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  {
    auto p = tx.try_reserve();
    ASSERT_TRUE(p);
    EXPECT_EQ(tx.try_send(1).error().reason, sluice::try_send_error<int>::reason_t::full);
  }
  EXPECT_TRUE(tx.try_send(1).has_value());
  EXPECT_EQ(rx.recv().value(), 1);
}

TEST(Permit, DroppedPermitWakesBlockedSender) {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  std::atomic<bool> sent{false};
  std::jthread t([&] {
    EXPECT_TRUE(tx.send(5).has_value());
    sent = true;
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(sent.load());
  *p = sluice::permit<int>();  // gives the slot back
  t.join();
  EXPECT_TRUE(sent.load());
  EXPECT_EQ(rx.recv().value(), 5);
}

TEST(Permit, ReserveWaitsForRoom) {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  ASSERT_TRUE(tx.send(1).has_value());
  std::jthread t([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(rx.recv().value(), 1);
  });
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  std::move(*p).send(2);
  t.join();
  EXPECT_EQ(rx.recv().value(), 2);
}

TEST(Permit, ReserveFailsOnceReceiverGone) {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  ASSERT_TRUE(tx.send(1).has_value());
  std::jthread t([&, r = std::move(rx)]() mutable {
    std::this_thread::sleep_for(20ms);
    r = sluice::receiver<int>();
  });
  EXPECT_FALSE(tx.reserve().has_value());
  t.join();
  EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::disconnected);
}

TEST(Permit, PermitKeepsChannelOpenAndSendsAfterClose) {
  auto [tx, rx] = sluice::sync_channel<int>(2);
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  EXPECT_EQ(tx.strong_count(), 2u);
  tx = sluice::sync_sender<int>();
  rx.close();
  EXPECT_EQ(rx.try_recv().error(), sluice::try_recv_error::empty);  // the permit may still send
  std::jthread t([&] {
    std::this_thread::sleep_for(20ms);
    std::move(*p).send(9);
  });
  EXPECT_EQ(rx.recv().value(), 9);
  EXPECT_FALSE(rx.recv().has_value());
}

TEST(Permit, DroppedPermitAfterCloseEndsReceive) {
  auto [tx, rx] = sluice::sync_channel<int>(2);
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  rx.close();
  std::jthread t([&] {
    std::this_thread::sleep_for(20ms);
    *p = sluice::permit<int>();
  });
  EXPECT_FALSE(rx.recv().has_value());
}

TEST(Permit, SendAfterReceiverGoneDestroysValueAtOnce) {
  auto count = std::make_shared<int>(0);
  auto [tx, rx] = sluice::sync_channel<std::shared_ptr<int>>(2);
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  rx = sluice::receiver<std::shared_ptr<int>>();
  std::move(*p).send(count);
  EXPECT_EQ(count.use_count(), 1);
  EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::disconnected);
}

// A message that holds a sender of its own channel, sent through a permit
// after the receiver left: destroyed at once, so the channel is not kept
// alive by its own message (LeakSanitizer would report it).
struct holds_own_sender {
  sluice::sync_sender<holds_own_sender>* unused = nullptr;
  std::shared_ptr<sluice::sync_sender<holds_own_sender>> back;
};
TEST(Permit, SelfReferencingMessageAfterReceiverGoneIsNotLeaked) {
  for (std::size_t cap : {0u, 2u}) {
    auto [tx, rx] = sluice::sync_channel<holds_own_sender>(cap);
    std::stop_source leave;
    std::jthread t([&] { (void)rx.recv(leave.get_token()); });  // lets a rendezvous permit be had
    auto p = tx.reserve();
    ASSERT_TRUE(p);
    leave.request_stop();
    t.join();
    rx = sluice::receiver<holds_own_sender>();
    holds_own_sender m;
    m.back = std::make_shared<sluice::sync_sender<holds_own_sender>>(tx);
    std::weak_ptr<sluice::sync_sender<holds_own_sender>> watch = m.back;
    std::move(*p).send(std::move(m));
    EXPECT_TRUE(watch.expired()) << "cap " << cap;
  }
}

TEST(Permit, StopTokenCancelsReserve) {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  ASSERT_TRUE(tx.send(1).has_value());
  std::stop_source src;
  std::jthread t([&] {
    std::this_thread::sleep_for(20ms);
    src.request_stop();
  });
  auto r = tx.reserve(src.get_token());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), sluice::reserve_timeout_error::cancelled);
  EXPECT_EQ(rx.recv().value(), 1);
  EXPECT_TRUE(tx.try_reserve().has_value());
}

TEST(Permit, ReserveTimeout) {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  ASSERT_TRUE(tx.send(1).has_value());
  EXPECT_EQ(tx.reserve_timeout(10ms).error(), sluice::reserve_timeout_error::timeout);
  EXPECT_EQ(tx.reserve_timeout(0ms).error(), sluice::reserve_timeout_error::timeout);
  EXPECT_EQ(tx.reserve_deadline(std::chrono::steady_clock::now() + 5ms).error(),
            sluice::reserve_timeout_error::timeout);
  EXPECT_EQ(rx.recv().value(), 1);
  EXPECT_TRUE(tx.reserve_timeout(std::chrono::hours(1)).has_value());
}

TEST(Permit, EmptyHandleReportsDisconnected) {
  sluice::sync_sender<int> tx;
  EXPECT_EQ(tx.reserve().error(), sluice::reserve_error{});
  EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::disconnected);
}

TEST(Permit, ManyPermitsAcrossLaps) {
  auto [tx, rx] = sluice::sync_channel<int>(4);
  int next = 0;
  for (int round = 0; round < 1000; ++round) {
    std::vector<sluice::permit<int>> ps;
    for (int i = 0; i < 3; ++i) ps.push_back(std::move(*tx.try_reserve()));
    ASSERT_TRUE(tx.try_send(next++).has_value());
    EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);
    ps.pop_back();  // one given back
    for (auto& p : ps) std::move(p).send(next++);
    for (int i = next - 3; i < next; ++i) EXPECT_EQ(rx.try_recv().value(), i);
  }
}

// --- rendezvous -----------------------------------------------------------------

TEST(RendezvousPermit, TryReserveNeedsWaitingReceiver) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);
  std::jthread t([&] { EXPECT_EQ(rx.recv().value(), 4); });
  sluice::permit<int> p;
  while (!p) {
    auto r = tx.try_reserve();
    if (r) p = std::move(*r);
  }
  EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);  // one at a time
  std::move(p).send(4);
}

TEST(RendezvousPermit, ReserveWaitsForReceiver) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  std::jthread t([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(rx.recv().value(), 8);
  });
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  std::move(*p).send(8);
}

// A receiver waits (so a permit is granted), then leaves before the send:
// the value waits in the channel for the next receive.
TEST(RendezvousPermit, ValueParkedWhenReceiverLeft) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  std::stop_source leave;
  std::jthread t([&] {
    auto r = rx.recv(leave.get_token());
    EXPECT_EQ(r.error(), sluice::recv_timeout_error::cancelled);
  });
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  leave.request_stop();
  t.join();
  std::move(*p).send(3);
  EXPECT_EQ(rx.len(), 1u);
  EXPECT_EQ(rx.try_recv().value(), 3);
  EXPECT_EQ(rx.len(), 0u);
}

TEST(RendezvousPermit, ValueSentAfterReceiverGoneDestroyedAtOnce) {
  auto count = std::make_shared<int>(0);
  auto [tx, rx] = sluice::sync_channel<std::shared_ptr<int>>(0);
  std::stop_source leave;
  std::jthread t([&] { (void)rx.recv(leave.get_token()); });
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  leave.request_stop();
  t.join();
  rx = sluice::receiver<std::shared_ptr<int>>();
  std::move(*p).send(count);
  EXPECT_EQ(count.use_count(), 1);  // destroyed at once: the receiver is gone
}

TEST(RendezvousPermit, ReceiverOfClosedChannelWaitsForPermit) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  std::stop_source leave;
  std::jthread t([&] { (void)rx.recv(leave.get_token()); });
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  leave.request_stop();
  t.join();
  rx.close();
  EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::disconnected);
  std::jthread later([&] {
    std::this_thread::sleep_for(20ms);
    std::move(*p).send(6);
  });
  EXPECT_EQ(rx.recv().value(), 6);
  EXPECT_FALSE(rx.recv().has_value());
}

}  // namespace

namespace {
TEST(RendezvousPermit, ParkedValueDestroyedWithReceiver) {
  auto count = std::make_shared<int>(0);
  auto [tx, rx] = sluice::sync_channel<std::shared_ptr<int>>(0);
  std::stop_source leave;
  std::jthread t([&] { (void)rx.recv(leave.get_token()); });
  auto p = tx.reserve();
  ASSERT_TRUE(p);
  leave.request_stop();
  t.join();
  std::move(*p).send(count);  // parked: no receiver waits
  EXPECT_EQ(count.use_count(), 2);
  rx = sluice::receiver<std::shared_ptr<int>>();
  EXPECT_EQ(count.use_count(), 1);
}
}  // namespace

namespace {
// The permit ceiling (32767 out at once): a reservation there waits for a
// permit to be used or given back, and never swallows the wake-up a plain
// sender needs when the receiver makes room.
TEST(Permit, CeilingReservationWaitsAndDoesNotStarveSenders) {
  constexpr std::size_t ceiling = 32767;
  auto [tx, rx] = sluice::sync_channel<int>(ceiling + 1);
  std::vector<sluice::permit<int>> held;
  held.reserve(ceiling);
  for (std::size_t i = 0; i < ceiling; ++i) held.push_back(std::move(*tx.try_reserve()));
  EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);
  EXPECT_FALSE(tx.is_full());
  ASSERT_TRUE(tx.try_send(-1).has_value());  // the last free slot
  EXPECT_TRUE(tx.is_full());
  std::atomic<bool> reserved{false};
  std::atomic<bool> sent{false};
  std::jthread reserver([&] {
    auto p = tx.reserve();
    EXPECT_TRUE(p.has_value());
    reserved = true;
    if (p) std::move(*p).send(-3);
  });
  std::jthread sender([&] {
    EXPECT_TRUE(tx.send(-2).has_value());
    sent = true;
  });
  std::this_thread::sleep_for(20ms);  // let both block (the test holds if they have not yet)
  EXPECT_EQ(rx.recv().value(), -1);   // room for the plain sender only
  sender.join();
  EXPECT_TRUE(sent.load());
  EXPECT_FALSE(reserved.load());
  EXPECT_EQ(rx.recv().value(), -2);   // room again, but the ceiling still holds
  held.pop_back();                    // below the ceiling: the reservation goes on
  reserver.join();
  EXPECT_EQ(rx.recv().value(), -3);
  held.clear();
  EXPECT_TRUE(rx.is_empty());
}
}  // namespace
