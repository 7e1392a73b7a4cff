// "Message Passing with Channels" guide, "Practical Pattern: Worker Pool":
// four workers report results on one channel; the main thread collects.
#include <sluice/sluice.hpp>

#include <algorithm>
#include <iostream>
#include <thread>
#include <utility>
#include <vector>

int main() {
  auto [tx, rx] = sluice::channel<std::pair<int, int>>();
  std::vector<std::jthread> handles;
  for (int id = 0; id < 4; ++id) {
    handles.emplace_back([sender = tx, id] {
      const int result = id * 10;  // simulate work
      sender.send({id, result}).value();
    });
  }
  tx = {};  // drop the original sender

  std::vector<std::pair<int, int>> results;
  for (auto&& r : rx) results.push_back(r);  // collect until every worker is done
  std::sort(results.begin(), results.end());
  std::cout << "Results: [";
  for (std::size_t i = 0; i < results.size(); ++i) {
    std::cout << (i ? ", " : "") << '(' << results[i].first << ", " << results[i].second << ')';
  }
  std::cout << "]\n";
  return results.size() == 4 ? 0 : 1;
}
