// sluice::select and its forms, arm by arm and rule by rule (README
// "Select"): exactly one arm completes; a send arm's value stays with the
// caller unless that arm sent; a disconnected channel is a ready arm; fair
// by default (a chi-square test), written order with `biased`; timeouts of
// zero, small and duration::max(); stop requests; only_if(); timers;
// oneshot receivers; rendezvous arms meeting each other; the selector.
//
// Every message is a `counted` where ownership matters, so a message lost,
// duplicated or destroyed twice shows up as a leak_check mismatch.
//
// Timing: no speed is asserted. The one lower bound (a timeout does not fire
// early) is on steady_clock; upper bounds are generous "did not hang"
// limits.

#include "../support/counted.hpp"
#include "../support/flavors.hpp"
#include "../support/scale.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <future>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using sluice_test::counted;
using sluice_test::leak_check;
using steady = std::chrono::steady_clock;

namespace {

// Longest a test waits for something that must happen "soon".
constexpr auto prompt = 10s;

// --- the result's shape ---------------------------------------------------------------

template <class Tx>
concept sends_a_temporary = requires(Tx& tx) { sluice::send_to(tx, 1); };

TEST(SelectTypes, OneAlternativePerArmInWrittenOrder) {
  auto [itx, irx] = sluice::channel<int>();
  auto [stx, srx] = sluice::sync_channel<std::string>(1);
  auto [otx, orx] = sluice::oneshot<double>();
  sluice::timer t = sluice::never();
  std::string word = "w";
  using result = decltype(sluice::select(sluice::recv_from(irx), sluice::recv_from(srx),
                                         sluice::send_to(stx, word), sluice::recv_from(orx),
                                         sluice::recv_from(t)));
  static_assert(std::is_same_v<result,
                               std::variant<std::expected<int, sluice::recv_error>,
                                            std::expected<std::string, sluice::recv_error>,
                                            std::expected<void, sluice::send_error<std::string>>,
                                            std::expected<double, sluice::recv_error>,
                                            steady::time_point>>);
  using timed = decltype(sluice::select_timeout(1ms, sluice::recv_from(irx)));
  static_assert(std::is_same_v<timed, std::expected<std::variant<std::expected<int, sluice::recv_error>>,
                                                    sluice::select_timeout_error>>);
  using tried = decltype(sluice::try_select(sluice::recv_from(irx)));
  static_assert(std::is_same_v<tried, std::expected<std::variant<std::expected<int, sluice::recv_error>>,
                                                    sluice::try_select_error>>);
  // A temporary cannot be a send arm's value: it would die if its arm lost.
  static_assert(!sends_a_temporary<sluice::sender<int>>);
  static_assert(!sends_a_temporary<sluice::sync_sender<int>>);
}

// --- one arm ready --------------------------------------------------------------------

TEST(Select, ReceivesFromTheOneReadyArmOfDifferentTypes) {
  auto [itx, irx] = sluice::channel<int>();
  auto [stx, srx] = sluice::sync_channel<std::string>(4);
  ASSERT_TRUE(stx.send("hello"));
  auto r = sluice::select(sluice::recv_from(irx), sluice::recv_from(srx));
  ASSERT_EQ(r.index(), 1u);
  ASSERT_TRUE(std::get<1>(r));
  EXPECT_EQ(*std::get<1>(r), "hello");
  EXPECT_FALSE(irx.try_recv());
  EXPECT_FALSE(srx.try_recv());

  ASSERT_TRUE(itx.send(7));
  auto r2 = sluice::select(sluice::recv_from(irx), sluice::recv_from(srx));
  ASSERT_EQ(r2.index(), 0u);
  EXPECT_EQ(*std::get<0>(r2), 7);
}

TEST(Select, TrySelectReportsNothingReadyAndTakesNothing) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(1);
    auto [tx2, rx2] = sluice::channel<counted>();
    ASSERT_TRUE(tx.send(counted(1)));  // full: a send arm cannot complete
    counted v(2);
    auto [etx, erx] = sluice::channel<int>();  // empty: a receive arm cannot
    auto r = sluice::try_select(sluice::send_to(tx, v), sluice::recv_from(erx));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), sluice::try_select_error{});
    EXPECT_TRUE(v.owns()) << "a send arm that did not complete moved its value";
    EXPECT_EQ(v.value(), 2);
    EXPECT_EQ(rx.try_recv()->value(), 1);
    // Now room: the same arm sends.
    auto r2 = sluice::try_select(sluice::send_to(tx, v), sluice::recv_from(erx));
    ASSERT_TRUE(r2);
    ASSERT_EQ(r2->index(), 0u);
    EXPECT_TRUE(std::get<0>(*r2));
    EXPECT_FALSE(v.owns());
    EXPECT_EQ(rx.try_recv()->value(), 2);
    (void)tx2;
    (void)rx2;
    (void)etx;
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(Select, SendArmsNamingOneValueSendItOnceToWhicheverHasRoom) {
  const leak_check leaks;
  {
    auto [a, arx] = sluice::sync_channel<counted>(1);
    auto [b, brx] = sluice::sync_channel<counted>(1);
    ASSERT_TRUE(a.send(counted(0)));  // a is full
    counted v(5);
    auto r = sluice::select(sluice::send_to(a, v), sluice::send_to(b, v));
    ASSERT_EQ(r.index(), 1u);
    EXPECT_FALSE(v.owns());
    EXPECT_EQ(arx.try_recv()->value(), 0);
    EXPECT_FALSE(arx.try_recv());
    EXPECT_EQ(brx.try_recv()->value(), 5);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// How many messages rx holds (taking them).
template <class Rx>
std::size_t drain(Rx& rx) {
  std::size_t n = 0;
  while (rx.try_recv()) ++n;
  return n;
}

TEST(Select, ExactlyOneOfSeveralReadyArmsCompletes) {
  const leak_check leaks;
  {
    auto [tx0, rx0] = sluice::channel<counted>();
    auto [tx1, rx1] = sluice::sync_channel<counted>(2);
    auto [tx2, rx2] = sluice::sync_channel<counted>(2);
    std::array<int, 3> wins{};
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(tx0.send(counted(0)));
      ASSERT_TRUE(tx1.send(counted(1)));
      counted v(2);  // tx2 has room: the send arm is ready too
      auto r = sluice::select(sluice::recv_from(rx0), sluice::recv_from(rx1),
                              sluice::send_to(tx2, v));
      ++wins.at(r.index());
      if (r.index() == 0) {
        EXPECT_EQ(std::get<0>(r)->value(), 0);
      } else if (r.index() == 1) {
        EXPECT_EQ(std::get<1>(r)->value(), 1);
      }
      EXPECT_EQ(v.owns(), r.index() != 2) << "the value moved iff its arm sent";
      // Nothing else moved.
      EXPECT_EQ(drain(rx0), r.index() == 0 ? 0u : 1u);
      EXPECT_EQ(drain(rx1), r.index() == 1 ? 0u : 1u);
      EXPECT_EQ(drain(rx2), r.index() == 2 ? 1u : 0u);
    }
    for (int w : wins) EXPECT_GT(w, 0) << "each ready arm wins sometimes";
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- disconnection --------------------------------------------------------------------

TEST(Select, DisconnectedReceiveArmIsReadyAfterItsQueuedMessages) {
  auto [tx, rx] = sluice::sync_channel<int>(4);
  auto [etx, erx] = sluice::channel<int>();  // stays open and empty
  ASSERT_TRUE(tx.send(1));
  ASSERT_TRUE(tx.send(2));
  tx = {};
  for (int expected : {1, 2}) {
    auto r = sluice::select(sluice::recv_from(rx), sluice::recv_from(erx));
    ASSERT_EQ(r.index(), 0u);
    ASSERT_TRUE(std::get<0>(r));
    EXPECT_EQ(*std::get<0>(r), expected);
  }
  auto r = sluice::select(sluice::recv_from(rx), sluice::recv_from(erx));
  ASSERT_EQ(r.index(), 0u);
  EXPECT_FALSE(std::get<0>(r)) << "an empty, disconnected channel is a ready arm";
  (void)etx;
}

TEST(Select, SendArmToAGoneReceiverCompletesWithTheValueInItsError) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(1);
    auto [otx, orx] = sluice::channel<int>();
    rx = {};
    counted v(9);
    auto r = sluice::select(sluice::send_to(tx, v), sluice::recv_from(orx));
    ASSERT_EQ(r.index(), 0u);
    auto& sent = std::get<0>(r);
    ASSERT_FALSE(sent);
    EXPECT_EQ(sent.error().value.value(), 9);
    EXPECT_FALSE(v.owns()) << "the value moved into the error";
    (void)otx;
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(Select, ADisconnectWakesAWaitingSelect) {
  auto [tx, rx] = sluice::channel<int>();
  auto [tx2, rx2] = sluice::sync_channel<int>(0);
  auto fut = std::async(std::launch::async, [&] {
    return sluice::select(sluice::recv_from(rx), sluice::recv_from(rx2));
  });
  std::this_thread::sleep_for(20ms);
  tx2 = {};
  ASSERT_EQ(fut.wait_for(prompt), std::future_status::ready);
  auto r = fut.get();
  ASSERT_EQ(r.index(), 1u);
  EXPECT_FALSE(std::get<1>(r));
  (void)tx;
}

// --- waiting --------------------------------------------------------------------------

template <class F>
class SelectWaits : public ::testing::Test {};
using all_flavors = ::testing::Types<sluice_test::unbounded, sluice_test::rendezvous,
                                     sluice_test::bounded1, sluice_test::bounded4>;
TYPED_TEST_SUITE(SelectWaits, all_flavors, sluice_test::flavor_name);

TYPED_TEST(SelectWaits, AWaitingReceiveArmGetsTheNextMessage) {
  const leak_check leaks;
  {
    auto [tx0, rx0] = TypeParam::template make<counted>();
    auto [tx1, rx1] = TypeParam::template make<counted>();
    for (int round = 0; round < 50; ++round) {
      auto fut = std::async(std::launch::async, [&] {
        auto r = sluice::select(sluice::recv_from(rx0), sluice::recv_from(rx1));
        return std::pair{r.index(), r.index() == 0 ? std::get<0>(r)->value()
                                                   : std::get<1>(r)->value()};
      });
      if (round % 3 == 0) std::this_thread::sleep_for(1ms);  // sometimes it is parked
      const int which = round % 2;
      ASSERT_TRUE((which == 0 ? tx0 : tx1).send(counted(round)));
      ASSERT_EQ(fut.wait_for(prompt), std::future_status::ready);
      const auto [index, value] = fut.get();
      EXPECT_EQ(index, static_cast<std::size_t>(which));
      EXPECT_EQ(value, round);
    }
    EXPECT_FALSE(rx0.try_recv());
    EXPECT_FALSE(rx1.try_recv());
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TYPED_TEST(SelectWaits, AWaitingSendArmSendsWhenRoomAppears) {
  if constexpr (!TypeParam::bounded) {
    GTEST_SKIP() << "an unbounded send arm is always ready";
  } else {
    const leak_check leaks;
    {
      auto [tx0, rx0] = TypeParam::template make<counted>();
      auto [tx1, rx1] = TypeParam::template make<counted>();
      // Fill both (rendezvous: nothing to fill).
      for (std::size_t i = 0; i < TypeParam::cap.value_or(0); ++i) {
        ASSERT_TRUE(tx0.send(counted(-1)));
        ASSERT_TRUE(tx1.send(counted(-1)));
      }
      counted v(42);
      std::atomic<bool> done{false};
      std::thread selecting([&] {
        auto r = sluice::select(sluice::send_to(tx0, v), sluice::send_to(tx1, v));
        EXPECT_EQ(r.index(), 1u);
        EXPECT_TRUE(std::visit([](auto& e) { return e.has_value(); }, r));
        done = true;
      });
      std::this_thread::sleep_for(20ms);
      EXPECT_FALSE(done.load()) << "a send arm completed on a full channel";
      // Make room on channel 1 only (rendezvous: a receive meets the sender).
      auto got = rx1.recv();
      ASSERT_TRUE(got);
      selecting.join();
      EXPECT_FALSE(v.owns());
      if (TypeParam::cap.value_or(0) == 0) {
        EXPECT_EQ(got->value(), 42);
      } else {
        EXPECT_EQ(got->value(), -1);
        std::vector<std::int64_t> rest;
        while (auto m = rx1.try_recv()) rest.push_back(m->value());
        ASSERT_FALSE(rest.empty());
        EXPECT_EQ(rest.back(), 42);
      }
      // Channel 0 got nothing new.
      std::size_t left = 0;
      while (auto m = rx0.try_recv()) {
        EXPECT_EQ(m->value(), -1);
        ++left;
      }
      EXPECT_EQ(left, TypeParam::cap.value_or(0));
    }
    EXPECT_EQ(leaks.leaked(), 0);
  }
}

// --- time limits ----------------------------------------------------------------------

TEST(SelectTimeout, ZeroIsOneTry) {
  auto [tx, rx] = sluice::channel<int>();
  auto r = sluice::select_timeout(0ms, sluice::recv_from(rx));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), sluice::select_timeout_error::timeout);
  ASSERT_TRUE(tx.send(3));
  auto r2 = sluice::select_timeout(0ms, sluice::recv_from(rx));
  ASSERT_TRUE(r2);
  EXPECT_EQ(*std::get<0>(*r2), 3);
  // Negative is zero.
  EXPECT_FALSE(sluice::select_timeout(-5s, sluice::recv_from(rx)));
}

TEST(SelectTimeout, SmallTimeoutWaitsAtLeastThatLongThenTakesNothing) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    auto [tx2, rx2] = sluice::channel<int>();
    counted v(1);
    const auto t0 = steady::now();
    auto r = sluice::select_timeout(15ms, sluice::send_to(tx, v), sluice::recv_from(rx2));
    const auto waited = steady::now() - t0;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), sluice::select_timeout_error::timeout);
    EXPECT_GE(waited, 15ms);
    EXPECT_LT(waited, prompt);
    EXPECT_TRUE(v.owns());
    // Nothing is left registered: a later receive does not find the value.
    EXPECT_FALSE(rx.try_recv());
    (void)tx2;
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(SelectTimeout, DurationMaxIsNoLimit) {
  auto [tx, rx] = sluice::channel<int>();
  auto fut = std::async(std::launch::async, [&] {
    return sluice::select_timeout(std::chrono::nanoseconds::max(), sluice::recv_from(rx));
  });
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(tx.send(8));
  ASSERT_EQ(fut.wait_for(prompt), std::future_status::ready);
  auto r = fut.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(*std::get<0>(*r), 8);
  // hours::max() overflows nanoseconds: still no limit, not "already past".
  auto fut2 = std::async(std::launch::async, [&] {
    return sluice::select_timeout(std::chrono::hours::max(), sluice::recv_from(rx));
  });
  std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(tx.send(9));
  ASSERT_EQ(fut2.wait_for(prompt), std::future_status::ready);
  auto r2 = fut2.get();
  ASSERT_TRUE(r2);
  EXPECT_EQ(*std::get<0>(*r2), 9);
}

TEST(SelectTimeout, DeadlineOnAnyClock) {
  auto [tx, rx] = sluice::channel<int>();
  const auto t0 = steady::now();
  auto r = sluice::select_deadline(std::chrono::system_clock::now() + 10ms, sluice::recv_from(rx));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), sluice::select_timeout_error::timeout);
  EXPECT_LT(steady::now() - t0, prompt);
  auto past = sluice::select_deadline(steady::now() - 1s, sluice::recv_from(rx));
  EXPECT_FALSE(past);
  ASSERT_TRUE(tx.send(1));
  auto ready = sluice::select_deadline(steady::now() - 1s, sluice::recv_from(rx));
  ASSERT_TRUE(ready) << "a past deadline still tries once";
  EXPECT_EQ(*std::get<0>(*ready), 1);
}

