// Permits under contention, on 2 cores: sync_sender::reserve and its forms
// racing with plain sends, with permits dropped unused, with a receiver that
// times out on a rendezvous channel (values parked), and with the receiver
// destroyed mid-stream.
//
// Every message is a sluice_test::counted whose value names its producer and
// the producer's iteration: the receiver checks that each producer's values
// arrive in increasing order, and at the end that the values received are
// exactly those sent (none lost, none twice, none of a dropped permit); a
// leak_check that every message was destroyed exactly once.
//
// Capacity is checked two ways that do not depend on timing:
// - During the stress, `held` counts permits a sender holds: incremented
//   after a reservation returned, decremented before the permit is used or
//   dropped, so it never exceeds the real number of permits out. The
//   receiver reads rx.len() and then `held`: nothing leaves the channel in
//   between (the receiver is the one reading), so len() then held is at most
//   the occupancy at the second read, which must be <= the bound.
// - In rounds where the receiver receives nothing, threads race try_send /
//   try_reserve / zero timeouts until each meets "full": exactly `bound`
//   succeed in total; permits dropped meanwhile give back exactly as many.
#include "../support/coro_task.hpp"  // scaled(): smaller counts under sanitizers
#include "../support/counted.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using sluice_test::counted;
using sluice_test::leak_check;
using sluice_test::scaled;

namespace {

using permit_t = sluice::permit<counted>;
using tx_t = sluice::sync_sender<counted>;
using rx_t = sluice::receiver<counted>;

constexpr std::int64_t stride = std::int64_t{1} << 32;
constexpr std::int64_t tag(std::int64_t producer, std::int64_t seq) {
  return producer * stride + seq;
}

// What a producer did in one iteration.
enum class fate : unsigned char { dropped, sent_by_permit, sent_plain };

// Obtains a permit through reservation form `form` (0..4), retrying a try
// that found the channel full or a wait that timed out. Empty if the
// channel is disconnected (a failure the caller reports).
permit_t obtain(const tx_t& tx, int form) {
  for (;;) {
    switch (form) {
      case 0: {
        auto r = tx.reserve();
        if (r) return std::move(*r);
        return {};
      }
      case 1: {
        auto r = tx.try_reserve();
        if (r) return std::move(*r);
        if (r.error() == sluice::try_reserve_error::disconnected) return {};
        std::this_thread::yield();
        break;
      }
      case 2: {
        auto r = tx.reserve_timeout(200us);
        if (r) return std::move(*r);
        if (r.error() != sluice::reserve_timeout_error::timeout) return {};
        break;
      }
      case 3: {
        std::stop_source never;
        auto r = tx.reserve(never.get_token());
        if (r) return std::move(*r);
        return {};
      }
      default: {
        auto r = tx.reserve_deadline(std::chrono::steady_clock::now() + 300us);
        if (r) return std::move(*r);
        if (r.error() != sluice::reserve_timeout_error::timeout) return {};
        break;
      }
    }
  }
}

// A plain send through form `form` (0..2), retrying a full try or a
// timeout with the value handed back. False if disconnected.
bool plain_send(const tx_t& tx, std::int64_t v, int form) {
  if (form == 0) return tx.send(counted(v)).has_value();
  std::optional<counted> msg(std::in_place, v);  // counted is not assignable
  for (;;) {
    if (form == 1) {
      auto r = tx.try_send(std::move(*msg));
      if (r) return true;
      if (!r.error().is_full()) return false;
      msg.emplace(std::move(r.error().value));
      std::this_thread::yield();
    } else {
      auto r = tx.send_timeout(std::move(*msg), 200us);
      if (r) return true;
      if (!r.error().is_timeout()) return false;
      msg.emplace(std::move(r.error().value));
    }
  }
}

// Per-producer arrivals: increasing order, then exactly the values sent.
class arrivals {
 public:
  explicit arrivals(std::size_t producers) : got_(producers) {}

  // Receiver thread only.
  void got(std::int64_t v) {
    const std::int64_t p = v / stride;
    if (p < 0 || p >= static_cast<std::int64_t>(got_.size())) {
      ++strays_;
      return;
    }
    auto& seq = got_[static_cast<std::size_t>(p)];
    if (!seq.empty() && seq.back() >= v % stride && disorder_++ == 0) {
      first_disorder_ = "producer " + std::to_string(p) + ": " + std::to_string(v % stride) +
                        " after " + std::to_string(seq.back());
    }
    seq.push_back(v % stride);
  }

