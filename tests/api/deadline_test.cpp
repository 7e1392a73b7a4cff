// Deadlines and timeouts on every clock, rep and period (API.md §3: "Zero or
// negative means try once; a huge value means wait forever and never
// overflows").
//
// The contract tested here, for recv_timeout / recv_deadline on every flavor
// and send_timeout / send_deadline on the flavors that can wait (bounded,
// rendezvous):
//   - past: a time point already passed, time_point::min(), a timeout <= 0,
//     -inf or NaN tries once: timeout at once when nothing is ready, success
//     when a message (or, on a rendezvous, a blocked peer) is ready;
//   - far: duration::max(), time_point::max(), +inf and huge finite values of
//     any rep and period wait until the operation can complete (no overflow
//     turns them into "already passed");
//   - user clocks: the deadline is reached when Clock::now() reaches it; a
//     clock that does not advance never reaches it (and the wait does not
//     burn a CPU); a non-steady clock is re-read while waiting, so a jump
//     forward ends the wait and a jump back extends it.
//
// Every case runs on its own channel in its own thread, so a wrong
// implementation fails a check instead of hanging the suite; "far" cases run
// concurrently so that one ~100 ms "has not returned yet" window covers all.
//
// Each typed test runs on 7 shapes: recv_{unbounded,bounded1,bounded4,
// rendezvous} and send_{bounded1,bounded4,rendezvous}. Failure messages name
// the case (the clock, rep and period of the deadline).
#include "../support/flavors.hpp"
#include "../support/peer_probe.hpp"

#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <future>
#include <iomanip>
#include <limits>
#include <memory>
#include <optional>
#include <ratio>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using sys = std::chrono::system_clock;
using std::chrono::duration;
using std::chrono::nanoseconds;
using std::chrono::time_point;
using sluice::recv_timeout_error;
using sluice_test::thread_cpu_time;

using recv_result = std::expected<int, recv_timeout_error>;
using send_result = std::expected<void, sluice::send_timeout_error<int>>;

// How long a "far" operation must still be waiting before it is ended.
constexpr auto not_returned_window = 100ms;
// How long a "try once" operation may take before it counts as "waited".
constexpr auto prompt_bound = 1s;
// How long anything that should complete may take (sanitizer builds are slow).
constexpr auto completion_bound = 5s;
// Clock granularity allowed when checking that a short timeout waited long enough.
constexpr auto early_slack = 1ms;

// The value a sending test tries to send, and the value a receiving test is sent.
constexpr int sent_value = 7;
constexpr int delivered_value = 42;
// Values that fill a bounded channel before a send test: 100, 101, ...
constexpr int filler_base = 100;

// --- user clocks --------------------------------------------------------------

// What a clock declares besides now() (the Cpp17Clock requirements): a clock
// derives from this with its own type, rep, period and steadiness.
template <class Self, class Rep, class Period, bool Steady>
struct clock_members {
  using rep = Rep;
  using period = Period;
  using duration = std::chrono::duration<Rep, Period>;
  using time_point = std::chrono::time_point<Self, duration>;
  static constexpr bool is_steady = Steady;
};

// A clock that never advances. A clock that does not advance is not steady
// (is_steady promises a constant rate), and the library may not assume it
// reaches any deadline.
struct frozen_clock : clock_members<frozen_clock, std::int64_t, std::nano, false> {
  static time_point now() noexcept { return time_point(std::chrono::hours(1000)); }
};

// steady_clock shifted by an offset the test controls: it jumps forward and
// back. Each Tag is an independent clock.
template <int Tag>
struct offset_clock : clock_members<offset_clock<Tag>, std::int64_t, std::nano, false> {
  using typename offset_clock::clock_members::duration;
  using typename offset_clock::clock_members::time_point;
  static time_point now() noexcept {
    return time_point(steady::now().time_since_epoch() + duration(offset_ns.load()));
  }
  static void shift(duration d) noexcept { offset_ns.fetch_add(d.count()); }
  static void reset() noexcept { offset_ns.store(0); }
  static inline std::atomic<std::int64_t> offset_ns{0};
};
using jumping_clock = offset_clock<0>;     // jumped by the jump / set-back tests
using nonsteady_clock = offset_clock<1>;   // never shifted: a plain non-steady clock

// A steady clock whose epoch is 200 years in the future: now() is negative
// and time_point::max() - now() overflows the rep.
struct future_epoch_clock : clock_members<future_epoch_clock, std::int64_t, std::nano, true> {
  static constexpr duration epoch_ahead = std::chrono::duration_cast<duration>(std::chrono::years(200));
  static time_point now() noexcept { return time_point(steady::now().time_since_epoch() - epoch_ahead); }
};

// A steady clock counting floating-point seconds.
struct double_clock : clock_members<double_clock, double, std::ratio<1>, true> {
  static time_point now() noexcept { return time_point(duration(steady::now().time_since_epoch())); }
};

// Milliseconds since the test started, in 32 bits (max() is ~24.8 days away).
struct narrow_clock : clock_members<narrow_clock, std::int32_t, std::milli, false> {
  static inline const steady::time_point origin = steady::now();
  static time_point now() noexcept {
    return time_point(std::chrono::duration_cast<duration>(steady::now() - origin));
  }
};

static_assert(std::chrono::is_clock_v<frozen_clock>);
static_assert(std::chrono::is_clock_v<jumping_clock>);
static_assert(std::chrono::is_clock_v<nonsteady_clock>);
static_assert(std::chrono::is_clock_v<future_epoch_clock>);
static_assert(std::chrono::is_clock_v<double_clock>);
static_assert(std::chrono::is_clock_v<narrow_clock>);

// --- a case: one timeout or deadline, applied to a receive and to a send ------------

struct timing_case {
  std::string name;
  std::function<recv_result(sluice::receiver<int>&)> recv;
  std::function<send_result(const sluice::sync_sender<int>&, int)> send;
  // Short cases: the least time the operation must wait before timing out.
  nanoseconds min_wait{0};
};

