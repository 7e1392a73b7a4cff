// sluice/detail/waiting/receive_pacer.hpp - keeps a streaming receiver from chasing
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
// short lag; if the run after the lag is long (a batch had piled up) it keeps
// lagging, each lag twice as long as the last up to a cap (fewer, larger
// batches mean fewer catch-ups; see lag()), else it stops, and probes again
// only after twice as long a streak. Only a sender that fills batch_run slots
// within the first lag (~1.6 us, i.e. about 10 million messages a second) is
// ever lagged, and a request/response exchange, where a lag can never gather
// a batch, lags for a vanishing share of its messages (25 in a million).
//
// Invariant: receiver-owned (one receiving thread at a time, as the flavors'
// receive paths); it only ever delays a receive, never skips one.
#pragma once

#include <sluice/detail/waiting/backoff.hpp>

#include <cstddef>
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

  // A batch receive (recv_many) took `n` messages: as n blocking receives.
  void on_messages(std::size_t n) noexcept {
    run_ = n >= batch_run - run_ ? batch_run : run_ + static_cast<std::uint32_t>(n);
  }

  // A blocking receive found the channel empty: lag first if lagging pays.
  // Returns whether it lagged.
  bool on_empty() noexcept {
    const bool short_run = run_ < batch_run;
    run_ = 0;
    if (lagging_) {
      if (!short_run) {  // the last lag gathered a batch: lag again, longer
        probe_after_ = first_probe;
        if (lag_slices_ < max_lag_slices) lag_slices_ *= 2;
        lag();
        return true;
      }
      lagging_ = false;
      lag_slices_ = min_lag_slices;
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

  // Slices the next lag lasts (for tests).
  [[nodiscard]] std::uint32_t lag_slices() const noexcept { return lag_slices_; }

  // A lag is made of slices of slice_pauses pauses (~1.6 us at ~25 ns per
  // pause: long enough for a streaming sender to fill several cache lines,
  // short next to a park), with a yield between two slices. A probe lags one
  // slice; lags that keep paying grow to max_lag_slices (~10-30 us, about
  // what parking costs the peers that park instead). The yields matter when
  // threads outnumber cores: the senders the receiver waits for may need its
  // CPU to get ahead, and spinning would only hold them back.
  static constexpr std::uint32_t slice_pauses = 64;
  static constexpr std::uint32_t min_lag_slices = 1;
  static constexpr std::uint32_t max_lag_slices = 16;

 private:
  void lag() const noexcept {
    const bool parallel = can_run_in_parallel();
    for (std::uint32_t slice = 0; slice < lag_slices_; ++slice) {
      if (slice > 0 || !parallel) std::this_thread::yield();
      if (!parallel) continue;  // the sender needs our CPU to get ahead
      for (std::uint32_t i = 0; i < slice_pauses; ++i) cpu_relax();
    }
  }

  std::uint32_t run_ = 0;
  std::uint32_t short_runs_ = 0;
  std::uint32_t probe_after_ = first_probe;
  std::uint32_t lag_slices_ = min_lag_slices;
  bool lagging_ = false;
};

}  // namespace sluice::detail