  [[nodiscard]] std::int64_t total() const {
    std::int64_t n = 0;
    for (const auto& s : got_) n += static_cast<std::int64_t>(s.size());
    return n;
  }

  // After every thread was joined: producer p's values received are exactly
  // the iterations whose fate was a send.
  void expect_exactly(const std::vector<std::vector<fate>>& fates) const {
    EXPECT_EQ(strays_, 0) << "values of no known producer";
    EXPECT_EQ(disorder_, 0) << "per-producer order broken (or a duplicate); first: "
                            << first_disorder_;
    for (std::size_t p = 0; p < fates.size(); ++p) {
      std::vector<std::int64_t> want;
      for (std::size_t i = 0; i < fates[p].size(); ++i) {
        if (fates[p][i] != fate::dropped) want.push_back(static_cast<std::int64_t>(i));
      }
      const auto& have = got_[p];
      if (have == want) continue;
      // Name the first difference: lost, extra (a dropped permit's), duplicate.
      std::vector<std::int64_t> sorted = have;
      std::sort(sorted.begin(), sorted.end());
      const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
      std::string what;
      if (dup != sorted.end()) {
        what = "duplicate " + std::to_string(*dup);
      } else {
        for (std::int64_t w : want) {
          if (!std::binary_search(sorted.begin(), sorted.end(), w)) {
            what = "lost " + std::to_string(w);
            break;
          }
        }
        for (std::int64_t h : sorted) {
          if (!std::binary_search(want.begin(), want.end(), h)) {
            what += " received but never sent (dropped permit?) " + std::to_string(h);
            break;
          }
        }
      }
      ADD_FAILURE() << "producer " << p << ": received " << have.size() << " values, sent "
                    << want.size() << "; " << what;
    }
  }

 private:
  std::vector<std::vector<std::int64_t>> got_;
  std::int64_t strays_ = 0;
  std::int64_t disorder_ = 0;
  std::string first_disorder_;
};

// Test names: the bound.
std::string cap_name(const ::testing::TestParamInfo<std::size_t>& param_info) {
  return "cap" + std::to_string(param_info.param);
}

}  // namespace

// --- bounded: reservations, sends and drops racing ---------------------------------------------

class permit_stress_bounded : public ::testing::TestWithParam<std::size_t> {};

INSTANTIATE_TEST_SUITE_P(caps, permit_stress_bounded,
                         ::testing::Values(std::size_t{1}, std::size_t{2}, std::size_t{7},
                                           std::size_t{64}, std::size_t{5000}),
                         cap_name);

