// coro_task: the little coroutine machinery the async tests need.
//
// - task: a coroutine a test starts and forgets. Lazy: it runs once a
//   task_group starts it; it destroys its own frame when it finishes (so
//   every local, every message it still holds, is gone by then), then tells
//   its group. Report failures inside one with EXPECT_* (ASSERT_* returns,
//   which a coroutine cannot); an exception escaping it aborts the test.
// - task_group: starts tasks (on the calling thread, or on a thread_pool)
//   and waits until all of them have finished; a group that never finishes
//   aborts the process with a message instead of hanging until CTest's
//   timeout (a suspended coroutine cannot be abandoned safely: it may sit in
//   a channel's wait queue). Declare it after everything its tasks use, so
//   that it is destroyed (joined) first.
// - thread_pool: threads resuming posted coroutine handles; scheduler() is
//   what sluice::resume_on takes, `co_await pool.schedule()` moves a
//   coroutine onto the pool.
// - manual_scheduler: a queue of handles the test resumes itself, to see
//   exactly when (and whether) an operation hands its coroutine over.
// - observed: wraps an awaitable (an lvalue) and records whether
//   await_ready said "ready" and whether await_suspend was reached.
// - run_with_stack: runs a function on a new thread with a stack of a
//   given size (the bounded-stack tests).
// - sanitized / scaled: smaller counts under ThreadSanitizer and
//   AddressSanitizer, which run the same code many times slower.
#pragma once

#include "scale.hpp"

