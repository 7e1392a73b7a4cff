// sluice/detail/waiting/claim_outcome.hpp - what a driver (thread_wait.hpp,
// async_wait.hpp) does with the final selection of a wait: the one place
// that tells a hand-off that completed the operation from a wake-up that
// asks for another attempt, and unregisters what no claimer unlinked.
//
// Steps waiting through one entry (protocol.hpp) need nothing more than
// their hands_off(), completed() and delist(). Steps that wait through
// several entries of one waiter (a select: one entry per arm, each with its
// own selection) define conclude_claim(e, s) themselves, and relay() then
// passes on the wake-up of the entry that was claimed.
//
// Invariant: called once per wait, after the selection is final; on return
// no entry of the steps is linked in any queue.
#pragma once

#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/detail/waiting/waiter.hpp>

namespace sluice::detail {

enum class claim_outcome {
  handed_off,  // the claimer completed the operation through the packet
  woken,       // the claimer asks for another attempt (its progress may serve it)
  elsewhere,   // cancelled, aborted, disconnected: nothing of the claimer to use
};

template <class Steps>
claim_outcome conclude_claim(Steps& st, wait_entry& e, selection s) noexcept {
  if constexpr (requires { st.conclude_claim(e, s); }) {
    return st.conclude_claim(e, s);
  } else {
    if (s == e.op) {
      // The claimer unlinked the entry.
      if (!st.hands_off()) return claim_outcome::woken;
      st.completed();
      return claim_outcome::handed_off;
    }
    st.delist(e);
    return claim_outcome::elsewhere;
  }
}

}  // namespace sluice::detail
