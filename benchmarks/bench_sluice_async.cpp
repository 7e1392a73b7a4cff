// sluice's coroutine forms in the benchmark matrix: bench_asio.cpp's
// workloads (producers and consumer are C++20 coroutines on one io_context
// run by two threads) on sluice channels. Two peers, one program:
//
//   sluice-coro       asio::awaitable coroutines (co_spawn) awaiting
//                     `rx.async_recv(asio::use_awaitable)` and
//                     `tx.async_send(v, asio::use_awaitable)`
//                     (<sluice/asio.hpp>); every completion is posted to the
//                     coroutine's executor, as Asio's own are.
//   sluice-coro-core  the core awaitables, no token: a minimal
//                     fire-and-forget task type written here, started by
//                     posting it to the same io_context, awaiting
//                     `rx.async_recv(where)` / `tx.async_send(v, where)`.
//                     `--resume` picks `where` (the resumption policy):
//                       defer   (default) sluice::resume_on(asio::defer to
//                               the io_context): the woken coroutine is a
//                               continuation of the one that woke it and
//                               runs next on that thread, once it suspends
//                               (Go's runnext); from a thread outside the
//                               io_context it is a post;
//                       post    sluice::resume_on(asio::post): the woken
//                               coroutine goes to whichever io_context
//                               thread is free;
//                       inline  no resume_on: the library's default, on the
//                               completing thread at once.
//                     `--peer sluice-coro-core` runs only these rows.
//
// Plus the mixed rows: producers are OS threads calling the blocking
// send(), the consumer is a coroutine on the io_context. Same counts, checks
// and CSV as the other peers; no memory rows (the channels are the sluice
// column's).
#include "harness.hpp"

// The library's send_awaitable constructors name a parameter `value`, as
// the member it initialises (detail::held<T>::value): every
// sync_sender::async_send(v) instantiation warns under -Wshadow (an error
// with -Werror). Silenced for the library's headers only, until it is fixed.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include <sluice/asio.hpp>
#include <sluice/sluice.hpp>
#pragma GCC diagnostic pop

#include <asio.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <coroutine>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace {

constexpr const char* token_peer = "sluice-coro";
constexpr const char* core_peer = "sluice-coro-core";

std::size_t capacity_of(bench::flavor f, const bench::config& c) {
  return f == bench::flavor::bounded0 ? 0 : f == bench::flavor::bounded1 ? 1 : c.capacity_n;
}

// Calls run(make) with make() -> the flavor's channel: channel<T>() (a
// sender<T>) for unbounded, sync_channel<T>(bound) (a sync_sender<T>)
// otherwise. The workloads are generic over the sender type, so no branch
// per message picks it.
template <class T, class Run>
auto with_flavor(bench::flavor f, const bench::config& c, Run run) {
  if (f == bench::flavor::unbounded) return run([] { return sluice::channel<T>(); });
  const std::size_t bound = capacity_of(f, c);
  return run([bound] { return sluice::sync_channel<T>(bound); });
}

// --- sluice-coro: asio::awaitable coroutines, use_awaitable tokens ----------

// Runs `body` as a coroutine on a 2-thread io_context and waits for it
// (bench_asio.cpp's run_on_pool).
template <class Body>
void run_on_pool(Body body) {
  asio::io_context ctx(2);
  asio::co_spawn(ctx, body(ctx), asio::detached);
  std::jthread second([&] { ctx.run(); });
  ctx.run();
}