// --- stop requests --------------------------------------------------------------------

TEST(SelectStop, AStopRequestEndsTheWaitAndTakesNothing) {
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    auto [tx2, rx2] = sluice::channel<int>();
    std::stop_source src;
    counted v(3);
    auto fut = std::async(std::launch::async, [&, stop = src.get_token()] {
      return sluice::select(stop, sluice::send_to(tx, v), sluice::recv_from(rx2));
    });
    std::this_thread::sleep_for(20ms);
    src.request_stop();
    ASSERT_EQ(fut.wait_for(prompt), std::future_status::ready);
    auto r = fut.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), sluice::select_timeout_error::cancelled);
    EXPECT_TRUE(v.owns());
    EXPECT_FALSE(rx.try_recv());
    (void)tx2;
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(SelectStop, AReadyArmCompletesEvenIfStopWasRequested) {
  auto [tx, rx] = sluice::channel<int>();
  ASSERT_TRUE(tx.send(4));
  std::stop_source src;
  src.request_stop();
  auto r = sluice::select(src.get_token(), sluice::recv_from(rx));
  ASSERT_TRUE(r);
  EXPECT_EQ(*std::get<0>(*r), 4);
  auto r2 = sluice::select(src.get_token(), sluice::recv_from(rx));
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error(), sluice::select_timeout_error::cancelled);
  auto r3 = sluice::select_timeout(1h, src.get_token(), sluice::recv_from(rx));
  ASSERT_FALSE(r3);
  EXPECT_EQ(r3.error(), sluice::select_timeout_error::cancelled);
}

