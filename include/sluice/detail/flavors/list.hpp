// sluice/detail/flavors/list.hpp - the unbounded flavor: a linked list of blocks.
//
// Algorithm: crossbeam-channel's list flavor (itself after Vyukov's unbounded
// MPMC queue), narrowed to one consumer. Messages live in blocks of
// `block_cap` slots; senders reserve a slot by advancing `tail` (CAS), then
// write it and set its `written` flag; the single receiver walks `head` and
// frees (or recycles) each block once it has read its last slot, so memory
// follows the queue length, not its history.
//
// Position encoding (head and tail indices):
//   index >> shift            the position; (pos % lap) is the offset in its
//                             block; offset == block_cap is a transient state
//                             in which a sender installs the next block
//   tail & mark_bit           the channel is disconnected (no more sends)
//   tail & receiver_left_bit  the receiver left quietly (with the mark)
//   tail & sender_waited_bit  a sender once watched for the receiving side
//                             to stop (sticky)
//   head & mark_bit           the head block is known not to be the last one,
//                             so the receiver may skip comparing with tail
//
// Quiet leave: as the bounded flavor's (array.hpp, "Quiet leave"), a
// receiver that goes first from an empty channel that no sender ever
// watched marks the tail and says it left in one CAS, its last access, and
// its hold on the channel passes to the last other handle (counter.hpp).
// Senders here wait only for a block's installer, never for the receiver,
// so only a closed watcher sets the sticky bit.
//
// Invariants:
// - A slot is written by exactly one sender (the one whose CAS reserved it)
//   and read by the receiver exactly once; `written` (release/acquire)
//   carries the message between them. A block's flags are all false when
//   a sender installs it: fresh, or cleared by recycle() after every slot
//   was read.
// - The first block is installed lazily, so an idle channel owns no block:
//   by the sender that reserves the first slot, with the block allocated
//   before and two plain stores after (no compare-exchange); a sender that
//   finds the tail moved but no block waits for those stores. A block is
//   freed only by the receiver, after all its slots were read, which is
//   after every sender that reserved a slot in it has finished with it.
// - After the tail is marked, no new slot is reserved; slots reserved before
//   the mark are still written, and are then received or destroyed.
// - The receiver never waits for a sender inside a receive: a slot reserved
//   but not yet written (its sender is inside T's move constructor, or
//   descheduled) reads as empty (recv_status::stalled); head moves past a
//   slot only once it is written. Its writer's `written` store is what a
//   blocked receiver re-checks (waiting/protocol.hpp, readiness::poll).
// - A sender that finds another sender installing the next block (a window
//   of a few stores: blocks are allocated before the last slot is reserved)
//   waits for it, parked if need be: the installer notifies `senders_`.
#pragma once

#include <sluice/detail/waiting/backoff.hpp>
#include <sluice/detail/memory/block_source.hpp>
#include <sluice/detail/flavors/buffered_steps.hpp>
#include <sluice/detail/flavors/receive_stash.hpp>
#include <sluice/detail/waiting/protocol.hpp>
#include <sluice/detail/waiting/thread_wait.hpp>
#include <sluice/detail/memory/cache_padded.hpp>
#include <sluice/detail/waiting/deadline.hpp>
#include <sluice/detail/waiting/receive_pacer.hpp>
#include <sluice/detail/memory/storage.hpp>
#include <sluice/detail/waiting/wait_queue.hpp>
#include <sluice/error.hpp>

#include <atomic>
#include <cstddef>
#include <expected>
#include <optional>
#include <stop_token>

namespace sluice::detail {

template <class T>
class list_channel {
  static constexpr std::size_t shift = 3;
  static constexpr std::size_t mark_bit = 1;
  static constexpr std::size_t receiver_left_bit = 2;
  static constexpr std::size_t sender_waited_bit = 4;
  static constexpr std::size_t lap = 32;
  static constexpr std::size_t block_cap = lap - 1;
  static constexpr std::size_t one = std::size_t{1} << shift;