template <class T = std::size_t>
double token_mpsc(const bench::config& c, bench::flavor f, std::size_t producers) {
  const std::size_t n = bench::count_for(c, f) / producers * producers;
  const std::size_t per = n / producers;
  return with_flavor<T>(f, c, [&](auto make) {
    double ns = 0;
    run_on_pool([&](asio::io_context& ctx) -> asio::awaitable<void> {
      const auto t0 = bench::clk::now();  // creation is timed too
      auto ch = make();
      for (std::size_t p = 0; p < producers; ++p) {
        // Each producer holds its own sender (a copy is another producer).
        asio::co_spawn(
            ctx,
            [tx = ch.first, per]() -> asio::awaitable<void> {
              for (std::size_t i = 0; i < per; ++i) {
                T v(i);  // its own statement (GCC 12, see sender.hpp)
                auto sent = co_await tx.async_send(std::move(v), asio::use_awaitable);
                if (!sent) bench::check_failed(token_peer, "mpsc send failed");
              }
            },
            asio::detached);
      }
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        auto r = co_await ch.second.async_recv(asio::use_awaitable);
        if (!r) bench::check_failed(token_peer, "mpsc receive failed");
        sum += bench::value_of(*r);
      }
      ns = bench::ns_since(t0) / static_cast<double>(n);
      if (sizeof(T) >= sizeof(std::size_t) && sum != producers * (per * (per - 1) / 2)) {
        bench::check_failed(token_peer, "mpsc received a wrong sum");
      }
    });
    return ns;
  });
}

std::vector<double> token_ping_pong(const bench::config& c, bench::flavor f) {
  const std::size_t n = c.latency_round_trips;
  std::vector<double> rtt(n);
  run_on_pool([&](asio::io_context& ctx) -> asio::awaitable<void> {
    auto a = sluice::sync_channel<std::size_t>(capacity_of(f, c));
    auto b = sluice::sync_channel<std::size_t>(capacity_of(f, c));
    asio::co_spawn(
        ctx,
        [rx = std::move(a.second), tx = b.first, n]() mutable -> asio::awaitable<void> {
          for (std::size_t i = 0; i < n; ++i) {
            auto v = co_await rx.async_recv(asio::use_awaitable);
            if (!v) bench::check_failed(token_peer, "ping-pong echo receive failed");
            auto sent = co_await tx.async_send(*v, asio::use_awaitable);
            if (!sent) bench::check_failed(token_peer, "ping-pong echo send failed");
          }
        },
        asio::detached);
    for (std::size_t i = 0; i < n; ++i) {
      const auto t0 = bench::clk::now();
      auto sent = co_await a.first.async_send(std::size_t{i}, asio::use_awaitable);
      auto echoed = co_await b.second.async_recv(asio::use_awaitable);
      rtt[i] = bench::ns_since(t0);
      if (!sent || !echoed || *echoed != i) {
        bench::check_failed(token_peer, "ping-pong echoed a wrong value");
      }
    }
  });
  std::sort(rtt.begin(), rtt.end());
  return rtt;
}

double token_seq(const bench::config& c, bench::flavor f) {
  const std::size_t n = bench::count_for(c, f);
  return with_flavor<std::size_t>(f, c, [&](auto make) {
    double ns = 0;
    run_on_pool([&](asio::io_context&) -> asio::awaitable<void> {
      const auto t0 = bench::clk::now();  // creation is timed too
      auto ch = make();
      bool ok = true;
      for (std::size_t i = 0; i < n; ++i) {
        auto sent = co_await ch.first.async_send(std::size_t{i}, asio::use_awaitable);
        ok &= sent.has_value();
      }
      for (std::size_t i = 0; i < n; ++i) {
        auto r = co_await ch.second.async_recv(asio::use_awaitable);
        ok &= r.has_value() && *r == i;
      }
      ns = bench::ns_since(t0) / static_cast<double>(n);
      if (!ok) bench::check_failed(token_peer, "seq received messages out of order");
    });
    return ns;
  });
}