TEST(SelectStop, TimeoutAndStopTogether) {
  auto [tx, rx] = sluice::channel<int>();
  std::stop_source src;
  auto r = sluice::select_timeout(5ms, src.get_token(), sluice::recv_from(rx));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), sluice::select_timeout_error::timeout);
  auto fut = std::async(std::launch::async, [&, stop = src.get_token()] {
    return sluice::select_deadline(steady::now() + 1h, stop, sluice::recv_from(rx));
  });
  std::this_thread::sleep_for(10ms);
  src.request_stop();
  ASSERT_EQ(fut.wait_for(prompt), std::future_status::ready);
  EXPECT_EQ(fut.get().error(), sluice::select_timeout_error::cancelled);
  (void)tx;
}

// --- only_if --------------------------------------------------------------------------

TEST(SelectOnlyIf, ADisabledArmNeverCompletes) {
  auto [tx0, rx0] = sluice::channel<int>();
  auto [tx1, rx1] = sluice::channel<int>();
  ASSERT_TRUE(tx0.send(1));
  ASSERT_TRUE(tx1.send(2));
  for (int i = 0; i < 20; ++i) {
    auto r = sluice::try_select(sluice::recv_from(rx0).only_if(false), sluice::recv_from(rx1));
    if (i == 0) {
      ASSERT_TRUE(r);
      ASSERT_EQ(r->index(), 1u);
      EXPECT_EQ(*std::get<1>(*r), 2);
    } else {
      EXPECT_FALSE(r);
    }
  }
  EXPECT_EQ(*rx0.try_recv(), 1);
  // A disconnected channel's arm, disabled, does not complete either.
  tx0 = {};
  EXPECT_FALSE(sluice::try_select(sluice::recv_from(rx0).only_if(false), sluice::recv_from(rx1)));
}

