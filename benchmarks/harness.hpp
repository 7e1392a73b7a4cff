// The benchmark workloads, written once for every C++ peer.
//
// A peer is an adaptor with:
//   static constexpr const char* name;
//   static bool supports(flavor f);                 // can it express this flavor?
//   template <class T> static auto make(flavor f);  // -> std::pair<Tx, Rx>
//   send(tx, T&&); T recv(rx);                      // blocking
// Every measurement prints one CSV line: row,flavor,peer,run,value,unit.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#  include <sched.h>
#  include <unistd.h>
#endif

namespace bench {

enum class flavor { unbounded, bounded0, bounded1, boundedN };

inline const char* flavor_name(flavor f) {
  switch (f) {
    case flavor::unbounded: return "unbounded";
    case flavor::bounded0: return "bounded0";
    case flavor::bounded1: return "bounded1";
    case flavor::boundedN: return "boundedN";
  }
  return "?";
}

struct config {
  std::size_t messages = 500'000;  // per row for unbounded / boundedN (N = this)
  std::size_t small_messages = 10'000;  // per row for bounded0 / bounded1
  int runs = 5;
  std::size_t capacity_n = 0;  // bounded(N); crossbeam's suite uses N = messages
  std::size_t latency_round_trips = 5'000;
  std::size_t burst = 10'000'000;
  std::size_t idle_channels = 100'000;
  std::string only;  // --only ROW: run just the rows whose name starts with ROW
  std::vector<std::string> rows;  // --rows A,B,C: run just the rows named exactly so
  std::vector<std::string> flavors;  // --flavors A,B: just these flavors (C++ peers)
};

// Cells to run: all, or the rows starting with --only (for looking at one
// row), or those named in --rows (exact names), of the flavors named in
// --flavors; every filter given must hold.
inline bool wanted(const config& c, const std::string& row, const char* fl) {
  if (!c.only.empty() && row.rfind(c.only, 0) != 0) return false;
  if (!c.flavors.empty() && std::find(c.flavors.begin(), c.flavors.end(), fl) == c.flavors.end()) {
    return false;
  }
  return c.rows.empty() || std::find(c.rows.begin(), c.rows.end(), row) != c.rows.end();
}

// "a,b,c" -> {"a", "b", "c"}
inline std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> items;
  for (std::size_t b = 0; b <= list.size();) {
    const std::size_t e = std::min(list.find(',', b), list.size());
    if (e > b) items.push_back(list.substr(b, e - b));
    b = e + 1;
  }
  return items;
}

inline config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0) {
      c.messages = 2'000;
      c.small_messages = 200;
      c.runs = 1;
      c.latency_round_trips = 200;
      c.burst = 100'000;
      c.idle_channels = 1'000;
    } else if (std::strcmp(argv[i], "--full") == 0) {
      c.messages = 1'000'000;
      c.small_messages = 50'000;
      c.runs = 7;
      c.latency_round_trips = 20'000;
    }
  }
  // Overrides after the mode, whatever the order: --messages N, --only ROW.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--messages") == 0) {
      c.messages = std::strtoull(argv[i + 1], nullptr, 10);
      c.small_messages = std::max<std::size_t>(c.messages / 20, 1);
    } else if (std::strcmp(argv[i], "--only") == 0) {
      c.only = argv[i + 1];
    } else if (std::strcmp(argv[i], "--rows") == 0) {
      c.rows = split_list(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--flavors") == 0) {
      c.flavors = split_list(argv[i + 1]);
    }
  }
  c.capacity_n = c.messages;
  return c;
}

inline std::size_t count_for(const config& c, flavor f) {
  return f == flavor::bounded0 || f == flavor::bounded1 ? c.small_messages : c.messages;
}

inline void report(const char* row, const char* fl, const char* peer, int run, double value,
                   const char* unit) {
  std::printf("%s,%s,%s,%d,%.3f,%s\n", row, fl, peer, run, value, unit);
  std::fflush(stdout);
}

inline void progress(const char* peer, const char* row, const char* fl) {
  std::fprintf(stderr, "  %-10s %-14s %s\n", peer, row, fl);
}

