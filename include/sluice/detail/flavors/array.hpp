// sluice/detail/flavors/array.hpp - the bounded flavor (bound >= 1): a ring of slots
// with per-slot sequence stamps.
//
// Algorithm: Dmitry Vyukov's bounded MPMC queue as crossbeam-channel's array
// flavor lays it out, narrowed to one consumer, with three changes:
// - Stamps are stored relative to their slot index (stamp - index), so a
//   zero-initialised slot is a valid empty slot of lap 0.
// - The ring is split into segments allocated on first use. A channel with a
//   large bound therefore costs memory for the slots it has actually used
//   (its high-water mark), not for its bound: an idle bounded(1024) channel
//   holds a few pointers, not 1024 slots. Small bounds (one segment) allocate
//   their only segment up front, so their send path never allocates; a ring
//   that fits in one cache line is a line of the channel itself, and so is
//   a segment table that fits there (no allocation of their own). A ring
//   with such a table takes, when it is made, the segment its thread keeps
//   (memory/thread_chunk.hpp) as its first, when the sizes match: memory
//   the thread held anyway, and a first send with nothing to install.
//   Segments of a ring up to 32 MiB whose segments are large (>= 64 KiB)
//   or whose slots outgrow the chunk cache (2 MiB by default) are carved,
//   as they are installed, from one block the constructor takes from the
//   allocator (the arena; its pages are touched only as segments are
//   carved, faulted in by windows of 256 KiB or a segment, one system call
//   each where the OS allows; it starts on a cache line, so that each
//   segment does),
//   so that the allocator hands a destroyed channel's ring to the next
//   channel as it hands Rust's std its ring: glibc keeps a freed block of up
//   to 32 MiB for the next request of its size (its dynamic mapping
//   threshold), and fresh pages cost a fault and a zeroed page each.
//   Segments of larger rings are mapped from the OS populated, in one
//   system call instead of one page fault per 4 KiB. When the channel is
//   destroyed, its arena goes back to the allocator whole; other whole
//   segments of a page or more go to the
//   destroying thread's own chunk (one 4 KiB segment, memory/thread_chunk.hpp)
//   or the process's chunk cache (2 MiB by default, memory/chunk_cache.hpp),
//   for the next channel that needs that size; the rest go back to the heap
//   or OS.
//   A channel that never went round its ring tells the cache how much of
//   each segment it wrote, so the next one clears only that much.
// - A ring with many segments (a segment table of its own) touches memory in
//   proportion to what it holds, not to its bound: the receiver retires each
//   segment it has emptied, unless the senders have already come round to it
//   in the next lap, onto a stack of spare segments, and a sender that needs
//   a segment takes a spare before it allocates one. Without this, a
//   bounded(1'000'000) channel streaming a million messages would sweep
//   16 MiB of fresh pages while holding a few hundred messages at a time.
//   Spares stay with the channel until it is destroyed (a slow sender may
//   still read a stamp of a segment it saw installed; the stamps are atomic
//   words, and such a sender's claim fails, see "Recycling" below).
//
// - Segments installed once the sole sender's role has ended (see below:
//   a second thread wrote the tail word, or the receiver went to sleep;
//   where membarrier is missing, from the first send on) are
//   line-strided, as folly's
//   MPMCQueue strides its slots: in each group of 16 slots (4 lines of 4
//   slots of 16 bytes; 2 of 2 for slots of up to 32 bytes; none for larger
//   ones), consecutive indices lie in consecutive lines, so that two
//   senders writing neighbouring slots, or a sender and the receiver
//   freeing the slot before, do not pass one line back and forth. One
//   thread streaming alone keeps slots in index order: there striding
//   only costs (1.13x-1.32x the time of the `seq` and `drain` rows with
//   every ring strided). The layout is
//   the segment's: a bit of its table entry (strided_bit), set by its
//   installer, read by every slot_at(). Only rings with a table of their
//   own have a sole sender, so only they stride. Written prefixes
//   (slots_written()) are counted in whole groups.
//
// Position encoding (head and tail): index = pos & (mark_bit - 1) is the slot,
// pos & ~(one_lap - 1) is the lap; pos & mark_bit (tail only) means
// disconnected. mark_bit = bit_ceil(cap + 1), one_lap = 2 * mark_bit.
// Positions have 46 bits: the lap after the last one is lap 0.
//
// Permits (reserve()): the tail word is (tail position << 18) | flags |
// permits, so
// that a send, a reservation and a permit's send each move both with one
// CAS. With p permits out, the p slots from the tail on are free and held
// for them: a plain send claims the slot at the tail only if the slot p
// positions further is free too (then the permits move up by one), a
// reservation only if that slot is free (then p grows), and a permit's send
// takes the slot at the tail, which is free, so it never waits for room or
// fails (it may wait out the receiver's check of that slot's segment, a few
// instructions: see Recycling).
// The receiver frees slots in position order, so the slot p positions on
// being free means every slot before it is. At most 32767 permits are out at
// once (beyond that a reservation waits, as for a full channel); the 16th
// bit says the receiver is gone: a permit's send then takes no slot and its
// value is destroyed at once, as queued messages were.
//
// Quiet leave. The 17th bit says the receiver left quietly: it found the
// channel empty, no permit out and nobody waiting, and marked the tail with
// the three bits in one CAS, as its very last access; its hold on the
// channel (counter.hpp) then passes to whoever releases the last other
// handle, who reads the bit (receiver_left()). One read-modify-write
// instead of two (the mark, then the handle count) when a receiver goes
// before its senders: a tenth of making, using and dropping a channel.
// The 18th bit (sticky) says a sender has registered to wait (for room, for
// the permit ceiling, or for the receiving side to stop): set with a
// read-modify-write before the registration, it makes a later quiet CAS
// fail, so a receiver that leaves quietly has nobody to wake; a registration
// after the quiet CAS re-checks the tail and finds the mark. Every write of
// the word keeps the flag bits.
//
// Stamp protocol for the slot at `index` (absolute stamp = stored + index):
//   stamp == tail          empty in the sender's lap: the sender may write
//   stamp == head + 1      written in the receiver's lap: it may read
//   after a read, stamp = head + one_lap (empty for the next lap)
//
// Invariants:
// - A slot holds a live message exactly when its stamp says "written"; the
//   stamp store (release) publishes it, the load (acquire) receives it.
// - A receive advances head, moves the message out (T's move constructor
//   and destructor: user code), and only then frees the slot's stamp, so a
//   sender that meets the slot meanwhile sees "full" and never waits for
//   user code; a sender reads head only to know, when blocked, whether the
//   receiver is inside that user code. A sender that meets a slot last
//   lap's sender reserved but has not written yet also sees "full".
// - Only the receiver moves head, so head needs no CAS.
// - A segment's layout (strided or not) is fixed from its install until the
//   receiver retires it; every access of its slots goes through slot_at()
//   with the table entry's value, so every thread sees one layout.
// - A sender that reaches a segment another sender is still allocating
//   reports "full" (try_send) or parks until the installer's notify_all;
//   in a ring whose table is the channel's and whose segments are not
//   mapped, it allocates one too, and the first to install wins (the
//   others give theirs back).
// - Segments of a ring with its table in the channel, once installed, stay
//   until the channel is destroyed.
// - While the tail is in lap 0 and tail_.lapped is clear, no message was
//   written in a later lap, and every slot from the tail's index on is
//   still all zero (a tail in lap 1 with the flag still clear has passed
//   every slot), unless a segment was ever retired (tail_.recycled).
//
// Sole sender. In a ring with a segment table of its own (more than 16
// segments), the first thread that sends becomes the tail word's sole
// writer (memory/sole_writer.hpp): while no other thread has written the
// word, its sends claim their slot with a plain store instead of the CAS
// (a third of a send's cost when one thread streams). Smaller rings keep
// the CAS: taking the role costs a CAS of its own and a few stores, which
// a channel made for one message (`bounded(1)` and `bounded(1024)` made,
// used once and dropped: 5% slower) pays without gain. Every other write of
// the word (another thread's send or reservation, a permit's send or
// release, the mark of a disconnect or close) first ends that, once per
// channel: a heavy fence, then a wait for the sole sender's section of a
// few instructions (no user code: the message is written after it). Two
// Dekker pairs had the CAS as their senders' seq_cst half:
// - retire_segment()'s: the sole sender's store that moves the tail to a
//   segment's first slot is seq_cst (one a segment);
// - a receiver's registration re-check (recv_readiness): a receiver about
//   to sleep ends the sole sender first, so its re-check reads the tail
//   after the heavy fence, which pairs with the light fence of the sole
//   sender's notify. A receiver that never waits leaves it alone, and so
//   does one that waits before anyone sent (the sender that takes the role
//   later does so with a seq_cst CAS, after the registration).
//
// Light head. A receive moves head with a release store, and its notify's
// light fence (memory/asymmetric_fence.hpp) stands in for the full barrier
// of the Dekker pair with a sender that registered to wait for room; such
// a sender then re-checks after a heavy fence (a system call) before it
// sleeps. Senders that wait often (a coroutine sender resumed by each
// receive sleeps once per message) would pay that every time, so the first
// sender that is about to wait asks (head_mode: light -> asked), and from
// the receiver's next receive on, head moves with a seq_cst store (asked ->
// fenced, stored after that receive's head store). A sender that reads
// `fenced` (acquire, before it reads head) sees every light receive's head
// store (not always its slot's release: a light receive whose message's
// code re-entered a receive frees its slot after that inner receive
// stored `fenced`), so it needs no heavy fence: the slot it waits for is
// freed by a receive that is either a light one (head has passed the
// slot: it polls) or a fenced one (the seq_cst Dekker pair). A channel whose
// senders never wait for room (a producer that never fills the ring, one
// thread filling and draining) never pays a full barrier in its receives.
//
// Recycling (rings whose table is an array of their own). A table entry is
//   null            never installed: the next use is lap 0 (stamps 0)
//   a segment       installed
//   installing()    a sender is allocating it
//   checking()      the receiver is deciding whether to retire it
//   retired(V)      emptied and retired: the next use wants stamps V
// Only the receiver moves an entry away from a segment. When it has emptied
// segment i in lap L (every stamp now reads "empty in lap L + 1", one value
// V for the whole segment, stamps being relative to their index), it marks
// the entry checking() (seq_cst), then reads the tail word (seq_cst): if the
// senders' front (tail plus permits) has entered segment i of lap L + 1, a
// sender may be using the segment: it restores the entry. Otherwise it
// pushes the segment onto the spare stack and stores retired(V). A sender
// reads the tail word, then the entry (both seq_cst), after the tail word
// change that moved the front into the segment; so a sender that read the
// segment for a position of lap L + 1 is seen by the receiver's check (the
// Dekker pair), and any other sender still holding the segment has a
// position of lap L, which the tail has passed: its claim (a CAS of the tail
// word from that position) fails. (That needs a front that never moves
// back, so that a tail word once passed never comes back; a permit dropped
// unused moves it back one slot: from the first one on, the channel retires
// no segment, tail_.permit_released.) A receive re-entered from a message's
// code (its move constructor or destructor) retires nothing: the outer
// receive's slot is not free yet; nor does the outer receive then (head
// has moved on, and the front is measured from the segment's end). An
// installer rewrites a spare's stamps
// when they are not the V its entry wants (relaxed atomic stores, published
// by the entry's seq_cst store). Slots a sender claimed are in installed
// segments (they are not empty yet), which the receiver may at most be
// checking: a sender writing one waits out checking() (a few instructions).
#pragma once

