// sluice/detail/memory/cache_padded.hpp - a value alone on its cache line(s).
//
// Invariant: two cache_padded objects never share a destructive-interference
// unit, so a field written by senders never slows a field read by the receiver.
#pragma once

#include <sluice/config.hpp>

namespace sluice::detail {

template <class T>
struct alignas(SLUICE_CACHE_LINE) cache_padded {
  T value;
};

}  // namespace sluice::detail
