// Weak senders and batch receives (tokio's WeakSender and recv_many).
//
// Three workers report events; a ticker adds a heartbeat while any worker
// is still running. The ticker holds only a weak sender: it must not keep
// the channel open on its own, so when the last worker finishes, its
// upgrade() fails and it stops. The consumer takes events in batches of up
// to 16 (one wait, then whatever is queued).
#include <sluice/sluice.hpp>

#include <chrono>
#include <cstdio>
#include <thread>
#include <variant>
#include <vector>

struct work_done {
  int worker;
  int item;
};
struct heartbeat {};
using event = std::variant<work_done, heartbeat>;

int main() {
  auto [tx, rx] = sluice::sync_channel<event>(64);
  auto weak = tx.downgrade();

  std::vector<std::jthread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([sender = tx, w] {
      for (int i = 0; i < 100; ++i) {
        (void)sender.send(work_done{w, i});
        if (i % 25 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  // Counted before the ticker starts: its upgrade() would briefly add one.
  std::printf("senders: %zu strong, %zu weak\n", tx.strong_count(), tx.weak_count());

  std::jthread ticker([weak = std::move(weak)] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      auto strong = weak.upgrade();  // nullopt once every worker has finished
      if (!strong) break;
      (void)strong->send(heartbeat{});
    }
    std::puts("ticker: no worker left, stopping");
  });
  tx = {};  // main's sender goes: only the workers keep the channel open

  int items = 0;
  int batches = 0;
  std::vector<event> batch;
  while (rx.recv_many(batch, 16) != 0) {  // 0: every worker is done, all drained
    ++batches;
    for (const event& e : batch) items += std::holds_alternative<work_done>(e) ? 1 : 0;
    batch.clear();
  }
  ticker.join();
  std::printf("consumer: %d work items in %s batches\n", items,
              batches < items ? "fewer" : "as many");
}
