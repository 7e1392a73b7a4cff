// "Multi-Producer, Single-Consumer Channels" lesson, "Streaming messages":
// receive as an iterator (a range) until the producer is done.
#include <sluice/sluice.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

int main() {
  auto [tx, rx] = sluice::channel<std::string>();
  std::jthread t([sender = std::move(tx)] {
    for (const char* msg : {"one", "two", "three"}) {
      sender.send(msg).value();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  for (auto&& received : rx) std::cout << "Got: " << received << '\n';
}
