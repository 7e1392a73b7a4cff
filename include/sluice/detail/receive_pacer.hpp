// sluice/detail/receive_pacer.hpp - keeps a streaming receiver from chasing
// its sender slot by slot.
//
// When a sender streams into a buffered channel and the receiver keeps up,
// the receiver finds the channel empty after almost every message and polls
// the very slot (cache line) the sender is about to write. Each message then
// moves that line between the two cores twice, and both sides slow to the
// speed of the interconnect (~40-60 ns per message instead of ~10). A
// receiver that lets the sender run ahead for a moment instead reads whole
// lines the sender has finished with.
//
// Lagging costs latency, so the pacer lags only while lagging pays: after a
// streak of short runs (few messages between empty channels) it probes one
// lag; if the run after the lag is long (a batch had piled up) it keeps
// lagging, else it stops, and probes again only after twice as long a streak.
// A request/response exchange, where a lag can never gather a batch, thus
// lags for a vanishing share of its messages (25 in a million).
//
// Invariant: receiver-owned (one receiving thread at a time, as the flavors'
// receive paths); it only ever delays a receive, never skips one.
#pragma once

#include <sluice/detail/backoff.hpp>

#include <cstdint>

namespace sluice::detail {

class receive_pacer {
 public:
  // A run at least this long after a lag shows that the lag gathered a batch.
  static constexpr std::uint32_t batch_run = 16;
  // Short runs in a row before the first probe; doubled after a failed probe.
  static constexpr std::uint32_t first_probe = 32;
  static constexpr std::uint32_t max_probe = 1u << 16;

  // A blocking receive got a message. (The count saturates: only whether a
  // run reached batch_run matters.)
  void on_message() noexcept {
    if (run_ < batch_run) ++run_;
  }

  // A blocking receive found the channel empty: lag first if lagging pays.
  // Returns whether it lagged.
  bool on_empty() noexcept {
    const bool short_run = run_ < batch_run;
    run_ = 0;
    if (lagging_) {
      if (!short_run) {  // the last lag gathered a batch: lag again
        probe_after_ = first_probe;
        lag();
        return true;
      }
      lagging_ = false;
      if (probe_after_ < max_probe) probe_after_ *= 2;
    }
    if (!short_run) {
      short_runs_ = 0;
      return false;
    }
    if (++short_runs_ < probe_after_) return false;
    short_runs_ = 0;
    lagging_ = true;
    lag();
    return true;
  }

 private:
  // About 1.6 us on x86 (a pause is ~25 ns on recent cores): long enough for
  // a streaming sender to fill tens of cache lines, short next to a park.
  static constexpr unsigned lag_pauses = 64;

  static void lag() noexcept {
    if (!can_run_in_parallel()) {  // the sender needs our CPU to get ahead
      std::this_thread::yield();
      return;
    }
    for (unsigned i = 0; i < lag_pauses; ++i) cpu_relax();
  }

  std::uint32_t run_ = 0;
  std::uint32_t short_runs_ = 0;
  std::uint32_t probe_after_ = first_probe;
  bool lagging_ = false;
};

}  // namespace sluice::detail
