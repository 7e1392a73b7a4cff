// Rust std::sync::mpsc module docs, "Synchronous channels": with a bound of
// 0 the sender waits until the receiver takes the value.
#include <sluice/sluice.hpp>

#include <iostream>
#include <thread>

int main() {
  auto [tx, rx] = sluice::sync_channel<int>(0);
  std::jthread producer([sender = std::move(tx)] {
    // This waits for the main thread to start receiving.
    sender.send(53).value();
  });
  std::cout << "received " << rx.recv().value() << '\n';
}
