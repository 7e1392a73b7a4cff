// "Channels" article, "Example": two producers, one consumer collecting
// everything until both senders are gone.
#include <sluice/sluice.hpp>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

int main() {
  auto [tx, rx] = sluice::channel<std::string>();
  auto tx2 = tx;
  std::jthread first([sender = std::move(tx)] {
    for (const char* word : {"hello", "from"}) sender.send(word).value();
  });
  std::jthread second([sender2 = std::move(tx2)] {
    for (const char* word : {"another", "thread"}) sender2.send(word).value();
  });
  std::vector<std::string> messages;
  for (auto&& m : rx) messages.push_back(std::move(m));
  std::cout << "[";
  for (std::size_t i = 0; i < messages.size(); ++i) std::cout << (i ? ", " : "") << '"' << messages[i] << '"';
  std::cout << "]\n";
  return messages.size() == 4 ? 0 : 1;
}
