// Fan-in with select: one consumer waits on two channels of different
// message types at once (Go's `for { select { ... } }`, crossbeam's
// select!). A channel whose senders are all gone is ready, with recv_error;
// only_if(false) then takes its arm out, as Go sets a channel to nil.
#include <sluice/sluice.hpp>

#include <iostream>
#include <string>
#include <thread>
#include <variant>

int main() {
  auto [numbers_tx, numbers] = sluice::channel<int>();
  auto [words_tx, words] = sluice::sync_channel<std::string>(0);  // rendezvous

  std::jthread counter([tx = std::move(numbers_tx)] {
    for (int i = 1; i <= 100; ++i) tx.send(i).value();
  });
  std::jthread talker([tx = std::move(words_tx)] {
    for (const char* w : {"alpha", "beta", "gamma"}) tx.send(w).value();
  });

  int sum = 0;
  std::string text;
  bool numbers_open = true;
  bool words_open = true;
  while (numbers_open || words_open) {
    auto r = sluice::select(sluice::recv_from(numbers).only_if(numbers_open),
                            sluice::recv_from(words).only_if(words_open));
    if (r.index() == 0) {
      if (auto& n = std::get<0>(r)) {
        sum += *n;
      } else {
        numbers_open = false;  // every number sender is gone
      }
    } else {
      if (auto& w = std::get<1>(r)) {
        text += text.empty() ? *w : " " + *w;
      } else {
        words_open = false;
      }
    }
  }
  std::cout << "sum of numbers: " << sum << "\nwords: " << text << '\n';
}
