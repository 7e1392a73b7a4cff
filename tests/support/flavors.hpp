// The five channel shapes every conformance test runs on: unbounded,
// rendezvous, bounded(1), bounded(4), and a bound spanning several segments.
#pragma once

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <optional>
#include <string>

namespace sluice_test {

struct unbounded {
  static constexpr const char* name = "unbounded";
  static constexpr bool buffered = true;
  static constexpr bool bounded = false;
  static constexpr std::optional<std::size_t> cap = std::nullopt;
  template <class T>
  static auto make() { return sluice::channel<T>(); }
};

struct rendezvous {
  static constexpr const char* name = "rendezvous";
  static constexpr bool buffered = false;
  static constexpr bool bounded = true;
  static constexpr std::optional<std::size_t> cap = 0;
  template <class T>
  static auto make() { return sluice::sync_channel<T>(0); }
};

struct bounded1 {
  static constexpr const char* name = "bounded1";
  static constexpr bool buffered = true;
  static constexpr bool bounded = true;
  static constexpr std::optional<std::size_t> cap = 1;
  template <class T>
  static auto make() { return sluice::sync_channel<T>(1); }
};

struct bounded4 {
  static constexpr const char* name = "bounded4";
  static constexpr bool buffered = true;
  static constexpr bool bounded = true;
  static constexpr std::optional<std::size_t> cap = 4;
  template <class T>
  static auto make() { return sluice::sync_channel<T>(4); }
};

// A bound large enough to span several lazily allocated segments.
struct bounded_large {
  static constexpr const char* name = "bounded_large";
  static constexpr bool buffered = true;
  static constexpr bool bounded = true;
  static constexpr std::optional<std::size_t> cap = 5000;
  template <class T>
  static auto make() { return sluice::sync_channel<T>(5000); }
};

// Every flavor, for typed test suites.
using all_flavors = ::testing::Types<unbounded, rendezvous, bounded1, bounded4, bounded_large>;

struct flavor_name {
  template <class F>
  static std::string GetName(int) { return F::name; }
};

}  // namespace sluice_test
