// tests/support/stop_board.hpp - one std::stop_source per in-flight
// operation, where a stopper thread can find it (the cancellation storms).
//
// Operations register a fresh source before each await; the stopper copies
// one out under the lock and requests the stop outside it (the request may
// resume the coroutine inline, which then registers again).
#pragma once

#include <cstddef>
#include <mutex>
#include <stop_token>
#include <vector>

namespace sluice_test {

class stop_board {
 public:
  explicit stop_board(std::size_t slots) : slots_(slots) {}
  std::stop_token fresh(std::size_t slot) {
    std::stop_source s;
    std::lock_guard g(m_);
    slots_[slot] = s;
    return s.get_token();
  }
  void stop_one(std::size_t slot) {
    std::stop_source s;
    {
      std::lock_guard g(m_);
      s = slots_[slot];
    }
    s.request_stop();
  }
  [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }

 private:
  std::mutex m_;
  std::vector<std::stop_source> slots_;
};

}  // namespace sluice_test
