// "Multi-Producer, Single-Consumer Channels" lesson, first example: a thread
// moves a String into the channel.
#include <sluice/sluice.hpp>

#include <iostream>
#include <string>
#include <thread>

int main() {
  auto [tx, rx] = sluice::channel<std::string>();
  std::jthread t([sender = std::move(tx)] {
    std::string val = "hello";
    sender.send(std::move(val)).value();  // val is moved into the channel
  });
  std::cout << "Got: " << rx.recv().value() << '\n';
}
