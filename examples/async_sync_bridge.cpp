// tokio::sync::mpsc module docs, "Communicating between sync and async
// code": a blocking thread and an Asio coroutine talk both ways. Requests go
// sync -> async on an unbounded channel (its send never blocks, so plain
// code may call it anywhere); replies go async -> sync on a bounded one,
// which the coroutine awaits and the thread receives with the blocking
// recv() (tokio's blocking_recv).
#include <sluice/asio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <iostream>
#include <string>
#include <thread>
#include <utility>

// The async side: answers each request until the sync side hangs up.
asio::awaitable<void> serve(sluice::receiver<int> requests,
                            sluice::sync_sender<std::string> replies) {
  int served = 0;
  // Each result is named before it is tested: GCC 12 miscompiles some
  // coroutines that co_await directly inside an if or while condition.
  for (;;) {
    auto n = co_await requests.async_recv(asio::use_awaitable);
    if (!n) break;  // every request sender is gone
    std::string reply = std::to_string(*n) + " squared is " + std::to_string(*n * *n);
    // Waits (without blocking the io_context) while the reply channel is full.
    auto sent = co_await replies.async_send(std::move(reply), asio::use_awaitable);
    if (!sent) break;
    ++served;
  }
  std::cout << "async side: served " << served << " requests\n";
}

int main() {
  auto [requests_tx, requests_rx] = sluice::channel<int>();              // sync -> async
  auto [replies_tx, replies_rx] = sluice::sync_channel<std::string>(1);  // async -> sync

  asio::io_context ioc;
  asio::co_spawn(ioc, serve(std::move(requests_rx), std::move(replies_tx)), asio::detached);
  std::jthread runtime([&ioc] { ioc.run(); });

  // The sync side: plain blocking calls, outside any io_context.
  for (int n : {3, 4, 5}) {
    requests_tx.send(n).value();
    auto reply = replies_rx.recv();
    if (!reply) return 1;
    std::cout << "sync side: " << *reply << '\n';
  }
  requests_tx = {};  // hang up: the coroutine's receive reports disconnected
  runtime.join();
  return 0;
}
