// sluice/detail/flavors/reservation.hpp - a blocking reservation (a
// permit's room), the same for every flavor that has permits: one attempt,
// then the thread driver, the outcome in the error type of reserve().
//
// Invariant: a flavor's reserve_steps (waiting/protocol.hpp) report
// reserved() once they hold the room; anything else after a finished wait
// is a disconnection.
#pragma once

#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/thread_wait.hpp>
#include <sluice/error.hpp>

#include <expected>
#include <stop_token>

namespace sluice::detail {

template <class ReserveSteps>
std::expected<void, reserve_timeout_error> reserve_blocking(ReserveSteps& st, const deadline& d,
                                                            const std::stop_token& stop) {
  if (!st.attempt()) {
    switch (wait_on(st, d, stop)) {
      case wait_result::done:
        break;
      case wait_result::timeout:
        return std::unexpected(reserve_timeout_error::timeout);
      case wait_result::cancelled:
        return std::unexpected(reserve_timeout_error::cancelled);
    }
  }
  if (st.reserved()) return {};
  return std::unexpected(reserve_timeout_error::disconnected);
}

}  // namespace sluice::detail