// mixed: `producers` OS threads call the blocking send(); the consumer is
// an asio::awaitable coroutine on the 2-thread io_context.
double token_mixed(const bench::config& c, bench::flavor f, std::size_t producers) {
  const std::size_t n = bench::count_for(c, f) / producers * producers;
  const std::size_t per = n / producers;
  return with_flavor<std::size_t>(f, c, [&](auto make) {
    double ns = 0;
    std::vector<std::jthread> threads;  // joined after the io_context stopped
    run_on_pool([&](asio::io_context&) -> asio::awaitable<void> {
      const auto t0 = bench::clk::now();  // creation and thread start are timed too
      auto ch = make();
      for (std::size_t p = 0; p < producers; ++p) {
        threads.emplace_back([tx = ch.first, per] {
          for (std::size_t i = 0; i < per; ++i) {
            if (!tx.send(std::size_t{i})) bench::check_failed(token_peer, "mixed send failed");
          }
        });
      }
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        auto r = co_await ch.second.async_recv(asio::use_awaitable);
        if (!r) bench::check_failed(token_peer, "mixed receive failed");
        sum += *r;
      }
      ns = bench::ns_since(t0) / static_cast<double>(n);
      if (sum != producers * (per * (per - 1) / 2)) {
        bench::check_failed(token_peer, "mixed received a wrong sum");
      }
    });
    return ns;
  });
}

// --- sluice-coro-core: the core awaitables in a minimal task ---------------

// Tasks alive; 0 once a workload is over, or some coroutine never finished.
std::atomic<int> live_tasks{0};