#include <sluice/detail/waiting/backoff.hpp>
#include <sluice/detail/flavors/buffered_steps.hpp>
#include <sluice/detail/flavors/receive_stash.hpp>
#include <sluice/detail/flavors/reservation.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/thread_wait.hpp>
#include <sluice/detail/memory/cache_padded.hpp>
#include <sluice/detail/memory/chunk_cache.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/memory/fence.hpp>
#include <sluice/detail/memory/memory_limit.hpp>
#include <sluice/detail/memory/os_pages.hpp>
#include <sluice/detail/memory/sole_writer.hpp>
#include <sluice/detail/waiting/receive_pacer.hpp>
#include <sluice/detail/waiting/spin_lock.hpp>
#include <sluice/detail/memory/storage.hpp>
#include <sluice/detail/memory/thread_chunk.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/error.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <type_traits>

namespace sluice::detail {

template <class T>
class array_channel {
  // installing: the next slot's segment is being allocated by another sender.
  // ceiling: a reservation with the most permits out already.
  enum class push_result { sent, full, installing, disconnected, ceiling };

  // A slot's stamp: a word read and written only atomically (through
  // std::atomic_ref), but, unlike std::atomic, with no constructor that
  // writes it, so that a segment's slots are made empty by zeroing its bytes
  // in one memset (or not at all: the OS zeroes fresh pages), where
  // constructing 256 atomics one store at a time took most of the time of
  // a bounded(1024) channel's first send (measured, lifecycle row).
  struct stamp_word {
    [[nodiscard]] std::size_t load(std::memory_order order) const noexcept {
      return std::atomic_ref<std::size_t>(word).load(order);
    }
    void store(std::size_t value, std::memory_order order) noexcept {
      std::atomic_ref<std::size_t>(word).store(value, order);
    }
    alignas(std::atomic_ref<std::size_t>::required_alignment) mutable std::size_t word;
  };

  // An aggregate, so an implicit-lifetime type: a zeroed segment becomes an
  // array of empty slots of lap 0 (start_lifetime_of_slots).
  struct slot {
    stamp_word stamp;  // relative stamp, see above
    storage<T> msg;
  };

  // Line striding (see the header): a group of stride_lines lines holds
  // stride_lines slots a line; consecutive indices go to consecutive lines.
  static constexpr std::size_t line_bytes = 64;
  static constexpr std::size_t stride_lines =
      sizeof(slot) * 2 <= line_bytes ? std::bit_floor(line_bytes / sizeof(slot)) : 1;
  static constexpr std::size_t stride_group = stride_lines * stride_lines;
  static constexpr unsigned stride_shift = static_cast<unsigned>(std::countr_zero(stride_lines));
  // The bit of a table entry that says its segment is strided. A ring with
  // a table of its own takes its segments from the heap, the chunk cache,
  // pages or its arena, all aligned to 16 bytes or more, and its retired(V)
  // values have the bit clear too (V is a multiple of one_lap_ >= 512).
  static constexpr std::uintptr_t strided_bit = 4;

  // Segment sizing: page-sized for small T and small bounds; at least
  // 1/max_segments of the channel, so the table stays small (<= 2 KiB); but
  // that yields to a cap of ~1 MiB per segment (for T up to 64 KiB), so a
  // channel with a huge bound still grows in steps of at most a megabyte
  // (its table then has cap / segment entries). Segments of
  // mapped_segment_bytes or more are mapped from the OS (os_pages.hpp).
  static constexpr std::size_t segment_bytes = 4096;
  static constexpr std::size_t max_segments = 256;
  static constexpr std::size_t max_segment_bytes = 1024 * 1024;
  static constexpr std::size_t mapped_segment_bytes = 64 * 1024;
  // A ring with a segment table of its own whose slots take at most
  // arena_max_bytes, and either large segments or more bytes than the chunk
  // cache holds (so a destroyed ring's segments could not all be kept for
  // the next ring like it), carves its segments from one allocation of its
  // own (the arena), made by the constructor (see the header).
  // 32 MiB: glibc's largest dynamic mapping threshold on 64-bit systems; a
  // larger block is always mapped and unmapped by the allocator, so it
  // would gain nothing over mapping populated segments.
  static constexpr std::size_t arena_max_bytes = std::size_t{32} << 20;
  static constexpr std::size_t arena_min_bytes = chunk_cache::ceiling;
  // The arena's pages are faulted in by windows of at least this many bytes
  // (a system call per 4 KiB segment would cost more than it saves).
  static constexpr std::size_t arena_populate_bytes = 256 * 1024;
  // receiver_side::head_mode's values.
  static constexpr std::uint8_t head_light = 0;
  static constexpr std::uint8_t head_fence_asked = 1;
  static constexpr std::uint8_t head_fenced = 2;

 public:
  using value_type = T;

  // Throws std::length_error when cap slots cannot be represented, and
  // std::bad_alloc when they could never be allocated (more than RAM and
  // swap) or the segment table cannot be.
  explicit array_channel(std::size_t cap) : cap_(checked_cap(cap)) {
    mark_bit_ = std::bit_ceil(cap_ + 1);
    one_lap_ = mark_bit_ * 2;
    std::size_t per = std::max<std::size_t>(16, segment_bytes / sizeof(slot));
    per = std::bit_floor(per);
    per = std::max(per, std::bit_ceil((cap_ + max_segments - 1) / max_segments));
    per = std::min(per, std::bit_floor(std::max<std::size_t>(16, max_segment_bytes / sizeof(slot))));
    per = std::min(per, std::bit_ceil(cap_));
    seg_shift_ = static_cast<unsigned>(std::countr_zero(per));
    seg_count_ = (cap_ + per - 1) / per;
    mapped_ = per * sizeof(slot) >= mapped_segment_bytes;
    // Only a ring with a table of its own has a sole sender (see the header).
    if (seg_count_ * sizeof(std::atomic<slot*>) <= sizeof(ring_line_.value.bytes)) {
      tail_.value.sole.refuse();
    }
    if (seg_count_ == 1) {
      // One segment: its table entry lives in the channel (one allocation
      // fewer for every small channel), and it is allocated now, in the
      // channel's own ring line when it fits there.
      segments_ = &only_segment_;
      only_segment_.store(cap_ * sizeof(slot) <= sizeof(ring_line_.value.bytes)
                              ? start_lifetime_of_slots(zeroed_ring_line(cap_ * sizeof(slot)),
                                                        cap_ * sizeof(slot))
                              : allocate_segment(cap_),
                          std::memory_order_relaxed);
    } else if (seg_count_ * sizeof(std::atomic<slot*>) <= sizeof(ring_line_.value.bytes)) {
      // A short table (a bounded(1024) channel has 4 entries) lives in the
      // ring line too: one allocation fewer for every such channel.
      // (A placement array new of a trivially destructible type: no cookie.)
      segments_ =
          ::new (static_cast<void*>(ring_line_.value.bytes)) std::atomic<slot*>[seg_count_]{};
      // The first segment now if this thread keeps one of its size (the
      // last channel it dropped gave it back): it moves from the thread's
      // keeping to the channel's, no memory more, and the first send finds
      // it installed (no compare-exchange; a channel made per request, used
      // and dropped, pays none). Otherwise the first send installs it.
      if (cacheable(segment_len(0))) {
        if (void* raw = take_thread_chunk_zeroed(segment_len(0) * sizeof(slot), chunk_source())) {
          segments_[0].store(start_lifetime_of_slots(raw, segment_len(0) * sizeof(slot)),
                             std::memory_order_relaxed);
        }
      }
    } else {
      // null: not installed yet. The second half is the spare stack.
      recycles_ = true;
      segments_ = new std::atomic<slot*>[2 * seg_count_]();
      if ((mapped_ || arena_bytes() > arena_min_bytes) && arena_bytes() <= arena_max_bytes) {
        // Last: nothing after it can throw (the destructor would not run).
        // Allocation only: the allocator maps a fresh block lazily, and the
        // segments are cleared one by one as they are installed.
        try {
          tail_.value.arena = arena_allocate(arena_bytes(), tail_.value.arena_lead);
        } catch (...) {
          delete[] segments_;
          throw;
        }
        mapped_ = false;
      }
    }
  }

  array_channel(const array_channel&) = delete;
  array_channel& operator=(const array_channel&) = delete;

  ~array_channel() {
    // Messages were destroyed by the receiver's disconnect; free the slots.
    for (std::size_t i = 0; i < seg_count_; ++i) {
      slot* s = segments_[i].load(std::memory_order_relaxed);
      if (is_segment(s)) free_segment(untagged(s), segment_len(i), slots_written(i));
    }
    const std::size_t per = std::size_t{1} << seg_shift_;
    for (std::size_t k = 0; k < tail_.value.spare_count; ++k) {
      free_segment(segments_[seg_count_ + k].load(std::memory_order_relaxed), per, per);
    }
    if (tail_.value.arena != nullptr) {
      arena_free(tail_.value.arena, tail_.value.arena_lead, arena_bytes());
    }
    if (!table_in_channel()) delete[] segments_;
  }

