// "Message Passing with Channels" guide, "Receive with Timeout": the sender
// is dropped first, so the timed receive reports the closed channel at once.
#include <sluice/sluice.hpp>

#include <chrono>
#include <iostream>
#include <string>

int main() {
  auto [tx, rx] = sluice::channel<std::string>();
  tx = {};  // don't send anything
  auto msg = rx.recv_timeout(std::chrono::seconds(1));
  if (msg) {
    std::cout << "Received: " << *msg << '\n';
  } else if (msg.error() == sluice::recv_timeout_error::timeout) {
    std::cout << "Timed out!\n";
  } else {
    std::cout << "Channel closed\n";
  }
}