// A fire-and-forget coroutine: created suspended, started by posting it to
// an executor, frees itself when it returns. Exceptions terminate.
struct task {
  struct promise_type {
    promise_type() noexcept { live_tasks.fetch_add(1, std::memory_order_relaxed); }
    promise_type(const promise_type&) = delete;
    promise_type& operator=(const promise_type&) = delete;
    ~promise_type() { live_tasks.fetch_sub(1, std::memory_order_relaxed); }
    task get_return_object() noexcept {
      return task{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    static std::suspend_always initial_suspend() noexcept { return {}; }
    static std::suspend_never final_suspend() noexcept { return {}; }
    static void return_void() noexcept {}
    [[noreturn]] static void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

using executor = asio::io_context::executor_type;

void start(const executor& ex, task t) { asio::post(ex, t.handle); }

// The scheduler of resume_on: a coroutine whose operation completes later
// resumes on the io_context, like an asio::awaitable; as a continuation of
// the current handler (defer) or as new work (post).
struct io_scheduler {
  executor ex;
  bool continuation;
  void operator()(std::coroutine_handle<> h) const {
    if (continuation) {
      asio::defer(ex, h);
    } else {
      asio::post(ex, h);
    }
  }
};
using where_t = sluice::resume_on_t<io_scheduler>;
struct resume_inline_t {};  // no resume_on: the library's default

enum class resume_policy { defer, post, inline_ };
resume_policy policy = resume_policy::defer;  // --resume defer|post|inline

// Calls run(where) with the `where` of the chosen policy.
template <class Run>
void with_policy(const executor& ex, Run run) {
  if (policy == resume_policy::inline_) {
    run(resume_inline_t{});
  } else {
    run(sluice::resume_on(io_scheduler{ex, policy == resume_policy::defer}));
  }
}

// co_await recv_on(rx, where) / send_on(tx, v, where): the operation with
// `where`, or without it for the inline policy. An unbounded sender never
// suspends, so its async_send has no resume_on form.
template <class Rx, class Where>
auto recv_on(Rx& rx, const Where& where) {
  if constexpr (std::is_same_v<Where, resume_inline_t>) {
    return rx.async_recv();
  } else {
    return rx.async_recv(where);
  }
}
template <class T, class Where>
auto send_on(const sluice::sync_sender<T>& tx, T v, const Where& where) {
  if constexpr (std::is_same_v<Where, resume_inline_t>) {
    return tx.async_send(std::move(v));
  } else {
    return tx.async_send(std::move(v), where);
  }
}
template <class T, class Where>
auto send_on(const sluice::sender<T>& tx, T v, const Where&) {
  return tx.async_send(std::move(v));
}

using work_t = std::optional<asio::executor_work_guard<executor>>;

// Runs the task made by make_main(executor, work, where) on a 2-thread io_context
// and waits until every task has finished. The main task ends `work` when
// it is done: a coroutine suspended in a sluice operation is no work for the
// io_context (and in the mixed rows the producers are not on it).
template <class MakeMain>
void run_tasks(MakeMain make_main) {
  asio::io_context ctx(2);
  work_t work(asio::make_work_guard(ctx));
  const executor ex = ctx.get_executor();
  with_policy(ex, [&](auto where) { start(ex, make_main(ex, work, where)); });
  std::jthread second([&] { ctx.run(); });
  ctx.run();
  second.join();
  if (live_tasks.load() != 0) bench::check_failed(core_peer, "a coroutine never finished");
}

template <class Tx, class T, class Where>
task core_producer(Tx tx, std::size_t per, Where where) {
  for (std::size_t i = 0; i < per; ++i) {
    T v(i);  // its own statement (GCC 12, see sender.hpp)
    auto sent = co_await send_on(tx, std::move(v), where);
    if (!sent) bench::check_failed(core_peer, "mpsc send failed");
  }
}

template <class T, class Make, class Where>
task core_mpsc_main(executor ex, work_t& work, Where where, Make make, std::size_t producers,
                    std::size_t n, double& ns) {
  const auto t0 = bench::clk::now();  // creation is timed too
  auto ch = make();
  const std::size_t per = n / producers;
  for (std::size_t p = 0; p < producers; ++p) {
    start(ex, core_producer<decltype(ch.first), T, Where>(ch.first, per, where));
  }
  std::size_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto r = co_await recv_on(ch.second, where);
    if (!r) bench::check_failed(core_peer, "mpsc receive failed");
    sum += bench::value_of(*r);
  }
  ns = bench::ns_since(t0) / static_cast<double>(n);
  if (sizeof(T) >= sizeof(std::size_t) && sum != producers * (per * (per - 1) / 2)) {
    bench::check_failed(core_peer, "mpsc received a wrong sum");
  }
  work.reset();
}

template <class T = std::size_t>
double core_mpsc(const bench::config& c, bench::flavor f, std::size_t producers) {
  const std::size_t n = bench::count_for(c, f) / producers * producers;
  return with_flavor<T>(f, c, [&](auto make) {
    double ns = 0;
    run_tasks([&](const executor& ex, work_t& work, auto where) {
      return core_mpsc_main<T>(ex, work, where, make, producers, n, ns);
    });
    return ns;
  });
}

template <class Where>
task core_echo(sluice::receiver<std::size_t> rx, sluice::sync_sender<std::size_t> tx,
               std::size_t n, Where where) {
  for (std::size_t i = 0; i < n; ++i) {
    auto v = co_await recv_on(rx, where);
    if (!v) bench::check_failed(core_peer, "ping-pong echo receive failed");
    auto sent = co_await send_on(tx, *v, where);
    if (!sent) bench::check_failed(core_peer, "ping-pong echo send failed");
  }
}

template <class Where>
task core_ping(executor ex, work_t& work, Where where, std::size_t bound, std::size_t n,
               std::vector<double>& rtt) {
  auto a = sluice::sync_channel<std::size_t>(bound);
  auto b = sluice::sync_channel<std::size_t>(bound);
  start(ex, core_echo(std::move(a.second), b.first, n, where));
  for (std::size_t i = 0; i < n; ++i) {
    const auto t0 = bench::clk::now();
    auto sent = co_await send_on(a.first, std::size_t{i}, where);
    auto echoed = co_await recv_on(b.second, where);
    rtt[i] = bench::ns_since(t0);
    if (!sent || !echoed || *echoed != i) {
      bench::check_failed(core_peer, "ping-pong echoed a wrong value");
    }
  }
  work.reset();
}

std::vector<double> core_ping_pong(const bench::config& c, bench::flavor f) {
  std::vector<double> rtt(c.latency_round_trips);
  run_tasks([&](const executor& ex, work_t& work, auto where) {
    return core_ping(ex, work, where, capacity_of(f, c), c.latency_round_trips, rtt);
  });
  std::sort(rtt.begin(), rtt.end());
  return rtt;
}

template <class Make, class Where>
task core_seq_main(work_t& work, Where where, Make make, std::size_t n, double& ns) {
  const auto t0 = bench::clk::now();  // creation is timed too
  auto ch = make();
  bool ok = true;
  for (std::size_t i = 0; i < n; ++i) {
    auto sent = co_await send_on(ch.first, std::size_t{i}, where);
    ok &= sent.has_value();
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto r = co_await recv_on(ch.second, where);
    ok &= r.has_value() && *r == i;
  }
  ns = bench::ns_since(t0) / static_cast<double>(n);
  if (!ok) bench::check_failed(core_peer, "seq received messages out of order");
  work.reset();
}

double core_seq(const bench::config& c, bench::flavor f) {
  const std::size_t n = bench::count_for(c, f);
  return with_flavor<std::size_t>(f, c, [&](auto make) {
    double ns = 0;
    run_tasks([&](const executor&, work_t& work, auto where) {
      return core_seq_main(work, where, make, n, ns);
    });
    return ns;
  });
}

// mixed: OS threads call the blocking send(); the consumer task awaits
// recv_on(rx, where) (the --resume policy).
template <class Make, class Where>
task core_mixed_main(work_t& work, Where where, Make make, std::size_t producers, std::size_t n,
                     std::vector<std::jthread>& threads, double& ns) {
  const auto t0 = bench::clk::now();  // creation and thread start are timed too
  auto ch = make();
  const std::size_t per = n / producers;
  for (std::size_t p = 0; p < producers; ++p) {
    threads.emplace_back([tx = ch.first, per] {
      for (std::size_t i = 0; i < per; ++i) {
        if (!tx.send(std::size_t{i})) bench::check_failed(core_peer, "mixed send failed");
      }
    });
  }
  std::size_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto r = co_await recv_on(ch.second, where);
    if (!r) bench::check_failed(core_peer, "mixed receive failed");
    sum += *r;
  }
  ns = bench::ns_since(t0) / static_cast<double>(n);
  if (sum != producers * (per * (per - 1) / 2)) {
    bench::check_failed(core_peer, "mixed received a wrong sum");
  }
  work.reset();
}

double core_mixed(const bench::config& c, bench::flavor f, std::size_t producers) {
  const std::size_t n = bench::count_for(c, f) / producers * producers;
  return with_flavor<std::size_t>(f, c, [&](auto make) {
    double ns = 0;
    std::vector<std::jthread> threads;  // joined after the io_context stopped
    run_tasks([&](const executor&, work_t& work, auto where) {
      return core_mixed_main(work, where, make, producers, n, threads, ns);
    });
    return ns;
  });
}

// --- select rows, both peers ---------------------------------------------------
// bench_sluice.cpp's select_rx and select_both with coroutines: 4
// producers, each sending on its own channel (select_rx) or selecting a send
// over the 4 channels (select_both); one consumer selecting a receive over
// the 4 receivers (a sluice channel has one receiver; Go's select_both row
// has 4 selecting consumers).

constexpr std::size_t select_width = 4;

template <class Tx>
struct select_channels {
  std::array<Tx, select_width> tx;
  std::array<sluice::receiver<std::size_t>, select_width> rx;
};

template <class Make>
auto make_select_channels(Make make) {
  select_channels<decltype(make().first)> s;
  for (std::size_t k = 0; k < select_width; ++k) std::tie(s.tx[k], s.rx[k]) = make();
  return s;
}

// What the consumer must have received: each producer sends 0 .. per-1.
bool select_sum_right(std::size_t sum, std::size_t per) {
  return sum == select_width * (per * (per - 1) / 2);
}

// Adds a receive arm's value to `sum`; false on a disconnect.
struct add_received {
  std::size_t& sum;
  bool operator()(const std::expected<std::size_t, sluice::recv_error>& r) const {
    if (r) sum += *r;
    return r.has_value();
  }
};
// Whether a send arm sent.
struct arm_sent {
  bool operator()(const auto& r) const { return r.has_value(); }
};

double token_select(const bench::config& c, bench::flavor f, bool send_arms) {
  const std::size_t n = bench::count_for(c, f) / select_width * select_width;
  const std::size_t per = n / select_width;
  return with_flavor<std::size_t>(f, c, [&](auto make) {
    double ns = 0;
    run_on_pool([&](asio::io_context& ctx) -> asio::awaitable<void> {
      const auto t0 = bench::clk::now();  // creation is timed too
      auto ch = make_select_channels(make);
      for (std::size_t p = 0; p < select_width; ++p) {
        if (send_arms) {
          asio::co_spawn(
              ctx,
              [tx = ch.tx, per]() -> asio::awaitable<void> {
                for (std::size_t i = 0; i < per; ++i) {
                  std::size_t v = i;
                  auto r = co_await sluice::async_select(
                      asio::use_awaitable, sluice::send_to(tx[0], v), sluice::send_to(tx[1], v),
                      sluice::send_to(tx[2], v), sluice::send_to(tx[3], v));
                  if (!r || !std::visit(arm_sent{}, *r)) {
                    bench::check_failed(token_peer, "select_both: a send arm failed");
                  }
                }
              },
              asio::detached);
        } else {
          asio::co_spawn(
              ctx,
              [tx = ch.tx[p], per]() -> asio::awaitable<void> {
                for (std::size_t i = 0; i < per; ++i) {
                  auto sent = co_await tx.async_send(std::size_t{i}, asio::use_awaitable);
                  if (!sent) bench::check_failed(token_peer, "select_rx: a send failed");
                }
              },
              asio::detached);
        }
      }
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        auto r = co_await sluice::async_select(
            asio::use_awaitable, sluice::recv_from(ch.rx[0]), sluice::recv_from(ch.rx[1]),
            sluice::recv_from(ch.rx[2]), sluice::recv_from(ch.rx[3]));
        if (!r || !std::visit(add_received{sum}, *r)) {
          bench::check_failed(token_peer, "select: a receive arm failed");
        }
      }
      ns = bench::ns_since(t0) / static_cast<double>(n);
      if (!select_sum_right(sum, per)) bench::check_failed(token_peer, "select: a wrong sum");
    });
    return ns;
  });
}

// co_await select_on(where, arms...): async_select with `where`, or without
// it for the inline policy.
template <class Where, class... Arms>
auto select_on(const Where& where, const Arms&... arms) {
  if constexpr (std::is_same_v<Where, resume_inline_t>) {
    return sluice::async_select(arms...);
  } else {
    return sluice::async_select(where, arms...);
  }
}

template <class Tx, class Where>
task core_select_producer(std::array<Tx, select_width> tx, std::size_t per, Where where) {
  for (std::size_t i = 0; i < per; ++i) {
    std::size_t v = i;
    auto r = co_await select_on(where, sluice::send_to(tx[0], v), sluice::send_to(tx[1], v),
                                sluice::send_to(tx[2], v), sluice::send_to(tx[3], v));
    if (!std::visit(arm_sent{}, r)) bench::check_failed(core_peer, "select_both: a send arm failed");
  }
}

template <class Make, class Where>
task core_select_main(executor ex, work_t& work, Where where, Make make, bool send_arms,
                      std::size_t n, double& ns) {
  const auto t0 = bench::clk::now();  // creation is timed too
  auto ch = make_select_channels(make);
  using tx_type = typename decltype(ch.tx)::value_type;
  const std::size_t per = n / select_width;
  for (std::size_t p = 0; p < select_width; ++p) {
    if (send_arms) {
      start(ex, core_select_producer(ch.tx, per, where));
    } else {
      start(ex, core_producer<tx_type, std::size_t, Where>(ch.tx[p], per, where));
    }
  }
  std::size_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto r = co_await select_on(where, sluice::recv_from(ch.rx[0]), sluice::recv_from(ch.rx[1]),
                                sluice::recv_from(ch.rx[2]), sluice::recv_from(ch.rx[3]));
    if (!std::visit(add_received{sum}, r)) bench::check_failed(core_peer, "select: a receive arm failed");
  }
  ns = bench::ns_since(t0) / static_cast<double>(n);
  if (!select_sum_right(sum, per)) bench::check_failed(core_peer, "select: a wrong sum");
  work.reset();
}

