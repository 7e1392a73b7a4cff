// sluice/detail/memory/thread_chunk.hpp - one page-sized chunk per thread, in
// front of the process's chunk cache.
//
// Why: a thread that makes a channel, uses it briefly and drops it (a reply
// channel per request) gives a bounded segment back to the process's cache
// and takes it again for its next channel: two rounds of the cache's lock,
// a read-modify-write each, a sixth of the time of making, using once and
// dropping a bounded(1024) channel. A page-sized chunk a thread gives back
// while it keeps none stays with that thread instead (others go to the
// cache), and its next channel that asks for that size takes it without a
// lock.
//
// What is kept: at most one chunk of at most `max_bytes` (4 KiB) per
// thread, beyond the cache's ceiling, and none when the ceiling is below a
// page (SLUICE_CHUNK_CACHE_BYTES 0 keeps nothing anywhere). A thread's chunk
// goes to the process's cache when the thread exits (thread_chunk_exit; a
// channel destroyed later in the thread's exit keeps nothing here), or when
// a test asks (give_back_thread_chunk()). One exception: a thread whose first
// keep comes after its thread_local destructors ran (a static channel
// destroyed by the main thread during exit) keeps that chunk until the
// process ends.
//
// Invariants:
// - The chunk is touched only by its thread (thread_local); it was given
//   by a channel's destructor, which every other user of the channel
//   happened before (the handles' count), so no other thread's write to it
//   is pending.
// - It obeys the cache's contract: raw memory of exactly `bytes` bytes from
//   `from`, zero past its `dirty` prefix; take_zeroed_chunk() clears that
//   prefix. Under AddressSanitizer it is poisoned while kept.
#pragma once

#include <sluice/detail/memory/chunk_cache.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace sluice::detail {

// A thread's chunk. Trivially destructible, so that it stays usable until
// the thread ends: a channel may be destroyed by another thread_local's
// destructor after thread_chunk_exit has run (then nothing is kept).
class thread_chunk {
 public:
  static constexpr std::size_t max_bytes = 4096;
  static constexpr bool enabled = chunk_cache::ceiling >= max_bytes;

  // The kept chunk if it is `bytes` from `from` (its dirty prefix in
  // `dirty`), else null.
  void* take(std::size_t bytes, chunk_cache::source from, std::size_t& dirty) noexcept {
    if (p_ == nullptr || bytes_ != bytes || from_ != from) return nullptr;
    void* p = p_;
    p_ = nullptr;
    dirty = dirty_;
    unpoison_chunk(p, bytes);
    return p;
  }

  // Keeps `p` if nothing is kept, it is small enough and the thread is not
  // exiting; false otherwise.
  bool keep(void* p, std::size_t bytes, chunk_cache::source from, std::size_t dirty) noexcept;

  // The kept chunk, if any, to the process's cache.
  void give_back() noexcept {
    if (p_ == nullptr) return;
    void* p = p_;
    p_ = nullptr;
    unpoison_chunk(p, bytes_);
    process_chunk_cache.put(p, bytes_, from_, dirty_);
  }

  // From now on nothing is kept (the thread is exiting).
  void close() noexcept {
    give_back();
    closed_ = true;
  }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
  std::size_t dirty_ = 0;
  chunk_cache::source from_ = chunk_cache::source::heap;
  bool closed_ = false;
};

inline constinit thread_local thread_chunk this_thread_chunk{};

// Closes the thread's chunk when the thread exits. Constructed (its
// destructor registered) by the first keep() on each thread.
struct thread_chunk_exit {
  thread_chunk_exit() noexcept {}  // NOLINT(modernize-use-equals-default): registers the exit
  thread_chunk_exit(const thread_chunk_exit&) = delete;
  thread_chunk_exit& operator=(const thread_chunk_exit&) = delete;
  ~thread_chunk_exit() { this_thread_chunk.close(); }
};

inline thread_local thread_chunk_exit this_thread_chunk_exit;

inline bool thread_chunk::keep(void* p, std::size_t bytes, chunk_cache::source from,
                               std::size_t dirty) noexcept {
  if (p_ != nullptr || closed_ || bytes > max_bytes) return false;
  static_cast<void>(&this_thread_chunk_exit);  // first use: constructed, exit registered
  p_ = p;
  bytes_ = bytes;
  from_ = from;
  dirty_ = std::min(dirty, bytes);
  poison_chunk(p, bytes);
  return true;
}

// The calling thread's chunk, all zero, if it is `bytes` from `from`; else
// null (the process's cache is not asked).
inline void* take_thread_chunk_zeroed(std::size_t bytes, chunk_cache::source from) noexcept {
  if constexpr (thread_chunk::enabled) {
    std::size_t dirty = 0;
    if (void* p = this_thread_chunk.take(bytes, from, dirty)) {
      // A short prefix (a channel that held a message or two) is cleared
      // as one whole line, a store the compiler inlines, not a call.
      if (dirty <= 64 && bytes >= 64) {
        std::memset(p, 0, 64);
      } else {
        std::memset(p, 0, dirty);
      }
      return p;
    }
  }
  return nullptr;
}

// chunk_cache::take_zeroed(), the calling thread's chunk first.
inline void* take_zeroed_chunk(std::size_t bytes, chunk_cache::source from) noexcept {
  if (void* p = take_thread_chunk_zeroed(bytes, from)) return p;
  return process_chunk_cache.take_zeroed(bytes, from);
}

// chunk_cache::put(), kept by the calling thread when it keeps nothing yet.
inline void put_chunk(void* p, std::size_t bytes, chunk_cache::source from,
                      std::size_t dirty = ~std::size_t{0}) noexcept {
  if constexpr (thread_chunk::enabled) {
    if (this_thread_chunk.keep(p, bytes, from, dirty)) return;
  }
  process_chunk_cache.put(p, bytes, from, dirty);
}

// The calling thread's chunk, if any, to the process's cache (tests that
// count what the cache holds, or empty it).
inline void give_back_thread_chunk() noexcept {
  if constexpr (thread_chunk::enabled) this_thread_chunk.give_back();
}

}  // namespace sluice::detail
