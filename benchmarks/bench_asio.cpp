// Asio's experimental::concurrent_channel in the benchmark matrix.
//
// Asio channels are asynchronous: the idiomatic use is coroutines on an
// io_context, so producers and the consumer here are C++20 coroutines
// (asio::awaitable) on an io_context run by two threads, one per core, the
// way Go schedules goroutines. Asio has no unbounded channel (n/a); a
// capacity of 0 is its rendezvous. Same rows, counts and CSV as the others.
#include "harness.hpp"
#ifdef BENCH_COUNT_ALLOCATIONS
#  include "count_allocations.hpp"
#endif

#include <asio.hpp>
#include <asio/experimental/concurrent_channel.hpp>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace {

template <class T>
using channel = asio::experimental::concurrent_channel<void(asio::error_code, T)>;

std::size_t capacity_of(bench::flavor f, const bench::config& c) {
  return f == bench::flavor::bounded0 ? 0 : f == bench::flavor::bounded1 ? 1 : c.capacity_n;
}

// Runs `body` as a coroutine on a 2-thread io_context and waits for it.
template <class Body>
void run_on_pool(Body body) {
  asio::io_context ctx(2);
  asio::co_spawn(ctx, body(ctx), asio::detached);
  std::jthread second([&] { ctx.run(); });
  ctx.run();
}

template <class T = std::size_t>
double asio_mpsc(const bench::config& c, bench::flavor f, std::size_t producers) {
  const std::size_t n = bench::count_for(c, f) / producers * producers;
  double ns = 0;
  run_on_pool([&](asio::io_context& ctx) -> asio::awaitable<void> {
    const auto t0 = bench::clk::now();  // creation is timed too
    channel<T> ch(ctx, capacity_of(f, c));
    for (std::size_t p = 0; p < producers; ++p) {
      asio::co_spawn(
          ctx,
          [&ch, n, producers]() -> asio::awaitable<void> {
            for (std::size_t i = 0; i < n / producers; ++i) {
              co_await ch.async_send(asio::error_code{}, T(i), asio::use_awaitable);
            }
          },
          asio::detached);
    }
    std::size_t sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += bench::value_of(co_await ch.async_receive(asio::use_awaitable));
    ns = bench::ns_since(t0) / static_cast<double>(n);
    const std::size_t per = n / producers;
    if (sizeof(T) >= sizeof(std::size_t) && sum != producers * (per * (per - 1) / 2)) {
      bench::check_failed("asio", "mpsc received a wrong sum");
    }
  });
  return ns;
}

std::vector<double> ping_pong(const bench::config& c, bench::flavor f) {
  const std::size_t n = c.latency_round_trips;
  std::vector<double> rtt(n);
  run_on_pool([&](asio::io_context& ctx) -> asio::awaitable<void> {
    channel<std::size_t> a(ctx, capacity_of(f, c));
    channel<std::size_t> b(ctx, capacity_of(f, c));
    asio::co_spawn(
        ctx,
        [&a, &b, n]() -> asio::awaitable<void> {
          for (std::size_t i = 0; i < n; ++i) {
            const std::size_t v = co_await a.async_receive(asio::use_awaitable);
            co_await b.async_send(asio::error_code{}, v, asio::use_awaitable);
          }
        },
        asio::detached);
    for (std::size_t i = 0; i < n; ++i) {
      const auto t0 = bench::clk::now();
      co_await a.async_send(asio::error_code{}, i, asio::use_awaitable);
      const std::size_t echoed = co_await b.async_receive(asio::use_awaitable);
      rtt[i] = bench::ns_since(t0);
      if (echoed != i) bench::check_failed("asio", "ping-pong echoed a wrong value");
    }
  });
  std::sort(rtt.begin(), rtt.end());
  return rtt;
}

double seq(const bench::config& c) {
  const std::size_t n = c.messages;
  double ns = 0;
  run_on_pool([&](asio::io_context& ctx) -> asio::awaitable<void> {
    const auto t0 = bench::clk::now();  // creation is timed too
    channel<std::size_t> ch(ctx, c.capacity_n);
    for (std::size_t i = 0; i < n; ++i) co_await ch.async_send(asio::error_code{}, i, asio::use_awaitable);
    bool in_order = true;
    for (std::size_t i = 0; i < n; ++i) in_order &= co_await ch.async_receive(asio::use_awaitable) == i;
    ns = bench::ns_since(t0) / static_cast<double>(n);
    if (!in_order) bench::check_failed("asio", "seq received messages out of order");
  });
  return ns;
}

constexpr const char* peer = "asio";