template <class Rep, class Period>
timing_case timeout_case(std::string name, duration<Rep, Period> d, nanoseconds min_wait = {}) {
  return {"timeout " + std::move(name),
          [d](sluice::receiver<int>& rx) { return rx.recv_timeout(d); },
          [d](const sluice::sync_sender<int>& tx, int v) { return tx.send_timeout(v, d); },
          min_wait};
}

// `make()` is called in the waiting thread, just before the operation (so
// "now() + 50ms" is measured from the call).
template <class MakeDeadline>
timing_case deadline_case(std::string name, MakeDeadline make, nanoseconds min_wait = {}) {
  return {"deadline " + std::move(name),
          [make](sluice::receiver<int>& rx) { return rx.recv_deadline(make()); },
          [make](const sluice::sync_sender<int>& tx, int v) { return tx.send_deadline(v, make()); },
          min_wait};
}

template <class Clock, class Dur>
timing_case at_case(std::string name, time_point<Clock, Dur> tp) {
  return deadline_case(std::move(name), [tp] { return tp; });
}

// The reps in use: the fixed-width integers (int8_t ... uint64_t) and the
// three floating-point types.
template <class Rep>
std::string rep_name() {
  if constexpr (std::is_integral_v<Rep>) {
    return (std::is_signed_v<Rep> ? "int" : "uint") + std::to_string(8 * sizeof(Rep)) + "_t";
  } else if constexpr (std::is_floating_point_v<Rep>) {
    return std::is_same_v<Rep, float> ? "float" : std::is_same_v<Rep, double> ? "double" : "long double";
  } else {
    return "?";
  }
}

template <class Period>
std::string period_name() {
  if constexpr (std::is_same_v<Period, std::nano>) return "nano";
  else if constexpr (std::is_same_v<Period, std::micro>) return "micro";
  else if constexpr (std::is_same_v<Period, std::centi>) return "centi";
  else if constexpr (std::is_same_v<Period, std::milli>) return "milli";
  else if constexpr (std::is_same_v<Period, std::ratio<1>>) return "seconds";
  else if constexpr (std::is_same_v<Period, std::ratio<60>>) return "minutes";
  else if constexpr (std::is_same_v<Period, std::ratio<3600>>) return "hours";
  else if constexpr (std::is_same_v<Period, std::chrono::days::period>) return "days";
  else if constexpr (std::is_same_v<Period, std::chrono::weeks::period>) return "weeks";
  else if constexpr (std::is_same_v<Period, std::chrono::months::period>) return "months";
  else if constexpr (std::is_same_v<Period, std::chrono::years::period>) return "years";
  else return std::to_string(Period::num) + "/" + std::to_string(Period::den);
}

template <class Rep, class Period>
std::string duration_name() {
  return "duration<" + rep_name<Rep>() + ", " + period_name<Period>() + ">";
}

struct case_lists {
  std::vector<timing_case> past;      // must try once
  std::vector<timing_case> far;       // must wait until the operation can complete
  std::vector<timing_case> short_;    // must time out after min_wait, well within 5 s
};

// Integer reps: zero, -1 and min() are "try once"; max() waits (when it is
// at least 10 s away) or times out on time (when at most 1 s away; int32 and
// uint32 nanoseconds, 2.1 s and 4.3 s, are in neither list).
template <class Rep, class Period>
void add_integer_cases(case_lists& out) {
  using D = duration<Rep, Period>;
  const std::string type = duration_name<Rep, Period>();
  out.past.push_back(timeout_case(type + "::zero()", D::zero()));
  if constexpr (std::is_signed_v<Rep>) {
    out.past.push_back(timeout_case(type + "(-1)", D(Rep(-1))));
    out.past.push_back(timeout_case(type + "::min()", D::min()));
  }
  const long double max_seconds = duration<long double>(D::max()).count();
  if (max_seconds >= 10) {
    out.far.push_back(timeout_case(type + "::max()", D::max()));
  } else if (max_seconds <= 1) {
    out.short_.push_back(
        timeout_case(type + "::max()", D::max(), std::chrono::duration_cast<nanoseconds>(D::max())));
  }
}

template <class Rep, class... Periods>
void add_integer_rep(case_lists& out) {
  (add_integer_cases<Rep, Periods>(out), ...);
}

template <class... Reps>
void add_integer_reps(case_lists& out) {
  (add_integer_rep<Reps, std::nano, std::micro, std::milli, std::ratio<1>, std::ratio<60>,
                   std::ratio<3600>, std::chrono::days::period, std::chrono::weeks::period,
                   std::chrono::months::period, std::chrono::years::period>(out),
   ...);
}

// Floating reps: -inf, NaN, -0, lowest() and negative values are "try once";
// +inf, max() and huge finite values wait; the smallest positive value
// (denorm_min) is a tiny timeout, not "forever" and not an error.
template <class Rep, class Period>
void add_float_cases(case_lists& out, Rep huge, const std::string& huge_name) {
  using D = duration<Rep, Period>;
  using lim = std::numeric_limits<Rep>;
  const std::string type = duration_name<Rep, Period>();
  out.past.push_back(timeout_case(type + "(-inf)", D(-lim::infinity())));
  out.past.push_back(timeout_case(type + "(NaN)", D(lim::quiet_NaN())));
  out.past.push_back(timeout_case(type + "(-NaN)", D(-lim::quiet_NaN())));
  out.past.push_back(timeout_case(type + "(-0.0)", D(-Rep(0))));
  out.past.push_back(timeout_case(type + "::zero()", D::zero()));
  out.past.push_back(timeout_case(type + "::min()", D::min()));
  out.past.push_back(timeout_case(type + "(-denorm_min)", D(-lim::denorm_min())));
  out.far.push_back(timeout_case(type + "(+inf)", D(lim::infinity())));
  out.far.push_back(timeout_case(type + "::max()", D::max()));
  out.far.push_back(timeout_case(type + "(" + huge_name + ")", D(huge)));
  out.short_.push_back(timeout_case(type + "(denorm_min)", D(lim::denorm_min())));
}

