// "Channels" article, "Example: bounded backpressure": a producer slowed
// down by a consumer through sync_channel(2).
#include <sluice/sluice.hpp>

#include <chrono>
#include <iostream>
#include <thread>

int main() {
  auto [tx, rx] = sluice::sync_channel<unsigned>(2);
  std::jthread producer([sender = std::move(tx)] {
    for (unsigned n = 0; n < 5; ++n) sender.send(n).value();  // blocks while 2 are queued
  });
  while (auto n = rx.recv()) {
    std::cout << "processing " << *n << '\n';
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}
