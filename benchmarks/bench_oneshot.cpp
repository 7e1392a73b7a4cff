// bench_oneshot: what a sluice::oneshot costs next to a std::promise /
// std::future pair, in the same run.
//
// Rows (T = int unless named; ns per operation, median of the runs):
//   create + destroy            a pair made and dropped unused
//   send + recv, one thread     made, sent, received on the same thread
//   round trip, two threads     thread A sends on pair i, thread B receives
//                               it and answers on pair i' (pairs made
//                               beforehand): one request and one reply
//   stream, two threads         B sends on pairs 0..n-1 in order, A
//                               receives them in order (pairs made beforehand)
// Memory (the bench_oneshot_mem build, with a counting operator new): heap
// bytes per idle pair, for T = int and a 64-byte T. The plain build prints
// the size of the oneshot's shared state instead (its only allocation).
//
// Usage: bench_oneshot [--quick | --smoke]
//   --quick  fewer runs and rounds;  --smoke  a single tiny run (CI check)
#include <sluice/sluice.hpp>

#ifdef BENCH_COUNT_ALLOCATIONS
#  include "count_allocations.hpp"
#endif

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <thread>
#include <utility>
#include <vector>

namespace {

struct config {
  std::size_t rounds = 200'000;       // same-thread rows
  std::size_t cross_rounds = 50'000;  // two-thread rows
  int runs = 7;
};

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      c.rounds = 50'000;
      c.cross_rounds = 10'000;
      c.runs = 3;
    } else if (std::strcmp(argv[i], "--smoke") == 0) {
      c.rounds = 1'000;
      c.cross_rounds = 200;
      c.runs = 1;
    } else {
      std::fprintf(stderr, "usage: bench_oneshot [--quick | --smoke]\n");
      std::exit(2);
    }
  }
  return c;
}

using clock_type = std::chrono::steady_clock;

template <class F>
double per_op(std::size_t n, F f) {
  const auto start = clock_type::now();
  f();
  const std::chrono::duration<double, std::nano> d = clock_type::now() - start;
  return d.count() / static_cast<double>(n);
}

// Keeps the optimiser from dropping a value.
template <class T>
void keep(const T& v) {
  asm volatile("" : : "g"(&v) : "memory");
}

// --- the two peers, behind one shape -----------------------------------------------

struct sluice_peer {
  static constexpr const char* name = "sluice::oneshot";
  template <class T>
  static auto make() {
    return sluice::oneshot<T>();
  }
  template <class Tx, class T>
  static void send(Tx& tx, T v) {
    (void)std::move(tx).send(std::move(v));
  }
  template <class Rx>
  static auto recv(Rx& rx) {
    return *rx.recv();
  }
};

struct promise_peer {
  static constexpr const char* name = "std::promise";
  template <class T>
  static auto make() {
    std::promise<T> p;
    std::future<T> f = p.get_future();
    return std::pair<std::promise<T>, std::future<T>>(std::move(p), std::move(f));
  }
  template <class Tx, class T>
  static void send(Tx& tx, T v) {
    tx.set_value(std::move(v));
  }
  template <class Rx>
  static auto recv(Rx& rx) {
    return rx.get();
  }
};

template <class Peer>
double create_destroy(const config& c) {
  return per_op(c.rounds, [&] {
    for (std::size_t i = 0; i < c.rounds; ++i) {
      auto pair = Peer::template make<int>();
      keep(pair);
    }
  });
}

template <class Peer>
double same_thread(const config& c) {
  return per_op(c.rounds, [&] {
    for (std::size_t i = 0; i < c.rounds; ++i) {
      auto [tx, rx] = Peer::template make<int>();
      Peer::send(tx, static_cast<int>(i));
      keep(Peer::recv(rx));
    }
  });
}

