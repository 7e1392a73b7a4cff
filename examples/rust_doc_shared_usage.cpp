// Rust std::sync::mpsc module docs, "Shared usage": ten threads share one
// channel through copies of the sender.
#include <sluice/sluice.hpp>

#include <iostream>
#include <thread>
#include <vector>

int main() {
  auto [tx, rx] = sluice::channel<int>();
  std::vector<std::jthread> threads;
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([sender = tx, i] { sender.send(i).value(); });
  }
  int sum = 0;
  for (int n = 0; n < 10; ++n) {
    const int j = rx.recv().value();
    if (j < 0 || j >= 10) return 1;
    sum += j;
  }
  std::cout << "sum of received values: " << sum << '\n';
  return sum == 45 ? 0 : 1;
}