// 4 producers, each K iterations of: a reservation (blocking, try loop,
// timeout loop, stop token, deadline), then the permit's send or, every
// third iteration, a drop (destroyed, assigned empty, or assigned over by a
// second permit); a plain send every seventh iteration instead. One receiver.
TEST_P(permit_stress_bounded, reserve_send_drop_every_value_once_in_order) {
  const std::size_t bound = GetParam();
  constexpr std::size_t producers = 4;
  const auto per = static_cast<std::size_t>(scaled(40000, 8000));
  const leak_check leaks;
  std::vector<std::vector<fate>> fates(producers, std::vector<fate>(per, fate::dropped));
  std::atomic<std::int64_t> held{0};
  std::atomic<std::int64_t> over_bound_at_reserve{0};
  std::atomic<std::int64_t> failures{0};
  std::int64_t over_bound_seen_by_receiver = 0;
  std::int64_t samples = 0;
  arrivals seen(producers);
  {
    auto [tx, rx] = sluice::sync_channel<counted>(bound);
    const auto n = static_cast<std::int64_t>(bound);
    std::vector<std::jthread> threads;
    for (std::size_t p = 0; p < producers; ++p) {
      threads.emplace_back([&, sender = tx, p] {
        auto& mine = fates[p];
        const auto id = static_cast<std::int64_t>(p);
        for (std::size_t i = 0; i < per; ++i) {
          const auto v = tag(id, static_cast<std::int64_t>(i));
          const int variant = static_cast<int>((i + p) % 5);
          if (i % 7 == 3) {
            if (!plain_send(sender, v, variant % 3)) {
              failures.fetch_add(1);
              return;
            }
            mine[i] = fate::sent_plain;
            continue;
          }
          permit_t perm = obtain(sender, variant);
          if (!perm) {
            failures.fetch_add(1);
            return;
          }
          if (held.fetch_add(1) + 1 > n) over_bound_at_reserve.fetch_add(1);
          if (i % 3 != 2) {
            held.fetch_sub(1);
            std::move(perm).send(counted(v));
            if (perm) failures.fetch_add(1);  // must be empty once used
            mine[i] = fate::sent_by_permit;
            continue;
          }
          switch ((i / 3) % 3) {
            case 0:
              held.fetch_sub(1);
              {
                const permit_t gone = std::move(perm);
              }
              break;
            case 1:
              held.fetch_sub(1);
              perm = permit_t();
              break;
            default: {
              // A second permit (never waiting: no hold-and-wait) assigned
              // over the first gives the first slot back; then it goes too.
              auto second = sender.try_reserve();
              if (second) {
                if (held.fetch_add(1) + 1 > n) over_bound_at_reserve.fetch_add(1);
                held.fetch_sub(1);
                perm = std::move(*second);
                if (!perm || *second) failures.fetch_add(1);
              }
              held.fetch_sub(1);
              perm = permit_t();
              break;
            }
          }
          if (perm) failures.fetch_add(1);
        }
      });
    }
    tx = {};  // the producers (and their permits) hold the only senders
    for (std::int64_t k = 0;; ++k) {
      if (k % 16 == 15) {
        auto r = rx.recv_timeout(1ms);
        if (!r) {
          if (r.error() == sluice::recv_timeout_error::timeout) continue;
          break;
        }
        seen.got(r->value());
      } else {
        auto r = rx.recv();
        if (!r) break;
        seen.got(r->value());
      }
      const auto queued = static_cast<std::int64_t>(rx.len());
      const std::int64_t permits_out = held.load();
      ++samples;
      if (queued + permits_out > n) ++over_bound_seen_by_receiver;
    }
    threads.clear();
    EXPECT_TRUE(rx.is_empty());
  }
  EXPECT_EQ(failures.load(), 0) << "a reservation or send failed, or a permit was not emptied";
  EXPECT_EQ(over_bound_at_reserve.load(), 0) << "more permits out than the bound";
  EXPECT_EQ(over_bound_seen_by_receiver, 0)
      << "len() + permits held exceeded the bound (" << samples << " samples)";
  seen.expect_exactly(fates);
  EXPECT_EQ(leaks.leaked(), 0) << "a message leaked or was destroyed twice";
}