template <class Peer>
double round_trip(const config& c) {
  using pair_type = decltype(Peer::template make<int>());
  std::vector<pair_type> ping;
  std::vector<pair_type> pong;
  ping.reserve(c.cross_rounds);
  pong.reserve(c.cross_rounds);
  for (std::size_t i = 0; i < c.cross_rounds; ++i) {
    ping.push_back(Peer::template make<int>());
    pong.push_back(Peer::template make<int>());
  }
  std::thread answerer([&] {
    for (std::size_t i = 0; i < c.cross_rounds; ++i) {
      const int v = Peer::recv(ping[i].second);
      Peer::send(pong[i].first, v + 1);
    }
  });
  const double ns = per_op(c.cross_rounds, [&] {
    for (std::size_t i = 0; i < c.cross_rounds; ++i) {
      Peer::send(ping[i].first, static_cast<int>(i));
      keep(Peer::recv(pong[i].second));
    }
  });
  answerer.join();
  return ns;
}

template <class Peer>
double stream(const config& c) {
  using pair_type = decltype(Peer::template make<int>());
  std::vector<pair_type> pairs;
  pairs.reserve(c.cross_rounds);
  for (std::size_t i = 0; i < c.cross_rounds; ++i) pairs.push_back(Peer::template make<int>());
  return per_op(c.cross_rounds, [&] {
    std::thread producer([&] {
      for (std::size_t i = 0; i < c.cross_rounds; ++i) {
        Peer::send(pairs[i].first, static_cast<int>(i));
      }
    });
    for (std::size_t i = 0; i < c.cross_rounds; ++i) keep(Peer::recv(pairs[i].second));
    producer.join();
  });
}

struct big {
  std::array<char, 64> bytes{};
};

#ifdef BENCH_COUNT_ALLOCATIONS
// Heap bytes held by `n` idle pairs, per pair.
template <class Peer, class T>
double heap_per_pair(std::size_t n) {
  using pair_type = decltype(Peer::template make<T>());
  std::vector<pair_type> pairs;
  pairs.reserve(n);
  const std::size_t before = bench::heap_in_use();
  for (std::size_t i = 0; i < n; ++i) pairs.push_back(Peer::template make<T>());
  const std::size_t after = bench::heap_in_use();
  return static_cast<double>(after - before) / static_cast<double>(n);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const config c = parse(argc, argv);
#ifdef BENCH_COUNT_ALLOCATIONS
  const std::size_t n = c.rounds / 10 + 1;
  std::printf("%-34s %16s %16s\n", "heap bytes per idle pair", sluice_peer::name,
              promise_peer::name);
  std::printf("%-34s %16.1f %16.1f\n", "T = int", heap_per_pair<sluice_peer, int>(n),
              heap_per_pair<promise_peer, int>(n));
  std::printf("%-34s %16.1f %16.1f\n", "T = 64-byte struct", heap_per_pair<sluice_peer, big>(n),
              heap_per_pair<promise_peer, big>(n));
#else
  std::printf("sluice::oneshot shared state: %zu bytes (T = int), %zu bytes (T = 64 bytes); "
              "one allocation\n",
              sizeof(sluice::detail::oneshot_state<int>),
              sizeof(sluice::detail::oneshot_state<big>));
  std::printf("median of %d runs, ns per operation (T = int)\n", c.runs);
  std::printf("%-34s %16s %16s %8s\n", "row", sluice_peer::name, promise_peer::name, "ratio");
  auto row = [&](const char* name, auto sluice_fn, auto promise_fn) {
    // Alternate the peers run by run, so drift affects both alike.
    std::vector<double> s;
    std::vector<double> p;
    for (int r = 0; r < c.runs; ++r) {
      s.push_back(sluice_fn());
      p.push_back(promise_fn());
    }
    std::sort(s.begin(), s.end());
    std::sort(p.begin(), p.end());
    const double ms = s[s.size() / 2];
    const double mp = p[p.size() / 2];
    std::printf("%-34s %16.1f %16.1f %7.2fx\n", name, ms, mp, ms / mp);
  };
  row("create + destroy", [&] { return create_destroy<sluice_peer>(c); },
      [&] { return create_destroy<promise_peer>(c); });
  row("send + recv, one thread", [&] { return same_thread<sluice_peer>(c); },
      [&] { return same_thread<promise_peer>(c); });
  row("round trip, two threads", [&] { return round_trip<sluice_peer>(c); },
      [&] { return round_trip<promise_peer>(c); });
  row("stream, two threads", [&] { return stream<sluice_peer>(c); },
      [&] { return stream<promise_peer>(c); });
#endif
  return 0;
}
