// "Multi-Producer, Single-Consumer Channels" lesson, "Multiple Producers":
// five copies of the sender; dropping the original lets iteration end.
#include <sluice/sluice.hpp>

#include <iostream>
#include <thread>
#include <vector>

int main() {
  auto [tx, rx] = sluice::channel<int>();
  std::vector<std::jthread> threads;
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([tx_clone = tx, i] { tx_clone.send(i).value(); });
  }
  tx = {};  // drop the original so the channel closes when the copies finish
  int count = 0;
  for (int received : rx) {
    std::cout << "Got: " << received << '\n';
    ++count;
  }
  return count == 5 ? 0 : 1;
}
