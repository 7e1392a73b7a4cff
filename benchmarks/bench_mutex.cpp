// The baseline every C++ user could write: std::mutex + two
// std::condition_variable + std::deque. Bounded when cap > 0; a bound of 0
// is a rendezvous (the sender waits until its message was taken).
#include "harness.hpp"
#ifdef BENCH_COUNT_ALLOCATIONS
#  include "count_allocations.hpp"
#endif

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

template <class T>
class mutex_channel {
 public:
  explicit mutex_channel(std::size_t cap, bool bounded) : cap_(cap), bounded_(bounded) {}

  void send(T v) {
    std::unique_lock lock(mutex_);
    if (bounded_ && cap_ > 0) not_full_.wait(lock, [&] { return queue_.size() < cap_; });
    queue_.push_back(std::move(v));
    const std::uint64_t my_ticket = ++pushed_;
    not_empty_.notify_one();
    if (bounded_ && cap_ == 0) taken_.wait(lock, [&] { return popped_ >= my_ticket; });
  }
  T recv() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !queue_.empty(); });
    T v = std::move(queue_.front());
    queue_.pop_front();
    ++popped_;
    if (bounded_ && cap_ == 0) {
      taken_.notify_all();
    } else {
      not_full_.notify_one();
    }
    return v;
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_, taken_;
  std::deque<T> queue_;
  std::uint64_t pushed_ = 0, popped_ = 0;
  std::size_t cap_;
  bool bounded_;
};

struct mutex_peer {
  static constexpr const char* name = "mutex+cv";
  static bool supports(bench::flavor) { return true; }
  template <class T>
  static auto make(bench::flavor f, const bench::config& c) {
    const bool bounded = f != bench::flavor::unbounded;
    const std::size_t cap = f == bench::flavor::bounded0   ? 0
                            : f == bench::flavor::bounded1 ? 1
                                                           : c.capacity_n;
    auto ch = std::make_shared<mutex_channel<T>>(cap, bounded);
    return std::pair{ch, ch};
  }
  template <class T>
  static void send(const std::shared_ptr<mutex_channel<T>>& ch, T&& v) { ch->send(std::move(v)); }
  template <class T>
  static T recv(const std::shared_ptr<mutex_channel<T>>& ch) { return ch->recv(); }
};

int main(int argc, char** argv) { return bench::main_for<mutex_peer>(argc, argv); }
