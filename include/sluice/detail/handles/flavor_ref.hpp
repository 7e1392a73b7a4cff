// sluice/detail/handles/flavor_ref.hpp - a handle's reference to its channel: one
// pointer to the shared counter of one of a closed set of flavors.
//
// Invariants: either empty (null), or pointing at a live counter<Flavor> whose
// index in `Flavors...` is `index_`; visit() is a switch over that closed set,
// with no virtual call (a single-flavor ref has no branch at all).
#pragma once

#include <sluice/detail/handles/counter.hpp>

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <utility>

namespace sluice::detail {

template <class... Flavors>
class flavor_ref {
 public:
  flavor_ref() noexcept = default;

  template <class Flavor>
  explicit flavor_ref(counter<Flavor>* c) noexcept : ptr_(c), index_(index_of<Flavor>()) {}

  [[nodiscard]] bool empty() const noexcept { return ptr_ == nullptr; }
  [[nodiscard]] const void* address() const noexcept { return ptr_; }

  // Calls f(counter<Flavor>&) for the flavor held. Precondition: !empty().
  template <class F>
  decltype(auto) visit(F&& f) const {
    return visit_from<0>(std::forward<F>(f));
  }

  // Moves the reference out, leaving this one empty.
  flavor_ref take() noexcept { return std::exchange(*this, flavor_ref{}); }

 private:
  template <class Flavor, std::size_t I = 0>
  static constexpr std::uint8_t index_of() noexcept {
    static_assert(I < sizeof...(Flavors), "flavor not in this handle's set");
    if constexpr (std::is_same_v<Flavor, std::tuple_element_t<I, std::tuple<Flavors...>>>) {
      return static_cast<std::uint8_t>(I);
    } else {
      return index_of<Flavor, I + 1>();
    }
  }

  template <std::size_t I, class F>
  decltype(auto) visit_from(F&& f) const {
    using flavor = std::tuple_element_t<I, std::tuple<Flavors...>>;
    if constexpr (I + 1 == sizeof...(Flavors)) {
      return std::forward<F>(f)(*static_cast<counter<flavor>*>(ptr_));
    } else {
      if (index_ == I) return std::forward<F>(f)(*static_cast<counter<flavor>*>(ptr_));
      return visit_from<I + 1>(std::forward<F>(f));
    }
  }

  void* ptr_ = nullptr;
  std::uint8_t index_ = 0;
};

}  // namespace sluice::detail