template <class Rep>
void add_float_rep(case_lists& out, Rep huge, const std::string& huge_name) {
  add_float_cases<Rep, std::nano>(out, huge, huge_name);
  add_float_cases<Rep, std::ratio<1>>(out, huge, huge_name);
  add_float_cases<Rep, std::chrono::years::period>(out, huge, huge_name);
}

template <class Dur>
using steady_tp = time_point<steady, Dur>;
template <class Dur>
using sys_tp = time_point<sys, Dur>;

void add_time_point_cases(case_lists& out) {
  using std::chrono::hours;
  using std::chrono::years;
  using dsec = duration<double>;
  using fsec = duration<float>;
  constexpr double inf = std::numeric_limits<double>::infinity();
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();

  // --- steady_clock and system_clock, past ---
  out.past.push_back(deadline_case("steady_clock::now()", [] { return steady::now(); }));
  out.past.push_back(deadline_case("steady_clock::now() - 1s", [] { return steady::now() - 1s; }));
  out.past.push_back(at_case("steady_clock::time_point{} (epoch)", steady::time_point{}));
  out.past.push_back(at_case("steady_clock::time_point::min()", steady::time_point::min()));
  out.past.push_back(at_case("time_point<steady_clock, hours>::min()", steady_tp<hours>::min()));
  out.past.push_back(
      at_case("time_point<steady_clock, hours>(hours(-10'000'000))", steady_tp<hours>(hours(-10'000'000))));
  out.past.push_back(at_case("time_point<steady_clock, duration<int8_t, years>>::min()",
                             steady_tp<duration<std::int8_t, years::period>>::min()));
  out.past.push_back(at_case("time_point<steady_clock, duration<double>>(-inf)", steady_tp<dsec>(dsec(-inf))));
  out.past.push_back(at_case("time_point<steady_clock, duration<double>>(NaN)", steady_tp<dsec>(dsec(nan))));
  out.past.push_back(at_case("time_point<steady_clock, duration<double>>::min()", steady_tp<dsec>::min()));
  out.past.push_back(at_case("time_point<steady_clock, duration<float>>(NaN)",
                             steady_tp<fsec>(fsec(std::numeric_limits<float>::quiet_NaN()))));
  out.past.push_back(deadline_case("system_clock::now() - 1h", [] { return sys::now() - 1h; }));
  out.past.push_back(at_case("system_clock::time_point::min()", sys::time_point::min()));
  out.past.push_back(at_case("sys_days::min()", std::chrono::sys_days::min()));
  out.past.push_back(at_case("sys_days{} (1970-01-01)", std::chrono::sys_days{}));
  out.past.push_back(at_case("sys_seconds::min()", std::chrono::sys_seconds::min()));
  out.past.push_back(at_case("time_point<system_clock, years>::min()", sys_tp<years>::min()));
  out.past.push_back(at_case("time_point<system_clock, duration<int32_t>>::min() (1901)",
                             sys_tp<duration<std::int32_t>>::min()));
  out.past.push_back(at_case("time_point<system_clock, duration<uint32_t>>{} (1970)",
                             sys_tp<duration<std::uint32_t>>{}));
  out.past.push_back(at_case("time_point<system_clock, duration<double>>(NaN)", sys_tp<dsec>(dsec(nan))));

  // --- steady_clock and system_clock, far ---
  out.far.push_back(deadline_case("steady_clock::now() + 1h", [] { return steady::now() + 1h; }));
  out.far.push_back(deadline_case("steady_clock::now() + years(100)", [] {
    return steady::now() + std::chrono::duration_cast<steady::duration>(years(100));
  }));
  out.far.push_back(at_case("steady_clock::time_point::max()", steady::time_point::max()));
  out.far.push_back(at_case("time_point<steady_clock, hours>::max()", steady_tp<hours>::max()));
  out.far.push_back(
      at_case("time_point<steady_clock, hours>(hours(10'000'000))", steady_tp<hours>(hours(10'000'000))));
  out.far.push_back(at_case("time_point<steady_clock, duration<int8_t, years>>::max()",
                            steady_tp<duration<std::int8_t, years::period>>::max()));
  out.far.push_back(at_case("time_point<steady_clock, duration<uint64_t, nano>>::max()",
                            steady_tp<duration<std::uint64_t, std::nano>>::max()));
  out.far.push_back(at_case("time_point<steady_clock, duration<double>>(+inf)", steady_tp<dsec>(dsec(inf))));
  out.far.push_back(at_case("time_point<steady_clock, duration<double>>(1e300)", steady_tp<dsec>(dsec(1e300))));
  out.far.push_back(at_case("time_point<steady_clock, duration<double>>::max()", steady_tp<dsec>::max()));
  out.far.push_back(at_case("time_point<steady_clock, duration<float>>(+inf)",
                            steady_tp<fsec>(fsec(std::numeric_limits<float>::infinity()))));
  out.far.push_back(at_case("time_point<steady_clock, duration<long double>>::max()",
                            steady_tp<duration<long double>>::max()));
  out.far.push_back(deadline_case("system_clock::now() + 1h", [] { return sys::now() + 1h; }));
  out.far.push_back(at_case("system_clock::time_point::max()", sys::time_point::max()));
  out.far.push_back(at_case("sys_days::max()", std::chrono::sys_days::max()));
  out.far.push_back(at_case("sys_seconds::max()", std::chrono::sys_seconds::max()));
  out.far.push_back(at_case("time_point<system_clock, years>::max()", sys_tp<years>::max()));
  out.far.push_back(at_case("time_point<system_clock, duration<int32_t>>::max() (2038)",
                            sys_tp<duration<std::int32_t>>::max()));
  out.far.push_back(at_case("time_point<system_clock, duration<uint32_t>>::max() (2106)",
                            sys_tp<duration<std::uint32_t>>::max()));
  out.far.push_back(at_case("time_point<system_clock, duration<double>>(+inf)", sys_tp<dsec>(dsec(inf))));

  // --- steady_clock and system_clock, short ---
  out.short_.push_back(deadline_case("steady_clock::now() + 50ms", [] { return steady::now() + 50ms; }, 50ms));
  out.short_.push_back(deadline_case(
      "steady_clock::now() + duration<double>(0.05)", [] { return steady::now() + dsec(0.05); }, 50ms));
  out.short_.push_back(deadline_case("system_clock::now() + 50ms", [] { return sys::now() + 50ms; }, 50ms));

  // --- user clocks ---
  out.past.push_back(deadline_case("frozen_clock::now()", [] { return frozen_clock::now(); }));
  out.past.push_back(deadline_case("frozen_clock::now() - 1ns", [] { return frozen_clock::now() - 1ns; }));
  out.past.push_back(at_case("frozen_clock::time_point::min()", frozen_clock::time_point::min()));
  out.far.push_back(deadline_case("frozen_clock::now() + 1ns", [] { return frozen_clock::now() + 1ns; }));
  out.far.push_back(at_case("frozen_clock::time_point::max()", frozen_clock::time_point::max()));

  out.past.push_back(deadline_case("nonsteady_clock::now() - 1s", [] { return nonsteady_clock::now() - 1s; }));
  out.past.push_back(at_case("nonsteady_clock::time_point::min()", nonsteady_clock::time_point::min()));
  out.far.push_back(deadline_case("nonsteady_clock::now() + 1h", [] { return nonsteady_clock::now() + 1h; }));
  out.far.push_back(at_case("nonsteady_clock::time_point::max()", nonsteady_clock::time_point::max()));
  out.short_.push_back(
      deadline_case("nonsteady_clock::now() + 50ms", [] { return nonsteady_clock::now() + 50ms; }, 50ms));

  using fe = future_epoch_clock;
  out.past.push_back(deadline_case("future_epoch_clock::now() - 1ms (negative now())",
                                   [] { return fe::now() - 1ms; }));
  out.past.push_back(at_case("future_epoch_clock::time_point::min()", fe::time_point::min()));
  out.far.push_back(at_case("future_epoch_clock::time_point::max() (max() - now() overflows)",
                            fe::time_point::max()));
  out.far.push_back(deadline_case("future_epoch_clock::now() + years(100)", [] {
    return fe::now() + std::chrono::duration_cast<fe::duration>(years(100));
  }));
  out.short_.push_back(deadline_case("future_epoch_clock::now() + 50ms", [] { return fe::now() + 50ms; }, 50ms));

  using dc = double_clock;
  out.past.push_back(deadline_case("double_clock::now() - 1.0", [] { return dc::now() - dc::duration(1.0); }));
  out.past.push_back(at_case("double_clock::time_point(-inf)", dc::time_point(dc::duration(-inf))));
  out.past.push_back(at_case("double_clock::time_point(NaN)", dc::time_point(dc::duration(nan))));
  out.past.push_back(at_case("double_clock::time_point::min()", dc::time_point::min()));
  out.far.push_back(at_case("double_clock::time_point(+inf)", dc::time_point(dc::duration(inf))));
  out.far.push_back(at_case("double_clock::time_point::max()", dc::time_point::max()));
  out.far.push_back(deadline_case("double_clock::now() + 1e300", [] { return dc::now() + dc::duration(1e300); }));
  out.short_.push_back(
      deadline_case("double_clock::now() + 0.05", [] { return dc::now() + dc::duration(0.05); }, 50ms));

  using nc = narrow_clock;
  out.past.push_back(deadline_case("narrow_clock::now() - 1ms", [] { return nc::now() - nc::duration(1); }));
  out.past.push_back(at_case("narrow_clock::time_point::min()", nc::time_point::min()));
  out.far.push_back(at_case("narrow_clock::time_point::max()", nc::time_point::max()));
  out.far.push_back(
      deadline_case("narrow_clock::now() + 1h", [] { return nc::now() + nc::duration(3'600'000); }));
  out.short_.push_back(
      deadline_case("narrow_clock::now() + 50ms", [] { return nc::now() + nc::duration(50); }, 50ms));
}