#include <sluice/config.hpp>

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace sluice_test {

// --- sizes ---------------------------------------------------------------------------

#if SLUICE_TSAN || defined(__SANITIZE_ADDRESS__)
inline constexpr bool sanitized = true;
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
inline constexpr bool sanitized = true;
#  else
inline constexpr bool sanitized = false;
#  endif
#else
inline constexpr bool sanitized = false;
#endif

// `plain` in an ordinary build, `under_sanitizer` under a sanitizer; either
// times SLUICE_STRESS_SCALE.
inline std::int64_t scaled(std::int64_t plain, std::int64_t under_sanitizer) {
  return (sanitized ? under_sanitizer : plain) * stress_scale();
}

// How long a group waits for its tasks before it calls them hung.
inline constexpr std::chrono::seconds hang_limit{60};

class task_group;

// --- task ----------------------------------------------------------------------------

class task {
 public:
  struct promise_type {
    task_group* group = nullptr;

    task get_return_object() noexcept {
      return task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    static std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      static bool await_ready() noexcept { return false; }
      static void await_suspend(std::coroutine_handle<promise_type> h) noexcept;
      static void await_resume() noexcept {}
    };
    static final_awaiter final_suspend() noexcept { return {}; }
    static void return_void() noexcept {}
    [[noreturn]] static void unhandled_exception() noexcept {
      std::fputs("FATAL: an exception escaped a test coroutine\n", stderr);
      std::abort();
    }
  };
  using handle = std::coroutine_handle<promise_type>;

  task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  task& operator=(task&&) = delete;
  ~task() {
    if (h_) h_.destroy();  // never started: nothing of it is anywhere else
  }

 private:
  friend class task_group;
  explicit task(handle h) noexcept : h_(h) {}
  handle h_;
};

// --- thread_pool ---------------------------------------------------------------------

class thread_pool {
 public:
  // What sluice::resume_on takes: posts the handle to the pool.
  struct scheduler_ref {
    thread_pool* pool;
    void operator()(std::coroutine_handle<> h) const noexcept { pool->post(h); }
  };

  // `co_await pool.schedule()`: continue on one of the pool's threads.
  class schedule_awaiter {
   public:
    explicit schedule_awaiter(thread_pool& p) noexcept : pool_(&p) {}
    static bool await_ready() noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { pool_->post(h); }
    static void await_resume() noexcept {}

   private:
    thread_pool* pool_;
  };

  explicit thread_pool(unsigned threads) {
    threads_.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  // Runs everything still queued, then joins.
  ~thread_pool() {
    {
      std::lock_guard g(m_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void post(std::coroutine_handle<> h) {
    {
      std::lock_guard g(m_);
      queue_.push_back(h);
    }
    cv_.notify_one();
  }

  [[nodiscard]] scheduler_ref scheduler() noexcept { return {this}; }
  [[nodiscard]] schedule_awaiter schedule() noexcept { return schedule_awaiter(*this); }

  // Whether the calling thread is one of this pool's.
  [[nodiscard]] bool runs_here() const noexcept { return current() == this; }
  // How many handles the pool has resumed so far.
  [[nodiscard]] std::uint64_t resumed() const {
    std::lock_guard g(m_);
    return resumed_;
  }

 private:
  static const thread_pool*& current() noexcept {
    static thread_local const thread_pool* pool = nullptr;
    return pool;
  }

  void run() {
    current() = this;
    for (;;) {
      std::coroutine_handle<> h;
      {
        std::unique_lock l(m_);
        cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        h = queue_.front();
        queue_.pop_front();
        ++resumed_;
      }
      h.resume();
    }
  }

  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::coroutine_handle<>> queue_;
  std::uint64_t resumed_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// --- manual_scheduler ----------------------------------------------------------------

class manual_scheduler {
 public:
  struct scheduler_ref {
    manual_scheduler* self;
    void operator()(std::coroutine_handle<> h) const noexcept { self->post(h); }
  };

  manual_scheduler() = default;
  manual_scheduler(const manual_scheduler&) = delete;
  manual_scheduler& operator=(const manual_scheduler&) = delete;

  [[nodiscard]] scheduler_ref scheduler() noexcept { return {this}; }

  void post(std::coroutine_handle<> h) {
    std::lock_guard g(m_);
    queue_.push_back(h);
    ++posted_;
  }
  // Handles queued and not resumed yet.
  [[nodiscard]] std::size_t queued() const {
    std::lock_guard g(m_);
    return queue_.size();
  }
  // Handles ever posted.
  [[nodiscard]] std::size_t posted() const {
    std::lock_guard g(m_);
    return posted_;
  }
  // Resumes, on the calling thread, everything queued, including what those
  // resumptions queue; returns how many it resumed.
  std::size_t run() {
    std::size_t n = 0;
    for (;;) {
      std::coroutine_handle<> h;
      {
        std::lock_guard g(m_);
        if (queue_.empty()) return n;
        h = queue_.front();
        queue_.pop_front();
      }
      h.resume();
      ++n;
    }
  }

 private:
  mutable std::mutex m_;
  std::deque<std::coroutine_handle<>> queue_;
  std::size_t posted_ = 0;
};

// --- task_group ----------------------------------------------------------------------

class task_group {
 public:
  task_group() = default;
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;
  ~task_group() { join(); }

  // Starts `t` on the calling thread: it runs until it first suspends or
  // finishes, then start() returns.
  void start(task t) { adopt(std::move(t)).resume(); }
  // Starts `t` on one of `pool`'s threads.
  void start_on(thread_pool& pool, task t) { pool.post(adopt(std::move(t))); }

  [[nodiscard]] std::int64_t started() const {
    std::lock_guard g(m_);
    return started_;
  }
  [[nodiscard]] std::int64_t finished() const {
    std::lock_guard g(m_);
    return finished_;
  }
  [[nodiscard]] bool all_finished() const {
    std::lock_guard g(m_);
    return finished_ == started_;
  }

  // Waits until every task started so far has finished; false if `limit`
  // passed first.
  [[nodiscard]] bool wait_for(std::chrono::nanoseconds limit) {
    std::unique_lock l(m_);
    return cv_.wait_for(l, limit, [&] { return finished_ == started_; });
  }

  // Waits for every task; aborts (a hung coroutine) after hang_limit.
  void join() {
    if (wait_for(hang_limit)) return;
    std::fprintf(stderr,
                 "FATAL: %lld of %lld test coroutines still unfinished after %lld s; a suspended "
                 "coroutine cannot be abandoned (it may sit in a channel's wait queue): aborting\n",
                 static_cast<long long>(started() - finished()),
                 static_cast<long long>(started()),
                 static_cast<long long>(hang_limit.count()));
    std::fflush(nullptr);
    std::abort();
  }

 private:
  friend struct task::promise_type::final_awaiter;

  std::coroutine_handle<> adopt(task t) {
    task::handle h = std::exchange(t.h_, {});
    h.promise().group = this;
    std::lock_guard g(m_);
    ++started_;
    return h;
  }

  void on_finished() {
    std::lock_guard g(m_);
    ++finished_;
    if (finished_ == started_) cv_.notify_all();
  }

  mutable std::mutex m_;
  std::condition_variable cv_;
  std::int64_t started_ = 0;
  std::int64_t finished_ = 0;
};

// The frame goes first (its locals are destroyed), then the group hears of
// it: once a group has seen every task finish, nothing of them is left.
inline void task::promise_type::final_awaiter::await_suspend(
    std::coroutine_handle<promise_type> h) noexcept {
  task_group* group = h.promise().group;
  h.destroy();
  if (group != nullptr) group->on_finished();
}

// --- observed ------------------------------------------------------------------------

// `auto op = rx.async_recv(); observed seen(op); auto r = co_await seen;`
// then seen.was_ready() (await_ready said yes: no suspension at all) and
// seen.reached_suspend() (await_suspend ran; it may still have resumed at
// once by returning false).
template <class Awaitable>
class observed {
 public:
  explicit observed(Awaitable& inner) noexcept : inner_(&inner) {}

  bool await_ready() {
    ready_ = inner_->await_ready();
    return ready_;
  }
  template <class Promise>
  auto await_suspend(std::coroutine_handle<Promise> h) {
    suspended_ = true;
    return inner_->await_suspend(h);
  }
  decltype(auto) await_resume() { return inner_->await_resume(); }

  [[nodiscard]] bool was_ready() const noexcept { return ready_; }
  [[nodiscard]] bool reached_suspend() const noexcept { return suspended_; }

 private:
  Awaitable* inner_;
  bool ready_ = false;
  bool suspended_ = false;
};

// --- run_with_stack ------------------------------------------------------------------

// Runs f() on a new thread whose stack is `bytes` long, and joins it.
// Returns false if the thread could not be created.
inline bool run_with_stack(std::size_t bytes, std::function<void()> f) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  if (pthread_attr_setstacksize(&attr, bytes) != 0) {
    pthread_attr_destroy(&attr);
    return false;
  }
  pthread_t thread;
  auto entry = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  const int rc = pthread_create(&thread, &attr, entry, &f);
  pthread_attr_destroy(&attr);
  if (rc != 0) return false;
  return pthread_join(thread, nullptr) == 0;
}

}  // namespace sluice_test