  // A block's `written` flags are an array of their own, before the
  // messages, not a flag beside each message: a flag beside an 8-byte
  // message pads its slot to 16 bytes, so a block of flags and messages
  // apart is 296 bytes, not 512, for 8-byte messages (the memory a stream
  // or a burst touches, and the kernel's page work for it, nearly halve),
  // and a receiver trailing its senders reads the flags' line without
  // writing it (a recycled block's flags are cleared once, in recycle()).
  // Measured, 10 alternated runs of 100,000 messages, unbounded: spsc
  // 0.64x, mpsc 0.82x the time of flag-beside-message slots (medians of
  // the pairs' ratios).
  struct block {
    std::atomic<block*> next{nullptr};  // set by the sender that fills slot block_cap - 1
    void* origin = nullptr;             // the block_source region, or null (heap)
    // written[i]: set once the message is in msgs[i]; cleared when recycled.
    // A new block's flags are false through this initialiser: block_source
    // constructs every block it hands out, so keep the `{}`.
    std::atomic<bool> written[block_cap]{};
    storage<T> msgs[block_cap];
  };

  struct position {
    std::atomic<std::size_t> index{0};
    std::atomic<block*> blk{nullptr};
  };

 public:
  using value_type = T;

  // User-provided, not defaulted: value-initialization (the counter's
  // `chan_()`) then runs the member initializers only, instead of first
  // zeroing the whole padded object (a 384-byte `rep stos`, a quarter of
  // the time of making and dropping a small channel; measured).
  list_channel() noexcept {}  // NOLINT(modernize-use-equals-default)
  list_channel(const list_channel&) = delete;
  list_channel& operator=(const list_channel&) = delete;

  ~list_channel() {
    // Both sides are gone: the receiver's disconnect already destroyed every
    // message and freed the blocks it walked, or it left quietly from an
    // empty channel (nothing to destroy). What remains is the spare block,
    // and the head block after a quiet leave (null after a discard: no
    // sender can install one after it).
    blocks_.release(head_.value.blk.load(std::memory_order_relaxed));
    blocks_.release(spare_.load(std::memory_order_relaxed));
  }

  // --- sending --------------------------------------------------------------

  std::expected<void, try_send_error<T>> try_send(T&& msg) {
    if (push(msg)) return {};
    return std::unexpected(
        try_send_error<T>{try_send_error<T>::reason_t::disconnected, std::move(msg)});
  }

  // Never blocks: the list is never full.
  std::expected<void, send_timeout_error<T>> send(T&& msg, const deadline&) {
    if (push(msg)) return {};
    return std::unexpected(
        send_timeout_error<T>{send_timeout_error<T>::reason_t::disconnected, std::move(msg)});
  }

  // The steps of a send (waiting/protocol.hpp), for a select's send arm:
  // the list is never full, so an attempt always finishes (sent, or
  // disconnected with `msg` left to the caller) and nothing ever waits.
  class send_steps {
   public:
    send_steps(list_channel& ch, T& msg) noexcept : ch_(&ch), msg_(&msg) {}

    bool attempt() {
      sent_ = ch_->push(*msg_);
      return true;
    }
    static readiness enlist(wait_entry&) noexcept { return readiness::ready; }
    static readiness recheck() noexcept { return readiness::ready; }
    static void delist(wait_entry&) noexcept {}
    static void completed() noexcept {}
    static void relay() noexcept {}
    [[nodiscard]] static bool hands_off() noexcept { return false; }
    [[nodiscard]] static bool spins() noexcept { return true; }

    [[nodiscard]] bool sent() const noexcept { return sent_; }

   private:
    list_channel* ch_;
    T* msg_;
    bool sent_ = false;
  };

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
    const std::size_t head = head_.value.index.load(std::memory_order_relaxed);
    const std::size_t offset = (head >> shift) % lap;
    std::size_t new_head = head + one;

    if ((head & mark_bit) == 0) {
      // No fence before this load (crossbeam has one, for its many
      // receivers): head is ours alone, and a tail read late is still at
      // or past head, since each slot head passed was written, after its
      // reservation, and read with acquire. A stale tail reads as empty
      // (or not yet disconnected) for a send or disconnect that does not
      // happen before this receive, which a later call sees; a blocked
      // receiver re-checks with seq_cst loads (recv_readiness). The fence
      // cost as much as a read-modify-write on every receive that caught
      // up with the senders (a receive into a block the senders are still
      // filling).
      // relaxed: the tail is compared only; the slot's flag (acquire)
      // carries the message.
      const std::size_t tail = tail_.value.index.load(std::memory_order_relaxed);
      if ((head >> shift) == (tail >> shift)) {
        status = (tail & mark_bit) == 0 ? recv_status::empty : recv_status::disconnected;
        return std::unexpected(status == recv_status::empty ? if_empty : if_disconnected);
      }
      // Head and tail in different blocks: the head block is not the last.
      if ((head >> shift) / lap != (tail >> shift) / lap) new_head |= mark_bit;
    }

