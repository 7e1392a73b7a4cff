// moodycamel::BlockingConcurrentQueue: an unbounded MPMC queue. It has no
// bound and no rendezvous, so only the unbounded rows are measured.
#include "harness.hpp"
#ifdef BENCH_COUNT_ALLOCATIONS
#  include "count_allocations.hpp"
#endif

#include <concurrentqueue/blockingconcurrentqueue.h>

#include <memory>

struct moodycamel_peer {
  static constexpr const char* name = "moodycamel";
  static bool supports(bench::flavor f) { return f == bench::flavor::unbounded; }
  template <class T>
  static auto make(bench::flavor, const bench::config&) {
    auto q = std::make_shared<moodycamel::BlockingConcurrentQueue<T>>();
    return std::pair{q, q};
  }
  template <class T>
  static void send(const std::shared_ptr<moodycamel::BlockingConcurrentQueue<T>>& q, T&& v) {
    q->enqueue(std::move(v));
  }
  template <class T>
  static T recv(const std::shared_ptr<moodycamel::BlockingConcurrentQueue<T>>& q) {
    T v{0};
    q->wait_dequeue(v);
    return v;
  }
};

int main(int argc, char** argv) { return bench::main_for<moodycamel_peer>(argc, argv); }
