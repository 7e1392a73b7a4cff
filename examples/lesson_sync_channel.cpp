// "Multi-Producer, Single-Consumer Channels" lesson, "Synchronous Channels":
// a buffer of 3 takes three sends without a receiver; a fourth would block.
#include <sluice/sluice.hpp>

#include <iostream>

int main() {
  auto [tx, rx] = sluice::sync_channel<int>(3);  // buffer size 3
  tx.send(1).value();                             // OK
  tx.send(2).value();                             // OK
  tx.send(3).value();                             // OK
  // tx.send(4) would block until the receiver consumes; try_send shows it:
  auto fourth = tx.try_send(4);
  std::cout << "fourth send: " << (fourth ? std::string("ok") : to_string(fourth.error().reason))
            << ", queued " << rx.len() << '\n';
  return fourth ? 1 : 0;
}