    // acquire: pairs with the first sender's release store of the block
    // (null while that sender is still installing it).
    block* blk = head_.value.blk.load(std::memory_order_acquire);
    // acquire: pairs with the writer's release; the message, and for the
    // block's last slot the next block's pointer, are then visible.
    if (blk == nullptr || !blk->written[offset].load(std::memory_order_acquire)) {
      status = recv_status::stalled;
      return std::unexpected(if_empty);
    }

    std::expected<T, E> result(std::in_place, take_written(blk, offset, new_head));
    status = recv_status::message;
    return result;
  }

  // Receives up to `max` messages without waiting, handing each to sink(T&&)
  // (recv_many): try_recv_as's steps, with the tail read
  // once per batch rather than once per message while the head block is the
  // last one. A tail read earlier only stops the batch early: every position
  // before it is reserved, and one not written yet ends the batch. A sink
  // that throws: its message goes to the stash (the next receive returns it
  // first), and the exception propagates.
  template <class Sink>
  std::size_t try_recv_batch(Sink& sink, std::size_t max) {
    std::size_t n = 0;
    if (max != 0 && head_.value.stash.holds()) [[unlikely]] {
      ++n;
      T msg = head_.value.stash.take();
      head_.value.stash.hand_to(sink, std::move(msg));
    }
    std::size_t tail = 0;
    bool tail_read = false;
    while (n < max) {
      const std::size_t head = head_.value.index.load(std::memory_order_relaxed);
      const std::size_t offset = (head >> shift) % lap;
      std::size_t new_head = head + one;
      if ((head & mark_bit) == 0) {
        if (!tail_read) {
          // No fence, relaxed: as in try_recv_as.
          tail = tail_.value.index.load(std::memory_order_relaxed);
          // A tail at the transient offset (its sender reserved the block's
          // last slot and is stepping over it) is the next block's first
          // position: head skips that offset, and once past the last slot
          // it would otherwise compare with a tail in the block before and
          // mark itself "not in the last block" (the receiver then never
          // read the tail again, and missed the disconnection).
          if (((tail >> shift) % lap) == block_cap) tail += one;
          tail_read = true;
        }
        if ((head >> shift) == (tail >> shift)) break;
        if ((head >> shift) / lap != (tail >> shift) / lap) new_head |= mark_bit;
      }
      // acquire: as in try_recv_as.
      block* blk = head_.value.blk.load(std::memory_order_acquire);
      if (blk == nullptr || !blk->written[offset].load(std::memory_order_acquire)) break;
      T msg = take_written(blk, offset, new_head);
      ++n;
      head_.value.stash.hand_to(sink, std::move(msg));
    }
    return n;
  }

  // Whether the slot at head holds a written message. Receiver only.
  // acquire by default: pairs with the first sender's release store of the
  // block, and with the writer's release store of `written`.
  [[nodiscard]] bool next_written(
      std::memory_order order = std::memory_order_acquire) const noexcept {
    const std::size_t head = head_.value.index.load(std::memory_order_relaxed);
    const block* blk = head_.value.blk.load(order);
    return blk != nullptr && blk->written[(head >> shift) % lap].load(order);
  }

  // For a registered receiver: is the next message written, or will a
  // sender's notify come? Receiver only.
  [[nodiscard]] readiness recv_readiness() const noexcept {
    const std::size_t head = head_.value.index.load(std::memory_order_relaxed);
    // seq_cst: the re-check half of the Dekker pair (see waiting/protocol.hpp).
    const std::size_t tail = tail_.value.index.load(std::memory_order_seq_cst);
    if ((head >> shift) == (tail >> shift)) {
      return (tail & mark_bit) != 0 ? readiness::ready : readiness::wait;
    }
    return next_written(std::memory_order_seq_cst) ? readiness::ready : readiness::poll;
  }

