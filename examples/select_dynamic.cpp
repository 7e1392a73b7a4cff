// A select over a list known only at run time: Rust's (removed) Select and
// Handle, crossbeam's Select, Go's reflect.Select. One receiver per worker;
// the collector waits on all of them, and removes a worker's arm when that
// worker is done.
#include <sluice/sluice.hpp>

#include <expected>
#include <iostream>
#include <thread>
#include <vector>

int main(int argc, char**) {
  const int workers = 3 + argc;  // known at run time
  std::vector<sluice::receiver<int>> results;
  std::vector<std::jthread> threads;
  for (int w = 0; w < workers; ++w) {
    auto [results_tx, results_rx] = sluice::sync_channel<int>(1);
    results.push_back(std::move(results_rx));
    threads.emplace_back([w, tx = std::move(results_tx)] {
      for (int i = 1; i <= 10; ++i) tx.send(w * 100 + i).value();
    });
  }

  sluice::selector sel;
  std::vector<sluice::select_handle<std::expected<int, sluice::recv_error>>> handles;
  for (auto& rx : results) handles.push_back(sel.add(sluice::recv_from(rx)));

  long total = 0;
  int messages = 0;
  while (!sel.empty()) {
    const std::size_t k = sel.select();  // the index add() gave the arm
    if (auto msg = handles[k].take()) {
      total += *msg;
      ++messages;
    } else {
      sel.remove(k);  // worker k is done
    }
  }
  std::cout << workers << " workers, " << messages << " results, total "
            << (total == [&] {
                 long t = 0;
                 for (int w = 0; w < workers; ++w) t += w * 1000L + 55;
                 return t;
               }()
                    ? "correct"
                    : "WRONG")
            << '\n';
}
