// The error types: values handed back, predicates, printing.
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <sstream>
#include <string>

namespace {
template <class E>
std::string printed(const E& e) {
  std::ostringstream os;
  os << e;
  return os.str();
}
}  // namespace

TEST(errors, messages_follow_rust_display) {
  EXPECT_EQ(printed(sluice::recv_error{}), "receiving on a closed channel");
  EXPECT_EQ(printed(sluice::try_recv_error::empty), "receiving on an empty channel");
  EXPECT_EQ(printed(sluice::recv_timeout_error::timeout), "timed out waiting on channel");
  EXPECT_EQ(printed(sluice::send_error<int>{1}), "sending on a closed channel");
  using tse = sluice::try_send_error<int>;
  EXPECT_EQ(printed(tse{tse::reason_t::full, 1}), "sending on a full channel");
  EXPECT_EQ(printed(tse{tse::reason_t::disconnected, 1}), "sending on a closed channel");
  using ste = sluice::send_timeout_error<int>;
  EXPECT_EQ(printed(ste{ste::reason_t::timeout, 1}), "timed out waiting on send operation");
  EXPECT_EQ(printed(ste{ste::reason_t::disconnected, 1}), "sending on a closed channel");
}

TEST(errors, to_string_matches_stream_and_is_distinct) {
  using tse = sluice::try_send_error<int>;
  using ste = sluice::send_timeout_error<int>;
  const std::set<std::string> distinct{
      to_string(sluice::try_recv_error::empty), to_string(sluice::try_recv_error::disconnected),
      to_string(sluice::recv_timeout_error::timeout),
      to_string(sluice::recv_timeout_error::disconnected)};
  EXPECT_EQ(distinct.size(), 4u);
  EXPECT_EQ(to_string(tse::reason_t::full), printed(tse::reason_t::full));
  EXPECT_EQ(to_string(ste::reason_t::timeout), printed(ste::reason_t::timeout));
  EXPECT_NE(to_string(tse::reason_t::full), to_string(tse::reason_t::disconnected));
  EXPECT_NE(to_string(ste::reason_t::timeout), to_string(ste::reason_t::disconnected));
  for (const auto& s : distinct) EXPECT_FALSE(s.empty());
}

TEST(errors, predicates) {
  using tse = sluice::try_send_error<std::unique_ptr<int>>;
  tse full{tse::reason_t::full, std::make_unique<int>(1)};
  EXPECT_TRUE(full.is_full());
  EXPECT_FALSE(full.is_disconnected());
  using ste = sluice::send_timeout_error<std::unique_ptr<int>>;
  ste gone{ste::reason_t::disconnected, nullptr};
  EXPECT_TRUE(gone.is_disconnected());
  EXPECT_FALSE(gone.is_timeout());
}

TEST(errors, error_of_a_failed_send_prints) {
  auto [tx, rx] = sluice::channel<int>();
  rx = {};
  auto r = tx.send(1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(printed(r.error()), "sending on a closed channel");
}
