// Must NOT compile: a message type whose move constructor may throw.
#include <sluice/sluice.hpp>

struct throwing_move {
  throwing_move() = default;
  throwing_move(throwing_move&&) {}  // not noexcept
};

int main() {
  auto [tx, rx] = sluice::channel<throwing_move>();
  (void)tx;
  (void)rx;
}