  // --- sending --------------------------------------------------------------

  std::expected<void, try_send_error<T>> try_send(T&& msg) {
    switch (try_push(msg)) {
      case push_result::sent:
        return {};
      case push_result::full:
      case push_result::ceiling:     // (reservations only)
      case push_result::installing:  // room exists, but not yet its memory
        return std::unexpected(try_send_error<T>{try_send_error<T>::reason_t::full, std::move(msg)});
      case push_result::disconnected:
        break;
    }
    return std::unexpected(
        try_send_error<T>{try_send_error<T>::reason_t::disconnected, std::move(msg)});
  }

  std::expected<void, send_timeout_error<T>> send(T&& msg, const deadline& d,
                                                  const std::stop_token& stop = {}) {
    using reason = typename send_timeout_error<T>::reason_t;
    send_steps st(*this, msg);
    if (!st.attempt()) {
      switch (wait_on(st, d, stop)) {
        case wait_result::done:
          break;
        case wait_result::timeout:
          return std::unexpected(send_timeout_error<T>{reason::timeout, std::move(msg)});
        case wait_result::cancelled:
          return std::unexpected(send_timeout_error<T>{reason::cancelled, std::move(msg)});
      }
    }
    if (st.sent()) return {};
    return std::unexpected(send_timeout_error<T>{reason::disconnected, std::move(msg)});
  }

  // The steps of a send (waiting/protocol.hpp): `msg` is moved from once
  // sent, and stays the caller's otherwise. With Reserve, the steps of a
  // reservation (a permit's slot) instead: no message.
  template <bool Reserve>
  class room_steps {
   public:
    room_steps(array_channel& ch, T& msg) noexcept requires(!Reserve) : ch_(&ch), msg_(&msg) {}
    explicit room_steps(array_channel& ch) noexcept requires Reserve : ch_(&ch) {}

    bool attempt() {
      if constexpr (Reserve) {
        r_ = ch_->try_reserve_slot();
        // A wake-up for room that this reservation cannot use (the permit
        // ceiling) goes on to a waiter that can.
        if (r_ == push_result::ceiling) ch_->senders_.notify_one();
      } else {
        r_ = ch_->try_push(*msg_);
      }
      return r_ == push_result::sent || r_ == push_result::disconnected;
    }
    // A reservation at the permit ceiling waits in a queue of its own, for a
    // permit to be used or given back; every other one waits for room.
    readiness enlist(wait_entry& e) noexcept {
      at_ceiling_ = Reserve && ch_->at_permit_ceiling();
      ch_->note_sender_wait();
      queue().register_entry(e);
      return recheck();
    }
    readiness recheck() noexcept {
      return at_ceiling_ ? ch_->ceiling_readiness() : ch_->room_readiness(Reserve);
    }
    void delist(wait_entry& e) noexcept { queue().unregister(e); }
    void completed() noexcept {}
    void relay() noexcept { queue().notify_one(); }  // the room is another waiter's
    [[nodiscard]] static bool hands_off() noexcept { return false; }
    [[nodiscard]] static bool spins() noexcept { return true; }

    // The outcome: sent (Reserve: a slot reserved for a permit).
    [[nodiscard]] bool sent() const noexcept { return r_ == push_result::sent; }
    [[nodiscard]] bool reserved() const noexcept { return r_ == push_result::sent; }

   private:
    wait_queue& queue() noexcept { return at_ceiling_ ? ch_->head_.value.ceiling_waiters : ch_->senders_; }

    array_channel* ch_;
    T* msg_ = nullptr;
    push_result r_ = push_result::full;
    bool at_ceiling_ = false;  // registered in ceiling_waiters
  };
  using send_steps = room_steps<false>;
  using reserve_steps = room_steps<true>;

  // --- permits -------------------------------------------------------------------

  // Reserves a slot for a permit unless full or disconnected.
  std::expected<void, try_reserve_error> try_reserve() {
    switch (try_reserve_slot()) {
      case push_result::sent:
        return {};
      case push_result::full:
      case push_result::installing:
      case push_result::ceiling:
        return std::unexpected(try_reserve_error::full);
      case push_result::disconnected:
        break;
    }
    return std::unexpected(try_reserve_error::disconnected);
  }

  // Reserves a slot for a permit, waiting while full.
  std::expected<void, reserve_timeout_error> reserve(const deadline& d,
                                                     const std::stop_token& stop = {}) {
    reserve_steps st(*this);
    return reserve_blocking(st, d, stop);
  }

  // A permit's send: takes the slot at the tail, which the permits hold
  // free, so it never waits for room and never fails (claimed_segment() may
  // wait out the receiver's check of the segment). Sent after close() it
  // is still received (keeps the mark bit). Once the receiver is gone it
  // takes no slot: `msg` is left to the caller, who destroys it.
  void send_reserved(T&& msg) noexcept {
    tail_.value.sole.end_unless_mine();  // a write (see the header)
    backoff bo;
    std::size_t word = tail_.value.word.load(std::memory_order_relaxed);
    for (;;) {
      if ((word & receiver_gone_bit) != 0) {
        // The permit count only; nobody reads the slots any more.
        if (tail_.value.word.compare_exchange_weak(word, word - 1, std::memory_order_relaxed)) {
          return;
        }
        continue;
      }
      const std::size_t marked = pos_of(word) & mark_bit_;
      const std::size_t tail = pos_of(word) & ~mark_bit_;
      const std::size_t next = moved_word(word, next_pos(tail) | marked) - 1;
      // seq_cst: as claim_room's CAS.
      if (tail_.value.word.compare_exchange_weak(word, next, std::memory_order_seq_cst,
                                                 std::memory_order_relaxed)) {
        const std::size_t index = tail & (mark_bit_ - 1);
        publish(slot_at(claimed_segment(index), index), tail, msg);
        // A reservation waits while the permit count is at its ceiling.
        if (permits_of(word) == max_permits) head_.value.ceiling_waiters.notify_one();
        return;
      }
      bo.spin();
    }
  }

  // A permit dropped unused: its slot is free for anyone again.
  void release_reserved() noexcept {
    tail_.value.sole.end_unless_mine();  // a write (see the header)
    // The senders' front moves back one slot here: a tail word seen before
    // may come back (see "Recycling" in the header). seq_cst, before the
    // decrement: a receiver that sees the front moved back sees the flag.
    if (recycles_ && !tail_.value.permit_released.load(std::memory_order_seq_cst)) {
      tail_.value.permit_released.store(true, std::memory_order_seq_cst);
    }
    // seq_cst: the progress half of the Dekker pair with a sender that
    // registered to wait for room (room_readiness), and, on a closed
    // channel, with the receiver that waits for the last permit.
    const std::size_t old = tail_.value.word.fetch_sub(1, std::memory_order_seq_cst);
    senders_.notify_one();
    if (permits_of(old) == max_permits) head_.value.ceiling_waiters.notify_one();
    if ((pos_of(old) & mark_bit_) != 0) receivers_.notify_one();
  }

  template <class E>
  using recv_steps = buffered_recv_steps<array_channel, E>;
  using closed_steps = detail::closed_steps<array_channel>;

  // --- receiving (one receiver thread at a time) ----------------------------

  std::expected<T, try_recv_error> try_recv() noexcept {
    recv_status status = recv_status::empty;
    return try_recv_as(try_recv_error::empty, try_recv_error::disconnected, status);
  }

  // Receives without waiting. The result is built in the caller's error
  // type E, so the message is moved as few times as possible; `status`
  // tells the failures apart even when E cannot. A slot reserved by a sender
  // that has not finished writing it counts as empty (status stalled): the
  // send has not happened yet.
  template <class E>
  std::expected<T, E> try_recv_as(E if_empty, E if_disconnected, recv_status& status) noexcept {
    if (head_.value.stash.holds()) [[unlikely]] {
      status = recv_status::message;
      return std::expected<T, E>(std::in_place, head_.value.stash.take());
    }
    const std::size_t head = head_.value.pos.load(std::memory_order_relaxed);
    const std::size_t index = head & (mark_bit_ - 1);
    slot* s = segment_of(index);
    // acquire: pairs with the sender's release of the stamp.
    const std::size_t stamp =
        (s != nullptr ? slot_at(s, index).stamp.load(std::memory_order_acquire) : 0) + index;
    if (stamp == head + 1) {
      // The head store pairs with a sender that registered as waiting for
      // room and re-checks head (room_readiness), against
      // senders_.notify_one()'s check below: the Dekker pair that rules out
      // a lost wake-up. A release store (then notify_one()'s light fence
      // pairs with that sender's heavy fence) until a sender first waits
      // for room, a seq_cst one from then on (see "Light head" in the
      // header).
      std::expected<T, E> result(
          std::in_place,
          take_written<std::memory_order_seq_cst>(slot_at(s, index), head, index));
      senders_.notify_one();
      status = recv_status::message;
      return result;
    }
    // seq_cst fence: the tail read must not be satisfied before the stamp
    // read above, or a written slot could be reported empty.
    seq_cst_fence();
    const std::size_t word = tail_.value.word.load(std::memory_order_relaxed);
    if ((pos_of(word) & ~mark_bit_) == head) {
      status = drained(word) ? recv_status::disconnected : recv_status::empty;
    } else {
      status = recv_status::stalled;  // reserved, still being written
    }
    return std::unexpected(status == recv_status::disconnected ? if_disconnected : if_empty);
  }

