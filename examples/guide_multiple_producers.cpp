// "Message Passing with Channels" guide, "Multiple Producers".
#include <sluice/sluice.hpp>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

int main() {
  auto [tx, rx] = sluice::channel<std::string>();
  std::vector<std::jthread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([tx_clone = tx, i] {
      tx_clone.send("Message from thread " + std::to_string(i)).value();
    });
  }
  tx = {};  // drop the original so rx knows when all senders are done
  for (auto&& msg : rx) std::cout << msg << '\n';
}
