// "Message Passing with Channels" guide, "Non-Blocking Receive": a try_recv
// polling loop that does other work while nothing has arrived.
#include <sluice/sluice.hpp>

#include <chrono>
#include <iostream>
#include <string_view>
#include <thread>

int main() {
  using namespace std::chrono_literals;
  auto [tx, rx] = sluice::channel<std::string_view>();
  std::jthread t([sender = std::move(tx)] {
    std::this_thread::sleep_for(100ms);
    sender.send("delayed message").value();
  });
  for (;;) {
    auto msg = rx.try_recv();
    if (msg) {
      std::cout << "Received: " << *msg << '\n';
      break;
    }
    if (msg.error() == sluice::try_recv_error::empty) {
      std::cout << "No message yet, doing other work...\n";
      std::this_thread::sleep_for(20ms);
    } else {
      std::cout << "Channel closed\n";
      break;
    }
  }
}