TEST(SelectOnlyIf, EveryArmDisabledThrowsUnlessTheWaitCanEnd) {
  auto [tx, rx] = sluice::channel<int>();
  int v = 0;
  EXPECT_THROW(
      (void)sluice::select(sluice::recv_from(rx).only_if(false), sluice::send_to(tx, v).only_if(false)),
      std::invalid_argument);
  EXPECT_THROW((void)sluice::select_timeout(std::chrono::seconds::max(),
                                            sluice::recv_from(rx).only_if(false)),
               std::invalid_argument);
  auto timed = sluice::select_timeout(1ms, sluice::recv_from(rx).only_if(false));
  ASSERT_FALSE(timed);
  EXPECT_EQ(timed.error(), sluice::select_timeout_error::timeout);
  EXPECT_FALSE(sluice::try_select(sluice::recv_from(rx).only_if(false)));
  std::stop_source src;
  src.request_stop();
  auto stopped = sluice::select(src.get_token(), sluice::recv_from(rx).only_if(false));
  ASSERT_FALSE(stopped);
  EXPECT_EQ(stopped.error(), sluice::select_timeout_error::cancelled);
  EXPECT_EQ(v, 0);
}

// --- fairness and bias ----------------------------------------------------------------

// Pearson's chi-square statistic of `counts` against a uniform spread.
double chi_square(const std::vector<std::int64_t>& counts) {
  std::int64_t total = 0;
  for (auto c : counts) total += c;
  const double expected = static_cast<double>(total) / static_cast<double>(counts.size());
  double x2 = 0;
  for (auto c : counts) {
    const double d = static_cast<double>(c) - expected;
    x2 += d * d / expected;
  }
  return x2;
}