  // Receives up to `max` messages without waiting, handing each to sink(T&&)
  // (recv_many). Cheaper per message than try_recv: the head moves with
  // plain release stores, and waiting senders are notified once for the
  // batch, after a seq_cst fence that completes the Dekker pair with a sender
  // that registered to wait for room and re-checks head (room_readiness).
  // Stops at the first slot not written yet. A sink that throws: its message
  // goes to the stash (the next receive returns it first), and the
  // exception propagates after the senders are notified.
  template <class Sink>
  std::size_t try_recv_batch(Sink& sink, std::size_t max) {
    std::size_t n = 0;
    std::size_t freed = 0;
    struct notify_on_exit {
      array_channel& ch;
      const std::size_t& freed;
      ~notify_on_exit() {
        if (freed == 0) return;
        seq_cst_fence();
        ch.senders_.notify_up_to(freed);
      }
    } notify{*this, freed};
    if (max != 0 && head_.value.stash.holds()) [[unlikely]] {
      ++n;
      T msg = head_.value.stash.take();
      head_.value.stash.hand_to(sink, std::move(msg));
    }
    while (n < max) {
      const std::size_t head = head_.value.pos.load(std::memory_order_relaxed);
      const std::size_t index = head & (mark_bit_ - 1);
      slot* s = segment_of(index);
      // acquire: pairs with the sender's release of the stamp.
      if (s == nullptr || slot_at(s, index).stamp.load(std::memory_order_acquire) + index !=
                              head + 1) {
        break;
      }
      // release head store: len() readers; senders are ordered by the fence
      // before the notify.
      T msg = take_written<std::memory_order_release>(slot_at(s, index), head, index);
      ++freed;
      ++n;
      head_.value.stash.hand_to(sink, std::move(msg));
    }
    return n;
  }

  // Whether the slot at head holds a written message. Receiver only.
  // acquire by default: pairs with the sender's release of the stamp.
  [[nodiscard]] bool next_written(
      std::memory_order order = std::memory_order_acquire) const noexcept {
    const std::size_t head = head_.value.pos.load(std::memory_order_relaxed);
    const std::size_t index = head & (mark_bit_ - 1);
    const slot* s = segment_of(index);
    return s != nullptr && slot_at(s, index).stamp.load(order) + index == head + 1;
  }

  // For a registered receiver: is the next message written, or will a
  // sender's notify come? Receiver only.
  [[nodiscard]] readiness recv_readiness() const noexcept {
    const std::size_t head = head_.value.pos.load(std::memory_order_relaxed);
    // A sole sender's plain tail store has no seq_cst half for this Dekker
    // pair: a receiver about to sleep ends it (once; see the header).
    tail_.value.sole.end_for_waiter();
    // seq_cst: the re-check half of the Dekker pair (see waiting/protocol.hpp).
    const std::size_t word = tail_.value.word.load(std::memory_order_seq_cst);
    if ((pos_of(word) & ~mark_bit_) == head) return drained(word) ? readiness::ready : readiness::wait;
    return next_written(std::memory_order_seq_cst) ? readiness::ready : readiness::poll;
  }

  template <class E>
  std::expected<T, E> recv_as(const deadline& d, const std::stop_token& stop, E if_timeout,
                              E if_disconnected, E if_cancelled) {
    return recv_buffered(*this, d, stop, if_timeout, if_disconnected, if_cancelled);
  }

  // For the shared steps (buffered_steps.hpp).
  wait_queue& receivers() noexcept { return receivers_; }
  wait_queue& closed_watchers() noexcept { return head_.value.closed_watchers; }
  receive_pacer& pacer() noexcept { return head_.value.pacer; }
  receive_stash<T>& stash() noexcept { return head_.value.stash; }
  // Whether sends fail from now on. While a sender handle exists, only the
  // receiving side can have marked the tail. seq_cst: the re-check of a
  // registered closed watcher (its registration is under the queue's lock,
  // which close() takes after marking, so either is seen).
  [[nodiscard]] bool closed_for_senders() const noexcept { return is_disconnected(); }

  // --- queries ----------------------------------------------------------------

  [[nodiscard]] std::size_t len() const noexcept {
    for (;;) {
      const std::size_t word = tail_.value.word.load(std::memory_order_seq_cst);
      const std::size_t head = head_.value.pos.load(std::memory_order_seq_cst);
      // A stable tail means head and tail were read at one consistent moment.
      if (tail_.value.word.load(std::memory_order_seq_cst) != word) continue;
      const std::size_t tail = pos_of(word);
      const std::size_t hix = head & (mark_bit_ - 1);
      const std::size_t tix = tail & (mark_bit_ - 1);
      const std::size_t stashed = head_.value.stash.holds() ? 1 : 0;
      if (hix < tix) return tix - hix + stashed;
      if (hix > tix) return cap_ - hix + tix + stashed;
      return ((tail & ~mark_bit_) == head ? 0 : cap_) + stashed;
    }
  }
  [[nodiscard]] bool is_empty() const noexcept {
    const std::size_t head = head_.value.pos.load(std::memory_order_seq_cst);
    const std::size_t tail = pos_of(tail_.value.word.load(std::memory_order_seq_cst));
    return (tail & ~mark_bit_) == head && !head_.value.stash.holds();
  }
  // Full: no slot free for a send (permits hold theirs).
  [[nodiscard]] bool is_full() const noexcept {
    const std::size_t word = tail_.value.word.load(std::memory_order_seq_cst);
    const std::size_t head = head_.value.pos.load(std::memory_order_seq_cst);
    return next_lap_pos(head) == advance(pos_of(word) & ~mark_bit_, permits_of(word));
  }
  [[nodiscard]] std::optional<std::size_t> capacity() const noexcept { return cap_; }
  [[nodiscard]] bool is_disconnected() const noexcept {
    return (pos_of(tail_.value.word.load(std::memory_order_seq_cst)) & mark_bit_) != 0;
  }

  // Tests only: moves a new, unused channel whose slots are all allocated
  // (one segment) to its last lap, so that its positions wrap to lap 0
  // after `cap` more sends.
  void start_at_last_lap_for_testing() noexcept {
    const std::size_t lap = (pos_mask + 1) - one_lap_;
    head_.value.pos.store(lap, std::memory_order_relaxed);
    tail_.value.word.store(make_word(lap, 0), std::memory_order_relaxed);
    slot* s = segments_[0].load(std::memory_order_relaxed);
    // tail_.lapped is left to publish(): the tail is past lap 0 here, and
    // the first send sets it, so a test that wraps covers that store.
    for (std::size_t i = 0; i < cap_; ++i) s[i].stamp.store(lap, std::memory_order_relaxed);
  }

  // Tests only: whether a thread sends as the sole sender now.
  [[nodiscard]] bool sole_sender_for_testing() const noexcept {
    return tail_.value.sole.owned_for_testing();
  }