double core_select(const bench::config& c, bench::flavor f, bool send_arms) {
  const std::size_t n = bench::count_for(c, f) / select_width * select_width;
  return with_flavor<std::size_t>(f, c, [&](auto make) {
    double ns = 0;
    run_tasks([&](const executor& ex, work_t& work, auto where) {
      return core_select_main(ex, work, where, make, send_arms, n, ns);
    });
    return ns;
  });
}

// --- the rows ----------------------------------------------------------------

template <class PingPong>
void ping_pong_rows(const bench::config& c, const char* peer, const std::string& row,
                    PingPong ping_pong) {
  for (bench::flavor f : {bench::flavor::bounded0, bench::flavor::bounded1}) {
    if (!bench::wanted(c, row, bench::flavor_name(f))) continue;
    bench::progress(peer, row.c_str(), bench::flavor_name(f));
    for (int r = 0; r < c.runs; ++r) {
      const auto rtt = ping_pong(c, f);
      bench::report((row + "_p50").c_str(), bench::flavor_name(f), peer, r, rtt[rtt.size() / 2],
                    "ns/rtt");
      bench::report((row + "_p99").c_str(), bench::flavor_name(f), peer, r,
                    rtt[rtt.size() * 99 / 100], "ns/rtt");
    }
  }
}

