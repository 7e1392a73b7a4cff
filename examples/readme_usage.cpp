// The usage example of the README, compiled and run as a test.
#include <sluice/sluice.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

int main() {
  auto [tx, rx] = sluice::channel<std::string>();  // unbounded

  std::vector<std::jthread> producers;
  for (int id = 0; id < 3; ++id) {
    producers.emplace_back([producer = tx, id] {  // a copy is another producer
      producer.send("hello from " + std::to_string(id)).value();
    });
  }
  tx = {};  // drop the original: the loop below ends when the copies are gone

  for (auto&& msg : rx) std::cout << msg << '\n';  // blocks per message, ends at disconnect

  auto [btx, brx] = sluice::sync_channel<int>(2);  // bounded: backpressure
  btx.send(1).value();
  btx.send(2).value();
  if (auto r = btx.try_send(3); !r && r.error().is_full()) {
    std::cout << "full, got " << r.error().value << " back\n";  // the value is never dropped
  }
  auto msg = brx.recv_timeout(std::chrono::milliseconds(50));
  std::cout << "received " << *msg << '\n';
}