const case_lists& cases() {
  static const case_lists lists = [] {
    case_lists out;
    add_integer_reps<std::int8_t, std::int16_t, std::int32_t, std::int64_t, std::uint8_t, std::uint16_t,
                     std::uint32_t, std::uint64_t>(out);
    add_float_rep<float>(out, 1e38f, "1e38");
    add_float_rep<double>(out, 1e300, "1e300");
    add_float_rep<long double>(out, 1e300L, "1e300");
    // Durations whose conversion to nanoseconds overflows int64.
    out.far.push_back(timeout_case("hours(10'000'000)", std::chrono::hours(10'000'000)));
    out.far.push_back(timeout_case("years(1'000'000)", std::chrono::years(1'000'000)));
    // Short timeouts in unusual reps and periods.
    out.short_.push_back(timeout_case("50ms", 50ms, 50ms));
    out.short_.push_back(timeout_case("duration<double>(0.05)", duration<double>(0.05), 50ms));
    out.short_.push_back(timeout_case("duration<float, milli>(50)", duration<float, std::milli>(50.0f), 50ms));
    out.short_.push_back(
        timeout_case("duration<int8_t, centi>(5)", duration<std::int8_t, std::centi>(std::int8_t{5}), 50ms));
    out.short_.push_back(timeout_case("duration<uint16_t, micro>(50000)",
                                      duration<std::uint16_t, std::micro>(std::uint16_t{50000}), 50ms));
    out.short_.push_back(
        timeout_case("duration<long double, nano>(5e7)", duration<long double, std::nano>(5e7L), 50ms));
    out.short_.push_back(timeout_case("nanoseconds(1)", nanoseconds(1)));
    out.short_.push_back(timeout_case("duration<double, nano>(0.5)", duration<double, std::nano>(0.5)));
    add_time_point_cases(out);
    return out;
  }();
  return lists;
}

