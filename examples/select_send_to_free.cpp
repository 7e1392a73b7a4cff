// Send to whichever worker has room: a select over send arms on bounded
// channels (Go's `select { case a <- v: case b <- v: }`). Every arm names
// the same variable; only the arm that sends moves from it, so a select
// that times out leaves the job in hand.
#include <sluice/sluice.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

using namespace std::chrono_literals;

int main() {
  auto [fast_tx, fast_rx] = sluice::sync_channel<std::string>(2);
  auto [slow_tx, slow_rx] = sluice::sync_channel<std::string>(2);

  // Nobody receives yet: four jobs fill both queues, the fifth finds no room.
  int sent = 0;
  for (int i = 0; i < 5; ++i) {
    std::string job = "job " + std::to_string(i);
    auto r = sluice::select_timeout(10ms, sluice::send_to(fast_tx, job),
                                    sluice::send_to(slow_tx, job));
    if (r) {
      ++sent;
    } else {
      std::cout << "no room for \"" << job << "\": still ours (" << r.error() << ")\n";
    }
  }
  std::cout << "queued " << sent << " of 5 jobs\n";

  // Now two workers drain at different speeds; the rest go wherever room
  // appears first.
  int fast_done = 0;
  int slow_done = 0;
  {
    std::jthread fast([&fast_done, rx = std::move(fast_rx)]() mutable {
      for ([[maybe_unused]] auto&& job : rx) ++fast_done;
    });
    std::jthread slow([&slow_done, rx = std::move(slow_rx)]() mutable {
      for ([[maybe_unused]] auto&& job : rx) {
        std::this_thread::sleep_for(5ms);
        ++slow_done;
      }
    });
    for (int i = 5; i < 40; ++i) {
      std::string job = "job " + std::to_string(i);
      auto r = sluice::select(sluice::send_to(fast_tx, job), sluice::send_to(slow_tx, job));
      if (r.index() == 0 ? !std::get<0>(r) : !std::get<1>(r)) return 1;  // a worker is gone
    }
    fast_tx = {};
    slow_tx = {};
  }
  // (How the jobs split depends on timing; the fast worker takes most.)
  std::cout << "workers finished " << fast_done + slow_done << " jobs\n";
}