TEST(SelectFairness, ReadyArmsAreChosenUniformly) {
  constexpr int arms = 4;
  constexpr int selects = 40'000;
  std::array<std::pair<sluice::sender<int>, sluice::receiver<int>>, arms> ch{
      sluice::channel<int>(), sluice::channel<int>(), sluice::channel<int>(),
      sluice::channel<int>()};
  for (auto& [tx, rx] : ch) ASSERT_TRUE(tx.send(0));  // every arm ready
  std::vector<std::int64_t> wins(arms, 0);
  for (int i = 0; i < selects; ++i) {
    auto r = sluice::select(sluice::recv_from(ch[0].second), sluice::recv_from(ch[1].second),
                            sluice::recv_from(ch[2].second), sluice::recv_from(ch[3].second));
    ++wins.at(r.index());
    ASSERT_TRUE(ch[r.index()].first.send(0));  // ready again
  }
  // 3 degrees of freedom: P(chi-square > 30) < 1.4e-6 for a fair choice,
  // while an arm favoured by even 2% of selects gives about 64.
  const double x2 = chi_square(wins);
  EXPECT_LT(x2, 30.0) << "wins: " << wins[0] << ' ' << wins[1] << ' ' << wins[2] << ' '
                      << wins[3];
}

TEST(SelectFairness, FairAlsoAmongSendAndReceiveArmsAndInTheSelector) {
  constexpr int selects = 30'000;
  auto [tx0, rx0] = sluice::channel<int>();
  auto [tx1, rx1] = sluice::channel<int>();  // a send arm (unbounded: always ready)
  auto [tx2, rx2] = sluice::sync_channel<int>(1 << 20);
  ASSERT_TRUE(tx0.send(0));
  int v = 0;
  std::vector<std::int64_t> wins(3, 0);
  for (int i = 0; i < selects; ++i) {
    auto r = sluice::select(sluice::recv_from(rx0), sluice::send_to(tx1, v), sluice::send_to(tx2, v));
    ++wins.at(r.index());
    if (r.index() == 0) {
      ASSERT_TRUE(tx0.send(0));
    }
  }
  EXPECT_LT(chi_square(wins), 28.0) << wins[0] << ' ' << wins[1] << ' ' << wins[2];
  EXPECT_EQ(static_cast<std::int64_t>(drain(rx1)), wins[1]);
  EXPECT_EQ(static_cast<std::int64_t>(drain(rx2)), wins[2]);

  sluice::selector sel;
  for (int i = 0; i < 3; ++i) (void)sel.add(sluice::send_to(tx1, v));
  std::vector<std::int64_t> dyn(3, 0);
  for (int i = 0; i < selects; ++i) ++dyn[sel.select()];
  EXPECT_LT(chi_square(dyn), 28.0) << dyn[0] << ' ' << dyn[1] << ' ' << dyn[2];
}