// --- running an operation in its own thread -------------------------------------

template <class R>
struct outcome {
  R result;
  steady::time_point start;
  steady::time_point end;
  nanoseconds cpu;  // CPU time the waiting thread used during the call
  [[nodiscard]] nanoseconds wall() const { return end - start; }
};

template <class R>
struct running {
  std::future<outcome<R>> fut;
  // Set by the thread just before it calls the operation.
  std::shared_ptr<std::atomic<bool>> started = std::make_shared<std::atomic<bool>>(false);
  std::jthread thread;  // joined first on destruction

  // Blocks until the thread has entered the operation (so that a "has not
  // returned yet" window does not start before the operation does).
  void wait_started() const { started->wait(false); }
};

template <class Op>
auto start_thread(Op op) {
  using R = std::invoke_result_t<Op&>;
  std::promise<outcome<R>> promise;
  running<R> r;
  r.fut = promise.get_future();
  r.thread = std::jthread([p = std::move(promise), o = std::move(op), st = r.started]() mutable {
    const auto cpu0 = thread_cpu_time();
    const auto t0 = steady::now();
    st->store(true);
    st->notify_all();
    R res = o();
    const auto t1 = steady::now();
    const auto cpu1 = thread_cpu_time();
    p.set_value(outcome<R>{std::move(res), t0, t1, cpu1 - cpu0});
  });
  return r;
}

template <class R>
bool is_ready(const std::future<R>& fut, nanoseconds within) {
  return fut.valid() && fut.wait_for(within) == std::future_status::ready;
}

std::string ms(nanoseconds d) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << duration<double, std::milli>(d).count() << " ms";
  return s.str();
}

std::string describe(const recv_result& r) {
  if (r) return "value " + std::to_string(*r);
  return r.error() == recv_timeout_error::timeout ? "timeout" : "disconnected";
}

std::string describe(const send_result& r) {
  if (r) return "sent";
  return std::string(r.error().is_timeout() ? "timeout" : "disconnected") + ", value " +
         std::to_string(r.error().value) + " handed back";
}

std::vector<int> drain(sluice::receiver<int>& rx) {
  std::vector<int> out;
  while (auto r = rx.try_recv()) out.push_back(*r);
  return out;
}

std::vector<int> fillers(std::size_t n) {
  std::vector<int> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(filler_base + static_cast<int>(i));
  return out;
}

bool timed_out(const recv_result& r) { return !r && r.error() == recv_timeout_error::timeout; }
bool timed_out(const send_result& r) { return !r && r.error().is_timeout(); }

// Repeats a try-once call while it times out (on a rendezvous, the peer may
// not have registered yet), for up to completion_bound. Returns the last
// result.
template <class Call>
auto retry_while_timing_out(Call call) {
  const auto until = steady::now() + completion_bound;
  auto res = call();
  while (timed_out(res) && steady::now() < until) {
    std::this_thread::sleep_for(100us);
    res = call();
  }
  return res;
}

// Sends `v` to a receiver that is (or should be) waiting: at once on a
// buffered channel; on a rendezvous, as soon as the receiver is registered,
// giving up if the operation has already returned.
template <class Tx, class R>
void deliver_message(const Tx& tx, int v, const std::future<R>& fut) {
  if constexpr (std::is_same_v<Tx, sluice::sender<int>>) {
    (void)tx.send(v);
  } else {
    const auto until = steady::now() + completion_bound;
    while (!tx.try_send(v)) {
      if (is_ready(fut, 0s) || steady::now() >= until) return;
      std::this_thread::sleep_for(100us);
    }
  }
}

// Receives one message to make room for a sender that is (or should be)
// waiting, giving up (nullopt) if the operation has already returned and
// nothing can be had.
template <class R>
std::optional<int> take_message(sluice::receiver<int>& rx, const std::future<R>& fut) {
  const auto until = steady::now() + completion_bound;
  for (;;) {
    if (auto r = rx.try_recv()) return *r;
    if (is_ready(fut, 0s) || steady::now() >= until) break;
    std::this_thread::sleep_for(100us);
  }
  if (auto r = rx.try_recv()) return *r;
  return std::nullopt;
}

// --- the two sides: what "waiting", "delivering" and "success" mean ---------------

// recv_timeout / recv_deadline on flavor F. The test thread keeps the sender.
template <class F>
struct recv_on {
  static constexpr bool buffered = F::buffered;
  static std::string name() { return std::string("recv_") + F::name; }
  using result = recv_result;
  using tx_type = std::remove_cvref_t<decltype(F::template make<int>().first)>;

  struct probe {
    const timing_case* c;
    running<result> run;
    tx_type tx;  // destroyed before `run` joins: a still-waiting receive wakes disconnected
  };

  static probe start_on(const timing_case& c, tx_type tx, sluice::receiver<int> rx) {
    auto run = start_thread([&c, r = std::move(rx)]() mutable { return c.recv(r); });
    return probe{&c, std::move(run), std::move(tx)};
  }

  // The operation on an empty channel whose sender is alive: it must wait.
  static probe start(const timing_case& c) {
    auto [tx, rx] = F::template make<int>();
    return start_on(c, std::move(tx), std::move(rx));
  }
  // Buffered only: a message is queued, the operation must take it.
  static probe start_ready(const timing_case& c) {
    auto [tx, rx] = F::template make<int>();
    EXPECT_TRUE(tx.send(delivered_value).has_value());
    return start_on(c, std::move(tx), std::move(rx));
  }
  static probe start_disconnected(const timing_case& c) {
    auto [tx, rx] = F::template make<int>();
    tx = {};
    return start_on(c, std::move(tx), std::move(rx));
  }

