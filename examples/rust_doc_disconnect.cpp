// Rust std::sync::mpsc module docs, "Propagating panics": recv() reports an
// error once the sending half is gone.
#include <sluice/sluice.hpp>

#include <iostream>

int main() {
  auto [tx, rx] = sluice::channel<int>();
  tx = {};  // the only sender hangs up
  auto r = rx.recv();
  if (r) return 1;
  std::cout << "recv failed: " << r.error() << '\n';
}
