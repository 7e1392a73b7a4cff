// sluice/config.hpp - version and platform knobs shared by every header.
//
// Invariants: nothing here allocates or waits; every macro is prefixed
// SLUICE_. The knobs (SLUICE_CACHE_LINE, SLUICE_CHECK_RECEIVER,
// SLUICE_CHUNK_CACHE_BYTES, SLUICE_HUGE_PAGES, and SLUICE_YIELD_BUDGET_US in
// backoff.hpp) may be
// predefined by the user to override their defaults, with one value in every
// translation unit of a program; the version numbers and SLUICE_TSAN (set
// from the compiler's sanitizer flags) are facts, not knobs.
#pragma once

#define SLUICE_VERSION_MAJOR 0
#define SLUICE_VERSION_MINOR 1
#define SLUICE_VERSION_PATCH 0

// Destructive interference size used to keep independently written fields on
// separate cache lines. 128 rather than 64 on x86-64 because the adjacent-line
// prefetcher pulls cache lines in pairs (crossbeam and folly make the same
// choice); 64 elsewhere.
#ifndef SLUICE_CACHE_LINE
#  if defined(__x86_64__) || defined(_M_X64) || defined(__aarch64__)
#    define SLUICE_CACHE_LINE 128
#  else
#    define SLUICE_CACHE_LINE 64
#  endif
#endif

// Checks that a receiver's receiving operations are not run by two threads
// at once (a precondition: the receiver is for one thread at a time), and
// aborts with a message naming the mistake instead of corrupting the
// channel. On by default in builds without NDEBUG; it costs two atomic
// operations per receive. The check's flag is in every build, so translation
// units compiled with and without it share one layout.
#ifndef SLUICE_CHECK_RECEIVER
#  ifdef NDEBUG
#    define SLUICE_CHECK_RECEIVER 0
#  else
#    define SLUICE_CHECK_RECEIVER 1
#  endif
#endif

// The most memory the process keeps from destroyed channels for the next
// ones to reuse (memory/chunk_cache.hpp). A program that makes, fills and
// drops channels of several MiB again and again can raise it (to a little
// more than one such channel's slots) so that each reuses the last one's
// pages instead of paying the kernel for fresh ones; 0 keeps nothing.
// Each thread also keeps one 4 KiB segment of its own in front of it
// (memory/thread_chunk.hpp) unless the ceiling is below 4 KiB.
// A plain byte count (33554432) or a 64-bit expression (32ull << 20).
#ifndef SLUICE_CHUNK_CACHE_BYTES
#  define SLUICE_CHUNK_CACHE_BYTES (2ull << 20)  // 2 MiB
#endif

// Whether an unbounded channel whose queue spans 2 MiB of blocks or more
// takes them from 2 MiB regions asked to be transparent huge pages
// (memory/block_source.hpp): much cheaper fresh memory for long queues, but
// where the kernel compacts memory to find a huge page on a fault (Linux's
// `defrag` setting), the sender that maps such a region may wait for it.
// 0 keeps such queues on regions of 256 KiB (4 KiB pages), as before.
#ifndef SLUICE_HUGE_PAGES
#  define SLUICE_HUGE_PAGES 1
#endif

// ThreadSanitizer detection (GCC defines __SANITIZE_THREAD__, Clang exposes
// __has_feature). Used only to shorten spin phases that are pointless under
// the sanitizer's scheduler.
#undef SLUICE_TSAN
#if defined(__SANITIZE_THREAD__)
#  define SLUICE_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define SLUICE_TSAN 1
#  endif
#endif
#if !defined(SLUICE_TSAN)
#  define SLUICE_TSAN 0
#endif
