// sluice/detail/memory/memory_limit.hpp - whether a channel's storage could ever be
// allocated, decided when the channel is made.
//
// Bounded channels allocate their slots lazily, so an absurd bound would
// otherwise be accepted and fail much later, in the middle of a send. The
// contract is to refuse it up front: more bytes than the machine's RAM and
// swap together can never be had. Asking costs a system call, so bounds whose
// slots take at most 16 MiB are not asked about (creating small channels is
// frequent and must be cheap).
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#  include <sys/sysinfo.h>
#endif

namespace sluice::detail {

// Total RAM plus swap in bytes, or SIZE_MAX when it cannot be told.
inline std::size_t memory_ceiling() noexcept {
#if defined(__linux__)
  struct sysinfo info{};
  if (::sysinfo(&info) != 0) return SIZE_MAX;
  const auto unit = static_cast<std::uint64_t>(info.mem_unit == 0 ? 1 : info.mem_unit);
  const std::uint64_t total =
      (static_cast<std::uint64_t>(info.totalram) + static_cast<std::uint64_t>(info.totalswap)) *
      unit;
  return total > SIZE_MAX ? SIZE_MAX : static_cast<std::size_t>(total);
#else
  return SIZE_MAX;
#endif
}

// Whether `bytes` could ever be allocated. Asks the system (a system call)
// only for sizes no machine is assumed to lack: a channel with a small
// bound is made without one, and its memory is still allocated only as used.
inline bool could_ever_allocate(std::size_t bytes) noexcept {
  constexpr std::size_t always_assumed = std::size_t{16} << 20;  // 16 MiB
  return bytes <= always_assumed || bytes <= memory_ceiling();
}

}  // namespace sluice::detail
