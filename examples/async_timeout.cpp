// "Message Passing with Channels" guide, "Receive with Timeout", for an Asio
// coroutine: the receive races a timer with `||`. Nothing is sent, so the
// timer wins; the losing receive is cancelled and takes nothing, so the
// message sent afterwards is received by the next receive. (The guide drops
// the sender and sees "Channel closed"; here it stays, to time out.)
#include <sluice/asio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <variant>

using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

asio::awaitable<void> receive(sluice::receiver<std::string>& rx, sluice::sender<int>& go) {
  asio::steady_timer timer(co_await asio::this_coro::executor);

  timer.expires_after(20ms);
  auto first =
      co_await (rx.async_recv(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
  if (first.index() == 1) std::cout << "Timed out!\n";  // the receive was cancelled

  go.send(1).value();  // now the producer sends

  timer.expires_after(10s);  // generous: only a safety net
  auto second =
      co_await (rx.async_recv(asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
  if (second.index() == 0 && std::get<0>(second)) {
    std::cout << "Received: " << *std::get<0>(second) << '\n';
  } else {
    std::cout << "lost!\n";
  }
}

int main() {
  auto [tx, rx] = sluice::channel<std::string>();
  auto [go_tx, go_rx] = sluice::channel<int>();
  std::jthread producer([sender = std::move(tx), go = std::move(go_rx)]() mutable {
    if (go.recv()) sender.send("sent after the timeout").value();
  });

  asio::io_context ioc;
  asio::co_spawn(ioc, receive(rx, go_tx), asio::detached);
  ioc.run();
  return 0;
}
