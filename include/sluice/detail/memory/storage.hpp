// sluice/detail/memory/storage.hpp - raw storage for one message, constructed and
// destroyed explicitly by the channel that owns it.
//
// Invariant: the owner tracks whether a value is live (a slot stamp, a
// written flag, a packet's ready flag); storage itself never destroys on its
// own, so T needs no default constructor and no assignment.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace sluice::detail {

template <class T>
class storage {
 public:
  storage() noexcept {}  // NOLINT: leaves the bytes uninitialised on purpose
  storage(const storage&) = delete;
  storage& operator=(const storage&) = delete;

  void construct(T&& value) noexcept { ::new (static_cast<void*>(bytes_)) T(std::move(value)); }

  // Moves the live value out and ends its lifetime.
  T take() noexcept {
    T* p = get();
    T value(std::move(*p));
    std::destroy_at(p);
    return value;
  }

  void destroy() noexcept { std::destroy_at(get()); }

  // The live value. Precondition: constructed and not yet taken.
  T* get() noexcept { return std::launder(reinterpret_cast<T*>(bytes_)); }

 private:
  alignas(T) std::byte bytes_[sizeof(T)];
};

}  // namespace sluice::detail