using clk = std::chrono::steady_clock;
inline double ns_since(clk::time_point t0) {
  return std::chrono::duration<double, std::nano>(clk::now() - t0).count();
}

inline bool pin_to_cpu0() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
#else
  return false;
#endif
}

inline long rss_bytes() {
#if defined(__linux__)
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
#else
  return 0;
#endif
}

// --- throughput rows -----------------------------------------------------------

// A benchmark that loses, duplicates or reorders messages measures nothing:
// every workload checks what it received (a sum, or the order where one
// producer guarantees it) and the program fails loudly on a mismatch.
[[noreturn]] inline void check_failed(const char* peer, const char* what) {
  std::fprintf(stderr, "CHECK FAILED: %s: %s\n", peer, what);
  std::exit(3);
}

inline std::size_t value_of(std::size_t v) { return v; }

// seq: one thread sends everything, then receives everything (buffered only).
template <class P>
double seq(const config& c, flavor f) {
  const std::size_t n = count_for(c, f);
  const auto t0 = clk::now();  // creation is timed too, as in crossbeam's suite
  auto [tx, rx] = P::template make<std::size_t>(f, c);
  for (std::size_t i = 0; i < n; ++i) P::send(tx, std::size_t{i});
  bool in_order = true;
  for (std::size_t i = 0; i < n; ++i) in_order &= P::recv(rx) == i;
  const double ns = ns_since(t0) / static_cast<double>(n);
  if (!in_order) check_failed(P::name, "seq received messages out of order");
  return ns;
}

// producers threads send n messages in total to one consumer (this thread).
// Each producer owns a copy of the sender, as in crossbeam's suite (a clone
// moved into each thread). A reference to one handle in this thread's frame
// put it beside whatever the receive loop keeps there, and the receiver's
// writes to that cache line made every send miss: which rows suffered
// followed the stack's address, so whole runs of a program (one process)
// came out up to twice as slow at random (measured: with address
// randomization off, padding the environment by 16, 32, 80 or 96 bytes took
// sluice's spsc boundedN row from ~8 to ~19 ns).
template <class P, class T = std::size_t>
double mpsc(const config& c, flavor f, std::size_t producers) {
  const std::size_t n = count_for(c, f) / producers * producers;
  const std::size_t per = n / producers;
  std::size_t sum = 0;
  const auto t0 = clk::now();  // creation is timed too, as in crossbeam's suite
  auto [tx, rx] = P::template make<T>(f, c);
  {
    std::vector<std::jthread> threads;
    for (std::size_t p = 0; p < producers; ++p) {
      threads.emplace_back([sender = tx, per] {
        for (std::size_t i = 0; i < per; ++i) P::send(sender, T(i));
      });
    }
    for (std::size_t i = 0; i < n; ++i) sum += value_of(P::recv(rx));
  }
  const double ns = ns_since(t0) / static_cast<double>(n);
  // Payload types carry only their low bytes of i (8-byte rows: all of it).
  if constexpr (sizeof(T) >= sizeof(std::size_t)) {
    if (sum != producers * (per * (per - 1) / 2)) check_failed(P::name, "mpsc received a wrong sum");
  }
  return ns;
}

// drain: one thread fills the channel, then receives everything; only the
// receiving is timed, one recv() at a time or (`batches`) with recv_many in
// batches of up to 64: what a batch saves on the receiving side alone.
template <class P>
double drain(const config& c, flavor f, bool batches) {
  const std::size_t n = count_for(c, f);
  auto [tx, rx] = P::template make<std::size_t>(f, c);
  for (std::size_t i = 0; i < n; ++i) P::send(tx, std::size_t{i});
  std::vector<std::size_t> batch;
  batch.reserve(64);
  bool in_order = true;
  const auto t0 = clk::now();
  if (batches) {
    for (std::size_t got = 0; got < n;) {
      batch.clear();
      const std::size_t k = P::recv_many(rx, batch, 64);
      if (k == 0) check_failed(P::name, "recv_many returned nothing before the end");
      for (std::size_t j = 0; j < k; ++j) in_order &= batch[j] == got + j;
      got += k;
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) in_order &= P::recv(rx) == i;
  }
  const double ns = ns_since(t0) / static_cast<double>(n);
  if (!in_order) check_failed(P::name, "drain received messages out of order");
  return ns;
}

