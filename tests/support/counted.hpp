// counted: a message type that proves every message is destroyed exactly once.
//
// Each live object owns a token; moving transfers the token. The registry
// counts tokens created and tokens destroyed, so at any quiescent point
// created - destroyed is the number of messages alive, and a double
// destruction or a leak shows up as a mismatch. basic_counted<V> is the same
// message with a value of type V (counted: std::int64_t).
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace sluice_test {

struct counted_registry {
  static inline std::atomic<std::int64_t> created{0};
  static inline std::atomic<std::int64_t> destroyed{0};
  static std::int64_t alive() { return created.load() - destroyed.load(); }
};

// Move-only, not default constructible, not assignable. The value type V
// sets the message's size: basic_counted<std::int32_t> is 8 bytes, for tests
// that depend on how many slots fit a segment.
template <class V>
class basic_counted {
 public:
  explicit basic_counted(V v) : value_(v), owns_(true) { counted_registry::created++; }
  basic_counted(basic_counted&& o) noexcept
      : value_(o.value_), owns_(std::exchange(o.owns_, false)) {}
  basic_counted(const basic_counted&) = delete;
  basic_counted& operator=(const basic_counted&) = delete;
  basic_counted& operator=(basic_counted&&) = delete;
  ~basic_counted() {
    if (owns_) counted_registry::destroyed++;
  }

  [[nodiscard]] V value() const noexcept { return value_; }
  [[nodiscard]] bool owns() const noexcept { return owns_; }

 private:
  V value_;
  bool owns_;
};

using counted = basic_counted<std::int64_t>;

// Checks at scope exit that the scope created and destroyed equally many.
class leak_check {
 public:
  leak_check() : base_(counted_registry::alive()) {}
  [[nodiscard]] std::int64_t leaked() const { return counted_registry::alive() - base_; }

 private:
  std::int64_t base_;
};

}  // namespace sluice_test