// The receiver paused: threads race try_send, try_reserve, reserve_timeout(0)
// and send_timeout(v, 0) until each meets "full" (final while nothing is
// received or dropped): exactly `bound` succeed. Then permits are dropped
// while other threads race for the freed room: exactly as many succeed. Then
// every permit sends: the channel holds `bound` messages, each value once.
// Rounds on one channel, so positions move through many laps.
TEST_P(permit_stress_bounded, paused_receiver_room_is_shared_exactly) {
  const std::size_t bound = GetParam();
  const auto n = static_cast<std::int64_t>(bound);
  const int rounds = static_cast<int>(scaled(400, 150));
  const leak_check leaks;
  {
    auto [tx, rx] = sluice::sync_channel<counted>(bound);
    std::int64_t next_value = 0;
    for (int round = 0; round < rounds; ++round) {
      std::mutex m;
      std::vector<permit_t> permits;    // reserved in this round, not used yet
      std::vector<std::int64_t> sent;   // values queued in this round
      std::atomic<std::int64_t> value_source{next_value};
      std::atomic<std::int64_t> errors{0};
      std::int64_t regained = 0;  // phase B's successes (under m)

      // Phase A: race until full.
      {
        std::vector<std::jthread> threads;
        for (int t = 0; t < 3; ++t) {
          threads.emplace_back([&, t] {
            std::vector<permit_t> my_permits;
            std::vector<std::int64_t> my_sent;
            for (int k = 0;; ++k) {
              bool full = false;
              switch ((k + t + round) % 4) {
                case 0: {
                  const std::int64_t v = value_source.fetch_add(1);
                  auto r = tx.try_send(counted(v));
                  if (r) {
                    my_sent.push_back(v);
                  } else if (r.error().is_full()) {
                    full = true;
                  } else {
                    errors.fetch_add(1);
                    full = true;
                  }
                  break;
                }
                case 1: {
                  auto r = tx.try_reserve();
                  if (r) {
                    my_permits.push_back(std::move(*r));
                  } else {
                    if (r.error() != sluice::try_reserve_error::full) errors.fetch_add(1);
                    full = true;
                  }
                  break;
                }
                case 2: {
                  auto r = tx.reserve_timeout(0ms);
                  if (r) {
                    my_permits.push_back(std::move(*r));
                  } else {
                    if (r.error() != sluice::reserve_timeout_error::timeout) errors.fetch_add(1);
                    full = true;
                  }
                  break;
                }
                default: {
                  const std::int64_t v = value_source.fetch_add(1);
                  auto r = tx.send_timeout(counted(v), 0ms);
                  if (r) {
                    my_sent.push_back(v);
                  } else {
                    if (!r.error().is_timeout()) errors.fetch_add(1);
                    full = true;
                  }
                  break;
                }
              }
              if (full) break;
            }
            std::lock_guard g(m);
            for (auto& p : my_permits) permits.push_back(std::move(p));
            sent.insert(sent.end(), my_sent.begin(), my_sent.end());
          });
        }
      }
      ASSERT_EQ(errors.load(), 0) << "round " << round;
      ASSERT_EQ(static_cast<std::int64_t>(permits.size() + sent.size()), n)
          << "round " << round << ": " << permits.size() << " permits and " << sent.size()
          << " sends succeeded on a bound of " << n;
      EXPECT_EQ(rx.len(), sent.size()) << "round " << round;
      EXPECT_TRUE(tx.is_full()) << "round " << round;
      EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full) << "round " << round;

      // Phase B: drop half of the permits while two threads race for room.
      const std::size_t dropped = (permits.size() + 1) / 2;
      {
        std::vector<permit_t> to_drop;
        for (std::size_t i = 0; i < dropped; ++i) {
          to_drop.push_back(std::move(permits.back()));
          permits.pop_back();
        }
        std::atomic<bool> drops_done{false};
        std::vector<std::jthread> threads;
        threads.emplace_back([&] {
          for (std::size_t i = 0; i < to_drop.size(); ++i) {
            if (i % 2 == 0) {
              to_drop[i] = permit_t();
            } else {
              const permit_t gone = std::move(to_drop[i]);
            }
            std::this_thread::yield();
          }
          drops_done.store(true);
        });
        for (int t = 0; t < 2; ++t) {
          threads.emplace_back([&, t] {
            std::vector<permit_t> my_permits;
            std::vector<std::int64_t> my_sent;
            for (int k = 0;; ++k) {
              // Read before the attempt: a failure after every drop is final.
              const bool after_drops = drops_done.load();
              bool ok = false;
              if ((k + t) % 2 == 0) {
                auto r = tx.try_reserve();
                if (r) {
                  my_permits.push_back(std::move(*r));
                  ok = true;
                } else if (r.error() != sluice::try_reserve_error::full) {
                  errors.fetch_add(1);
                }
              } else {
                const std::int64_t v = value_source.fetch_add(1);
                auto r = tx.try_send(counted(v));
                if (r) {
                  my_sent.push_back(v);
                  ok = true;
                } else if (!r.error().is_full()) {
                  errors.fetch_add(1);
                }
              }
              if (!ok && after_drops) break;
              if (!ok) std::this_thread::yield();
            }
            std::lock_guard g(m);
            regained += static_cast<std::int64_t>(my_permits.size() + my_sent.size());
            for (auto& p : my_permits) permits.push_back(std::move(p));
            sent.insert(sent.end(), my_sent.begin(), my_sent.end());
          });
        }
      }
      ASSERT_EQ(errors.load(), 0) << "round " << round;
      ASSERT_EQ(regained, static_cast<std::int64_t>(dropped))
          << "round " << round << ": " << dropped << " permits dropped, " << regained
          << " slots regained";
      ASSERT_EQ(static_cast<std::int64_t>(permits.size() + sent.size()), n) << "round " << round;
      EXPECT_TRUE(tx.is_full()) << "round " << round;

      // Phase C: every permit sends, from two threads.
      {
        std::atomic<std::size_t> next{0};
        std::vector<std::int64_t> permit_values(permits.size());
        std::vector<std::jthread> threads;
        for (int t = 0; t < 2; ++t) {
          threads.emplace_back([&] {
            for (;;) {
              const std::size_t i = next.fetch_add(1);
              if (i >= permits.size()) break;
              const std::int64_t v = value_source.fetch_add(1);
              permit_values[i] = v;
              std::move(permits[i]).send(counted(v));
            }
          });
        }
        threads.clear();
        sent.insert(sent.end(), permit_values.begin(), permit_values.end());
      }
      EXPECT_EQ(rx.len(), bound) << "round " << round;
      EXPECT_TRUE(tx.is_full()) << "round " << round;

      // Drain: exactly the values sent, each once.
      std::vector<std::int64_t> got;
      while (auto r = rx.try_recv()) got.push_back(r->value());
      std::sort(got.begin(), got.end());
      std::sort(sent.begin(), sent.end());
      ASSERT_EQ(got, sent) << "round " << round;
      EXPECT_TRUE(rx.is_empty());
      EXPECT_FALSE(tx.is_full());
      next_value = value_source.load();
    }
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

// --- rendezvous ------------------------------------------------------------------------------

// 3 producers reserving (blocking, try loop, timeout loop) and sending, one
// permit in three dropped, some plain sends; one receiver alternating recv()
// and a short recv_timeout(); some permits are used only after a pause, so
// that a receive that granted one has sometimes timed out by then: the value
// is parked and the next receive takes it first. At most one permit is ever
// out.
TEST(permit_stress_rendezvous, reserve_send_drop_with_parked_values) {
  constexpr std::size_t producers = 3;
  const auto per = static_cast<std::size_t>(scaled(6000, 2500));
  const auto short_wait = sluice_test::sanitized ? 300us : 50us;
  const leak_check leaks;
  std::vector<std::vector<fate>> fates(producers, std::vector<fate>(per, fate::dropped));
  std::atomic<std::int64_t> held{0};
  std::atomic<std::int64_t> two_permits_out{0};
  std::atomic<std::int64_t> failures{0};
  std::int64_t timeouts = 0;
  std::int64_t parked_seen = 0;
  arrivals seen(producers);
  {
    auto [tx, rx] = sluice::sync_channel<counted>(0);
    std::vector<std::jthread> threads;
    for (std::size_t p = 0; p < producers; ++p) {
      threads.emplace_back([&, sender = tx, p] {
        auto& mine = fates[p];
        const auto id = static_cast<std::int64_t>(p);
        for (std::size_t i = 0; i < per; ++i) {
          const auto v = tag(id, static_cast<std::int64_t>(i));
          const int variant = static_cast<int>((i + p) % 3);
          if (i % 5 == 4) {
            if (!plain_send(sender, v, variant == 1 ? 0 : variant)) {  // no try_send spin
              failures.fetch_add(1);
              return;
            }
            mine[i] = fate::sent_plain;
            continue;
          }
          permit_t perm = obtain(sender, variant);
          if (!perm) {
            failures.fetch_add(1);
            return;
          }
          if (held.fetch_add(1) + 1 > 1) two_permits_out.fetch_add(1);
          // Now and then the permit is used late: a receive that timed out
          // meanwhile leaves the value parked in the channel.
          if (i % 8 == 0) std::this_thread::sleep_for(2 * short_wait);
          held.fetch_sub(1);
          if (i % 3 == 2) {
            perm = permit_t();  // gives the hand-off back
            continue;
          }
          std::move(perm).send(counted(v));
          if (perm) failures.fetch_add(1);
          mine[i] = fate::sent_by_permit;
        }
      });
    }
    tx = {};
    for (std::int64_t k = 0;; ++k) {
      if (rx.len() == 1) ++parked_seen;
      if (k % 2 == 0) {
        auto r = rx.recv();
        if (!r) break;
        seen.got(r->value());
      } else {
        auto r = rx.recv_timeout(short_wait);
        if (r) {
          seen.got(r->value());
        } else if (r.error() == sluice::recv_timeout_error::timeout) {
          ++timeouts;
        } else {
          break;
        }
      }
    }
    threads.clear();
    EXPECT_EQ(rx.len(), 0u);
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(two_permits_out.load(), 0) << "two rendezvous permits out at once";
  seen.expect_exactly(fates);
  EXPECT_EQ(leaks.leaked(), 0) << "a message leaked or was destroyed twice";
  // How often the racy paths were taken (informative: not asserted).
  RecordProperty("received", static_cast<int>(seen.total()));
  RecordProperty("timeouts", static_cast<int>(timeouts));
  RecordProperty("parked_seen", static_cast<int>(parked_seen));
}

// --- the receiver destroyed while permits send ----------------------------------------------

class permit_stress_receiver_gone : public ::testing::TestWithParam<std::size_t> {};

INSTANTIATE_TEST_SUITE_P(caps, permit_stress_receiver_gone,
                         ::testing::Values(std::size_t{0}, std::size_t{1}, std::size_t{4}),
                         cap_name);

// 3 producers reserve and send (every fourth permit dropped) until the
// receiver, after a number of receives that varies by round, is destroyed.
// Each value is received, or destroyed when the receiver goes, or (sent
// after that) destroyed with the channel when the last handle goes: never
// leaked, never twice. Nothing is received that was not sent.
TEST_P(permit_stress_receiver_gone, values_received_or_destroyed_with_the_channel) {
  const std::size_t bound = GetParam();
  const int rounds = static_cast<int>(scaled(60, 25));
  std::int64_t left_in_channel = 0;  // informative: values sent after the receiver left
  for (int round = 0; round < rounds; ++round) {
    const leak_check leaks;
    std::atomic<std::int64_t> permit_sends{0};
    std::atomic<std::int64_t> plain_sends{0};
    std::atomic<std::int64_t> unexpected{0};
    std::int64_t received = 0;
    {
      auto [tx, rx] = sluice::sync_channel<counted>(bound);
      std::vector<std::jthread> threads;
      for (int p = 0; p < 3; ++p) {
        threads.emplace_back([&, sender = tx, p] {
          for (std::int64_t i = 0; i < 400; ++i) {
            if (i % 9 == 8) {
              auto r = sender.send(counted(tag(p, i)));
              if (!r) {
                if (!r.error().value.owns()) unexpected.fetch_add(1);
                return;
              }
              plain_sends.fetch_add(1);
              continue;
            }
            // Blocking reserve or a timeout loop; empty once the receiver is gone.
            permit_t perm = obtain(sender, (i + p) % 2 == 0 ? 0 : 2);
            if (!perm) return;
            // Held a while now and then: the receiver may go meanwhile.
            if (i % 3 == 0) std::this_thread::sleep_for(50us);
            if (i % 4 == 3) continue;  // dropped unused
            std::move(perm).send(counted(tag(p, i)));
            permit_sends.fetch_add(1);
          }
        });
      }
      const std::int64_t stop_after = (round * 53) % 700;
      while (received < stop_after) {
        auto r = rx.recv();
        if (!r) break;
        ++received;
      }
      rx = {};  // races with the permits' sends
      threads.clear();
      // Every value sent after the receiver left waits in the channel: at
      // most the bound (rendezvous: the one parked value), each alive once.
      const std::int64_t left = leaks.leaked();
      left_in_channel += left;
      EXPECT_GE(left, 0) << "round " << round << ": a message destroyed twice";
      EXPECT_LE(left, static_cast<std::int64_t>(std::max<std::size_t>(bound, 1)))
          << "round " << round;
      EXPECT_EQ(tx.strong_count(), 1u);
    }
    EXPECT_EQ(unexpected.load(), 0) << "round " << round;
    EXPECT_LE(received, permit_sends.load() + plain_sends.load()) << "round " << round;
    EXPECT_EQ(leaks.leaked(), 0) << "round " << round << ": a value outlived the channel";
  }
  RecordProperty("left_in_channel", static_cast<int>(left_in_channel));
}

// Permits held when the receiver is destroyed send while it goes (bound 4:
// three permits and a message; rendezvous: the one permit, granted while a
// receive waited, which then gave up). Whatever lands after the receiver's
// departure lives in the channel until the last sender handle goes, then
// is destroyed; what landed before went with the receiver.
class permit_stress_receiver_gone_held : public ::testing::TestWithParam<std::size_t> {};

INSTANTIATE_TEST_SUITE_P(caps, permit_stress_receiver_gone_held,
                         ::testing::Values(std::size_t{0}, std::size_t{4}), cap_name);

TEST_P(permit_stress_receiver_gone_held, held_permits_send_while_the_receiver_goes) {
  const std::size_t bound = GetParam();
  const int rounds = static_cast<int>(scaled(500, 200));
  std::int64_t left_in_channel = 0;  // informative
  for (int round = 0; round < rounds; ++round) {
    const leak_check leaks;
    {
      auto [tx, rx] = sluice::sync_channel<counted>(bound);
      std::vector<permit_t> perms;
      if (bound == 0) {
        std::stop_source leave;
        std::jthread waiting([&] {
          auto r = rx.recv(leave.get_token());
          EXPECT_FALSE(r.has_value());
        });
        auto r = tx.reserve();  // granted once the receive waits
        ASSERT_TRUE(r.has_value());
        perms.push_back(std::move(*r));
        EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::full);  // one at a time
        leave.request_stop();
      } else {
        for (int i = 0; i < 3; ++i) {
          auto r = tx.try_reserve();
          ASSERT_TRUE(r.has_value());
          perms.push_back(std::move(*r));
        }
        ASSERT_TRUE(tx.try_send(counted(100)).has_value());
        EXPECT_TRUE(tx.is_full());
      }
      EXPECT_EQ(tx.strong_count(), 1 + perms.size());  // each permit holds a sender
      const auto n = static_cast<int>(perms.size());
      std::atomic<int> go{0};
      std::vector<std::jthread> threads;
      for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
          go.fetch_add(1);
          while (go.load() <= n) std::this_thread::yield();
          std::move(perms[static_cast<std::size_t>(i)]).send(counted(i));
        });
      }
      while (go.load() < n) std::this_thread::yield();
      go.fetch_add(1);
      if (round % 2 == 0) std::this_thread::yield();
      rx = {};
      threads.clear();
      const std::int64_t left = leaks.leaked();
      left_in_channel += left;
      EXPECT_GE(left, 0) << "round " << round << ": a message destroyed twice";
      EXPECT_LE(left, n) << "round " << round;
      EXPECT_EQ(tx.strong_count(), 1u);
      EXPECT_EQ(tx.try_reserve().error(), sluice::try_reserve_error::disconnected);
    }
    EXPECT_EQ(leaks.leaked(), 0) << "round " << round << ": a value outlived the channel";
  }
  RecordProperty("left_in_channel", static_cast<int>(left_in_channel));
}