// mpsc, received in batches of up to `batch_limit` (a peer with a batch
// receive: P::recv_many(rx, out, limit) appends to `out`, returns how many).
// The same workload as mpsc(), so the two rows compare the receive loops.
template <class P>
double mpsc_batches(const config& c, flavor f, std::size_t producers) {
  constexpr std::size_t batch_limit = 64;
  const std::size_t n = count_for(c, f) / producers * producers;
  const std::size_t per = n / producers;
  std::size_t sum = 0;
  std::vector<std::size_t> batch;
  batch.reserve(batch_limit);
  const auto t0 = clk::now();
  auto [tx, rx] = P::template make<std::size_t>(f, c);
  {
    std::vector<std::jthread> threads;
    for (std::size_t p = 0; p < producers; ++p) {
      threads.emplace_back([sender = tx, per] {
        for (std::size_t i = 0; i < per; ++i) P::send(sender, std::size_t{i});
      });
    }
    for (std::size_t got = 0; got < n;) {
      batch.clear();
      const std::size_t k = P::recv_many(rx, batch, batch_limit);
      if (k == 0) check_failed(P::name, "recv_many returned nothing before the end");
      for (std::size_t v : batch) sum += v;
      got += k;
    }
  }
  const double ns = ns_since(t0) / static_cast<double>(n);
  if (sum != producers * (per * (per - 1) / 2)) check_failed(P::name, "batches: a wrong sum");
  return ns;
}

// Ping-pong over two channels; returns the round-trip times in ns.
template <class P>
std::vector<double> ping_pong(const config& c, flavor f, bool pinned) {
  const std::size_t n = c.latency_round_trips;
  auto [a_tx, a_rx] = P::template make<std::size_t>(f, c);
  auto [b_tx, b_rx] = P::template make<std::size_t>(f, c);
  std::vector<double> rtt(n);
  std::jthread echo([&] {
    if (pinned) pin_to_cpu0();
    for (std::size_t i = 0; i < n; ++i) P::send(b_tx, P::recv(a_rx));
  });
  bool echoed = true;
  for (std::size_t i = 0; i < n; ++i) {
    const auto t0 = clk::now();
    P::send(a_tx, std::size_t{i});
    echoed &= P::recv(b_rx) == i;
    rtt[i] = ns_since(t0);
  }
  if (!echoed) check_failed(P::name, "ping-pong echoed a wrong value");
  std::sort(rtt.begin(), rtt.end());
  return rtt;
}

// Inline payload of N bytes, moved by value (the 8/64/1024-byte rows).
template <std::size_t Bytes>
struct inline_payload {
  inline_payload() = default;  // Asio's channel needs it to report cancellations
  explicit inline_payload(std::size_t v) { std::memcpy(data.data(), &v, std::min(Bytes, sizeof v)); }
  inline_payload(inline_payload&&) noexcept = default;
  inline_payload& operator=(inline_payload&&) noexcept = default;
  inline_payload(const inline_payload&) = delete;
  std::array<std::byte, Bytes> data{};
};

template <std::size_t Bytes>
std::size_t value_of(const inline_payload<Bytes>& p) {
  std::size_t v = 0;
  std::memcpy(&v, p.data.data(), std::min(Bytes, sizeof v));
  return v;
}

// The lifecycle loop: K channels made by make(), one after another; each
// gets send_recv(tx, rx, i), which sends i and returns what it received;
// both ends dropped every iteration. ns per channel.
template <class Make, class SendRecv>
double lifecycle_channels(const char* peer, std::size_t k, Make make, SendRecv send_recv) {
  const auto t0 = clk::now();
  for (std::size_t i = 0; i < k; ++i) {
    auto [tx, rx] = make();
    if (send_recv(tx, rx, i) != i) check_failed(peer, "lifecycle received a wrong value");
  }  // both ends dropped here, every iteration
  return ns_since(t0) / static_cast<double>(k);
}

