// The backoff's policy: spin, then yield, then park; and park at once when
// this thread's waits keep ending only after a yield.
#include <sluice/detail/waiting/backoff.hpp>

#include <gtest/gtest.h>

namespace {

using sluice::detail::backoff;

void spin_out(backoff& bo) {
  while (!bo.is_spin_completed()) bo.snooze();
}

TEST(backoff, spins_a_bounded_number_of_steps) {
  backoff bo;
  unsigned snoozes = 0;
  while (!bo.is_spin_completed()) {
    bo.snooze();
    ASSERT_LE(++snoozes, backoff::spin_limit + 1);
  }
}

TEST(backoff, parks_early_after_a_streak_of_waits_ended_by_yielding) {
  if (!sluice::detail::can_run_in_parallel()) {
    GTEST_SKIP() << "one CPU: waiters yield at once and the streak does not apply";
  }
  backoff::wait_ended_parked();  // start from an empty streak
  for (unsigned i = 0; i < backoff::yield_streak_limit; ++i) {
    backoff bo;
    spin_out(bo);
    EXPECT_FALSE(bo.is_completed()) << "wait " << i;
    bo.snooze();  // yields
    bo.wait_ended_unparked();
  }
  backoff bo;
  spin_out(bo);
  EXPECT_TRUE(bo.is_completed());  // parks instead of yielding

  backoff::wait_ended_parked();  // the park resets the streak
  backoff after;
  spin_out(after);
  EXPECT_FALSE(after.is_completed());
}

TEST(backoff, a_wait_ended_while_spinning_resets_the_streak) {
  if (!sluice::detail::can_run_in_parallel()) GTEST_SKIP() << "one CPU";
  backoff::wait_ended_parked();
  for (unsigned i = 0; i + 1 < backoff::yield_streak_limit; ++i) {
    backoff bo;
    spin_out(bo);
    bo.snooze();
    bo.wait_ended_unparked();
  }
  backoff quick;  // ends before yielding
  quick.snooze();
  quick.wait_ended_unparked();
  backoff bo;
  spin_out(bo);
  bo.snooze();
  bo.wait_ended_unparked();
  backoff next;
  spin_out(next);
  EXPECT_FALSE(next.is_completed());
}

}  // namespace
