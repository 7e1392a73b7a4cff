// sluice in the benchmark matrix.
#include "harness.hpp"
#ifdef BENCH_COUNT_ALLOCATIONS
#  include "count_allocations.hpp"
#endif

#include <sluice/sluice.hpp>

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
  // The batch rows (spsc_recv_many, mpsc_recv_many).
  template <class T>
  using rx_t = sluice::receiver<T>;
  template <class T>
  static std::size_t recv_many(sluice::receiver<T>& rx, std::vector<T>& out, std::size_t limit) {
    return rx.recv_many(out, limit);
  }
};

int main(int argc, char** argv) { return bench::main_for<sluice_peer>(argc, argv); }
