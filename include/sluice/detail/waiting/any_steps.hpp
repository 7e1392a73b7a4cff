// sluice/detail/waiting/any_steps.hpp - the steps of one of several flavors,
// chosen at run time (a sync_sender is bounded or rendezvous, a receiver any
// of three), so that one awaitable type serves every flavor of a handle.
//
// Invariant: holds exactly one alternative from construction on (emplaced in
// place; steps need not be movable); every step forwards to it.
#pragma once

#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>

#include <utility>
#include <variant>

namespace sluice::detail {

template <class... Steps>
class any_steps {
 public:
  template <class S, class... Args>
  explicit any_steps(std::in_place_type_t<S> which, Args&&... args)
      : v_(which, std::forward<Args>(args)...) {}

  bool attempt() {
    return std::visit([](auto& s) { return s.attempt(); }, v_);
  }
  readiness enlist(wait_entry& e) {
    return std::visit([&](auto& s) { return s.enlist(e); }, v_);
  }
  readiness recheck() {
    return std::visit([](auto& s) { return s.recheck(); }, v_);
  }
  void delist(wait_entry& e) noexcept {
    std::visit([&](auto& s) { s.delist(e); }, v_);
  }
  void completed() noexcept {
    std::visit([](auto& s) { s.completed(); }, v_);
  }
  void relay() noexcept {
    std::visit([](auto& s) { s.relay(); }, v_);
  }
  [[nodiscard]] bool hands_off() const noexcept {
    return std::visit([](const auto& s) { return s.hands_off(); }, v_);
  }
  [[nodiscard]] bool spins() const noexcept {
    return std::visit([](const auto& s) { return s.spins(); }, v_);
  }

  // Flavor-specific outcome queries (sent(), ...), forwarded as is.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), v_);
  }

 private:
  std::variant<Steps...> v_;
};

}  // namespace sluice::detail
