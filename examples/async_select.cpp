// Select in an Asio coroutine: a consumer coroutine waits on a job channel
// fed by threads and on a oneshot that tells it to stop, with one
// async_select. The threads block in plain send(); the coroutine suspends
// without holding a thread. (Plain C++20 coroutines use
// `co_await sluice::async_select(arms...)`, no token.)
#include <sluice/asio.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <iostream>
#include <thread>
#include <variant>
#include <vector>

asio::awaitable<void> consume(sluice::receiver<int>& jobs,
                              sluice::oneshot_receiver<bool>& stop, int& done) {
  for (;;) {
    auto r = co_await sluice::async_select(asio::use_awaitable, sluice::recv_from(jobs),
                                           sluice::recv_from(stop));
    if (!r) co_return;  // cancelled: not here
    if (r->index() == 1) {
      std::cout << "consumer: told to stop after " << done << " jobs\n";
      co_return;
    }
    if (!std::get<0>(*r)) {
      std::cout << "consumer: every producer is gone\n";
      co_return;
    }
    ++done;
  }
}

int main() {
  auto [jobs_tx, jobs_rx] = sluice::sync_channel<int>(8);
  auto [stop_tx, stop_rx] = sluice::oneshot<bool>();
  int done = 0;

  asio::io_context ioc;
  asio::co_spawn(ioc, consume(jobs_rx, stop_rx, done), asio::detached);
  std::jthread runner([&ioc] { ioc.run(); });

  {
    std::vector<std::jthread> producers;
    for (int p = 0; p < 3; ++p) {
      producers.emplace_back([tx = jobs_tx] {
        for (int i = 0; i < 100; ++i) tx.send(i).value();
      });
    }
  }  // the producers are done: 300 jobs sent (all received: the queue holds 8)
  while (jobs_rx.len() > 0) std::this_thread::yield();
  std::move(stop_tx).send(true).value();
  runner.join();
  std::cout << "main: " << (done == 300 ? "all 300 jobs done" : "jobs lost!") << '\n';
}
