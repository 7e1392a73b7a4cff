// Permits (tokio's Sender::reserve and Permit): reserve room in a bounded
// channel first, do the expensive work, then send without waiting and
// without failing. The reservation is where the backpressure happens; a
// permit dropped unused gives its slot back.
//
// 1. Permits count against the bound: 4 permits fill a sync_channel(4).
// 2. Producer threads reserve, build, send; one of them sometimes finds it
//    has nothing to send after reserving and drops its permit.
// 3. A coroutine: co_await tx.async_reserve(), then send.
// 4. A rendezvous channel: a permit there is the hand-off itself.
#include <sluice/sluice.hpp>

#include <array>
#include <chrono>
#include <coroutine>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

struct job {
  int producer;
  int seq;
  std::string report;
};

constexpr int steady_producers = 3;  // producers 0..2: always send
constexpr int picky = 3;             // producer 3: sends only every other job
constexpr int jobs_each = 8;

// Failed checks are reported on stderr; any of them makes main return 1.
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}
// For a failure the example cannot go on after.
int fail(const char* what) {
  check(false, what);
  return 1;
}

std::string report_text(int producer, int seq) {
  return "report " + std::to_string(producer) + "." + std::to_string(seq);
}

// The expensive work a permit lets a producer do before sending.
std::string build_report(int producer, int seq) {
  std::this_thread::sleep_for(std::chrono::microseconds(200));
  return report_text(producer, seq);
}

// A minimal fire-and-forget coroutine type: the example needs nothing more.
struct fire_and_forget {
  struct promise_type {
    fire_and_forget get_return_object() noexcept { return {}; }
    static std::suspend_never initial_suspend() noexcept { return {}; }
    static std::suspend_never final_suspend() noexcept { return {}; }
    static void return_void() noexcept {}
    [[noreturn]] static void unhandled_exception() noexcept { std::terminate(); }
  };
};

// Reserves (suspending while the channel is full), then builds and sends.
// It resumes on the thread that made room: the consumer, inside its recv().
// `done` says whether it sent, and whether it was resumed on another thread.
fire_and_forget reserve_then_send(sluice::sync_sender<job> tx, std::thread::id started_on,
                                  sluice::oneshot_sender<bool> done) {
  std::puts("coroutine: channel full, awaiting a permit");
  auto p = co_await tx.async_reserve();  // std::expected<permit<job>, reserve_error>
  if (!p) {
    (void)std::move(done).send(false);
    co_return;
  }
  // Built in a statement of its own: GCC 12 destroys an aggregate temporary
  // built inside a co_await expression twice.
  job j{99, 0, build_report(99, 0)};
  std::move(*p).send(std::move(j));
  (void)std::move(done).send(std::this_thread::get_id() != started_on);
}

}  // namespace

