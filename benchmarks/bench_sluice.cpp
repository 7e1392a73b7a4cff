// sluice in the benchmark matrix.
#include "harness.hpp"
#ifdef BENCH_COUNT_ALLOCATIONS
#  include "count_allocations.hpp"
#endif

#include <sluice/sluice.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <thread>
#include <variant>
#include <vector>

struct sluice_peer {
  static constexpr const char* name = "sluice";
  static bool supports(bench::flavor) { return true; }

  // Unbounded and bounded channels have different sender types; hold either.
  template <class T>
  struct tx_t {
    sluice::sender<T> unbounded;
    sluice::sync_sender<T> bounded;
  };

  template <class T>
  static std::pair<tx_t<T>, sluice::receiver<T>> make(bench::flavor f, const bench::config& c) {
    if (f == bench::flavor::unbounded) {
      auto [tx, rx] = sluice::channel<T>();
      return {tx_t<T>{std::move(tx), {}}, std::move(rx)};
    }
    const std::size_t cap = f == bench::flavor::bounded0   ? 0
                            : f == bench::flavor::bounded1 ? 1
                                                           : c.capacity_n;
    auto [tx, rx] = sluice::sync_channel<T>(cap);
    return {tx_t<T>{{}, std::move(tx)}, std::move(rx)};
  }
  template <class T>
  static void send(const tx_t<T>& tx, T&& v) {
    if (tx.unbounded) {
      (void)tx.unbounded.send(std::move(v));
    } else {
      (void)tx.bounded.send(std::move(v));
    }
  }
  template <class T>
  static T recv(sluice::receiver<T>& rx) {
    return *rx.recv();
  }
  // The lifecycle row (harness.hpp), on the types a user holds: make()'s
  // pair above carries both sender types, one of them empty, for the
  // workloads written once over every flavor, and moves the handles into
  // it, which a program making a channel does not (2-3 ns a channel:
  // 5 alternated runs of the lifecycle rows, pinned to one processor).
  static double lifecycle_loop(const bench::config& one, bench::flavor f, std::size_t k);
  // The batch rows (spsc_recv_many, mpsc_recv_many).
  template <class T>
  using rx_t = sluice::receiver<T>;
  template <class T>
  static std::size_t recv_many(sluice::receiver<T>& rx, std::vector<T>& out, std::size_t limit) {
    return rx.recv_many(out, limit);
  }
};

// --- select rows ---------------------------------------------------------------
// Go's select is the peer (go/bench.go has the same workloads); the other
// peers have no select.

namespace {

constexpr std::size_t select_width = 4;  // channels, and producers, as in crossbeam's suite

// Calls run(make) with make() -> a new channel of the flavor: channel<T>()
// for unbounded (a sender<T>), sync_channel<T>(bound) otherwise, so each
// workload is written once over the sender type.
template <class Run>
double with_channels(bench::flavor f, const bench::config& c, Run run) {
  if (f == bench::flavor::unbounded) return run([] { return sluice::channel<std::size_t>(); });
  const std::size_t bound = f == bench::flavor::bounded0   ? 0
                            : f == bench::flavor::bounded1 ? 1
                                                           : c.capacity_n;
  return run([bound] { return sluice::sync_channel<std::size_t>(bound); });
}

// Adds the received value of a receive arm's outcome to `sum`.
struct add_received {
  std::size_t& sum;
  void operator()(const std::expected<std::size_t, sluice::recv_error>& r) const {
    if (!r) bench::check_failed("sluice", "select received a disconnect before the end");
    sum += *r;
  }
};

std::size_t select_receive_4(std::array<sluice::receiver<std::size_t>, select_width>& rx,
                             std::size_t n) {
  std::size_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::visit(add_received{sum},
               sluice::select(sluice::recv_from(rx[0]), sluice::recv_from(rx[1]),
                              sluice::recv_from(rx[2]), sluice::recv_from(rx[3])));
  }
  return sum;
}

