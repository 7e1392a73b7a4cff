// Timeouts in a select: select_timeout() bounds one wait; a timer arm
// (after(d)) bounds a whole loop, and tick(d) interleaves periodic work
// with messages (Go's time.After and time.Tick, crossbeam's after/tick).
#include <sluice/sluice.hpp>

#include <chrono>
#include <iostream>
#include <thread>
#include <variant>

using namespace std::chrono_literals;

int main() {
  auto [tx, rx] = sluice::sync_channel<int>(4);

  // Nothing sent yet: the select gives up after 20 ms.
  auto first = sluice::select_timeout(20ms, sluice::recv_from(rx));
  if (!first && first.error() == sluice::select_timeout_error::timeout) {
    std::cout << "nothing within 20 ms: " << first.error() << '\n';
  }

  // A producer sends every 2 ms; the consumer reports on every tick and
  // stops when its deadline timer fires.
  std::jthread producer([sender = tx](std::stop_token stop) {
    for (int i = 0; !stop.stop_requested(); ++i) {
      if (!sender.send_timeout(i, 100ms)) break;
      std::this_thread::sleep_for(2ms);
    }
  });
  sluice::timer deadline = sluice::after(200ms);
  sluice::timer report = sluice::tick(50ms);
  int received = 0;
  int reports = 0;
  for (bool done = false; !done;) {
    auto r = sluice::select(sluice::recv_from(rx), sluice::recv_from(report),
                            sluice::recv_from(deadline));
    switch (r.index()) {
      case 0:
        if (std::get<0>(r)) ++received;
        break;
      case 1:
        ++reports;  // periodic work
        break;
      case 2:
        done = true;
        break;
    }
  }
  producer.request_stop();
  // (How many depends on timing: about 100 messages and 3 reports.)
  std::cout << "deadline reached: " << (received > 0 ? "messages" : "no messages")
            << " received, " << (reports > 0 ? "reports made" : "no report") << '\n';
}
