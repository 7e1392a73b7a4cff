// "Message Passing with Channels" guide, "Creating a Channel".
#include <sluice/sluice.hpp>

#include <iostream>
#include <string>
#include <thread>

int main() {
  auto [tx, rx] = sluice::channel<std::string>();  // create a channel
  std::jthread t([sender = std::move(tx)] {
    std::string message = "Hello from thread!";
    sender.send(std::move(message)).value();  // message is moved
  });
  // Receive blocks until a message arrives
  const std::string received = rx.recv().value();
  std::cout << "Received: " << received << '\n';
}
