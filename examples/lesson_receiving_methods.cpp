// "Multi-Producer, Single-Consumer Channels" lesson, "Receiving Methods":
// recv, try_recv and recv_timeout and their outcomes.
#include <sluice/sluice.hpp>

#include <chrono>
#include <iostream>
#include <string>

int main() {
  using namespace std::chrono_literals;
  auto [tx, rx] = sluice::channel<std::string>();
  tx.send("first").value();
  tx.send("second").value();

  // Blocking receive
  std::cout << rx.recv().value() << '\n';

  // Non-blocking (returns immediately)
  if (auto msg = rx.try_recv()) {
    std::cout << *msg << '\n';
  } else if (msg.error() == sluice::try_recv_error::empty) {
    std::cout << "No message yet\n";
  } else {
    std::cout << "Channel closed\n";
  }

  // With timeout
  if (auto msg = rx.recv_timeout(50ms)) {
    std::cout << *msg << '\n';
  } else if (msg.error() == sluice::recv_timeout_error::timeout) {
    std::cout << "Timeout!\n";
  } else {
    std::cout << "Closed\n";
  }
}
