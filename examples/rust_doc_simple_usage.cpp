// Rust std::sync::mpsc module docs, "Simple usage": a streaming channel.
#include <sluice/sluice.hpp>

#include <iostream>
#include <thread>

int main() {
  auto [tx, rx] = sluice::channel<int>();
  std::jthread producer([sender = std::move(tx)] { sender.send(10).value(); });
  const int got = rx.recv().value();
  std::cout << "received " << got << '\n';
  return got == 10 ? 0 : 1;
}
