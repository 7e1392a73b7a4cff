// "Message Passing with Channels" guide, "Error Handling": sending fails
// once the receiver is gone, and the error hands the value back.
#include <sluice/sluice.hpp>

#include <iostream>

int main() {
  auto [tx, rx] = sluice::channel<int>();
  rx = {};  // drop the receiver
  if (auto r = tx.send(42)) {
    std::cout << "Sent successfully\n";
    return 1;
  } else {
    std::cout << "Failed to send: " << r.error().value << " (" << r.error() << ")\n";
  }
}
