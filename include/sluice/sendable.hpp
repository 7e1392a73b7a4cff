// sluice/sendable.hpp - what a message type must be.
//
// A message moves into the channel and out again without a chance to fail
// half-way: its move constructor must not throw. Types whose move may throw
// are rejected at compile time (wrap them in std::unique_ptr). Move-only,
// non-default-constructible and non-assignable types are fine.
//
// The requirement is checked where a channel is made (channel<T>(),
// sync_channel<T>()), where T is complete; the handle types themselves take
// any T, so a message may carry a handle of its own channel type
// (`struct node { sluice::sender<node> next; };`), which is named while the
// message type is still incomplete.
#pragma once

#include <type_traits>

namespace sluice {
namespace detail {

// Spelled out so that the compiler's diagnostic names the requirement.
template <class T>
concept message_must_be_nothrow_move_constructible_wrap_it_in_std_unique_ptr =
    std::is_nothrow_move_constructible_v<T>;

}  // namespace detail

/// A type a sluice channel can carry: a non-const, non-volatile object type
/// that is nothrow move constructible and nothrow destructible.
template <class T>
concept sendable =
    std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> &&
    !std::is_array_v<T> && std::is_nothrow_destructible_v<T> &&
    detail::message_must_be_nothrow_move_constructible_wrap_it_in_std_unique_ptr<T>;

}  // namespace sluice