TEST(SelectBiased, TheEarliestWrittenReadyArmWins) {
  auto [tx0, rx0] = sluice::channel<int>();
  auto [tx1, rx1] = sluice::channel<int>();
  auto [tx2, rx2] = sluice::channel<int>();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(tx1.send(i));
    ASSERT_TRUE(tx2.send(i));
  }
  for (int i = 0; i < 100; ++i) {
    auto r = sluice::select(sluice::biased, sluice::recv_from(rx0), sluice::recv_from(rx1),
                            sluice::recv_from(rx2));
    ASSERT_EQ(r.index(), 1u);
    EXPECT_EQ(*std::get<1>(r), i);
  }
  for (int i = 0; i < 100; ++i) {
    auto r = sluice::try_select(sluice::biased, sluice::recv_from(rx0), sluice::recv_from(rx1),
                                sluice::recv_from(rx2));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->index(), 2u);
  }
  EXPECT_FALSE(sluice::try_select(sluice::biased, sluice::recv_from(rx0), sluice::recv_from(rx2)));
  ASSERT_TRUE(tx0.send(1));
  ASSERT_TRUE(tx2.send(1));
  auto t = sluice::select_timeout(sluice::biased, 1s, sluice::recv_from(rx2), sluice::recv_from(rx0));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->index(), 0u);

  sluice::selector sel;
  (void)sel.add(sluice::recv_from(rx0));
  (void)sel.add(sluice::recv_from(rx1));
  ASSERT_TRUE(tx1.send(5));
  EXPECT_EQ(sel.select(sluice::biased), 0u);  // rx0 still holds its message
  EXPECT_EQ(sel.select(sluice::biased), 1u);
}

// --- rendezvous arms ------------------------------------------------------------------

TEST(SelectRendezvous, ASendArmMeetsAnotherSelectsReceiveArm) {
  const leak_check leaks;
  {
    constexpr int messages = 2'000;
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    auto [otx, orx] = sluice::sync_channel<counted>(0);  // never ready: no peer sends on it
    std::thread sending([&] {
      auto [dtx, drx] = sluice::sync_channel<counted>(0);  // no receiver ever: never ready
      for (int i = 0; i < messages; ++i) {
        counted v(i);
        auto r = sluice::select(sluice::send_to(tx, v), sluice::send_to(dtx, v));
        EXPECT_EQ(r.index(), 0u);
        EXPECT_FALSE(v.owns());
      }
      (void)otx;
    });
    for (int i = 0; i < messages; ++i) {
      auto r = sluice::select(sluice::recv_from(orx), sluice::recv_from(rx));
      ASSERT_EQ(r.index(), 1u);
      ASSERT_EQ(std::get<1>(r)->value(), i);
    }
    sending.join();
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(SelectRendezvous, ASelectNeverPairsWithItself) {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  int v = 1;
  auto r = sluice::select_timeout(20ms, sluice::send_to(tx, v), sluice::recv_from(rx));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), sluice::select_timeout_error::timeout);
  EXPECT_EQ(v, 1);
  // A third party completes one of them.
  std::thread peer([&] { EXPECT_EQ(*rx.recv(), 1); });
  auto r2 = sluice::select_timeout(prompt, sluice::send_to(tx, v), sluice::recv_from(rx).only_if(false));
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->index(), 0u);
  peer.join();
}

// --- oneshot and timers ---------------------------------------------------------------

TEST(SelectOneshot, AOneshotReceiverIsAnArm) {
  auto [otx, orx] = sluice::oneshot<std::string>();
  auto [tx, rx] = sluice::channel<int>();
  auto fut = std::async(std::launch::async, [&] {
    return sluice::select(sluice::recv_from(rx), sluice::recv_from(orx));
  });
  std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(std::move(otx).send("done"));
  ASSERT_EQ(fut.wait_for(prompt), std::future_status::ready);
  auto r = fut.get();
  ASSERT_EQ(r.index(), 1u);
  EXPECT_EQ(*std::get<1>(r), "done");
  (void)tx;

  auto [otx2, orx2] = sluice::oneshot<int>();
  otx2 = {};
  auto r2 = sluice::select(sluice::recv_from(orx2));
  EXPECT_FALSE(std::get<0>(r2)) << "a dropped oneshot sender is a disconnect";
}

TEST(SelectTimers, AfterTicksOnceNotEarly) {
  auto [tx, rx] = sluice::channel<int>();
  const auto t0 = steady::now();
  sluice::timer t = sluice::after(15ms);
  auto r = sluice::select(sluice::recv_from(rx), sluice::recv_from(t));
  const auto waited = steady::now() - t0;
  ASSERT_EQ(r.index(), 1u);
  EXPECT_GE(waited, 15ms);
  EXPECT_GE(std::get<1>(r), t0 + 15ms) << "the tick is the time it was due";
  EXPECT_FALSE(t.try_recv()) << "after() ticks once";
  auto again = sluice::select_timeout(20ms, sluice::recv_from(t));
  EXPECT_FALSE(again);
  (void)tx;
}

