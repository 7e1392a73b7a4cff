// "Message Passing with Channels" guide, "Sending Multiple Messages".
#include <sluice/sluice.hpp>

#include <chrono>
#include <iostream>
#include <string_view>
#include <thread>

int main() {
  auto [tx, rx] = sluice::channel<std::string_view>();
  std::jthread t([sender = std::move(tx)] {
    for (std::string_view msg : {"hi", "from", "the", "thread"}) {
      sender.send(msg).value();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  for (auto received : rx) std::cout << "Got: " << received << '\n';  // iterate
}