  template <class E>
  std::expected<T, E> recv_as(const deadline& d, const std::stop_token& stop, E if_timeout,
                              E if_disconnected, E if_cancelled) {
    return recv_buffered(*this, d, stop, if_timeout, if_disconnected, if_cancelled);
  }

  template <class E>
  using recv_steps = buffered_recv_steps<list_channel, E>;
  using closed_steps = detail::closed_steps<list_channel>;

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
      std::size_t tail = tail_.value.index.load(std::memory_order_seq_cst);
      std::size_t head = head_.value.index.load(std::memory_order_seq_cst);
      // A stable tail means head and tail were read at one consistent moment.
      if (tail_.value.index.load(std::memory_order_seq_cst) != tail) continue;
      tail &= ~mark_bit;
      head &= ~mark_bit;
      // Positions at offset block_cap count as the start of the next block.
      if (((tail >> shift) & (lap - 1)) == lap - 1) tail += one;
      if (((head >> shift) & (lap - 1)) == lap - 1) head += one;
      // Rebase both on head's block so the subtraction cannot wrap.
      const std::size_t base = ((head >> shift) / lap) * lap;
      const std::size_t t = (tail >> shift) - base;
      const std::size_t h = (head >> shift) - base;
      // Each full lap holds one unused offset.
      return t - h - t / lap + (head_.value.stash.holds() ? 1 : 0);
    }
  }

  [[nodiscard]] bool is_empty() const noexcept {
    const std::size_t head = head_.value.index.load(std::memory_order_seq_cst);
    const std::size_t tail = tail_.value.index.load(std::memory_order_seq_cst);
    return (head >> shift) == (tail >> shift) && !head_.value.stash.holds();
  }
  [[nodiscard]] static constexpr bool is_full() noexcept { return false; }
  [[nodiscard]] static constexpr std::optional<std::size_t> capacity() noexcept {
    return std::nullopt;
  }
  [[nodiscard]] bool is_disconnected() const noexcept {
    return (tail_.value.index.load(std::memory_order_seq_cst) & mark_bit) != 0;
  }

  // --- disconnection ------------------------------------------------------------

  // The last sender left: wake the receiver so it sees the end.
  void disconnect_senders() noexcept {
    if (mark_tail()) receivers_.disconnect();
  }

  // The receiver closed the channel: later sends fail; queued messages stay.
  // A pending asynchronous receive wakes too (it then receives what is
  // queued, or learns of the disconnection).
  void close() noexcept {
    if (mark_tail()) {
      head_.value.closed_watchers.disconnect();
      receivers_.disconnect();
    }
  }

  // The receiver left: later sends fail, queued messages are destroyed now.
  // With every sender gone (`senders_gone`) and their sends done before,
  // nobody is left to tell: no mark, no read-modify-write.
  void disconnect_receivers(bool senders_gone = false) noexcept {
    if (!senders_gone) close();
    discard_all();
    head_.value.stash.clear();
  }

  // The receiver goes while senders remain, and leaves quietly if it can:
  // nothing queued or stashed, no sender installing a block, no closed
  // watcher ever, no receive of its own pending; then disconnect_receivers()
  // would only mark the tail (its discard would free nothing: the head
  // block, if any, is the destructor's). True: marked, and the caller must
  // not touch the channel again. False: nothing changed.
  // seq_cst: as mark_tail(), totally ordered with every reservation and
  // with the sticky bit's read-modify-write; release, for whoever frees the
  // channel after reading the bit (receiver_left()).
  [[nodiscard]] bool leave_quietly() noexcept {
    if (head_.value.stash.holds() || receivers_.has_waiters()) return false;
    const std::size_t head = head_.value.index.load(std::memory_order_relaxed) & ~mark_bit;
    std::size_t tail = tail_.value.index.load(std::memory_order_seq_cst);
    // An empty channel's tail, with no flag: equal to head (a tail at a
    // block's transient offset never is).
    if (tail != head) return false;
    return tail_.value.index.compare_exchange_strong(tail, tail | mark_bit | receiver_left_bit,
                                                     std::memory_order_seq_cst,
                                                     std::memory_order_relaxed);
  }

  // Whether the receiver left quietly; asked once the tail is marked (see
  // counter.hpp). acquire: pairs with the quiet CAS.
  [[nodiscard]] bool receiver_left() const noexcept {
    return (tail_.value.index.load(std::memory_order_acquire) & receiver_left_bit) != 0;
  }

  // A sender is about to watch for the receiving side to stop: from now on
  // the receiver leaves the long way, which wakes it. Sticky, once per
  // channel. seq_cst: ordered with the quiet CAS in the word's order.
  void note_sender_wait() noexcept {
    if ((tail_.value.index.load(std::memory_order_relaxed) & sender_waited_bit) != 0) return;
    tail_.value.index.fetch_or(sender_waited_bit, std::memory_order_seq_cst);
  }

 private:
  // Returns true if this call marked the tail.
  // seq_cst: a sender's reservation CAS and this RMW are totally ordered, so
  // every slot is either reserved before the mark (and then written) or the
  // reservation fails.
  // A tail marked already (the other side left or closed first) needs no
  // read-modify-write: the mark is in the word's order before our load, and
  // whoever marked woke the waiters there can be (the last sender leaving
  // wakes only the receiver: nobody else waits without a sender handle).
  bool mark_tail() noexcept {
    if ((tail_.value.index.load(std::memory_order_seq_cst) & mark_bit) != 0) return false;
    return (tail_.value.index.fetch_or(mark_bit, std::memory_order_seq_cst) & mark_bit) == 0;
  }

  // Reserves a slot and writes `msg` into it (moving from it) unless the
  // channel is disconnected. May throw std::bad_alloc before reserving, in
  // which case `msg` is untouched.
  bool push(T& msg) {
    backoff bo;
    std::size_t tail = tail_.value.index.load(std::memory_order_acquire);
    block* blk = tail_.value.blk.load(std::memory_order_acquire);
    block* next_block = nullptr;  // allocated ahead when we may fill a block
    struct give_back {            // returns an unused pre-allocated block
      list_channel& ch;
      block*& b;
      ~give_back() {
        if (b != nullptr) ch.recycle(b);
      }
    } guard{*this, next_block};

    for (;;) {
      if ((tail & mark_bit) != 0) return false;
      const std::size_t offset = (tail >> shift) % lap;

      if (offset == block_cap) {  // another sender is installing the next block
        wait_for_next_block();
        tail = tail_.value.index.load(std::memory_order_acquire);
        blk = tail_.value.blk.load(std::memory_order_acquire);
        continue;
      }
      if (blk == nullptr && (tail >> shift) != 0) {  // another sender installs the first block
        wait_for_first_block();
        tail = tail_.value.index.load(std::memory_order_acquire);
        blk = tail_.value.blk.load(std::memory_order_acquire);
        continue;
      }
      // Allocate before reserving the block's last slot, so the window in
      // which others wait for the next block is as short as possible; and
      // the first block before reserving the first slot, for the same reason.
      if ((offset + 1 == block_cap || blk == nullptr) && next_block == nullptr) {
        next_block = allocate_block(tail);
      }
      const std::size_t new_tail = tail + one;
      // seq_cst: pairs with mark_tail() and with the receiver's registration
      // (the Dekker pair of waiting/protocol.hpp: this reservation is the
      // progress it must not miss).
      if (tail_.value.index.compare_exchange_weak(tail, new_tail, std::memory_order_seq_cst,
                                                  std::memory_order_acquire)) {
        if (blk == nullptr) {
          // We took the first slot: install the first block. Plain stores,
          // not a compare-exchange: senders that see the tail moved and no
          // block wait for it (wait_for_first_block); the receiver reads
          // the head block only once a slot of it is written.
          blk = next_block;
          next_block = nullptr;
          // release: whoever reads either pointer sees the block's cleared slots.
          head_.value.blk.store(blk, std::memory_order_release);
          tail_.value.blk.store(blk, std::memory_order_release);
          // The waiters' wake-up. A plain store is this progress: notify_all's
          // light fence pairs with their heavy one (wait_for_peer).
          senders_.notify_all();
        } else if (offset + 1 == block_cap) {
          // We took the last slot: install the next block and step the tail
          // over the transient offset. fetch_add (not store) keeps a mark
          // that a concurrent disconnect may have set.
          block* nb = next_block;
          next_block = nullptr;
          tail_.value.blk.store(nb, std::memory_order_release);
          // seq_cst: release, so senders that see the new index see the
          // block; and the progress half of the Dekker pair with senders
          // that registered to wait for it (wait_for_next_block).
          tail_.value.index.fetch_add(one, std::memory_order_seq_cst);
          blk->next.store(nb, std::memory_order_release);
          senders_.notify_all();
        }
        blk->msgs[offset].construct(std::move(msg));
        // release: the receiver's acquire of `written` sees the message.
        blk->written[offset].store(true, std::memory_order_release);
        receivers_.notify_one();
        return true;
      }
      blk = tail_.value.blk.load(std::memory_order_acquire);
      bo.spin();
    }
  }

  // Waits while another sender installs the first block: it has reserved
  // the first slot with the block already allocated, and is two stores from
  // storing the pointer (then it notifies senders_), unless descheduled.
  [[gnu::noinline]] void wait_for_first_block() noexcept {
    // acquire: the block's cleared slots are seen with the pointer.
    wait_for_peer(senders_,
                  [&] { return tail_.value.blk.load(std::memory_order_acquire) != nullptr; });
  }

  // Waits while another sender installs the next block: it has reserved
  // the block's last slot and is a few stores from done, unless it was
  // descheduled there, hence the driver's park after its backoff.
  [[gnu::noinline]] void wait_for_next_block() noexcept {
    const auto installing = [&] {
      // seq_cst: the re-check half of the Dekker pair with the installer.
      return ((tail_.value.index.load(std::memory_order_seq_cst) >> shift) % lap) == block_cap;
    };
    queue_steps st(senders_, [&] { return !installing(); },
                   [&] { return installing() ? readiness::wait : readiness::ready; });
    wait_on(st, deadline::never());
  }

  // Discards every queued message. Receiver only, after the tail is marked.
  // Waits (parked if need be) for senders that reserved slots before the
  // mark to finish writing them; each notifies receivers_ when done.
  void discard_all() noexcept {
    // A sender that took a block's last slot before the mark is still
    // installing the next block; wait, or its block would leak. It then
    // writes that slot, which notifies us.
    std::size_t tail = 0;
    wait_for_peer(receivers_, [&] {
      // acquire: the installed block is seen with the index.
      tail = tail_.value.index.load(std::memory_order_acquire);
      return ((tail >> shift) % lap) != block_cap;
    });
    std::size_t head = head_.value.index.load(std::memory_order_relaxed);
    block* blk = nullptr;
    if ((head >> shift) != (tail >> shift)) {
      // Messages exist, so the first block does too, or is two stores away:
      // its installer reserved the first slot and stores the pointer before
      // writing that slot, whose notify_one() wakes us.
      wait_for_peer(receivers_, [&] {
        return head_.value.blk.load(std::memory_order_acquire) != nullptr;
      });
    }
    // Taken without a read-modify-write: the one writer besides us is the
    // first block's installer, once, and its store is done (waited for
    // above) or will never come (head == tail: no slot was reserved before
    // the mark, or no sender is left to reserve one).
    // acquire: pairs with the installer's release (the block's slots).
    blk = head_.value.blk.load(std::memory_order_acquire);
    if (blk != nullptr) head_.value.blk.store(nullptr, std::memory_order_relaxed);
    while ((head >> shift) != (tail >> shift)) {
      const std::size_t offset = (head >> shift) % lap;
      if (offset < block_cap) {
        // acquire: pairs with the writer's release store.
        wait_for_peer(receivers_,
                      [&] { return blk->written[offset].load(std::memory_order_acquire); });
        blk->msgs[offset].destroy();
      } else {
        // The block's last slot was written above, and its writer linked
        // the next block before writing it.
        block* next = blk->next.load(std::memory_order_acquire);
        blocks_.release(blk);
        blk = next;
      }
      head += one;
    }
    blocks_.release(blk);
    head_.value.index.store(head & ~mark_bit, std::memory_order_release);
  }

  // The end of every receive: moves head past the written slot `offset` of
  // `blk` (`new_head`, or the next block after the block's last slot), takes
  // the message and frees the slot. Receiver only. Always inlined: out of
  // line, a plain recv() took 1.14x the time (measured, drain row).
  [[gnu::always_inline]] T take_written(block* blk, std::size_t offset,
                                        std::size_t new_head) noexcept {
    if (offset + 1 == block_cap) {
      // Last slot of the block: move head to the next block, skipping the
      // transient offset block_cap. Its writer linked the next block before
      // writing the slot.
      block* next = blk->next.load(std::memory_order_acquire);
      std::size_t next_index = (new_head & ~mark_bit) + one;
      if (next->next.load(std::memory_order_relaxed) != nullptr) next_index |= mark_bit;
      head_.value.blk.store(next, std::memory_order_relaxed);
      // release: len() readers may compare with tail; nothing else hangs on it.
      head_.value.index.store(next_index, std::memory_order_release);
    } else {
      head_.value.index.store(new_head, std::memory_order_release);
    }
    T msg = blk->msgs[offset].take();
    if (offset + 1 == block_cap) {
      // While a huge region is being carved, the block source learns from
      // the queue's span (from the next block on) when the queue has
      // become short (block_source.hpp).
      recycle(blk, blocks_.carving_huge() ? span_from((new_head & ~mark_bit) + one)
                                          : block_source<block>::span_unknown);
    }
    return msg;
  }

  // A fresh block, reusing the spare one when there is one, for a sender
  // whose tail position is `tail`. Where a new one comes from depends on
  // how many blocks the queue spans, head's and tail's included
  // (block_source.hpp).
  block* allocate_block(std::size_t tail) {
    // relaxed: the exchange below is what takes the block; a spare missed
    // here is only a new block allocated (no exchange, a read-modify-write,
    // on the way to the first block of every channel).
    if (spare_.load(std::memory_order_relaxed) != nullptr) {
      // acquire: pairs with recycle()'s release, so its cleared flags and
      // null `next` are seen.
      if (block* b = spare_.exchange(nullptr, std::memory_order_acquire)) return b;
    }
    // relaxed: a hint only; a stale head (or a tail overtaken meanwhile)
    // only makes the queue look longer or empty.
    return blocks_.acquire(span_between(head_.value.index.load(std::memory_order_relaxed), tail));
  }

  // How many blocks the queue spans from head position `head` to tail
  // position `tail`, both included (at least one).
  static std::size_t span_between(std::size_t head, std::size_t tail) noexcept {
    const std::size_t head_block = (head >> shift) / lap;
    const std::size_t tail_block = (tail >> shift) / lap;
    return tail_block >= head_block ? tail_block - head_block + 1 : 1;
  }
  // The same from `head` to the tail now (receiver). relaxed: a hint only.
  std::size_t span_from(std::size_t head) const noexcept {
    return span_between(head, tail_.value.index.load(std::memory_order_relaxed));
  }

  // Keeps one drained block for the next allocation, releases any other, so
  // a burst's memory goes back as it is consumed.
  // Every slot of `b` was written and read, so no sender touches it any
  // more: its flags are cleared here, once, not by each receive.
  // `queued_blocks`: the queue's span, from the receiver that drained `b`.
  void recycle(block* b,
               std::size_t queued_blocks = block_source<block>::span_unknown) noexcept {
    b->next.store(nullptr, std::memory_order_relaxed);
    for (std::atomic<bool>& w : b->written) w.store(false, std::memory_order_relaxed);
    blocks_.release(spare_.exchange(b, std::memory_order_acq_rel), queued_blocks);
  }

  struct receiver_position : position {
    receive_pacer pacer;
    receive_stash<T> stash;  // a message a cancelled receive gave back
    // Senders waiting for the receiving side to stop. Here, not in the cold
    // line: only close() and those rare waiters touch it, and the cold line
    // must keep room for the counter's fields (counter.hpp).
    wait_queue closed_watchers;
  };
  cache_padded<receiver_position> head_;  // receiver-owned (the first sender sets blk once)
  cache_padded<position> tail_;    // senders
  // Cold fields share the last cache line: read by senders on each send
  // (receivers_'s emptiness hint) or touched once per block.
  wait_queue receivers_;           // the blocked receiver, if any
  wait_queue senders_;             // senders waiting for a block to be installed
  std::atomic<block*> spare_{nullptr};  // one drained block kept for reuse
  block_source<block> blocks_;     // where blocks come from and go back to
};

}  // namespace sluice::detail