TEST(SelectTimers, TickRepeatsAndNeverNever) {
  sluice::timer every = sluice::tick(2ms);
  sluice::timer none = sluice::never();
  steady::time_point last{};
  for (int i = 0; i < 5; ++i) {
    auto r = sluice::select(sluice::recv_from(none), sluice::recv_from(every));
    ASSERT_EQ(r.index(), 1u);
    EXPECT_GT(std::get<1>(r), last);
    last = std::get<1>(r);
  }
  EXPECT_FALSE(sluice::select_timeout(5ms, sluice::recv_from(none)));
  EXPECT_THROW((void)sluice::tick(0ms), std::invalid_argument);
  EXPECT_THROW((void)sluice::tick(-1s), std::invalid_argument);
  // A zero after() is due at once.
  sluice::timer now = sluice::after(0ms);
  EXPECT_TRUE(sluice::try_select(sluice::recv_from(now)));
}

TEST(SelectTimers, ManySelectsOnTimersAtOnce) {
  constexpr int threads = 8;
  std::vector<std::thread> pool;
  std::atomic<int> fired{0};
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&fired, i] {
      auto [tx, rx] = sluice::channel<int>();
      sluice::timer t = sluice::after(std::chrono::milliseconds(1 + i % 4));
      auto r = sluice::select(sluice::recv_from(rx), sluice::recv_from(t));
      if (r.index() == 1) ++fired;
      (void)tx;
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_EQ(fired.load(), threads);
}

// --- the selector ---------------------------------------------------------------------

