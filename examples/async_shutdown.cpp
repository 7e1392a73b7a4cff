// tokio::sync::mpsc module docs, "Clean Shutdown", with coroutines: the
// consumer calls close(), so no new message gets in; producers waiting to
// send see the error and get their value back; the consumer then drains
// what was queued before it goes away. (clean_shutdown.cpp is the same
// with threads.)
#include <sluice/asio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <array>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>

constexpr int producers = 3;
constexpr std::size_t bound = 8;

// Sends until the channel is closed; reports what came back.
asio::awaitable<void> produce(sluice::sync_sender<int> tx, int id, std::string& report) {
  for (int i = 0;; ++i) {
    const int value = id * 1000 + i;
    auto sent = co_await tx.async_send(value, asio::use_awaitable);
    if (!sent) {
      std::ostringstream os;
      os << "producer " << id << " stopped: " << sent.error()
         << (sent.error().value == value ? " (its value came back)" : " (wrong value back!)");
      report = os.str();
      co_return;
    }
  }
}

// Results are named before they are tested: GCC 12 miscompiles this
// coroutine when both co_awaits sit directly in the if and while conditions.
asio::awaitable<void> consume(sluice::receiver<int> rx, int& before_close, int& drained) {
  while (before_close < 20) {
    auto msg = co_await rx.async_recv(asio::use_awaitable);
    if (msg) ++before_close;
  }
  rx.close();  // later sends fail; what is queued stays receivable
  for (;;) {
    auto msg = co_await rx.async_recv(asio::use_awaitable);
    if (!msg) break;  // closed and empty: disconnected, though producers live
    ++drained;
  }
}

int main() {
  auto [tx, rx] = sluice::sync_channel<int>(bound);
  std::array<std::string, producers> reports;
  int before_close = 0;
  int drained = 0;
  asio::io_context ioc;
  for (int id = 0; id < producers; ++id) {
    asio::co_spawn(ioc, produce(tx, id, reports[static_cast<std::size_t>(id)]), asio::detached);
  }
  tx = {};
  asio::co_spawn(ioc, consume(std::move(rx), before_close, drained), asio::detached);
  ioc.run();

  std::cout << "received " << before_close << " before close\n";
  for (const auto& r : reports) std::cout << r << '\n';
  // At most a full buffer was queued at close.
  if (drained > static_cast<int>(bound)) return 1;
  std::cout << "drained the queue; clean shutdown\n";
  return 0;
}
