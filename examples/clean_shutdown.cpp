// tokio::sync::mpsc module docs, "Clean Shutdown": the receiver first calls
// close(), so no new messages get in, then consumes what is left, and only
// then goes away. (tokio does this with tasks; here the producers are
// threads. The async form arrives with sluice's coroutine support.)
#include <sluice/sluice.hpp>

#include <iostream>
#include <thread>
#include <vector>

int main() {
  auto [tx, rx] = sluice::sync_channel<int>(16);
  std::vector<std::jthread> producers;
  for (int p = 0; p < 3; ++p) {
    producers.emplace_back([sender = tx, p] {
      for (int i = 0;; ++i) {
        if (!sender.send(p * 1000 + i)) return;  // closed: the value came back
      }
    });
  }
  tx = {};

  int before_close = 0;
  while (before_close < 100) {
    if (rx.recv()) ++before_close;
  }
  rx.close();  // later sends fail; what is queued stays receivable
  int drained = 0;
  while (rx.recv()) ++drained;
  std::cout << "received " << before_close << " before close, drained " << drained
            << " after; clean shutdown\n";
  return drained <= 16 ? 0 : 1;  // at most one full buffer was queued at close
}
