// tokio::sync::mpsc module docs, "Multiple runtimes": a channel does not
// care which runtime uses it. Here two io_contexts, each run by its own
// thread: a coroutine on runtime A sends to a coroutine on runtime B, then
// its sender moves to a new coroutine on runtime B, which carries on.
// Every completion still runs on the runtime of the coroutine that awaited.
#include <sluice/asio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <iostream>
#include <thread>
#include <utility>

struct note {  // an aggregate: built in its own statement before co_await (GCC 12)
  int n;
  char from;
};

std::atomic<bool> wrong_runtime{false};

asio::awaitable<void> produce(sluice::sync_sender<note> tx, int first, int last, char from,
                              asio::io_context& here) {
  for (int n = first; n < last; ++n) {
    note msg{n, from};
    // Named before it is tested: GCC 12 miscompiles some coroutines that
    // co_await directly inside an if or while condition.
    auto sent = co_await tx.async_send(std::move(msg), asio::use_awaitable);
    if (!sent) co_return;
    if (!here.get_executor().running_in_this_thread()) wrong_runtime = true;
  }
}

asio::awaitable<void> send_then_move_on(sluice::sync_sender<note> tx, asio::io_context& a,
                                        asio::io_context& b) {
  co_await produce(tx, 0, 3, 'A', a);
  // The sender moves to runtime B; it is tied to no runtime.
  asio::co_spawn(b, produce(std::move(tx), 3, 6, 'B', b), asio::detached);
}

asio::awaitable<void> consume(sluice::receiver<note> rx, asio::io_context& here) {
  for (;;) {
    auto msg = co_await rx.async_recv(asio::use_awaitable);
    if (!msg) break;
    if (!here.get_executor().running_in_this_thread()) wrong_runtime = true;
    std::cout << "runtime B received " << msg->n << " (sent from runtime " << msg->from << ")\n";
  }
}

int main() {
  auto [tx, rx] = sluice::sync_channel<note>(2);
  asio::io_context runtime_a;
  asio::io_context runtime_b;
  // Spawned before the threads run them, so neither starts out of work.
  asio::co_spawn(runtime_b, consume(std::move(rx), runtime_b), asio::detached);
  asio::co_spawn(runtime_a, send_then_move_on(std::move(tx), runtime_a, runtime_b), asio::detached);
  {
    std::jthread thread_a([&] { runtime_a.run(); });
    std::jthread thread_b([&] { runtime_b.run(); });
  }
  if (wrong_runtime) return 1;
  std::cout << "every completion ran on its own runtime's thread\n";
  return 0;
}