// --- regression: a parked value when the receiver goes ------------------------------------------

// README, "Guarantees": a message still queued when the receiver goes away
// is destroyed before the receiver's destructor returns (the bounded flavor
// does so: discard_all). A value a rendezvous permit parked because its
// receive gave up is such a message (len() is 1): it must go with the
// receiver, not wait for the last sender handle. (Were it to wait, a message
// holding a sender of its own channel would keep the channel alive forever.)
TEST(permit_rendezvous_receiver_gone, parked_value_destroyed_with_the_receiver) {
  const leak_check leaks;
  auto [tx, rx] = sluice::sync_channel<counted>(0);
  {
    std::stop_source leave;
    std::jthread waiting([&] {
      auto r = rx.recv(leave.get_token());
      EXPECT_FALSE(r.has_value());
    });
    auto p = tx.reserve();  // granted while the receive waits
    ASSERT_TRUE(p.has_value());
    leave.request_stop();
    waiting.join();
    std::move(*p).send(counted(1));  // nobody waits any more: parked
  }
  ASSERT_EQ(rx.len(), 1u);
  EXPECT_EQ(leaks.leaked(), 1);
  rx = rx_t();
  EXPECT_EQ(leaks.leaked(), 0)
      << "the parked value outlived the receiver (it is destroyed only with the channel, when "
         "the last sender handle goes)";
  tx = tx_t();
  EXPECT_EQ(leaks.leaked(), 0);
}

// The same on a bounded channel, for comparison: a permit's value queued
// before the receiver goes is destroyed with the receiver.
TEST(permit_bounded_receiver_gone, queued_permit_value_destroyed_with_the_receiver) {
  const leak_check leaks;
  auto [tx, rx] = sluice::sync_channel<counted>(2);
  auto p = tx.reserve();
  ASSERT_TRUE(p.has_value());
  std::move(*p).send(counted(1));
  ASSERT_EQ(rx.len(), 1u);
  EXPECT_EQ(leaks.leaked(), 1);
  rx = rx_t();
  EXPECT_EQ(leaks.leaked(), 0);
}