  static void deliver(probe& p) { deliver_message(p.tx, delivered_value, p.run.fut); }
  static void disconnect(probe& p) { p.tx = {}; }

  static inline const std::string delivered = "value " + std::to_string(delivered_value);
  static inline const std::string timed_out = "timeout";
  static inline const std::string disconnected = "disconnected";

  static void check_after_delivery(probe&) {}
  static void check_after_timeout(probe&) {}

  // Rendezvous: a past deadline takes the value of a sender already blocked
  // in send(). Retries the try-once call until the sender is registered.
  static void check_blocked_peer(const timing_case& c) {
    auto [tx, rx] = F::template make<int>();
    std::jthread peer([s = std::move(tx)] { (void)s.send(delivered_value); });
    auto run = start_thread([&c, r = std::move(rx)]() mutable {
      auto res = retry_while_timing_out([&] { return c.recv(r); });
      r = {};  // releases the peer if its value was never taken
      return res;
    });
    ASSERT_TRUE(is_ready(run.fut, completion_bound + 5s)) << c.name << ": hung";
    EXPECT_EQ(describe(run.fut.get().result), delivered)
        << c.name << ": a past deadline on a rendezvous must take the value of a sender blocked in send()";
  }
};

// send_timeout / send_deadline on flavor F (bounded or rendezvous), sending
// sent_value into a channel filled with F::cap fillers (so it must wait).
// The test thread keeps the receiver.
template <class F>
struct send_on {
  static constexpr bool buffered = F::buffered;
  static constexpr std::size_t cap = *F::cap;
  static std::string name() { return std::string("send_") + F::name; }
  using result = send_result;

  struct probe {
    const timing_case* c;
    running<result> run;
    sluice::receiver<int> rx;  // destroyed before `run` joins: a still-waiting send wakes
    std::optional<int> taken;  // what the test received to make room
  };

  static probe start_filled(const timing_case& c, std::size_t prefill) {
    auto [tx, rx] = F::template make<int>();
    for (int v : fillers(prefill)) EXPECT_TRUE(tx.try_send(v).has_value());
    auto run = start_thread([&c, s = std::move(tx)] { return c.send(s, sent_value); });
    return probe{&c, std::move(run), std::move(rx), std::nullopt};
  }

  static probe start(const timing_case& c) { return start_filled(c, cap); }
  static probe start_ready(const timing_case& c) { return start_filled(c, cap - 1); }
  static probe start_disconnected(const timing_case& c) {
    auto [tx, rx] = F::template make<int>();
    rx = {};
    auto run = start_thread([&c, s = std::move(tx)] { return c.send(s, sent_value); });
    return probe{&c, std::move(run), sluice::receiver<int>{}, std::nullopt};
  }

  static void deliver(probe& p) { p.taken = take_message(p.rx, p.run.fut); }
  static void disconnect(probe& p) { p.rx = {}; }

  static inline const std::string delivered = "sent";
  static inline const std::string timed_out =
      "timeout, value " + std::to_string(sent_value) + " handed back";
  static inline const std::string disconnected =
      "disconnected, value " + std::to_string(sent_value) + " handed back";

  // After room was made: the value was queued once, after the fillers.
  static void check_after_delivery(probe& p) {
    if constexpr (buffered) {
      EXPECT_EQ(p.taken, std::optional<int>(filler_base)) << p.c->name;
      std::vector<int> expected = fillers(cap);
      expected.erase(expected.begin());
      expected.push_back(sent_value);
      EXPECT_EQ(drain(p.rx), expected) << p.c->name << ": the queue after the send completed";
    } else {
      EXPECT_EQ(p.taken, std::optional<int>(sent_value)) << p.c->name << ": the value the receiver got";
    }
  }
  // After a timeout: the value was not queued.
  static void check_after_timeout(probe& p) {
    EXPECT_EQ(drain(p.rx), fillers(buffered ? cap : 0))
        << p.c->name << ": a send that timed out must not have queued its value";
  }

  // Rendezvous: a past deadline hands the value to a receiver already
  // blocked in recv(). Retries the try-once call until it is registered.
  static void check_blocked_peer(const timing_case& c) {
    auto [tx, rx] = F::template make<int>();
    std::promise<std::string> got;
    auto got_fut = got.get_future();
    std::jthread peer([r = std::move(rx), g = std::move(got)]() mutable {
      auto res = r.recv();
      g.set_value(res ? "value " + std::to_string(*res) : std::string("disconnected"));
    });
    auto run = start_thread([&c, s = std::move(tx)]() mutable {
      int v = sent_value;
      auto res = retry_while_timing_out([&] {
        auto r = c.send(s, v);
        if (!r) v = r.error().value;  // handed back: try again with it
        return r;
      });
      s = {};  // releases the peer if it never got the value
      return res;
    });
    ASSERT_TRUE(is_ready(run.fut, completion_bound + 5s)) << c.name << ": hung";
    EXPECT_EQ(describe(run.fut.get().result), delivered)
        << c.name << ": a past deadline on a rendezvous must hand the value to a receiver blocked in recv()";
    ASSERT_EQ(got_fut.wait_for(completion_bound), std::future_status::ready) << c.name;
    EXPECT_EQ(got_fut.get(), "value " + std::to_string(sent_value)) << c.name;
  }
};

// --- what every test does with a running operation ---------------------------------

// Ends an operation that should not be waiting any more (the test has failed
// already): as if delivered, else disconnected.
template <class S>
void unblock(typename S::probe& p) {
  S::deliver(p);
  if (!is_ready(p.run.fut, completion_bound)) S::disconnect(p);
}

// Starts the operation and returns once it has entered its wait (so that a
// "has not returned yet" window does not start before the operation does).
template <class S>
typename S::probe start_waiting(const timing_case& c) {
  auto p = S::start(c);
  p.run.wait_started();
  return p;
}

