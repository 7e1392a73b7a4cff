// sluice/resume_on.hpp - where a coroutine resumes when the operation it
// awaits completes later (on another thread, from another coroutine).
//
// By default it resumes inline: on the thread that completed the operation
// (a sender's thread, the coroutine that received), as soon as that
// thread is done with the channel, and through a per-thread queue when that
// thread is itself resuming a coroutine this way, so stacks stay bounded.
// resume_on(s) hands the coroutine to `s` instead: s(handle) must arrange
// for handle.resume() to run later, on a thread of the scheduler's choosing
// (an Asio executor: `[ex](std::coroutine_handle<> h) { asio::defer(ex, h); }`,
// defer rather than post so that it runs next on the same thread when that
// thread runs the executor;
// a thread pool's submit).
//
// Invariant: a coroutine is resumed exactly once per suspension, and never
// while any channel lock is held.
#pragma once

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

namespace sluice {

/// Something that can run a suspended coroutine later: s(handle) arranges
/// for handle.resume() to be called once. It must not throw.
template <class S>
concept scheduler = std::invocable<S&, std::coroutine_handle<>>;

/// The scheduling choice passed to an awaitable operation
/// (`co_await rx.async_recv(sluice::resume_on(pool))`).
template <scheduler S>
struct resume_on_t {
  S scheduler;
};

/// resume_on - resume the awaiting coroutine through `s` when the operation
/// completes after suspending (one that completes at once never suspends).
template <class S>
  requires scheduler<std::decay_t<S>>
resume_on_t<std::decay_t<S>> resume_on(S&& s) {
  return {std::forward<S>(s)};
}

namespace detail {
// The default: resume inline on the completing thread (see above).
struct resume_inline {};
}  // namespace detail

}  // namespace sluice