// select_rx (send_arms false): 4 producers, each sending on its own
// channel; this thread selects a receive over the 4 receivers.
// select_both (send_arms true): 4 producers, each selecting a send over the
// 4 channels; this thread selects a receive over them. Go's row has 4
// selecting consumers: a sluice channel has one receiver (mpsc), so one
// consumer receives all.
double select_row(const bench::config& c, bench::flavor f, bool send_arms) {
  const std::size_t n = bench::count_for(c, f) / select_width * select_width;
  const std::size_t per = n / select_width;
  return with_channels(f, c, [&](auto make) {
    const auto t0 = bench::clk::now();  // creation is timed too, as in the other rows
    using tx_type = decltype(make().first);
    std::array<tx_type, select_width> tx;
    std::array<sluice::receiver<std::size_t>, select_width> rx;
    for (std::size_t k = 0; k < select_width; ++k) std::tie(tx[k], rx[k]) = make();
    std::size_t sum = 0;
    {
      std::vector<std::jthread> producers;
      for (std::size_t k = 0; k < select_width; ++k) {
        producers.emplace_back([&tx, k, per, send_arms] {
          for (std::size_t i = 0; i < per; ++i) {
            if (!send_arms) {
              (void)tx[k].send(std::size_t{i});
              continue;
            }
            std::size_t v = i;
            const auto r = sluice::select(sluice::send_to(tx[0], v), sluice::send_to(tx[1], v),
                                          sluice::send_to(tx[2], v), sluice::send_to(tx[3], v));
            std::visit(
                [](const auto& sent) {
                  if (!sent) bench::check_failed("sluice", "select_both: a send arm failed");
                },
                r);
          }
        });
      }
      sum = select_receive_4(rx, n);
    }
    const double ns = bench::ns_since(t0) / static_cast<double>(n);
    if (sum != select_width * (per * (per - 1) / 2)) {
      bench::check_failed("sluice", send_arms ? "select_both received a wrong sum"
                                              : "select_rx received a wrong sum");
    }
    return ns;
  });
}

// select_arms_N: the cost of one select over N arms. N receivers of
// sync_channel(1), one selector over them; each step sends one message to
// channel k (spread over all N) and selects: exactly one arm is ready, and a
// fair select must find it among N. One thread, so the figure is the
// select's own work (trying arms in a random order), not a hand-off. Go's
// twin is reflect.Select over N cases, its only select over a list built at
// run time.
double select_arms(const bench::config& c, std::size_t arms) {
  // messages/10 selects, fewer over many arms (Go's reflect.Select takes
  // ~0.15 ms over 1,024): at most messages*16/arms.
  const std::size_t n = std::max<std::size_t>(std::min(c.messages / 10, c.messages * 16 / arms), 1);
  std::vector<sluice::sync_sender<std::size_t>> tx(arms);
  std::vector<sluice::receiver<std::size_t>> rx(arms);
  for (std::size_t k = 0; k < arms; ++k) std::tie(tx[k], rx[k]) = sluice::sync_channel<std::size_t>(1);
  sluice::selector sel;
  std::vector<sluice::select_handle<std::expected<std::size_t, sluice::recv_error>>> handles;
  handles.reserve(arms);
  for (auto& r : rx) handles.push_back(sel.add(sluice::recv_from(r)));
  std::size_t sum = 0;
  bool right_arm = true;
  const auto t0 = bench::clk::now();
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = (i * 7919) % arms;  // a prime stride: every channel in turn
    (void)tx[k].send(std::size_t{i});
    const std::size_t won = sel.select();
    right_arm &= won == k;
    auto msg = handles[won].take();
    sum += msg ? *msg : 0;
  }
  const double ns = bench::ns_since(t0) / static_cast<double>(n);
  if (!right_arm || sum != n * (n - 1) / 2) bench::check_failed("sluice", "select_arms: a wrong arm or sum");
  return ns;
}

void run_select_rows(const bench::config& c) {
  for (bench::flavor f : {bench::flavor::unbounded, bench::flavor::bounded0,
                          bench::flavor::bounded1, bench::flavor::boundedN}) {
    const char* fl = bench::flavor_name(f);
    bench::repeat(c, "sluice", "select_rx", fl, "ns/msg", [&] { return select_row(c, f, false); });
    bench::repeat(c, "sluice", "select_both", fl, "ns/msg", [&] { return select_row(c, f, true); });
  }
  for (std::size_t arms : {2u, 8u, 64u, 1024u}) {
    const std::string row = "select_arms_" + std::to_string(arms);
    bench::repeat(c, "sluice", row.c_str(), "bounded1", "ns/select", [&] { return select_arms(c, arms); });
  }
}

}  // namespace

double sluice_peer::lifecycle_loop(const bench::config& one, bench::flavor f, std::size_t k) {
  return with_channels(f, one, [k](auto make) {
    return bench::lifecycle_channels(name, k, make, [](auto& tx, auto& rx, std::size_t i) {
      (void)tx.send(std::size_t{i});
      return *rx.recv();
    });
  });
}

int main(int argc, char** argv) {
  const int status = bench::main_for<sluice_peer>(argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--memory") return status;  // the memory rows only
  }
  run_select_rows(bench::parse(argc, argv));
  return status;
}
