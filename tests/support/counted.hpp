// counted: a message type that proves every message is destroyed exactly once.
//
// Each live object owns a token; moving transfers the token. The registry
// counts tokens created and tokens destroyed, so at any quiescent point
// created - destroyed is the number of messages alive, and a double
// destruction or a leak shows up as a mismatch.
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

// Move-only, not default constructible, not assignable.
class counted {
 public:
  explicit counted(std::int64_t v) : value_(v), owns_(true) { counted_registry::created++; }
  counted(counted&& o) noexcept : value_(o.value_), owns_(std::exchange(o.owns_, false)) {}
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  counted& operator=(counted&&) = delete;
  ~counted() {
    if (owns_) counted_registry::destroyed++;
  }

  [[nodiscard]] std::int64_t value() const noexcept { return value_; }
  [[nodiscard]] bool owns() const noexcept { return owns_; }

 private:
  std::int64_t value_;
  bool owns_;
};

// Checks at scope exit that the scope created and destroyed equally many.
class leak_check {
 public:
  leak_check() : base_(counted_registry::alive()) {}
  [[nodiscard]] std::int64_t leaked() const { return counted_registry::alive() - base_; }

 private:
  std::int64_t base_;
};

}  // namespace sluice_test