int main() {
  auto [tx, rx] = sluice::sync_channel<job>(4);

  // --- 1. permits count against the bound (nobody receives yet) ----------------
  {
    std::vector<sluice::permit<job>> held;
    for (int i = 0; i < 4; ++i) {
      auto p = tx.reserve();  // room now: returns at once
      if (!p) return fail("reserve");
      held.push_back(std::move(*p));
    }
    std::printf("4 permits out: %zu queued, is_full() %s\n", tx.len(),
                tx.is_full() ? "true" : "false");
    check(tx.len() == 0 && tx.is_full(), "4 permits fill a channel of 4");

    auto rejected = tx.try_send(job{-1, 0, "no room"});
    if (rejected || !rejected.error().is_full()) return fail("try_send fails with full");
    std::printf("try_send: %s, got \"%s\" back\n", to_string(rejected.error().reason).c_str(),
                rejected.error().value.report.c_str());

    auto extra = tx.try_reserve();  // a permit is room too: none left
    if (extra || extra.error() != sluice::try_reserve_error::full) {
      return fail("try_reserve fails with full");
    }
    std::printf("try_reserve: %s\n", sluice::to_string(extra.error()).c_str());

    std::move(held[0]).send(job{-1, 0, "first"});
    std::move(held[1]).send(job{-1, 1, "second"});
    held.clear();  // two used (now empty), two unused: their slots go back
    std::printf("sent through 2 permits, dropped 2 unused: %zu queued, is_full() %s\n",
                tx.len(), tx.is_full() ? "true" : "false");
    check(tx.len() == 2 && !tx.is_full(), "dropped permits give their slots back");
    auto a = rx.try_recv();
    auto b = rx.try_recv();
    check(a && a->report == "first" && b && b->report == "second", "both permit sends received");
  }

  // --- 2. producer threads: reserve, build, send --------------------------------
  {
    std::vector<std::jthread> producers;
    for (int id = 0; id < steady_producers; ++id) {
      producers.emplace_back([sender = tx, id] {
        for (int seq = 0; seq < jobs_each; ++seq) {
          auto p = sender.reserve();  // waits while the channel is full: backpressure
          if (!p) return;             // the receiver is gone or closed
          job j{id, seq, build_report(id, seq)};  // the slot is held meanwhile
          std::move(*p).send(std::move(j));       // never waits, never fails
        }
      });
    }
    producers.emplace_back([sender = tx] {
      for (int seq = 0; seq < jobs_each; ++seq) {
        auto p = sender.reserve();
        if (!p) return;
        std::string report = build_report(picky, seq);
        if (seq % 2 == 1) continue;  // nothing worth sending after all: `p` is
                                     // destroyed unused and its slot goes back
        job j{picky, seq, std::move(report)};
        std::move(*p).send(std::move(j));
      }
    });

    // The consumer (this thread) is slower than the four producers together,
    // so the channel fills and their reserve() calls wait: backpressure. It
    // still holds `tx`, so it counts messages instead of waiting for the
    // disconnection.
    constexpr int expected = steady_producers * jobs_each + jobs_each / 2;
    std::array<int, 4> received{};
    std::array<int, 4> last_seq{-1, -1, -1, -1};
    bool in_order = true;
    for (int n = 0; n < expected; ++n) {
      auto j = rx.recv_timeout(std::chrono::seconds(10));
      if (!j) {
        rx.close();  // ends the producers' reserve() waits, so they can be joined
        return fail("the consumer waited 10 s for a job");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(300));  // a slow consumer
      auto who = static_cast<std::size_t>(j->producer);
      ++received.at(who);
      in_order = in_order && j->seq > last_seq.at(who) &&
                 j->report == report_text(j->producer, j->seq);
      last_seq.at(who) = j->seq;
    }
    producers.clear();  // joins them: every permit is gone now

    std::printf("consumer: %d jobs: %d, %d, %d from the steady producers, %d from the picky one\n",
                expected, received[0], received[1], received[2], received[picky]);
    check(received[0] == jobs_each && received[1] == jobs_each && received[2] == jobs_each &&
              received[picky] == jobs_each / 2,
          "job counts");
    check(in_order, "each producer's jobs arrive in order, intact");
    check(rx.is_empty(), "nothing left over");

    // No slot leaked: exactly 4 reservations fit again.
    std::vector<sluice::permit<job>> all;
    while (auto p = tx.try_reserve()) all.push_back(std::move(*p));
    std::printf("after the producers: %zu slots free again\n", all.size());
    check(all.size() == 4, "the dropped permits' slots came back");
  }

  // --- 3. a coroutine: co_await tx.async_reserve() ------------------------------
  {
    for (int i = 0; i < 4; ++i) tx.send(job{-1, i, "filler"}).value();  // full
    auto [done_tx, done_rx] = sluice::oneshot<bool>();
    reserve_then_send(tx, std::this_thread::get_id(), std::move(done_tx));  // suspends
    bool consumer_ok = true;
    std::jthread consumer([&rx, &consumer_ok] {  // the 4 fillers, then the coroutine's job
      for (int i = 0; i < 5; ++i) {
        auto j = rx.recv_timeout(std::chrono::seconds(10));  // the first makes room
        consumer_ok = consumer_ok && j && (j->producer == -1) == (i < 4);
      }
    });
    auto resumed_elsewhere = done_rx.recv_timeout(std::chrono::seconds(10));
    consumer.join();
    check(resumed_elsewhere.has_value(), "the coroutine finished");
    check(resumed_elsewhere.value_or(false), "it sent, resumed on the consumer's thread");
    check(consumer_ok && rx.is_empty(), "the consumer took the 4 fillers, then job 99");
    std::printf("coroutine: %s\n", resumed_elsewhere.value_or(false)
                                       ? "resumed when the consumer made room, and sent"
                                       : "failed");
  }

  // --- 4. rendezvous: the permit reserves the hand-off -----------------------------
  // sync_channel(0) has no slot: a permit is granted only while a receiver
  // is waiting (and no other permit is out), and its send hands the value
  // to that receiver (had it stopped waiting, the value would wait in the
  // channel for the next receive: a permit's send still never waits).
  {
    auto [rv_tx, rv_rx] = sluice::sync_channel<job>(0);
    auto none = rv_tx.try_reserve();
    if (none || none.error() != sluice::try_reserve_error::full) {
      return fail("no receiver waiting, no permit");
    }
    std::printf("rendezvous, no receiver waiting: try_reserve: %s\n",
                sluice::to_string(none.error()).c_str());

    std::string got;
    std::jthread taker([&got, in = std::move(rv_rx)]() mutable {
      if (auto j = in.recv()) got = std::move(j->report);
    });
    auto p = rv_tx.reserve();  // waits until `taker` is inside recv()
    if (!p) return fail("rendezvous reserve");
    job j{7, 0, build_report(7, 0)};
    std::move(*p).send(std::move(j));
    taker.join();
    std::printf("rendezvous: permit granted to a waiting receiver, which got \"%s\"\n",
                got.c_str());
    check(got == "report 7.0", "the rendezvous hand-off");
  }

  std::puts(failures == 0 ? "all checks passed" : "some checks FAILED");
  return failures == 0 ? 0 : 1;
}
