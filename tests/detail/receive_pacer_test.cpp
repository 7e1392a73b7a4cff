// The receive pacer's policy: it lags a streaming receiver, and almost never
// a request/response one.
#include <sluice/detail/waiting/receive_pacer.hpp>

#include <gtest/gtest.h>

#include <cstddef>

namespace {

using sluice::detail::receive_pacer;

// Feeds `empties` receives that each find the channel empty after a run of
// `run` messages; returns how many of them lagged.
std::size_t lags_for_runs(receive_pacer& p, std::size_t empties, std::size_t run) {
  std::size_t lags = 0;
  for (std::size_t i = 0; i < empties; ++i) {
    for (std::size_t m = 0; m < run; ++m) p.on_message();
    if (p.on_empty()) ++lags;
  }
  return lags;
}

TEST(receive_pacer, never_lags_a_receiver_that_finds_batches) {
  receive_pacer p;
  EXPECT_EQ(lags_for_runs(p, 10'000, receive_pacer::batch_run), 0u);
}

TEST(receive_pacer, probes_after_a_streak_of_short_runs) {
  receive_pacer p;
  EXPECT_EQ(lags_for_runs(p, receive_pacer::first_probe - 1, 1), 0u);
  EXPECT_EQ(lags_for_runs(p, 1, 1), 1u);
}

TEST(receive_pacer, keeps_lagging_while_lags_gather_batches) {
  receive_pacer p;
  EXPECT_EQ(lags_for_runs(p, receive_pacer::first_probe, 1), 1u);
  // Every lag is followed by a long run: each empty channel lags again.
  EXPECT_EQ(lags_for_runs(p, 1'000, receive_pacer::batch_run), 1'000u);
}

TEST(receive_pacer, request_response_lags_a_vanishing_share) {
  receive_pacer p;
  // One message per empty channel, as in a ping-pong: every probe fails and
  // the next comes after twice as many short runs.
  const std::size_t exchanges = 1'000'000;
  const std::size_t lags = lags_for_runs(p, exchanges, 1);
  EXPECT_EQ(lags, 25u);  // probes after 32, 64, ... 65536 short runs, then every 65536
}

TEST(receive_pacer, a_failed_probe_stops_lagging) {
  receive_pacer p;
  EXPECT_EQ(lags_for_runs(p, receive_pacer::first_probe, 1), 1u);
  // The run after the lag was short: no lag for the next 2 * first_probe - 1.
  EXPECT_EQ(lags_for_runs(p, 2 * receive_pacer::first_probe - 1, 1), 0u);
  EXPECT_EQ(lags_for_runs(p, 1, 1), 1u);
}

}  // namespace

namespace {

TEST(receive_pacer, lags_grow_while_they_pay_and_reset_when_one_fails) {
  receive_pacer p;
  EXPECT_EQ(p.lag_slices(), receive_pacer::min_lag_slices);
  lags_for_runs(p, receive_pacer::first_probe, 1);  // the probe
  for (int i = 0; i < 20; ++i) lags_for_runs(p, 1, receive_pacer::batch_run);
  EXPECT_EQ(p.lag_slices(), receive_pacer::max_lag_slices);
  lags_for_runs(p, 1, 1);  // a lag that gathered no batch
  EXPECT_EQ(p.lag_slices(), receive_pacer::min_lag_slices);
}

}  // namespace