// An operation that must return within `bound`: fails (naming the case, then
// `why`) if it does not, and ends it.
template <class S>
::testing::AssertionResult returns_within(typename S::probe& p, nanoseconds bound, const char* why) {
  if (is_ready(p.run.fut, bound)) return ::testing::AssertionSuccess();
  unblock<S>(p);
  return ::testing::AssertionFailure() << p.c->name << ": still waiting after " << ms(bound) << why;
}

// An operation that must still be waiting: fails (naming the case, what it
// returned and when, then `why`) if it has returned.
template <class Probe>
::testing::AssertionResult still_waiting(Probe& p, const char* why) {
  if (!is_ready(p.run.fut, 0s)) return ::testing::AssertionSuccess();
  const auto o = p.run.fut.get();
  return ::testing::AssertionFailure() << p.c->name << ": returned " << describe(o.result)
                                       << " after " << ms(o.wall()) << why;
}

// Makes a waiting operation able to complete (S::deliver): it must then
// complete, successfully (`why` explains a failure), and the side's checks
// after a delivery pass. Returns its outcome, or nullopt (after reporting and
// disconnecting) if it did not complete.
template <class S>
std::optional<outcome<typename S::result>> expect_completes_once_delivered(typename S::probe& p,
                                                                           const char* why = "") {
  S::deliver(p);
  if (!is_ready(p.run.fut, completion_bound)) {
    ADD_FAILURE() << p.c->name << ": still waiting " << ms(completion_bound)
                  << " after the operation could complete";
    S::disconnect(p);
    return std::nullopt;
  }
  auto o = p.run.fut.get();
  EXPECT_EQ(describe(o.result), S::delivered) << p.c->name << why;
  S::check_after_delivery(p);
  return o;
}

template <class Side>
class deadline : public ::testing::Test {};

using shapes = ::testing::Types<recv_on<sluice_test::unbounded>, recv_on<sluice_test::bounded1>,
                                recv_on<sluice_test::bounded4>, recv_on<sluice_test::rendezvous>,
                                send_on<sluice_test::bounded1>, send_on<sluice_test::bounded4>,
                                send_on<sluice_test::rendezvous>>;

struct shape_name {
  template <class Side>
  static std::string GetName(int) { return Side::name(); }
};

TYPED_TEST_SUITE(deadline, shapes, shape_name);

// --- 1. past: try once -------------------------------------------------------------

// Every past case on a channel where nothing can complete: timeout, at once.
TYPED_TEST(deadline, past_deadlines_time_out_at_once) {
  using S = TypeParam;
  for (const timing_case& c : cases().past) {
    auto p = S::start(c);
    const auto returned = returns_within<S>(
        p, prompt_bound, "; a deadline already passed (or a timeout <= 0, -inf, NaN) must try once");
    EXPECT_TRUE(returned);
    if (!returned) continue;
    const auto o = p.run.fut.get();
    EXPECT_EQ(describe(o.result), S::timed_out) << c.name << " (returned after " << ms(o.wall()) << ")";
    S::check_after_timeout(p);
  }
}

// Every past case where the operation can complete at once: it does.
// Buffered: a message is queued (recv) or there is room (send). Rendezvous:
// a peer is blocked on the other side.
TYPED_TEST(deadline, past_deadlines_complete_when_ready) {
  using S = TypeParam;
  for (const timing_case& c : cases().past) {
    if constexpr (S::buffered) {
      auto p = S::start_ready(c);
      const auto returned = returns_within<S>(p, prompt_bound, " although it could complete at once");
      EXPECT_TRUE(returned);
      if (!returned) continue;
      EXPECT_EQ(describe(p.run.fut.get().result), S::delivered)
          << c.name << ": a past deadline must still complete what is ready";
      if constexpr (std::is_same_v<typename S::result, send_result>) {
        std::vector<int> expected = fillers(S::cap - 1);
        expected.push_back(sent_value);
        EXPECT_EQ(drain(p.rx), expected) << c.name << ": the queue after the send";
      }
    } else {
      S::check_blocked_peer(c);
    }
  }
}

TYPED_TEST(deadline, past_deadlines_report_disconnected) {
  using S = TypeParam;
  for (const timing_case& c : cases().past) {
    auto p = S::start_disconnected(c);
    ASSERT_TRUE(is_ready(p.run.fut, prompt_bound))
        << c.name << ": still waiting on a disconnected channel after " << ms(prompt_bound);
    EXPECT_EQ(describe(p.run.fut.get().result), S::disconnected) << c.name;
  }
}

// --- 2. far: wait until the operation can complete ----------------------------------------

constexpr const char* far_must_wait =
    " though nothing could complete; a far deadline must wait (overflow?)";

// All far cases wait concurrently (one channel each); after the window, each
// is ended by delivery (recv: a message is sent; send: one is received to
// make room) and must then succeed.
TYPED_TEST(deadline, far_deadlines_wait_until_delivered) {
  using S = TypeParam;
  std::vector<typename S::probe> probes;
  probes.reserve(cases().far.size());
  for (const timing_case& c : cases().far) probes.push_back(S::start(c));
  for (const auto& p : probes) p.run.wait_started();
  std::this_thread::sleep_for(not_returned_window);
  for (auto& p : probes) EXPECT_TRUE(still_waiting(p, far_must_wait));
  for (auto& p : probes) {
    if (!p.run.fut.valid()) continue;  // returned early: failed above
    expect_completes_once_delivered<S>(p, ": must complete once the peer acts");
  }
}

