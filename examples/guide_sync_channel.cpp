// "Message Passing with Channels" guide, "Synchronous Channels": a buffer of
// two; the sender blocks when it is full.
#include <sluice/sluice.hpp>

#include <iostream>
#include <mutex>
#include <thread>

int main() {
  std::mutex out;  // keeps the two threads' lines whole
  auto [tx, rx] = sluice::sync_channel<int>(2);  // buffer size of 2
  std::jthread t([sender = std::move(tx), &out] {
    for (int i = 0; i < 5; ++i) {
      { std::lock_guard g(out); std::cout << "Sending " << i << '\n'; }
      sender.send(i).value();  // blocks if the buffer is full
      { std::lock_guard g(out); std::cout << "Sent " << i << '\n'; }
    }
  });
  for (int val : rx) {
    std::lock_guard g(out);
    std::cout << "Received " << val << '\n';
  }
}