// The rows of bench_asio.cpp, on every flavor sluice has (unbounded too).
template <class Seq, class Mpsc, class PingPong>
void peer_rows(const bench::config& c, const char* peer, bool pinned_only, Seq seq, Mpsc mpsc,
               PingPong ping_pong) {
  using bench::flavor;
  constexpr std::type_identity<std::size_t> size_tag;
  if (pinned_only) {  // run under `taskset -c 0`
    ping_pong_rows(c, peer, "pingpong_pinned", ping_pong);
    return;
  }
  const flavor all[] = {flavor::unbounded, flavor::bounded0, flavor::bounded1, flavor::boundedN};
  for (flavor f : all) {
    const char* fl = bench::flavor_name(f);
    if (f == flavor::unbounded || f == flavor::boundedN) {
      bench::repeat(c, peer, "seq", fl, "ns/msg", [&] { return seq(c, f); });
    }
    bench::repeat(c, peer, "spsc", fl, "ns/msg",
                  [&] { return mpsc(c, f, std::size_t{1}, size_tag); });
    bench::repeat(c, peer, "mpsc", fl, "ns/msg",
                  [&] { return mpsc(c, f, std::size_t{4}, size_tag); });
  }
  ping_pong_rows(c, peer, "pingpong", ping_pong);
  for (flavor f : {flavor::unbounded, flavor::boundedN}) {
    for (std::size_t p : {1u, 4u, 16u, 64u}) {
      const std::string row = "mpsc_x" + std::to_string(p);
      bench::repeat(c, peer, row.c_str(), bench::flavor_name(f), "ns/msg",
                    [&] { return mpsc(c, f, p, size_tag); });
    }
  }
  bench::repeat(c, peer, "payload_8B", "boundedN", "ns/msg", [&] {
    return mpsc(c, flavor::boundedN, std::size_t{1}, std::type_identity<bench::inline_payload<8>>{});
  });
  bench::repeat(c, peer, "payload_64B", "boundedN", "ns/msg", [&] {
    return mpsc(c, flavor::boundedN, std::size_t{1}, std::type_identity<bench::inline_payload<64>>{});
  });
  bench::repeat(c, peer, "payload_1KiB", "boundedN", "ns/msg", [&] {
    return mpsc(c, flavor::boundedN, std::size_t{1},
                std::type_identity<bench::inline_payload<1024>>{});
  });
}

