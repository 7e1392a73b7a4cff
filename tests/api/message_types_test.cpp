// Message types that name their own channel: requests that carry their reply
// path, and linked messages. The handle types are named while the message
// type is still incomplete; the sendable requirement is checked only where
// a channel is made.
#include <sluice/sluice.hpp>

#include <gtest/gtest.h>

#include <thread>
#include <utility>

namespace {

// A request that points at the channel to answer on (the reply travels on
// the very channel type that carries the request).
struct request {
  int value;
  sluice::sync_sender<request>* back;
};

// A message that owns a sender of its own channel type.
struct node {
  sluice::sender<node> next;
  int value = 0;
};

// A message that carries the receiving end of a channel of its own type.
struct mailbox {
  sluice::receiver<mailbox> inbox;
  int value = 0;
};

static_assert(sluice::sendable<request>);
static_assert(sluice::sendable<node>);
static_assert(sluice::sendable<mailbox>);

TEST(message_types, request_names_its_own_sender_type) {
  auto [tx, rx] = sluice::sync_channel<request>(1);
  auto [reply_tx, reply_rx] = sluice::sync_channel<request>(1);
  std::jthread server([requests = std::move(rx)]() mutable {
    auto r = requests.recv();
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(r->back->send(request{r->value * 2, nullptr}).has_value());
  });
  ASSERT_TRUE(tx.send(request{21, &reply_tx}).has_value());
  auto answer = reply_rx.recv();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->value, 42);
}

TEST(message_types, node_owns_a_sender_of_its_own_channel) {
  auto [tx, rx] = sluice::channel<node>();
  // The message keeps its own channel's sending side alive while queued.
  ASSERT_TRUE(tx.send(node{tx, 1}).has_value());
  tx = {};
  EXPECT_FALSE(rx.is_disconnected());  // the queued node still holds a sender
  auto n = rx.recv();
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->value, 1);
  ASSERT_TRUE(n->next.send(node{{}, 2}).has_value());  // answer through the carried sender
  n->next = {};  // the last sender goes: what is queued is still delivered, then the end
  auto second = rx.recv();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->value, 2);
  EXPECT_FALSE(rx.recv().has_value());
}

TEST(message_types, queued_self_references_are_released_with_the_receiver) {
  auto [tx, rx] = sluice::sync_channel<node>(4);
  auto [inner_tx, inner_rx] = sluice::channel<node>();
  ASSERT_TRUE(tx.send(node{inner_tx, 7}).has_value());
  inner_tx = {};
  EXPECT_FALSE(inner_rx.is_disconnected());
  rx = {};  // destroys the queued node, and with it the last inner sender
  EXPECT_TRUE(inner_rx.is_disconnected());
}

TEST(message_types, receiver_travels_inside_its_own_message_type) {
  auto [tx, rx] = sluice::sync_channel<mailbox>(0);
  auto [inner_tx, inner_rx] = sluice::sync_channel<mailbox>(2);
  ASSERT_TRUE(inner_tx.send(mailbox{{}, 5}).has_value());
  std::jthread sender([out = std::move(tx), inbox = std::move(inner_rx)]() mutable {
    ASSERT_TRUE(out.send(mailbox{std::move(inbox), 1}).has_value());
  });
  auto m = rx.recv();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->value, 1);
  auto inner = m->inbox.recv();
  ASSERT_TRUE(inner.has_value());
  EXPECT_EQ(inner->value, 5);
}

}  // namespace