// lifecycle: one thread makes a channel, sends one message, receives it and
// drops both ends; K = messages/10 channels (at least 1), ns per channel.
// `one` has capacity_n = 1024 (the bounded1024 flavor is boundedN there).
// A peer whose make() wraps its handles for the other workloads (one type
// for every flavor) may run lifecycle_channels on its own types instead:
// P::lifecycle_loop(one, f, k).
template <class P>
double lifecycle(const config& c, flavor f) {
  const std::size_t k = std::max<std::size_t>(c.messages / 10, 1);
  config one = c;
  one.capacity_n = 1024;
  if constexpr (requires { P::lifecycle_loop(one, f, k); }) return P::lifecycle_loop(one, f, k);
  return lifecycle_channels(
      P::name, k, [&] { return P::template make<std::size_t>(f, one); },
      [](auto& tx, auto& rx, std::size_t i) {
        P::send(tx, std::size_t{i});
        return P::recv(rx);
      });
}

// The lifecycle row's flavors: no bounded0 (a rendezvous cannot hold the one
// message without a second thread); bounded1024 is boundedN at capacity 1024.
inline constexpr std::pair<flavor, const char*> lifecycle_flavors[] = {
    {flavor::unbounded, "unbounded"}, {flavor::bounded1, "bounded1"}, {flavor::boundedN, "bounded1024"}};

template <class F>
void repeat(const config& c, const char* peer, const char* row, const char* fl, const char* unit,
            F measure) {
  if (!wanted(c, row, fl)) return;
  progress(peer, row, fl);
  for (int r = 0; r < c.runs; ++r) report(row, fl, peer, r, measure(), unit);
}

// Runs every throughput and latency row this peer can express.
template <class P>
void run_all(const config& c) {
  const flavor all[] = {flavor::unbounded, flavor::bounded0, flavor::bounded1, flavor::boundedN};
  for (flavor f : all) {
    if (!P::supports(f)) continue;
    const char* fl = flavor_name(f);
    if (f == flavor::unbounded || f == flavor::boundedN) {
      repeat(c, P::name, "seq", fl, "ns/msg", [&] { return seq<P>(c, f); });
    }
    repeat(c, P::name, "spsc", fl, "ns/msg", [&] { return mpsc<P>(c, f, 1); });
    repeat(c, P::name, "mpsc", fl, "ns/msg", [&] { return mpsc<P>(c, f, 4); });
    if constexpr (requires(typename P::template rx_t<std::size_t>& rx, std::vector<std::size_t>& v) {
                    P::recv_many(rx, v, std::size_t{1});
                  }) {
      if (f == flavor::unbounded || f == flavor::boundedN) {
        repeat(c, P::name, "drain", fl, "ns/msg", [&] { return drain<P>(c, f, false); });
        repeat(c, P::name, "drain_recv_many", fl, "ns/msg", [&] { return drain<P>(c, f, true); });
        repeat(c, P::name, "spsc_recv_many", fl, "ns/msg", [&] { return mpsc_batches<P>(c, f, 1); });
        repeat(c, P::name, "mpsc_recv_many", fl, "ns/msg", [&] { return mpsc_batches<P>(c, f, 4); });
      }
    }
  }
  for (flavor f : {flavor::bounded0, flavor::bounded1}) {
    if (!P::supports(f)) continue;
    for (bool pinned : {false, true}) {
      const char* row = pinned ? "pingpong_pinned" : "pingpong";
      if (!wanted(c, row, flavor_name(f))) continue;
      progress(P::name, row, flavor_name(f));
      for (int r = 0; r < c.runs; ++r) {
        std::vector<double> rtt;
        if (pinned) {
          // Both threads on CPU 0: pin this thread, the echo thread pins itself.
          std::jthread runner([&] {
            pin_to_cpu0();
            rtt = ping_pong<P>(c, f, true);
          });
        } else {
          rtt = ping_pong<P>(c, f, false);
        }
        std::string p50 = std::string(row) + "_p50";
        std::string p99 = std::string(row) + "_p99";
        report(p50.c_str(), flavor_name(f), P::name, r, rtt[rtt.size() / 2], "ns/rtt");
        report(p99.c_str(), flavor_name(f), P::name, r, rtt[rtt.size() * 99 / 100], "ns/rtt");
      }
    }
  }
  for (flavor f : {flavor::unbounded, flavor::boundedN}) {
    if (!P::supports(f)) continue;
    for (std::size_t producers : {1u, 4u, 16u, 64u}) {
      const std::string row = "mpsc_x" + std::to_string(producers);
      repeat(c, P::name, row.c_str(), flavor_name(f), "ns/msg",
             [&] { return mpsc<P>(c, f, producers); });
    }
  }
  if (P::supports(flavor::boundedN)) {
    repeat(c, P::name, "payload_8B", "boundedN", "ns/msg",
           [&] { return mpsc<P, inline_payload<8>>(c, flavor::boundedN, 1); });
    repeat(c, P::name, "payload_64B", "boundedN", "ns/msg",
           [&] { return mpsc<P, inline_payload<64>>(c, flavor::boundedN, 1); });
    repeat(c, P::name, "payload_1KiB", "boundedN", "ns/msg",
           [&] { return mpsc<P, inline_payload<1024>>(c, flavor::boundedN, 1); });
  }
  for (auto [f, fl] : lifecycle_flavors) {
    if (!P::supports(f)) continue;
    repeat(c, P::name, "lifecycle", fl, "ns/chan", [&] { return lifecycle<P>(c, f); });
  }
}

