// One knob for stress sizes: SLUICE_STRESS_SCALE (default 1) multiplies
// iteration counts; sanitizer builds run the same counts, only slower.
#pragma once

#include <cstdint>
#include <cstdlib>

namespace sluice_test {

inline std::int64_t stress_scale() {
  const char* s = std::getenv("SLUICE_STRESS_SCALE");
  const long long v = s != nullptr ? std::atoll(s) : 1;
  return v > 0 ? v : 1;
}

}  // namespace sluice_test
