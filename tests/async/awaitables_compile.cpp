// Every awaitable form of every handle, instantiated once with the
// project's warning flags (see expect_clean_compile.cmake): a user building
// with -Wshadow -Wconversion -Werror must be able to co_await each of them.
// Compiled only, never run.
#include <sluice/sluice.hpp>

#include <coroutine>
#include <exception>
#include <stop_token>
#include <utility>

namespace {

struct detached {
  struct promise_type {
    static detached get_return_object() noexcept { return {}; }
    static std::suspend_never initial_suspend() noexcept { return {}; }
    static std::suspend_never final_suspend() noexcept { return {}; }
    static void return_void() noexcept {}
    [[noreturn]] static void unhandled_exception() noexcept { std::terminate(); }
  };
};

struct inline_scheduler {
  void operator()(std::coroutine_handle<> h) const noexcept { h.resume(); }
};

struct message {
  explicit message(int v) noexcept : value(v) {}
  int value;
};

template <class Tx>
detached sends(Tx tx, std::stop_token stop) {
  const auto where = sluice::resume_on(inline_scheduler{});
  auto a = co_await tx.async_send(message(1));
  (void)a;
  if constexpr (requires { tx.async_send(message(2), stop); }) {
    auto b = co_await tx.async_send(message(2), stop);
    auto c = co_await tx.async_send(message(3), where);
    auto d = co_await tx.async_send(message(4), where, stop);
    (void)b;
    (void)c;
    (void)d;
  }
  co_await tx.async_closed();
  const bool closed = co_await tx.async_closed(stop);
  co_await tx.async_closed(where);
  const bool closed_too = co_await tx.async_closed(where, stop);
  (void)closed;
  (void)closed_too;
}

template <class Rx>
detached receives(Rx& rx, std::stop_token stop) {
  const auto where = sluice::resume_on(inline_scheduler{});
  auto a = co_await rx.async_recv();
  auto b = co_await rx.async_recv(stop);
  auto c = co_await rx.async_recv(where);
  auto d = co_await rx.async_recv(where, stop);
  (void)a;
  (void)b;
  (void)c;
  (void)d;
}

}  // namespace

int main() {
  std::stop_source stop;
  stop.request_stop();
  auto [utx, urx] = sluice::channel<message>();
  auto [stx, srx] = sluice::sync_channel<message>(1);
  urx.close();
  srx.close();
  sends(utx, stop.get_token());
  sends(stx, stop.get_token());
  receives(urx, stop.get_token());
  receives(srx, stop.get_token());
}