// --- memory rows -------------------------------------------------------------
// Heap bytes are counted by the global operator new of the benchmark binary
// (count_allocations.hpp); resident memory is read from /proc.

#ifdef BENCH_COUNT_ALLOCATIONS
std::size_t heap_in_use();  // defined by count_allocations.hpp
#else
inline std::size_t heap_in_use() { return 0; }  // memory rows use the _mem binaries
#endif

template <class P>
void run_memory(const config& c, const char* mode) {
  if (std::strcmp(mode, "empty") == 0) {
    for (flavor f : {flavor::unbounded, flavor::bounded0, flavor::bounded1, flavor::boundedN}) {
      if (!P::supports(f)) continue;
      config one = c;
      one.capacity_n = 1024;
      const std::size_t before = heap_in_use();
      auto ch = P::template make<std::size_t>(f, one);
      report("mem_empty", f == flavor::boundedN ? "bounded1024" : flavor_name(f), P::name, 0,
             static_cast<double>(heap_in_use() - before), "bytes");
    }
  } else if (std::strcmp(mode, "idle") == 0 && P::supports(flavor::boundedN)) {
    config one = c;
    one.capacity_n = 1024;
    using pair_t = decltype(P::template make<std::size_t>(flavor::boundedN, one));
    std::vector<std::unique_ptr<pair_t>> keep;
    keep.reserve(c.idle_channels);
    const long before = rss_bytes();
    for (std::size_t i = 0; i < c.idle_channels; ++i) {
      keep.push_back(std::make_unique<pair_t>(P::template make<std::size_t>(flavor::boundedN, one)));
    }
    report("mem_idle_x100k", "bounded1024", P::name, 0,
           static_cast<double>(rss_bytes() - before) / static_cast<double>(c.idle_channels),
           "bytes/chan");
  } else if (std::strcmp(mode, "burst") == 0 && P::supports(flavor::unbounded)) {
    auto [tx, rx] = P::template make<std::size_t>(flavor::unbounded, c);
    const long before = rss_bytes();
    for (std::size_t i = 0; i < c.burst; ++i) P::send(tx, std::size_t{i});
    const long peak = rss_bytes();
    for (std::size_t i = 0; i < c.burst; ++i) (void)P::recv(rx);
    const long after = rss_bytes();
    report("mem_burst_peak", "unbounded", P::name, 0, static_cast<double>(peak - before), "bytes");
    report("mem_burst_after_drain", "unbounded", P::name, 0, static_cast<double>(after - before),
           "bytes");
  }
}

// main() for a C++ peer:
//   prog [--quick|--full|--smoke] [--memory empty|idle|burst] [--only ROW] [--rows A,B,...]
//        [--messages N]
template <class P>
int main_for(int argc, char** argv) {
  const config c = parse(argc, argv);
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--memory") == 0) {
      run_memory<P>(c, argv[i + 1]);
      return 0;
    }
  }
  run_all<P>(c);
  return 0;
}

}  // namespace bench