// --peer NAME: run only that peer's rows (sluice-coro or sluice-coro-core).
std::string only_peer;
bool peer_wanted(const char* peer) { return only_peer.empty() || only_peer == peer; }

void run_all(const bench::config& c, bool pinned_only) {
  // mpsc(config, flavor, producers, std::type_identity<message type>)
  if (peer_wanted(token_peer)) peer_rows(
      c, token_peer, pinned_only, token_seq,
      []<class T>(const bench::config& cc, bench::flavor f, std::size_t p, std::type_identity<T>) {
        return token_mpsc<T>(cc, f, p);
      },
      token_ping_pong);
  if (peer_wanted(core_peer)) peer_rows(
      c, core_peer, pinned_only, core_seq,
      []<class T>(const bench::config& cc, bench::flavor f, std::size_t p, std::type_identity<T>) {
        return core_mpsc<T>(cc, f, p);
      },
      core_ping_pong);
  if (pinned_only) return;
  for (bench::flavor f : {bench::flavor::unbounded, bench::flavor::bounded0,
                          bench::flavor::bounded1, bench::flavor::boundedN}) {
    const char* fl = bench::flavor_name(f);
    if (peer_wanted(token_peer)) {
      bench::repeat(c, token_peer, "mixed_spsc", fl, "ns/msg", [&] { return token_mixed(c, f, 1); });
      bench::repeat(c, token_peer, "mixed_mpsc", fl, "ns/msg", [&] { return token_mixed(c, f, 4); });
    }
    if (peer_wanted(core_peer)) {
      bench::repeat(c, core_peer, "mixed_spsc", fl, "ns/msg", [&] { return core_mixed(c, f, 1); });
      bench::repeat(c, core_peer, "mixed_mpsc", fl, "ns/msg", [&] { return core_mixed(c, f, 4); });
    }
    for (const bool send_arms : {false, true}) {
      const char* row = send_arms ? "select_both" : "select_rx";
      if (peer_wanted(token_peer)) {
        bench::repeat(c, token_peer, row, fl, "ns/msg", [&] { return token_select(c, f, send_arms); });
      }
      if (peer_wanted(core_peer)) {
        bench::repeat(c, core_peer, row, fl, "ns/msg", [&] { return core_select(c, f, send_arms); });
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bench::config c = bench::parse(argc, argv);
  for (int i = 1; i < argc; ++i) {
    const bool takes_value =
        std::strcmp(argv[i], "--peer") == 0 || std::strcmp(argv[i], "--resume") == 0;
    if (takes_value && i + 1 == argc) {
      std::fprintf(stderr, "bench_sluice_async: %s needs a value\n", argv[i]);
      return 2;
    }
    if (!takes_value) continue;
    if (std::strcmp(argv[i], "--peer") == 0) {
      only_peer = argv[i + 1];
      if (!peer_wanted(token_peer) && !peer_wanted(core_peer)) {
        std::fprintf(stderr, "bench_sluice_async: --peer takes %s or %s, not %s\n", token_peer,
                     core_peer, argv[i + 1]);
        return 2;
      }
    }
    if (std::strcmp(argv[i], "--resume") != 0) continue;
    const std::string p = argv[i + 1];
    if (p == "defer") {
      policy = resume_policy::defer;
    } else if (p == "post") {
      policy = resume_policy::post;
    } else if (p == "inline") {
      policy = resume_policy::inline_;
    } else {
      std::fprintf(stderr, "bench_sluice_async: --resume takes defer, post or inline, not %s\n",
                   p.c_str());
      return 2;
    }
  }
  const bool pinned = std::find_if(argv + 1, argv + argc, [](const char* a) {
                        return std::strcmp(a, "--pinned") == 0;
                      }) != argv + argc;
  run_all(c, pinned);
}