// lifecycle: make a channel, send one message, receive it, destroy the
// channel; K = messages/10 channels. One thread, no io_context round trip:
// try_send buffers the message (capacity 1 or 1024, so there is room) and
// try_receive takes it from the buffer and calls its handler inline. The
// io_context only provides the executor every channel is constructed with;
// it never runs.
double lifecycle(const bench::config& c, std::size_t capacity) {
  const std::size_t k = std::max<std::size_t>(c.messages / 10, 1);
  asio::io_context ctx;
  const auto t0 = bench::clk::now();
  for (std::size_t i = 0; i < k; ++i) {
    channel<std::size_t> ch(ctx, capacity);
    if (!ch.try_send(asio::error_code{}, std::size_t{i})) bench::check_failed(peer, "lifecycle: try_send failed");
    std::size_t got = ~i;
    const bool received = ch.try_receive([&got](asio::error_code ec, std::size_t v) {
      if (!ec) got = v;
    });
    if (!received || got != i) bench::check_failed(peer, "lifecycle received a wrong value");
  }
  return bench::ns_since(t0) / static_cast<double>(k);
}

// p50 and p99 round trips on both hand-off flavors, as row_p50 / row_p99.
void ping_pong_rows(const bench::config& c, const std::string& row) {
  for (bench::flavor f : {bench::flavor::bounded0, bench::flavor::bounded1}) {
    if (!bench::wanted(c, row, bench::flavor_name(f))) continue;
    bench::progress(peer, row.c_str(), bench::flavor_name(f));
    for (int r = 0; r < c.runs; ++r) {
      const auto rtt = ping_pong(c, f);
      bench::report((row + "_p50").c_str(), bench::flavor_name(f), peer, r, rtt[rtt.size() / 2], "ns/rtt");
      bench::report((row + "_p99").c_str(), bench::flavor_name(f), peer, r, rtt[rtt.size() * 99 / 100],
                    "ns/rtt");
    }
  }
}

void run_all(const bench::config& c, bool pinned_only) {
  using bench::flavor;
  if (pinned_only) {  // run under `taskset -c 0`
    ping_pong_rows(c, "pingpong_pinned");
    return;
  }
  bench::repeat(c, peer, "seq", "boundedN", "ns/msg", [&] { return seq(c); });
  for (flavor f : {flavor::bounded0, flavor::bounded1, flavor::boundedN}) {
    bench::repeat(c, peer, "spsc", bench::flavor_name(f), "ns/msg", [&] { return asio_mpsc(c, f, 1); });
    bench::repeat(c, peer, "mpsc", bench::flavor_name(f), "ns/msg", [&] { return asio_mpsc(c, f, 4); });
  }
  ping_pong_rows(c, "pingpong");
  for (std::size_t p : {1u, 4u, 16u, 64u}) {
    const std::string row = "mpsc_x" + std::to_string(p);
    bench::repeat(c, peer, row.c_str(), "boundedN", "ns/msg", [&] { return asio_mpsc(c, flavor::boundedN, p); });
  }
  bench::repeat(c, peer, "payload_8B", "boundedN", "ns/msg",
                [&] { return asio_mpsc<bench::inline_payload<8>>(c, flavor::boundedN, 1); });
  bench::repeat(c, peer, "payload_64B", "boundedN", "ns/msg",
                [&] { return asio_mpsc<bench::inline_payload<64>>(c, flavor::boundedN, 1); });
  bench::repeat(c, peer, "payload_1KiB", "boundedN", "ns/msg",
                [&] { return asio_mpsc<bench::inline_payload<1024>>(c, flavor::boundedN, 1); });
  // No unbounded channel: bounded1 and bounded1024 only.
  bench::repeat(c, peer, "lifecycle", "bounded1", "ns/chan", [&] { return lifecycle(c, 1); });
  bench::repeat(c, peer, "lifecycle", "bounded1024", "ns/chan", [&] { return lifecycle(c, 1024); });
}

void run_memory(const bench::config& c, const char* mode) {
  asio::io_context ctx;
  if (std::strcmp(mode, "empty") == 0) {
    for (auto [f, name] : {std::pair{bench::flavor::bounded0, "bounded0"},
                           std::pair{bench::flavor::bounded1, "bounded1"},
                           std::pair{bench::flavor::boundedN, "bounded1024"}}) {
      bench::config one = c;
      one.capacity_n = 1024;
      const std::size_t before = bench::heap_in_use();
      auto ch = std::make_unique<channel<std::size_t>>(ctx, capacity_of(f, one));
      bench::report("mem_empty", name, peer, 0, static_cast<double>(bench::heap_in_use() - before), "bytes");
    }
  } else if (std::strcmp(mode, "idle") == 0) {
    std::vector<std::unique_ptr<channel<std::size_t>>> keep;
    keep.reserve(c.idle_channels);
    const long before = bench::rss_bytes();
    for (std::size_t i = 0; i < c.idle_channels; ++i) keep.push_back(std::make_unique<channel<std::size_t>>(ctx, 1024));
    bench::report("mem_idle_x100k", "bounded1024", peer, 0,
                  static_cast<double>(bench::rss_bytes() - before) / static_cast<double>(c.idle_channels),
                  "bytes/chan");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bench::config c = bench::parse(argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--memory") == 0 && i + 1 < argc) {
      run_memory(c, argv[i + 1]);
      return 0;
    }
  }
  const bool pinned = std::find_if(argv + 1, argv + argc, [](const char* a) {
                        return std::strcmp(a, "--pinned") == 0;
                      }) != argv + argc;
  run_all(c, pinned);
}
