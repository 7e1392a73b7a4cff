// A program that uses sluice the way a downstream project does.
#include <sluice/sluice.hpp>

#include <thread>

int main() {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  std::jthread producer([sender = std::move(tx)] { (void)sender.send(41); });
  auto r = rx.recv();
  return r && *r == 41 ? 0 : 1;
}
