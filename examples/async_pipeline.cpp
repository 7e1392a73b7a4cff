// "Channels" article, "Example: bounded backpressure", as a three-stage
// coroutine pipeline (tokio::sync::mpsc: "the channel provides
// backpressure"): a fast generator, a squaring stage and a slow sink,
// joined by two sync_channel(2)s. The generator's awaited sends wait while
// the channels are full, so it never runs more than a few items ahead of
// the sink, however slow the sink is.
#include <sluice/asio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <utility>

struct squared {  // an aggregate: see the GCC 12 note in square()
  int n;
  int value;
};

struct progress {
  int produced = 0;  // sends the generator completed
  int consumed = 0;  // items the sink received
  int max_lead = 0;  // the most the generator was ever ahead
};

constexpr int bound = 2;  // each channel's capacity

// Results are named before they are tested: GCC 12 miscompiles some
// coroutines that co_await directly inside an if or while condition.
asio::awaitable<void> generate(sluice::sync_sender<int> out, int count, progress& p) {
  for (int n = 0; n < count; ++n) {
    auto sent = co_await out.async_send(n, asio::use_awaitable);  // waits while full
    if (!sent) co_return;
    ++p.produced;
    p.max_lead = std::max(p.max_lead, p.produced - p.consumed);
  }
}

asio::awaitable<void> square(sluice::receiver<int> in, sluice::sync_sender<squared> out) {
  for (;;) {
    auto n = co_await in.async_recv(asio::use_awaitable);
    if (!n) break;  // the generator hung up: dropping `out` ends the sink
    // Built in a statement of its own: GCC 12 destroys an aggregate
    // temporary built inside a co_await expression twice.
    squared item{*n, *n * *n};
    auto sent = co_await out.async_send(std::move(item), asio::use_awaitable);
    if (!sent) break;
  }
}

asio::awaitable<void> sink(sluice::receiver<squared> in, progress& p) {
  asio::steady_timer slow(co_await asio::this_coro::executor);
  for (;;) {
    auto item = co_await in.async_recv(asio::use_awaitable);
    if (!item) break;
    ++p.consumed;
    std::cout << "processing " << item->n << " -> " << item->value << '\n';
    slow.expires_after(std::chrono::milliseconds(2));  // a slow consumer
    co_await slow.async_wait(asio::use_awaitable);
  }
}

int main() {
  auto [numbers_tx, numbers_rx] = sluice::sync_channel<int>(bound);
  auto [squares_tx, squares_rx] = sluice::sync_channel<squared>(bound);
  progress p;
  asio::io_context ioc;
  asio::co_spawn(ioc, generate(std::move(numbers_tx), 10, p), asio::detached);
  asio::co_spawn(ioc, square(std::move(numbers_rx), std::move(squares_tx)), asio::detached);
  asio::co_spawn(ioc, sink(std::move(squares_rx), p), asio::detached);
  ioc.run();

  // In flight at most: both channels full, plus one item held by each of
  // the two later stages.
  constexpr int limit = 2 * bound + 2;
  if (p.consumed != 10 || p.max_lead > limit) return 1;
  std::cout << "backpressure held: the generator was never more than " << limit
            << " items ahead of the sink\n";
  return 0;
}
