// Request/reply, tokio's classic oneshot pattern: each request on a channel
// carries a oneshot_sender for its reply. One worker thread answers; the
// client (a coroutine here, a thread works the same with recv()) awaits
// each reply. A request whose client stopped waiting is noticed by the
// worker (is_closed()), which then skips the work.
#include <sluice/sluice.hpp>

#include <coroutine>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <utility>

namespace {

struct request {
  int n;
  sluice::oneshot_sender<long> reply;  // where the answer goes
};

// A minimal fire-and-forget coroutine type: the example needs nothing more.
struct fire_and_forget {
  struct promise_type {
    fire_and_forget get_return_object() noexcept { return {}; }
    static std::suspend_never initial_suspend() noexcept { return {}; }
    static std::suspend_never final_suspend() noexcept { return {}; }
    static void return_void() noexcept {}
    [[noreturn]] static void unhandled_exception() noexcept { std::terminate(); }
  };
};

long square(int n) { return static_cast<long>(n) * n; }

// The client: sends requests and awaits each reply. It resumes on the
// worker's thread (the default: where the reply was sent), and signals
// `done` when finished.
fire_and_forget client(sluice::sender<request> requests, sluice::oneshot_sender<int> done) {
  int answered = 0;
  for (int n = 1; n <= 4; ++n) {
    auto [reply_tx, reply_rx] = sluice::oneshot<long>();
    if (!requests.send(request{n, std::move(reply_tx)})) break;
    auto answer = co_await reply_rx.async_recv();
    if (answer) {
      std::printf("client: %d squared is %ld\n", n, *answer);
      ++answered;
    } else {
      std::printf("client: request %d went unanswered\n", n);
    }
  }
  // A request nobody waits for any more: its reply's receiver is gone.
  {
    auto [reply_tx, reply_rx] = sluice::oneshot<long>();
    { auto gone = std::move(reply_rx); }
    (void)requests.send(request{99, std::move(reply_tx)});
  }
  (void)std::move(done).send(answered);
}

}  // namespace

int main() {
  auto [req_tx, req_rx] = sluice::channel<request>();

  std::thread worker([rx = std::move(req_rx)]() mutable {
    int served = 0;
    int skipped = 0;
    for (auto&& req : rx) {
      if (req.reply.is_closed()) {  // the client gave up on this one
        ++skipped;
        continue;
      }
      if (std::move(req.reply).send(square(req.n))) ++served;
    }
    std::printf("worker: served %d requests, skipped %d abandoned\n", served, skipped);
  });

  auto [done_tx, done_rx] = sluice::oneshot<int>();
  client(std::move(req_tx), std::move(done_tx));  // runs until its first co_await
  auto answered = done_rx.recv();  // blocks until the client coroutine is done
  worker.join();                   // the client dropped its sender: the worker's loop ended
  std::printf("main: %d replies received\n", answered.value_or(-1));
  return answered == 4 ? 0 : 1;
}
