// A consumer of sluice::asio: a receive completed through an Asio token.
#include <sluice/asio.hpp>

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <cstdio>

int main() {
  auto [tx, rx] = sluice::sync_channel<int>(1);
  auto got = rx.async_recv(asio::use_future);
  if (!tx.send(42)) return 1;
  auto r = got.get();
  if (!r || *r != 42) return 1;
  std::puts("sluice::asio consumer ok");
  return 0;
}
