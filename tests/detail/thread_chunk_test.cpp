// A thread's own chunk in front of the process's chunk cache: a page-sized
// chunk a thread gives back while it keeps none is the next one it takes,
// zeroed where its giver wrote; anything else goes to the process's cache, and so
// does the thread's chunk when the thread exits, even if a channel is
// destroyed later in that exit.
#include <sluice/detail/memory/chunk_cache.hpp>
#include <sluice/detail/memory/thread_chunk.hpp>
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <thread>
#include <utility>

// tests/detail/thread_exit_hook.cpp
void run_at_thread_exit(std::function<void()> f);

namespace {

using sluice::detail::chunk_cache;
using sluice::detail::process_chunk_cache;
using sluice::detail::thread_chunk;
constexpr chunk_cache::source heap = chunk_cache::source::heap;
constexpr std::size_t page = thread_chunk::max_bytes;

void* heap_chunk(std::size_t bytes) {
  return ::operator new(bytes, std::align_val_t{chunk_cache::heap_alignment});
}

// Empties this thread's chunk and the process's cache of `bytes`-byte heap
// chunks, so a test starts from nothing kept.
void empty_everything(std::size_t bytes) {
  sluice::detail::give_back_thread_chunk();
  while (void* p = process_chunk_cache.take(bytes, heap)) chunk_cache::free_chunk(p, bytes, heap);
}

static_assert(thread_chunk::enabled, "this test runs with the default cache ceiling");

TEST(thread_chunk, a_page_given_back_is_the_next_taken_zeroed_where_written) {
  empty_everything(page);
  auto* p = static_cast<unsigned char*>(heap_chunk(page));
  std::memset(p, 0, page);
  std::memset(p, 0xab, 100);  // its giver wrote 100 bytes
  sluice::detail::put_chunk(p, page, heap, 100);
  EXPECT_EQ(process_chunk_cache.held(), 0u);  // kept by this thread, not the process
  auto* q = static_cast<unsigned char*>(sluice::detail::take_zeroed_chunk(page, heap));
  ASSERT_EQ(q, p);
  EXPECT_TRUE(std::all_of(q, q + page, [](unsigned char b) { return b == 0; }));
  EXPECT_EQ(sluice::detail::take_zeroed_chunk(page, heap), nullptr);  // nothing left anywhere
  chunk_cache::free_chunk(q, page, heap);
}

TEST(thread_chunk, a_second_chunk_or_a_larger_one_goes_to_the_process_cache) {
  empty_everything(page);
  empty_everything(2 * page);
  void* first = heap_chunk(page);
  void* second = heap_chunk(page);
  void* larger = heap_chunk(2 * page);
  sluice::detail::put_chunk(first, page, heap);
  sluice::detail::put_chunk(second, page, heap);
  sluice::detail::put_chunk(larger, 2 * page, heap);
  EXPECT_EQ(process_chunk_cache.held(), 3 * page);  // the second and the larger one
  // A take of another size or source passes the thread's chunk by.
  EXPECT_EQ(sluice::detail::take_zeroed_chunk(page, chunk_cache::source::mapped), nullptr);
  void* big = sluice::detail::take_zeroed_chunk(2 * page, heap);
  EXPECT_EQ(big, larger);
  // The thread's own chunk first, then the process's.
  EXPECT_EQ(sluice::detail::take_zeroed_chunk(page, heap), first);
  EXPECT_EQ(sluice::detail::take_zeroed_chunk(page, heap), second);
  EXPECT_EQ(process_chunk_cache.held(), 0u);
  chunk_cache::free_chunk(first, page, heap);
  chunk_cache::free_chunk(second, page, heap);
  chunk_cache::free_chunk(big, 2 * page, heap);
}

TEST(thread_chunk, an_exiting_thread_gives_its_chunk_to_the_process_cache) {
  empty_everything(page);
  void* kept = nullptr;
  std::thread([&] {
    kept = heap_chunk(page);
    sluice::detail::put_chunk(kept, page, heap);
    EXPECT_EQ(process_chunk_cache.held(), 0u);
  }).join();
  EXPECT_EQ(process_chunk_cache.held(), page);
  void* p = process_chunk_cache.take(page, heap);
  EXPECT_EQ(p, kept);
  chunk_cache::free_chunk(p, page, heap);
}

// A channel that a thread_local (made before the thread first kept a
// chunk) destroys after the thread's chunk was given back: its segment goes
// to the process's cache (nothing is kept by a thread that is ending,
// nothing leaks: AddressSanitizer's leak check runs on this too).
TEST(thread_chunk, a_channel_destroyed_late_in_a_thread_exit_goes_to_the_process_cache) {
  empty_everything(page);
  std::thread([] {
    auto late = std::make_shared<std::pair<sluice::sync_sender<std::size_t>,
                                           sluice::receiver<std::size_t>>>(
        sluice::sync_channel<std::size_t>(1024));
    // The last owner of `late`, registered before the thread keeps a chunk:
    // when it runs, the thread's chunk was given back already (else this
    // test would not test the late keep).
    run_at_thread_exit([late] { EXPECT_EQ(process_chunk_cache.held(), page); });
    {
      auto [tx, rx] = sluice::sync_channel<std::size_t>(1024);
      ASSERT_TRUE(tx.try_send(1).has_value());  // a 4 KiB segment, kept by this thread when dropped
    }
    auto& [tx, rx] = *late;
    ASSERT_TRUE(tx.try_send(2).has_value());  // takes the kept segment back
    EXPECT_EQ(*rx.try_recv(), 2u);
    {
      auto [tx2, rx2] = sluice::sync_channel<std::size_t>(1024);
      ASSERT_TRUE(tx2.try_send(3).has_value());  // a fresh segment, kept when dropped
    }
    late.reset();
  }).join();
  // The exit gave back the kept segment, then the hook's channel its own.
  EXPECT_EQ(process_chunk_cache.held(), 2 * page);
  empty_everything(page);
}

// A bounded(1024) channel of 8-byte messages has four 4 KiB segments, its
// table in the channel. Made by a thread that keeps a segment of that size,
// it takes it at once as its first segment (the thread keeps nothing then),
// cleared where the last channel wrote: here the whole segment, a full ring
// of messages, so a stamp left over would lose or invent a message.
TEST(thread_chunk, a_new_bounded_channel_takes_the_kept_segment_as_its_first) {
  empty_everything(page);
  constexpr std::size_t bound = 1024;
  for (int round = 0; round < 3; ++round) {
    auto [tx, rx] = sluice::sync_channel<std::size_t>(bound);
    if (round > 0) {
      EXPECT_EQ(sluice::detail::take_thread_chunk_zeroed(page, heap), nullptr) << round;
    }
    for (std::size_t lap = 0; lap < 2; ++lap) {
      for (std::size_t i = 0; i < bound; ++i) ASSERT_TRUE(tx.try_send(lap * bound + i).has_value());
      EXPECT_FALSE(tx.try_send(0).has_value());  // full: every slot was empty, none more
      for (std::size_t i = 0; i < bound; ++i) ASSERT_EQ(rx.try_recv().value(), lap * bound + i);
      EXPECT_FALSE(rx.try_recv().has_value());
    }
  }  // the last channel's first segment goes back to this thread
  void* kept = sluice::detail::take_thread_chunk_zeroed(page, heap);
  EXPECT_NE(kept, nullptr);
  if (kept != nullptr) sluice::detail::put_chunk(kept, page, heap, 0);
  empty_everything(page);
}

}  // namespace