TEST(Selector, IndicesHandlesAndRemoval) {
  const leak_check leaks;
  {
    sluice::selector sel;
    EXPECT_TRUE(sel.empty());
    EXPECT_THROW((void)sel.select(), std::invalid_argument);
    EXPECT_FALSE(sel.try_select());
    auto timed = sel.select_timeout(1ms);
    ASSERT_FALSE(timed);
    EXPECT_EQ(timed.error(), sluice::select_timeout_error::timeout);

    auto [tx0, rx0] = sluice::channel<counted>();
    auto [tx1, rx1] = sluice::sync_channel<std::string>(1);
    counted out(7);
    auto [tx2, rx2] = sluice::sync_channel<counted>(1);
    auto h0 = sel.add(sluice::recv_from(rx0));
    auto h1 = sel.add(sluice::recv_from(rx1));
    auto h2 = sel.add(sluice::send_to(tx2, out));
    EXPECT_EQ(h0.index(), 0u);
    EXPECT_EQ(h1.index(), 1u);
    EXPECT_EQ(h2.index(), 2u);
    EXPECT_EQ(sel.size(), 3u);

    EXPECT_EQ(sel.select(), 2u);  // the only ready arm
    EXPECT_TRUE(h2.take());
    EXPECT_FALSE(out.owns());
    EXPECT_FALSE(sel.try_select());  // tx2 full now, nothing to receive

    ASSERT_TRUE(tx1.send("x"));
    EXPECT_EQ(sel.select(), 1u);
    EXPECT_EQ(*h1.take(), "x");

    ASSERT_TRUE(tx0.send(counted(3)));
    sel.remove(0);
    EXPECT_FALSE(sel.try_select()) << "a removed arm takes no part";
    sel.remove(0);  // twice is harmless
    EXPECT_THROW(sel.remove(3), std::out_of_range);
    EXPECT_EQ(sel.size(), 3u);
    EXPECT_EQ(rx0.try_recv()->value(), 3);
    sel.remove(2);  // its value is sent; room in tx2 must not make it ready
    EXPECT_EQ(rx2.try_recv()->value(), 7);

    tx1 = {};
    EXPECT_EQ(sel.select(), 1u);
    EXPECT_FALSE(h1.take()) << "disconnected";
    sel.remove(1);
    EXPECT_TRUE(sel.empty());
    EXPECT_THROW((void)sel.select(), std::invalid_argument);

    sel.clear();
    EXPECT_EQ(sel.size(), 0u);
    auto h = sel.add(sluice::recv_from(rx0));
    EXPECT_EQ(h.index(), 0u);
    ASSERT_TRUE(tx0.send(counted(4)));
    EXPECT_EQ(sel.select(), 0u);
    EXPECT_EQ(h.take()->value(), 4);
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(Selector, EachSelectSeesItsHandlesAsTheyAreThen) {
  // An arm refers to a handle variable: a receiver or sender assigned a
  // new channel between two selects is selected over on its new channel.
  sluice::selector sel;
  auto [tx_old, rx] = sluice::sync_channel<int>(1);
  auto h = sel.add(sluice::recv_from(rx));
  ASSERT_TRUE(tx_old.send(1));
  EXPECT_EQ(sel.select(), 0u);
  EXPECT_EQ(*h.take(), 1);

  auto [tx_new, rx_new] = sluice::channel<int>();
  rx = std::move(rx_new);  // the old channel's receiver is gone now
  EXPECT_FALSE(tx_old.send(2)) << "the old channel lost its receiver";
  EXPECT_FALSE(sel.try_select()) << "the new channel is empty";
  ASSERT_TRUE(tx_new.send(3));
  EXPECT_EQ(sel.select(), 0u);
  EXPECT_EQ(*h.take(), 3);

  rx = {};  // no channel at all: a receive arm on it reports disconnected
  EXPECT_EQ(sel.select(), 0u);
  EXPECT_FALSE(h.take());
}

TEST(Selector, ReadyArmsAmongManyAreChosenUniformly) {
  // 64 arms, 4 of them ready (at the ends and in the middle): each ready
  // arm must win about a quarter of the selects, wherever it sits (the
  // order is drawn only as far as a select looks; it must still be
  // uniform).
  constexpr std::size_t arms = 64;
  constexpr std::array<std::size_t, 4> ready{0, 21, 42, 63};
  std::vector<sluice::sync_sender<int>> tx(arms);
  std::vector<sluice::receiver<int>> rx(arms);
  for (std::size_t k = 0; k < arms; ++k) std::tie(tx[k], rx[k]) = sluice::sync_channel<int>(1);
  sluice::selector sel;
  std::vector<sluice::select_handle<std::expected<int, sluice::recv_error>>> handles;
  for (auto& r : rx) handles.push_back(sel.add(sluice::recv_from(r)));
  for (const std::size_t k : ready) ASSERT_TRUE(tx[k].send(static_cast<int>(k)));
  constexpr int rounds = 40'000;
  std::vector<std::int64_t> wins(arms, 0);
  for (int i = 0; i < rounds; ++i) {
    const std::size_t k = sel.select();
    ASSERT_LT(k, arms);
    auto msg = handles[k].take();
    ASSERT_TRUE(msg);
    EXPECT_EQ(static_cast<std::size_t>(*msg), k);
    ++wins.at(k);
    ASSERT_TRUE(tx[k].send(*msg));  // ready again
  }
  std::vector<std::int64_t> ready_wins;
  std::int64_t others = 0;
  for (std::size_t k = 0; k < arms; ++k) {
    if (std::find(ready.begin(), ready.end(), k) != ready.end()) {
      ready_wins.push_back(wins[k]);
    } else {
      others += wins[k];
    }
  }
  // As in SelectFairness: 3 degrees of freedom, P(chi-square > 30) < 1.4e-6.
  EXPECT_LT(chi_square(ready_wins), 30.0)
      << "wins: " << wins[0] << ' ' << wins[21] << ' ' << wins[42] << ' ' << wins[63];
  EXPECT_EQ(others, 0) << "an arm that was not ready completed";
}

TEST(Selector, StopAndDeadlineForms) {
  auto [tx, rx] = sluice::channel<int>();
  sluice::selector sel;
  auto h = sel.add(sluice::recv_from(rx));
  std::stop_source src;
  auto fut = std::async(std::launch::async, [&sel, stop = src.get_token()] { return sel.select(stop); });
  std::this_thread::sleep_for(10ms);
  src.request_stop();
  ASSERT_EQ(fut.wait_for(prompt), std::future_status::ready);
  EXPECT_EQ(fut.get().error(), sluice::select_timeout_error::cancelled);
  auto d = sel.select_deadline(std::chrono::system_clock::now() + 5ms);
  EXPECT_EQ(d.error(), sluice::select_timeout_error::timeout);
  ASSERT_TRUE(tx.send(2));
  auto ok = sel.select_timeout(std::chrono::seconds::max());
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 0u);
  EXPECT_EQ(*h.take(), 2);
}

TEST(Selector, FanInOverAHundredChannelsCountsEveryMessage) {
  constexpr int channels = 100;
  const int per_channel = static_cast<int>(sluice_test::stress_scale()) * 100;
  sluice::selector sel;
  std::vector<sluice::receiver<int>> receivers;
  std::vector<sluice::sync_sender<int>> senders;
  receivers.reserve(channels);
  for (int i = 0; i < channels; ++i) {
    auto [tx, rx] = sluice::sync_channel<int>(static_cast<std::size_t>(i % 3));
    senders.push_back(std::move(tx));
    receivers.push_back(std::move(rx));
  }
  std::vector<sluice::select_handle<std::expected<int, sluice::recv_error>>> handles;
  for (auto& rx : receivers) handles.push_back(sel.add(sluice::recv_from(rx)));
  std::thread producer([&senders, per_channel] {
    for (int m = 0; m < per_channel; ++m) {
      for (std::size_t c = 0; c < channels; ++c) {
        EXPECT_TRUE(senders[c].send(static_cast<int>(c) * per_channel + m));
      }
    }
    senders.clear();
  });
  std::vector<int> next(channels, 0);
  std::int64_t received = 0;
  while (!sel.empty()) {
    const std::size_t k = sel.select();
    if (auto m = handles[k].take()) {
      ASSERT_EQ(*m, static_cast<int>(k) * per_channel + next[k]) << "order within a channel";
      ++next[k];
      ++received;
    } else {
      sel.remove(k);
    }
  }
  producer.join();
  EXPECT_EQ(received, std::int64_t{channels} * per_channel);
}

}  // namespace