  // Tests only: how many segments were carved from the arena; nullopt
  // without one.
  [[nodiscard]] std::optional<std::size_t> arena_carved_for_testing() noexcept {
    if (tail_.value.arena == nullptr) return std::nullopt;
    std::lock_guard lock(tail_.value.spare_lock);
    return tail_.value.arena_carved;
  }
  // Tests only: where the arena starts (its first segment); null without one.
  [[nodiscard]] const void* arena_start_for_testing() const noexcept { return tail_.value.arena; }
  // Tests only: installed segments whose slots are line-strided.
  [[nodiscard]] std::size_t strided_segments_for_testing() const noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < seg_count_; ++i) {
      const slot* s = segments_[i].load(std::memory_order_acquire);
      if (is_segment(s) && is_strided(s)) ++n;
    }
    return n;
  }
  // Tests only: segments the channel holds (installed or spare).
  [[nodiscard]] std::size_t segments_held_for_testing() noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < seg_count_; ++i) {
      if (is_segment(segments_[i].load(std::memory_order_acquire))) ++n;
    }
    std::lock_guard lock(tail_.value.spare_lock);
    return n + tail_.value.spare_count;
  }

  // --- disconnection ------------------------------------------------------------

  void disconnect_senders() noexcept {
    if (mark_tail()) receivers_.disconnect();
  }

  // Later sends fail and blocked senders wake with their values; queued
  // messages stay receivable.
  // A pending asynchronous receive wakes too (it then receives what is
  // queued, or learns of the disconnection).
  void close() noexcept {
    if (mark_tail()) wake_all_closed();
  }

  // Queued messages are destroyed here, and so is anything a permit sends
  // later (send_reserved): the seal (receiver_gone_bit, set with the mark in
  // one read-modify-write) comes after every slot claimed before it, in the
  // tail word's order, so discard_all() sees them all. With every sender
  // gone (`senders_gone`, and so every permit: a permit holds a sender) and
  // their operations done before, nothing can claim a slot or wait any more:
  // no seal is needed, and the read-modify-write is saved.
  void disconnect_receivers(bool senders_gone = false) noexcept {
    if (!senders_gone && mark_tail(receiver_gone_bit)) wake_all_closed();
    discard_all();
    head_.value.stash.clear();
  }

  // The receiver goes while senders remain, and leaves quietly if it can
  // (see "Quiet leave" in the header): with nothing queued or stashed, no
  // permit out, no sender ever registered to wait and no receive of its own
  // pending, disconnect_receivers() would only mark the tail. Then one CAS
  // marks it and says the receiver left, and the caller must not touch the
  // channel again: true. False: nothing changed.
  // seq_cst: as mark_tail(), totally ordered with every claim and with the
  // sender-waited bit's read-modify-write; and release, for whoever frees
  // the channel after reading the bit (receiver_left()).
  [[nodiscard]] bool leave_quietly() noexcept {
    if (head_.value.stash.holds() || receivers_.has_waiters()) return false;
    const std::size_t head = head_.value.pos.load(std::memory_order_relaxed);
    std::size_t word = tail_.value.word.load(std::memory_order_seq_cst);
    // The word of an empty channel with nobody about: tail at head, no mark,
    // no permit, no flag. Anything else takes the general path.
    if (word != make_word(head, 0)) return false;
    tail_.value.sole.end_unless_mine();  // a write (see the header)
    return tail_.value.word.compare_exchange_strong(
        word, word | make_word(mark_bit_, 0) | receiver_gone_bit | receiver_left_bit,
        std::memory_order_seq_cst, std::memory_order_relaxed);
  }

  // Whether the receiver left quietly. Asked by a handle about to release
  // the last hold besides the receiver's, once the tail is marked (so no
  // quiet leave can come later). acquire: pairs with the quiet CAS, so the
  // receiver's every access happened before whoever frees the channel.
  [[nodiscard]] bool receiver_left() const noexcept {
    return (tail_.value.word.load(std::memory_order_acquire) & receiver_left_bit) != 0;
  }

  // A sender is about to register to wait (for room, for the permit
  // ceiling, or for the receiving side to stop): from now on the receiver
  // never leaves quietly, and wakes the waiters when it goes (see "Quiet
  // leave" in the header). Once per channel: the bit is sticky. A sole
  // sender's plain store would lose the bit, so another thread's first
  // wait ends that role (as its send would; for a closed() watcher on a
  // ring with a sole sender, the one price of the quiet leave).
  // seq_cst: ordered with the quiet CAS in the word's order; the
  // registration and its re-check follow.
  void note_sender_wait() noexcept {
    if ((tail_.value.word.load(std::memory_order_relaxed) & sender_waited_bit) != 0) return;
    tail_.value.sole.end_unless_mine();  // a write (see the header)
    tail_.value.word.fetch_or(sender_waited_bit, std::memory_order_seq_cst);
  }

 private:
  // Every waiter learns of the mark close() or disconnect_receivers() set.
  void wake_all_closed() noexcept {
    senders_.disconnect();
    head_.value.ceiling_waiters.disconnect();
    head_.value.closed_watchers.disconnect();
    receivers_.disconnect();
  }

  // The end of every receive: moves head past the written slot `sl` at
  // `head` (first, so that a receive re-entered from the message's own move
  // constructor or destructor reads the next slot), takes the message, then
  // frees the slot. `HeadOrder` is the caller's (see its Dekker pair).
  // Always inlined: left to the compiler, a bounded recv_many took 1.4x the
  // time in one build (measured, drain row).
  // seq_cst asks for the Dekker pair of a single receive: a release store
  // while no sender has waited for room, else a seq_cst one (head_mode).
  template <std::memory_order HeadOrder>
  [[gnu::always_inline]] T take_written(slot& sl, std::size_t head, std::size_t index) noexcept {
    if constexpr (HeadOrder == std::memory_order_seq_cst) {
      // relaxed: the receiver acts on a change when it sees it; until then
      // the asking sender's heavy fence covers its light receives.
      const std::uint8_t mode = head_.value.head_mode.load(std::memory_order_relaxed);
      if (mode == head_light) [[likely]] {
        head_.value.pos.store(next_pos(head), std::memory_order_release);
      } else {
        head_.value.pos.store(next_pos(head), std::memory_order_seq_cst);
        // release: a sender that reads head_fenced sees every light
        // receive's head store, which came before.
        if (mode == head_fence_asked) {
          head_.value.head_mode.store(head_fenced, std::memory_order_release);
        }
      }
    } else {
      head_.value.pos.store(next_pos(head), HeadOrder);
    }
    const bool outer_taking = head_.value.taking;
    head_.value.taking = true;
    T msg = sl.msg.take();  // user code; the slot stays ours
    head_.value.taking = outer_taking;
    // release: frees the slot for the next lap's sender only after the
    // message left it. A sender that registered meanwhile saw head moved
    // and polls (room_readiness).
    const std::size_t empty_next_lap = next_lap_pos(head) - index;
    sl.stamp.store(empty_next_lap, std::memory_order_release);
    // The last slot of a whole segment: the segment is empty (see the
    // header), unless this receive runs inside another one's message code,
    // whose slot may be in this segment and is not free yet, or receives ran
    // inside this one's (then head has moved on, and front_reached(), which
    // measures from the segment's end, would not see senders that have come
    // round to it).
    if (recycles_ && (index & seg_mask()) == seg_mask() && !outer_taking &&
        head_.value.pos.load(std::memory_order_relaxed) == next_pos(head)) [[unlikely]] {
      retire_segment(index >> seg_shift_, empty_next_lap);
    }
    return msg;
  }

  // Retires segment `i`, just emptied, whose stamps all read `empty` (its
  // next lap's), unless the senders' front has come round to it (see
  // "Recycling" in the header). Receiver only.
  [[gnu::noinline]] void retire_segment(std::size_t i, std::size_t empty) noexcept {
    if (front_reached(i)) return;  // in use in its next lap already, or no more recycling
    std::atomic<slot*>& entry = segments_[i];
    slot* seg = entry.load(std::memory_order_relaxed);  // only we move it away
    // seq_cst store, then seq_cst load of the tail word in front_reached():
    // the receiver's half of the Dekker pair with a sender that reads the
    // tail word, then the entry.
    entry.store(checking(), std::memory_order_seq_cst);
    if (front_reached(i)) {
      entry.store(seg, std::memory_order_seq_cst);
    } else {
      {
        std::lock_guard lock(tail_.value.spare_lock);
        segments_[seg_count_ + tail_.value.spare_count++].store(untagged(seg),
                                                                std::memory_order_relaxed);
        tail_.value.recycled = true;
      }
      entry.store(retired(empty), std::memory_order_seq_cst);
    }
    // Senders that met checking() and registered to wait (room_readiness).
    senders_.notify_all();
  }

  // Whether the senders' front (tail plus permits) is at or past the first
  // slot of segment `i` in the lap after the head's: the head has just left
  // segment i (take_written() retires only then), so that slot is
  // cap - (segment length) positions on. Also
  // true once a permit was dropped unused: the front moved back then, and a
  // sender may hold a tail word that will come back, with the segment it
  // read for it (so its claim would succeed after a retirement).
  [[nodiscard]] bool front_reached(std::size_t i) const noexcept {
    // seq_cst: see retire_segment(); the flag after the word (see
    // release_reserved()).
    const std::size_t word = tail_.value.word.load(std::memory_order_seq_cst);
    if (tail_.value.permit_released.load(std::memory_order_seq_cst)) return true;
    const std::size_t front = advance(pos_of(word) & ~mark_bit_, permits_of(word));
    const std::size_t head = head_.value.pos.load(std::memory_order_relaxed);
    return distance(head, front) >= cap_ - segment_len(i);
  }

  // Positions from `from` to `to`, which is at most one lap on.
  [[nodiscard]] std::size_t distance(std::size_t from, std::size_t to) const noexcept {
    const std::size_t fi = from & (mark_bit_ - 1);
    const std::size_t ti = to & (mark_bit_ - 1);
    if (ti != fi) return ti > fi ? ti - fi : cap_ - fi + ti;
    return to == from ? 0 : cap_;
  }

  static std::size_t checked_cap(std::size_t cap) {
    // Positions (46 bits) need two spare high bits (mark bit and lap), and
    // the slots must be addressable as one array by the allocator's measure.
    constexpr std::size_t max_cap =
        std::min<std::size_t>(static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(slot),
                              (std::size_t{1} << (pos_bits - 3)) - 1);
    if (cap > max_cap) throw std::length_error("sluice::sync_channel: bound too large");
    if (!could_ever_allocate(cap * sizeof(slot))) throw std::bad_alloc();
    return cap;
  }

  // The slot of ring index `index` in segment `seg` (a table entry's value,
  // strided or not): the index's position in the segment, line-strided in
  // a strided segment (whose length is a multiple of stride_group).
  template <class Slot>
  [[gnu::always_inline]] Slot& slot_at(Slot* seg, std::size_t index) const noexcept {
    const auto bits = reinterpret_cast<std::uintptr_t>(seg);
    std::size_t k = index & seg_mask();
    if (is_strided(seg)) {
      k = (k & ~(stride_group - 1)) | ((k & (stride_lines - 1)) << stride_shift) |
          ((k >> stride_shift) & (stride_lines - 1));
    }
    return reinterpret_cast<Slot*>(bits & ~strided_bit)[k];
  }
  // Whether a table entry's segment is strided.
  static bool is_strided(const slot* seg) noexcept {
    return (reinterpret_cast<std::uintptr_t>(seg) & strided_bit) != 0;
  }
  // A table entry's segment without its layout bit (for the allocator and
  // the spare stack; a spare's slots hold one stamp, whatever its layout).
  static slot* untagged(slot* seg) noexcept {
    return reinterpret_cast<slot*>(reinterpret_cast<std::uintptr_t>(seg) & ~strided_bit);
  }
  [[nodiscard]] std::size_t seg_mask() const noexcept {
    return (std::size_t{1} << seg_shift_) - 1;
  }

  // The values of a segment table entry that are not segments (see
  // "Recycling" in the header). Slots are aligned to at least 8 bytes, and
  // a stamp of an empty slot at index 0 (a lap's first position) is a
  // multiple of one_lap_ (at least 4), so the low two bits tell them apart.
  static slot* installing() noexcept { return reinterpret_cast<slot*>(std::uintptr_t{1}); }
  static slot* checking() noexcept { return reinterpret_cast<slot*>(std::uintptr_t{3}); }
  static slot* retired(std::size_t empty) noexcept {
    return reinterpret_cast<slot*>(static_cast<std::uintptr_t>(empty) | 2);
  }
  static bool is_segment(const slot* s) noexcept {
    const auto bits = reinterpret_cast<std::uintptr_t>(s);
    return bits != 0 && (bits & 3) == 0;
  }
  // The stamps an entry's next segment must hold: the next use of a never
  // installed entry is lap 0's; a retired one says. (Null or retired only.)
  static std::size_t wanted_stamps(const slot* s) noexcept {
    return static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(s) & ~std::uintptr_t{3});
  }

  // The segment holding `index`, or null if none is installed.
  // acquire: pairs with the installing store, so the slots' stamps are seen.
  slot* segment_of(std::size_t index) const noexcept {
    slot* s = segments_[index >> seg_shift_].load(std::memory_order_acquire);
    return is_segment(s) ? s : nullptr;
  }

  // The segment holding `index`, which holds a slot claimed and not yet
  // emptied, so it is installed; the receiver may be checking it for a
  // moment, and then puts it back (see "Recycling" in the header).
  slot* claimed_segment(std::size_t index) const noexcept {
    backoff bo;
    for (;;) {
      slot* s = segments_[index >> seg_shift_].load(std::memory_order_acquire);
      if (s != checking()) return s;
      bo.snooze();
    }
  }

  // Slots in segment `i` (the last one may be short).
  [[nodiscard]] std::size_t segment_len(std::size_t i) const noexcept {
    return std::min(std::size_t{1} << seg_shift_, cap_ - (i << seg_shift_));
  }

  // `len` empty slots (stamp 0): from the thread's chunk or the process's
  // chunk cache (thread_chunk.hpp), or on the heap, or mapped. Throws std::bad_alloc.
  slot* allocate_segment(std::size_t len) {
    const std::size_t bytes = len * sizeof(slot);
    void* raw = carve_from_arena();
    if (raw != nullptr) {
      std::memset(raw, 0, bytes);
      return start_lifetime_of_slots(raw, bytes);
    }
    raw = cacheable(len) ? take_zeroed_chunk(bytes, chunk_source()) : nullptr;
    bool zeroed = raw != nullptr;
    if (raw == nullptr && mapped_) {
      raw = map_pages(bytes);
      zeroed = mapped_pages_are_zeroed;
    } else if (raw == nullptr) {
      raw = heap_allocate(bytes);
    }
    if (!zeroed) std::memset(raw, 0, bytes);
    return start_lifetime_of_slots(raw, bytes);
  }

  // The slots in `bytes` of memory whose bytes are already what they should
  // hold, as std::start_lifetime_as_array would give them (C++23, not in
  // every library yet): memmove implicitly creates implicit-lifetime objects
  // with the bytes they already have. Optimizing compilers emit nothing for
  // a move of memory onto itself (GCC even at -O0; clang from -O1: an
  // unoptimized clang build copies each new segment onto itself).
  static slot* start_lifetime_of_slots(void* raw, std::size_t bytes) noexcept {
    static_assert(std::is_aggregate_v<slot> && std::is_trivially_destructible_v<slot>);
    return std::launder(static_cast<slot*>(std::memmove(raw, raw, bytes)));
  }

  // A segment of `len` slots, whose slots hold no message any more
  // (trivially destructible: nothing to end) and whose slots past the first
  // `written` are still zero. The destructor's, and a sender's that lost
  // the race to install a segment (install_racing()).
  void free_segment(slot* s, std::size_t len, std::size_t written) noexcept {
    if (static_cast<void*>(s) == ring_line_.value.bytes || in_arena(s)) return;
    const std::size_t bytes = len * sizeof(slot);
    if (cacheable(len)) {
      put_chunk(s, bytes, chunk_source(), written * sizeof(slot));  // kept or freed
      return;
    }
    if (mapped_) {
      unmap_pages(s, bytes);
    } else {
      heap_free(s, bytes);
    }
  }

  // The arena's next segment-sized piece, or null (no arena, or all carved:
  // with recycling, a sender that found the spare stack empty a moment
  // before the receiver pushed a segment onto it allocates one more, so the
  // ring's segments may outnumber its table entries). The arena's pieces
  // are the size of a whole segment; a short last segment takes a whole one.
  // Its pages are faulted in by windows of whole pieces (at least one, and
  // about arena_populate_bytes), each by the carver of its first piece,
  // outside the lock (a system call); a sender whose piece lies in a window
  // another sender is still populating faults its pages in itself, through
  // the clearing memset.
  void* carve_from_arena() noexcept {
    slot* arena = tail_.value.arena;
    if (arena == nullptr) return nullptr;
    std::size_t carved = 0;
    {
      std::lock_guard lock(tail_.value.spare_lock);
      if (tail_.value.arena_carved == seg_count_) return nullptr;
      carved = tail_.value.arena_carved++;
    }
    const std::size_t piece_bytes = (std::size_t{1} << seg_shift_) * sizeof(slot);
    const std::size_t per_window = std::max<std::size_t>(1, arena_populate_bytes / piece_bytes);
    const std::size_t from = carved * piece_bytes;
    if (carved % per_window == 0) {
      populate_pages(reinterpret_cast<std::byte*>(arena) + from,
                     std::min(per_window * piece_bytes, arena_bytes() - from));
    }
    return arena + (carved << seg_shift_);
  }
  [[nodiscard]] bool in_arena(const slot* s) const noexcept {
    const slot* arena = tail_.value.arena;
    // Compared as integers: pointers into different objects do not order.
    const auto at = reinterpret_cast<std::uintptr_t>(s);
    const auto first = reinterpret_cast<std::uintptr_t>(arena);
    return arena != nullptr && at >= first && at < first + arena_bytes();
  }
  [[nodiscard]] std::size_t arena_bytes() const noexcept {
    return (seg_count_ << seg_shift_) * sizeof(slot);
  }

  // How many leading slots of segment `i` were ever written (the rest are
  // still zero). Before any write in a second lap, the slots before the
  // tail's index (a position of lap 0 is its index; a tail in lap 1 has
  // passed every slot). A recycled segment may serve any index: all of
  // them then. Destructor only: no sender is left.
  [[nodiscard]] std::size_t slots_written(std::size_t i) const noexcept {
    const std::size_t tail = pos_of(tail_.value.word.load(std::memory_order_relaxed)) & ~mark_bit_;
    const bool lapped = tail_.value.lapped.load(std::memory_order_relaxed) || tail >= one_lap_ ||
                        tail_.value.recycled;
    // Whole stride groups: a group's slots are not in index order.
    const std::size_t used =
        lapped ? cap_ : std::min(cap_, (tail + stride_group - 1) & ~(stride_group - 1));
    const std::size_t first = i << seg_shift_;
    return used > first ? std::min(used - first, segment_len(i)) : 0;
  }

  // Heap segments of a page or more are aligned alike for every T (when its
  // slots allow), so that a cached chunk suits any channel that asks for its
  // size; smaller ones take the allocator's plain (fast) path when the slots
  // allow it. The size alone decides, so freeing matches allocating.
  static constexpr std::size_t heap_align =
      std::max<std::size_t>(alignof(slot), chunk_cache::heap_alignment);
  static constexpr bool plain_new_fits = alignof(slot) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__;

  static void* heap_allocate(std::size_t bytes) {
    if (plain_new_fits && bytes < segment_bytes) return ::operator new(bytes);
    return ::operator new(bytes, std::align_val_t{heap_align});
  }
  static void heap_free(void* p, std::size_t bytes) noexcept {
    if (plain_new_fits && bytes < segment_bytes) {
      ::operator delete(p, bytes);
    } else {
      ::operator delete(p, bytes, std::align_val_t{heap_align});
    }
  }

  // The arena comes from the allocator's plain path when the slots allow:
  // an over-aligned request asks for more than the block it gets back, so
  // the block a channel freed would be too small for the next channel's
  // (measured: each channel then grew the heap by its whole ring).
  // For slots aligned to less than a line, the block is line_bytes larger
  // than the ring and the arena starts at its first line boundary, so that
  // every segment carved from it starts on a line and a strided group
  // covers its own lines: glibc's mapped blocks start 16 bytes past a line
  // and its heap blocks at any multiple of 16, where each group's last slot
  // and the next group's first (consecutive indices) would share a line.
  static constexpr std::size_t arena_slack = alignof(slot) < line_bytes ? line_bytes : 0;
  static slot* arena_allocate(std::size_t bytes, std::size_t& lead) {
    void* block = nullptr;
    if constexpr (plain_new_fits) {
      block = ::operator new(bytes + arena_slack);
    } else {
      block = ::operator new(bytes + arena_slack, std::align_val_t{alignof(slot)});
    }
    void* arena = block;
    std::size_t space = bytes + arena_slack;
    std::align(line_bytes, bytes, arena, space);  // fits: the slack covers any offset
    lead = static_cast<std::size_t>(static_cast<std::byte*>(arena) - static_cast<std::byte*>(block));
    return static_cast<slot*>(arena);
  }
  // `lead`: how far into its block arena_allocate() put the arena.
  static void arena_free(slot* arena, std::size_t lead, std::size_t bytes) noexcept {
    void* block = reinterpret_cast<std::byte*>(arena) - lead;
    if constexpr (plain_new_fits) {
      ::operator delete(block, bytes + arena_slack);
    } else {
      ::operator delete(block, bytes + arena_slack, std::align_val_t{alignof(slot)});
    }
  }

  // Whether a segment of `len` slots goes through the chunk cache: a whole
  // segment (the heap_allocate()/heap_free() pair decides by size, so a
  // short last one could differ from a whole one of its size), of at least a
  // page (smaller ones are the allocator's fast case), of a usual alignment.
  [[nodiscard]] chunk_cache::source chunk_source() const noexcept {
    return mapped_ ? chunk_cache::source::mapped : chunk_cache::source::heap;
  }
  [[nodiscard]] bool cacheable(std::size_t len) const noexcept {
    return len == (std::size_t{1} << seg_shift_) && len * sizeof(slot) >= segment_bytes &&
           heap_align == chunk_cache::heap_alignment;
  }

  // The ring line's first `bytes` zeroed, for slots that fit there
  // (constructor). Only the ring's bytes: a memset of the whole line, whose
  // size the compiler knows, became a `rep stos` that took 12% of a
  // bounded(1) channel's lifecycle (measured); the library's memset of a
  // length it does not know is a few vector stores.
  void* zeroed_ring_line(std::size_t bytes) noexcept {
    std::memset(ring_line_.value.bytes, 0, bytes);
    return ring_line_.value.bytes;
  }
  // Whether the segment table is the channel's (only_segment_ or the ring
  // line), not an array of its own.
  [[nodiscard]] bool table_in_channel() const noexcept {
    return segments_ == &only_segment_ ||
           static_cast<const void*>(segments_) == ring_line_.value.bytes;
  }

  // The segment holding `index`, installing it first if needed (senders);
  // installing() while another sender is installing it, checking() while
  // the receiver checks it.
  slot* sender_segment(std::size_t index) {
    // seq_cst: the sender's half of the Dekker pair of retire_segment()
    // (after the caller's seq_cst read of the tail word).
    slot* s = segments_[index >> seg_shift_].load(std::memory_order_seq_cst);
    if (is_segment(s)) [[likely]] return s;
    return install_segment(index >> seg_shift_);
  }

  // One sender claims the empty entry and allocates; the others do not
  // allocate too (with many senders at a segment boundary, each losing
  // allocation would be a mapping populated and unmapped in vain): they
  // report the segment as being installed, and blocked senders park until
  // the installer's notify_all.
  // A retired entry gets a spare segment if there is one (see "Recycling"
  // in the header), with the stamps its next lap wants.
  [[gnu::noinline]] slot* install_segment(std::size_t i) {
    std::atomic<slot*>& entry = segments_[i];
    if (!recycles_ && !mapped_) return install_racing(entry, i);
    slot* s = entry.load(std::memory_order_acquire);
    while (!is_segment(s) && s != installing() && s != checking()) {  // null or retired
      // acquire (both ways): claiming publishes nothing, the store below
      // does; a failure may read another installer's segment, whose slots
      // we then use.
      if (!entry.compare_exchange_strong(s, installing(), std::memory_order_acquire,
                                         std::memory_order_acquire)) {
        continue;
      }
      const std::size_t len = segment_len(i);
      const std::size_t wanted = wanted_stamps(s);
      slot* fresh = take_spare(len);
      const bool spare = fresh != nullptr;
      try {
        if (fresh == nullptr) fresh = allocate_segment(len);
      } catch (...) {
        entry.store(s, std::memory_order_seq_cst);  // let another sender try
        senders_.notify_all();
        throw;
      }
      // Every slot of a spare or fresh segment holds one stamp: the first
      // says (a fresh one's is 0: not read, it may be a line not cached).
      const std::size_t held =
          spare ? fresh[0].stamp.load(std::memory_order_relaxed) : std::size_t{0};
      if (held != wanted) {
        for (std::size_t k = 0; k < len; ++k) {
          fresh[k].stamp.store(wanted, std::memory_order_relaxed);
        }
      }
      // Strided once several threads write the ring (see the header).
      if (recycles_ && stride_lines > 1 && len % stride_group == 0 &&
          tail_.value.sole.shared_now()) {
        fresh = reinterpret_cast<slot*>(reinterpret_cast<std::uintptr_t>(fresh) | strided_bit);
      }
      // seq_cst: release, so the slots' empty stamps are seen with the
      // pointer; and the progress half of the Dekker pair with senders that
      // registered while it was being installed (room_readiness).
      entry.store(fresh, std::memory_order_seq_cst);
      senders_.notify_all();
      return fresh;
    }
    return s;
  }

  // install_segment() for a ring whose table is the channel's (an entry goes
  // from null to a segment once, and stays) and whose segments come from the
  // heap or the caches: each sender that finds the entry empty allocates,
  // one compare-exchange installs, and a loser gives its segment back. One
  // read-modify-write instead of two (claim, then store), and no wake-up:
  // no sender ever sees the entry being installed. (Mapped segments keep
  // the claim: a mapping populated in vain costs two system calls.)
  slot* install_racing(std::atomic<slot*>& entry, std::size_t i) {
    const std::size_t len = segment_len(i);
    slot* fresh = allocate_segment(len);  // may throw: nothing changed yet
    slot* s = nullptr;
    // seq_cst on success: release, so the slots' empty stamps are seen with
    // the pointer (and the order of the entry stores of install_segment()).
    // acquire on failure: we use the winner's slots.
    if (entry.compare_exchange_strong(s, fresh, std::memory_order_seq_cst,
                                      std::memory_order_acquire)) {
      return fresh;
    }
    free_segment(fresh, len, 0);
    return s;
  }

  // A spare segment of `len` slots, or null.
  slot* take_spare(std::size_t len) noexcept {
    if (!recycles_ || len != (std::size_t{1} << seg_shift_)) return nullptr;
    std::lock_guard lock(tail_.value.spare_lock);
    if (tail_.value.spare_count == 0) return nullptr;
    return segments_[seg_count_ + --tail_.value.spare_count].load(std::memory_order_relaxed);
  }

  // --- the tail word and positions (see the header) -----------------------------

  // The low 18 bits: the permit count (15 bits), the receiver-gone bit, the
  // receiver-left-quietly bit and the sticky sender-waited bit.
  static constexpr unsigned low_bits = 18;
  static constexpr unsigned pos_bits = sizeof(std::size_t) * 8 - low_bits;
  static constexpr std::size_t receiver_gone_bit = std::size_t{1} << 15;
  static constexpr std::size_t receiver_left_bit = std::size_t{1} << 16;
  static constexpr std::size_t sender_waited_bit = std::size_t{1} << 17;
  static constexpr std::size_t max_permits = receiver_gone_bit - 1;
  static constexpr std::size_t low_mask = (std::size_t{1} << low_bits) - 1;
  static constexpr std::size_t pos_mask = ~std::size_t{0} >> low_bits;

  static constexpr std::size_t pos_of(std::size_t word) noexcept { return word >> low_bits; }
  static constexpr std::size_t permits_of(std::size_t word) noexcept { return word & max_permits; }
  static constexpr std::size_t make_word(std::size_t pos, std::size_t permits) noexcept {
    return pos << low_bits | permits;
  }
  // `word` with its position replaced by `pos`: the permits and flags stay.
  static constexpr std::size_t moved_word(std::size_t word, std::size_t pos) noexcept {
    return make_word(pos, 0) | (word & low_mask);
  }
  // Nothing queued will ever come (the tail word of an empty channel): the
  // tail is marked and no permit is out (a permit may still send after
  // close(), and the receiver waits for it).
  [[nodiscard]] bool drained(std::size_t word) const noexcept {
    return (pos_of(word) & mark_bit_) != 0 && permits_of(word) == 0;
  }
  // The position after `pos` (unmarked), and the same slot's one in the next lap.
  [[nodiscard]] std::size_t next_pos(std::size_t pos) const noexcept {
    return (pos & (mark_bit_ - 1)) + 1 < cap_ ? pos + 1 : next_lap_pos(pos & ~(one_lap_ - 1));
  }
  [[nodiscard]] std::size_t next_lap_pos(std::size_t pos) const noexcept {
    return (pos + one_lap_) & pos_mask;
  }
  // The position `n` (<= cap) slots after `pos` (unmarked).
  [[nodiscard]] std::size_t advance(std::size_t pos, std::size_t n) const noexcept {
    const std::size_t index = pos & (mark_bit_ - 1);
    if (index + n < cap_) return pos + n;
    return next_lap_pos(pos & ~(one_lap_ - 1)) + (index + n - cap_);
  }

  // What a sender finds at the slot of position `pos` (unmarked).
  enum class room { free, full, installing, stale };

  // Whether the slot at `pos` is free in `pos`'s lap (then `out` points at
  // it), installing its segment first if needed.
  room room_at(std::size_t pos, slot*& out) {
    const std::size_t index = pos & (mark_bit_ - 1);
    slot* seg = sender_segment(index);
    if (seg == installing()) return room::installing;
    if (seg == checking()) return room::stale;  // back in a few instructions
    slot& s = slot_at(seg, index);
    // acquire: the slot's previous message has left before we overwrite it.
    const std::size_t stamp = s.stamp.load(std::memory_order_acquire) + index;
    if (stamp == pos) {
      out = &s;
      return room::free;
    }
    // The slot still holds last lap's message (or the receiver is still
    // taking it out), or last lap's sender reserved it and is still writing
    // it: full either way, until the receiver frees it. Otherwise another
    // sender moved past `pos`.
    const std::size_t behind = next_lap_pos(stamp);
    return behind == pos + 1 || behind == pos ? room::full : room::stale;
  }

  // Writes `msg` (moving from it) into the claimed slot `s` at `pos` and
  // publishes it.
  void publish(slot& s, std::size_t pos, T& msg) noexcept {
    s.msg.construct(std::move(msg));
    // release: the receiver's acquire of the stamp sees the message.
    s.stamp.store(pos + 1 - (pos & (mark_bit_ - 1)), std::memory_order_release);
    if (pos >= one_lap_ && !tail_.value.lapped.load(std::memory_order_relaxed)) [[unlikely]] {
      tail_.value.lapped.store(true, std::memory_order_relaxed);
    }
    receivers_.notify_one();
  }

  // The sole sender's send: claim_room's claim with plain stores, in a fast
  // section of the tail's sole_writer. False (nothing sent): take the
  // general path, which handles permits, a marked tail, no room and a
  // revoked sole sender.
  [[gnu::noinline]] bool send_alone(T& msg) {
    // seq_cst: as claim_room's loads (the Dekker pair of retire_segment()).
    const std::size_t word = tail_.value.word.load(std::memory_order_seq_cst);
    if (permits_of(word) != 0 || (pos_of(word) & mark_bit_) != 0) return false;
    const std::size_t tail = pos_of(word);
    slot* s = nullptr;
    if (room_at(tail, s) != room::free) return false;
    sole_writer& sole = tail_.value.sole;
    if (!sole.enter()) return false;
    // Nobody else writes the word while we own it. We may have, if code
    // that room_at() ran (an allocator) sent on this channel: then the slot
    // it found is no longer the tail's. relaxed: our own store.
    if (tail_.value.word.load(std::memory_order_relaxed) != word) {
      sole.leave();
      return false;
    }
    const std::size_t next = next_pos(tail);
    if (recycles_ && (next & seg_mask()) == 0) {
      // The store that moves the front into the next segment is the
      // senders' half of retire_segment()'s Dekker pair (a CAS elsewhere):
      // seq_cst, before our next send's load of that segment's entry.
      tail_.value.word.store(moved_word(word, next), std::memory_order_seq_cst);
    } else {
      // release: a writer that ends our ownership, or a receiver's query,
      // reads the word after this store.
      tail_.value.word.store(moved_word(word, next), std::memory_order_release);
    }
    sole.leave();
    publish(*s, tail, msg);
    return true;
  }

  // Writes `msg` into a free slot (moving from it) unless full or
  // disconnected.
  push_result try_push(T& msg) { return claim_room<false>(&msg); }

  // Reserves the slot just past the permits' ones for one more permit,
  // unless full or disconnected (push_result::sent: reserved).
  push_result try_reserve_slot() { return claim_room<true>(nullptr); }

  // The two above: room at the tail for a send, or (Reserve) for one more
  // permit. With permits out, the slot at the tail is one of theirs, and the
  // one just past theirs must be free: a send takes the tail's slot and the
  // permits move up by one; a reservation holds that one too.
  template <bool Reserve>
  push_result claim_room([[maybe_unused]] T* msg) {
    // The sole sender sends with plain stores (see "Sole sender" in the
    // header); any other sender ends that first. take() keeps the thread
    // that already is the sole sender.
    sole_writer& sole = tail_.value.sole;
    if (Reserve ? sole.held_here() : sole.take()) {
      if constexpr (!Reserve) {
        if (send_alone(*msg)) return push_result::sent;
      }
    } else {
      sole.end();
    }
    backoff bo;
    // seq_cst loads of the tail word (here and on a failed CAS): a sender's
    // half of the Dekker pair of retire_segment(), with room_at's entry load.
    std::size_t word = tail_.value.word.load(std::memory_order_seq_cst);
    for (;;) {
      const std::size_t tail = pos_of(word);
      if ((tail & mark_bit_) != 0) return push_result::disconnected;
      const std::size_t permits = permits_of(word);
      if (Reserve && permits == max_permits) return push_result::ceiling;
      slot* s = nullptr;
      const room found = room_at(permits == 0 ? tail : advance(tail, permits), s);
      switch (found) {
        case room::free: {
          const std::size_t next = Reserve ? word + 1 : moved_word(word, next_pos(tail));
          // seq_cst: totally ordered with mark_tail() and with the receiver's
          // registration re-check (the Dekker pair of waiting/protocol.hpp).
          if (tail_.value.word.compare_exchange_weak(word, next, std::memory_order_seq_cst,
                                                     std::memory_order_seq_cst)) {
            if constexpr (!Reserve) {
              if (permits != 0) {
                const std::size_t index = tail & (mark_bit_ - 1);
                s = &slot_at(claimed_segment(index), index);
              }
              publish(*s, tail, *msg);
            }
            return push_result::sent;
          }
          bo.spin();
          break;
        }
        case room::full:
        case room::installing: {
          // Only if the tail has not moved: a sender that read the tail long
          // ago may have read a recycled segment's stamps.
          const std::size_t now = tail_.value.word.load(std::memory_order_seq_cst);
          if (now != word) {
            word = now;
            break;
          }
          return found == room::full ? push_result::full : push_result::installing;
        }
        case room::stale:
          bo.snooze();
          word = tail_.value.word.load(std::memory_order_seq_cst);
          break;
      }
    }
  }

  [[nodiscard]] bool at_permit_ceiling() const noexcept {
    return permits_of(tail_.value.word.load(std::memory_order_relaxed)) == max_permits;
  }

  // For a reservation registered at the ceiling: will a permit's send or
  // release notify? seq_cst: the re-check half of the Dekker pair with
  // their RMW on the tail word.
  [[nodiscard]] readiness ceiling_readiness() const noexcept {
    const std::size_t word = tail_.value.word.load(std::memory_order_seq_cst);
    if ((pos_of(word) & mark_bit_) != 0 || permits_of(word) < max_permits) return readiness::ready;
    return readiness::wait;
  }

  // For a registered sender (a reservation if `reserving`): is there room
  // (or a disconnect), or will the receiver's (or the segment installer's,
  // or a permit's) notify come?
  [[nodiscard]] readiness room_readiness(bool reserving) const noexcept {
    // seq_cst loads: the re-check half of the Dekker pairs (see waiting/protocol.hpp).
    const std::size_t word = tail_.value.word.load(std::memory_order_seq_cst);
    const std::size_t tail = pos_of(word);
    if ((tail & mark_bit_) != 0) return readiness::ready;
    const std::size_t permits = permits_of(word);
    // Try again: then wait in ceiling_waiters.
    if (reserving && permits == max_permits) return readiness::ready;
    const std::size_t probe = advance(tail, permits);
    const std::size_t index = probe & (mark_bit_ - 1);
    const slot* s = segments_[index >> seg_shift_].load(std::memory_order_seq_cst);
    // The installer's or the receiver's notify_all follows its entry store.
    if (s == installing() || s == checking()) return readiness::wait;
    if (!is_segment(s)) return readiness::ready;  // we may install it ourselves
    const std::size_t stamp = slot_at(s, index).stamp.load(std::memory_order_seq_cst) + index;
    // Not full, or a stale tail: try again.
    const std::size_t behind = next_lap_pos(stamp);
    if (behind != probe + 1 && behind != probe) return readiness::ready;
    // Full (room_at's case). If head has not passed the slot, room comes
    // with the receiver's head store, followed by its notify (Dekker): wait
    // if that store is seq_cst (head_fenced, which the receiver stores
    // after every light receive before it: acquire), else ask for seq_cst
    // stores and poll (the heavy fence pairs with the light fence of a
    // light receive's notify). If head has passed the slot, the receiver is
    // taking the message out (user code) and frees the slot with a release
    // store: poll. The mode first: its acquire must come before the head load.
    std::uint8_t mode = head_.value.head_mode.load(std::memory_order_acquire);
    const std::size_t head = head_.value.pos.load(std::memory_order_seq_cst);
    if (next_lap_pos(head) != probe) return readiness::poll;
    if (mode == head_fenced) return readiness::wait;
    if (mode == head_light) {
      head_.value.head_mode.compare_exchange_strong(mode, head_fence_asked,
                                                    std::memory_order_seq_cst);
    }
    return readiness::poll;
  }

  // Returns true if this call marked the tail (with `also`, more low bits).
  // seq_cst: totally ordered with every reservation CAS (see claim_room).
  // A tail marked already (the other side left or closed first) needs no
  // read-modify-write: the mark is in the word's order before our load, and
  // whoever marked woke the waiters there can be (the last sender leaving
  // wakes only the receiver: nobody else waits without a sender handle).
  bool mark_tail(std::size_t also = 0) noexcept {
    const std::size_t mark = make_word(mark_bit_, 0);
    const std::size_t seen = tail_.value.word.load(std::memory_order_seq_cst);
    if ((seen & (mark | also)) == (mark | also)) return false;
    tail_.value.sole.end_unless_mine();  // a write (see the header)
    return (tail_.value.word.fetch_or(mark | also, std::memory_order_seq_cst) & mark) == 0;
  }

  // Destroys every queued message. Receiver only, after the tail is marked:
  // no slot can be reserved any more, and slots reserved before the mark are
  // waited for until written (parked if their senders are slow).
  void discard_all() noexcept {
    std::size_t head = head_.value.pos.load(std::memory_order_relaxed);
    const std::size_t tail = pos_of(tail_.value.word.load(std::memory_order_seq_cst)) & ~mark_bit_;
    while (head != tail) {
      const std::size_t index = head & (mark_bit_ - 1);
      // A reserved slot's segment is installed (the sender installed it
      // before reserving), and its writer notifies receivers_ when done.
      slot& s = slot_at(claimed_segment(index), index);
      // acquire: pairs with the writer's release of the stamp.
      wait_for_peer(receivers_, [&] {
        return s.stamp.load(std::memory_order_acquire) + index == head + 1;
      });
      s.msg.destroy();
      head = next_pos(head);
    }
    head_.value.pos.store(head, std::memory_order_release);
  }

  struct receiver_side {
    std::atomic<std::size_t> pos{0};
    receive_pacer pacer;
    receive_stash<T> stash;  // a message a cancelled receive gave back
    // Senders waiting for the receiving side to stop. Here, not in the cold
    // line: only close() and those rare waiters touch it, and the cold line
    // must keep room for the counter's fields (counter.hpp).
    wait_queue closed_watchers;
    // Reservations blocked on the permit ceiling (32767 out): as rare, so
    // here too.
    wait_queue ceiling_waiters;
    // A receive is moving a message out of its slot (take_written): a
    // receive re-entered from that message's code must not retire the
    // segment, whose slot is not free yet.
    bool taking = false;
    // How receives store head (see "Light head" in the header): head_light
    // until a sender about to wait for room asks (head_fence_asked), then
    // head_fenced from the receiver's next receive on. Never goes back.
    mutable std::atomic<std::uint8_t> head_mode{head_light};
  };
  cache_padded<receiver_side> head_;  // receiver-owned
  struct sender_side {
    std::atomic<std::size_t> word{0};  // the tail word (see the header)
    // Whether one thread sends with plain stores (see "Sole sender").
    sole_writer sole;
    // Set by the first message written in a lap after the first (relaxed:
    // read only by the destructor, which every sender's handle release
    // happens before). Until then the slots from the tail's index on were
    // never written, and a segment handed on needs only its used prefix
    // cleared (slots_written). Beside the word: a sender reads it right
    // after its CAS took that line.
    std::atomic<bool> lapped{false};
    // Set (seq_cst) by the first permit dropped unused, before its slot is
    // given back: from then on no segment is retired (see "Recycling").
    std::atomic<bool> permit_released{false};
    // The spare stack (the second half of the segment table): pushed by the
    // receiver, taken by installing senders, once a segment each. Here, where
    // installing senders already are, and not in the receiver's line, which
    // a large T fills.
    spin_lock spare_lock;
    std::size_t spare_count = 0;
    // A segment was retired: segments may serve any index (slots_written).
    // Read by the destructor only.
    bool recycled = false;
    // The arena of a large ring, or null (set by the constructor), and how
    // many segments were carved from it (under spare_lock): installing
    // senders, already here.
    slot* arena = nullptr;
    std::size_t arena_carved = 0;
    std::size_t arena_lead = 0;  // the arena's offset into its block
  };
  cache_padded<sender_side> tail_;  // senders
  // The whole ring of a channel whose slots fit in one line (bounded(1) to
  // bounded(8) of 8-byte messages, with 128-byte lines), else its segment
  // table when that fits (up to 16 segments), else unused: either way one
  // heap allocation fewer to make and free per channel. A line of its own:
  // its slots are written by senders and read by the receiver; its table is
  // read by every operation and written only when a segment is installed.
  // (cache_padded aligns it to the line, enough for any slot that fits.)
  struct ring_line {
    std::byte bytes[SLUICE_CACHE_LINE];
  };
  cache_padded<ring_line> ring_line_;

  // Read-mostly fields share the last cache line: constants read by every
  // operation, and the wait queues, whose emptiness hints are read by every
  // operation and written only when someone blocks.
  std::size_t cap_;
  std::size_t mark_bit_ = 0;
  std::size_t one_lap_ = 0;
  unsigned seg_shift_ = 0;
  bool mapped_ = false;  // segments come from map_pages, not the heap
  bool recycles_ = false;  // emptied segments are retired (a table of its own)
  std::size_t seg_count_ = 0;
  // The segment table, installed by senders (and, in a ring that recycles,
  // retired by the receiver, see the header): only_segment_
  // when there is one segment, else the ring line when it fits, else an
  // array of its own (owned: freed by the destructor). Raw, not a
  // unique_ptr: the fields here must leave the counter's two words room
  // in this last cache line (counter.hpp).
  std::atomic<slot*>* segments_ = nullptr;
  std::atomic<slot*> only_segment_{nullptr};
  wait_queue senders_;    // senders blocked on a full channel
  wait_queue receivers_;  // the blocked receiver, if any
};

}  // namespace sluice::detail