// A sample of the far cases, ended by disconnecting the other side instead:
// the wait ends with "disconnected", not "timeout".
TYPED_TEST(deadline, far_deadlines_end_on_disconnect) {
  using S = TypeParam;
  std::vector<typename S::probe> probes;
  const auto& far = cases().far;
  for (std::size_t i = 0; i < far.size(); i += 5) probes.push_back(S::start(far[i]));
  for (const auto& p : probes) p.run.wait_started();
  std::this_thread::sleep_for(not_returned_window);
  for (auto& p : probes) {
    const auto waiting = still_waiting(p, far_must_wait);
    EXPECT_TRUE(waiting);
    if (waiting) S::disconnect(p);
  }
  for (auto& p : probes) {
    if (!p.run.fut.valid()) continue;
    ASSERT_TRUE(is_ready(p.run.fut, completion_bound))
        << p.c->name << ": still waiting " << ms(completion_bound) << " after a disconnect";
    EXPECT_EQ(describe(p.run.fut.get().result), S::disconnected) << p.c->name;
  }
}

// --- 3. short: time out on time ----------------------------------------------------------

// Short timeouts and near deadlines on every clock time out no earlier than
// requested (minus 1 ms for coarse clocks) and well within 5 s.
TYPED_TEST(deadline, short_deadlines_time_out_on_time) {
  using S = TypeParam;
  std::vector<typename S::probe> probes;
  for (const timing_case& c : cases().short_) probes.push_back(S::start(c));
  for (auto& p : probes) {
    const auto returned = returns_within<S>(p, completion_bound, ": it did not time out");
    EXPECT_TRUE(returned);
    if (!returned) continue;
    const auto o = p.run.fut.get();
    EXPECT_EQ(describe(o.result), S::timed_out) << p.c->name;
    EXPECT_GE(o.wall(), p.c->min_wait - early_slack)
        << p.c->name << ": timed out after " << ms(o.wall()) << ", before the " << ms(p.c->min_wait)
        << " requested";
    EXPECT_LT(o.wall(), completion_bound) << p.c->name;
    S::check_after_timeout(p);
  }
}

// --- 4. user clocks that do not follow steady_clock -----------------------------------------

// frozen_clock never reaches a deadline after its now(): the operation waits
// until it can complete, and parks meanwhile instead of spinning.
TYPED_TEST(deadline, frozen_clock_waits_without_burning_cpu) {
  using S = TypeParam;
  static const std::vector<timing_case> frozen = {
      deadline_case("frozen_clock::now() + 1ns", [] { return frozen_clock::now() + 1ns; }),
      deadline_case("frozen_clock::now() + 1ms", [] { return frozen_clock::now() + 1ms; }),
      deadline_case("frozen_clock::now() + 1h", [] { return frozen_clock::now() + 1h; }),
  };
  constexpr auto wait = 300ms;
  std::vector<typename S::probe> probes;
  for (const timing_case& c : frozen) probes.push_back(S::start(c));
  for (const auto& p : probes) p.run.wait_started();
  std::this_thread::sleep_for(wait);
  for (auto& p : probes) {
    const auto waiting =
        still_waiting(p, "; the frozen clock never reaches the deadline, so it must wait");
    EXPECT_TRUE(waiting);
    if (!waiting) continue;
    const auto o = expect_completes_once_delivered<S>(p);
    if (!o) continue;
    EXPECT_LT(o->cpu, o->wall() / 4) << p.c->name << ": used " << ms(o->cpu) << " of CPU while waiting "
                                     << ms(o->wall()) << "; a waiting thread must park, not spin";
  }
}

// A non-steady clock jumping 2 h forward past a deadline 1 h ahead ends the
// wait with a timeout soon after (the library re-reads such a clock at least
// every 50 ms; 5 s allowed here).
TYPED_TEST(deadline, clock_jumping_forward_ends_the_wait) {
  using S = TypeParam;
  jumping_clock::reset();
  const timing_case c = at_case("jumping_clock::now() + 1h", jumping_clock::now() + 1h);
  auto p = start_waiting<S>(c);
  std::this_thread::sleep_for(not_returned_window);
  ASSERT_TRUE(still_waiting(p, ", before the clock jumped"));
  jumping_clock::shift(2h);
  const auto jumped = steady::now();
  ASSERT_TRUE(returns_within<S>(
      p, completion_bound,
      " since the clock jumped past the deadline; a non-steady clock must be re-read while waiting"));
  const auto o = p.run.fut.get();
  EXPECT_EQ(describe(o.result), S::timed_out)
      << c.name << ": returned " << ms(o.end - jumped) << " after the jump";
  EXPECT_GE(o.end, jumped) << c.name << ": returned before the clock jumped";
  S::check_after_timeout(p);
}

// A non-steady clock set back 1 h right after a deadline 200 ms ahead was
// taken: the deadline is now ~1 h away, so the operation keeps waiting.
TYPED_TEST(deadline, clock_set_back_keeps_waiting) {
  using S = TypeParam;
  jumping_clock::reset();
  const timing_case c = at_case("jumping_clock::now() + 200ms", jumping_clock::now() + 200ms);
  auto p = start_waiting<S>(c);
  jumping_clock::shift(-1h);
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(still_waiting(p, " though the clock was set back 1 h"));
  expect_completes_once_delivered<S>(p);
}

// --- the test's own clocks are what they claim ------------------------------------------

TEST(deadline_clocks, user_clocks_behave_as_described) {
  EXPECT_LT(future_epoch_clock::now().time_since_epoch().count(), 0) << "now() must be negative";
  EXPECT_EQ(frozen_clock::now(), frozen_clock::now());
  jumping_clock::reset();
  const auto before = jumping_clock::now();
  jumping_clock::shift(2h);
  EXPECT_GE(jumping_clock::now() - before, 2h);
  jumping_clock::reset();
  const auto n0 = narrow_clock::now();
  std::this_thread::sleep_for(5ms);
  EXPECT_GT(narrow_clock::now(), n0);
  EXPECT_GE(cases().past.size(), 150u);
  EXPECT_GE(cases().far.size(), 60u);
  EXPECT_GE(cases().short_.size(), 15u);
}

}  // namespace
