// sluice/error.hpp - the error of each operation shape, and how it prints.
//
// Invariants: every error that stands for a failed send owns the value that
// could not be sent (the caller gets it back, moved, never copied); errors
// are plain aggregates, cheap to return inside std::expected.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace sluice {

/// recv() failed: the channel is empty and disconnected; nothing will arrive.
struct recv_error {
  friend bool operator==(recv_error, recv_error) noexcept = default;
  friend std::ostream& operator<<(std::ostream& os, recv_error) {
    return os << "receiving on a closed channel";
  }
};

/// Why try_recv() returned no message.
enum class try_recv_error {
  empty,         ///< nothing queued right now; senders still exist
  disconnected,  ///< nothing queued and the sending side is gone (or closed)
};

/// Why a receive that may end early (recv_timeout(), recv_deadline(), and
/// every form taking a std::stop_token or cancellable) returned no message.
enum class recv_timeout_error {
  timeout,       ///< the time ran out; senders still exist
  disconnected,  ///< nothing queued and the sending side is gone (or closed)
  cancelled,     ///< a stop request or cancellation ended the wait; nothing was taken
};

inline std::string to_string(try_recv_error e) {
  return e == try_recv_error::empty ? "receiving on an empty channel"
                                    : "receiving on an empty and disconnected channel";
}
inline std::string to_string(recv_timeout_error e) {
  switch (e) {
    case recv_timeout_error::timeout:
      return "timed out waiting on channel";
    case recv_timeout_error::disconnected:
      return "channel is empty and sending half is closed";
    case recv_timeout_error::cancelled:
      break;
  }
  return "receive cancelled";
}
inline std::ostream& operator<<(std::ostream& os, try_recv_error e) { return os << to_string(e); }
inline std::ostream& operator<<(std::ostream& os, recv_timeout_error e) {
  return os << to_string(e);
}

/// send() failed: the receiver is gone (or closed); the value comes back.
template <class T>
struct send_error {
  T value;

  friend std::ostream& operator<<(std::ostream& os, const send_error&) {
    return os << "sending on a closed channel";
  }
};

/// try_send() failed; the value comes back.
template <class T>
struct try_send_error {
  enum class reason_t {
    full,          ///< no room (rendezvous: no receiver waiting)
    disconnected,  ///< the receiver is gone (or closed)
  };
  reason_t reason;
  T value;

  [[nodiscard]] bool is_full() const noexcept { return reason == reason_t::full; }
  [[nodiscard]] bool is_disconnected() const noexcept { return reason == reason_t::disconnected; }

  friend std::string to_string(reason_t r) {
    return r == reason_t::full ? "sending on a full channel" : "sending on a closed channel";
  }
  friend std::ostream& operator<<(std::ostream& os, reason_t r) { return os << to_string(r); }
  friend std::ostream& operator<<(std::ostream& os, const try_send_error& e) {
    return os << to_string(e.reason);
  }
};

/// A send that may end early failed (send_timeout(), send_deadline(), and
/// every form taking a std::stop_token or cancellable); the value comes back.
template <class T>
struct send_timeout_error {
  enum class reason_t {
    timeout,       ///< the time ran out while the channel stayed full
    disconnected,  ///< the receiver is gone (or closed)
    cancelled,     ///< a stop request or cancellation ended the wait; nothing was sent
  };
  reason_t reason;
  T value;

  [[nodiscard]] bool is_timeout() const noexcept { return reason == reason_t::timeout; }
  [[nodiscard]] bool is_disconnected() const noexcept { return reason == reason_t::disconnected; }
  [[nodiscard]] bool is_cancelled() const noexcept { return reason == reason_t::cancelled; }

  friend std::string to_string(reason_t r) {
    switch (r) {
      case reason_t::timeout:
        return "timed out waiting on send operation";
      case reason_t::disconnected:
        return "sending on a closed channel";
      case reason_t::cancelled:
        break;
    }
    return "send cancelled";
  }
  friend std::ostream& operator<<(std::ostream& os, reason_t r) { return os << to_string(r); }
  friend std::ostream& operator<<(std::ostream& os, const send_timeout_error& e) {
    return os << to_string(e.reason);
  }
};

/// reserve() failed: the receiver is gone (or closed); no slot was reserved.
struct reserve_error {
  friend bool operator==(reserve_error, reserve_error) noexcept = default;
  friend std::ostream& operator<<(std::ostream& os, reserve_error) {
    return os << "reserving on a closed channel";
  }
};

/// Why try_reserve() returned no permit.
enum class try_reserve_error {
  full,          ///< no free slot (rendezvous: no receiver waiting, or a permit is out)
  disconnected,  ///< the receiver is gone (or closed)
};

/// Why a reservation that may end early (reserve_timeout(),
/// reserve_deadline(), and every form taking a std::stop_token or
/// cancellable) returned no permit.
enum class reserve_timeout_error {
  timeout,       ///< the time ran out while the channel stayed full
  disconnected,  ///< the receiver is gone (or closed)
  cancelled,     ///< a stop request or cancellation ended the wait; nothing was reserved
};

inline std::string to_string(try_reserve_error e) {
  return e == try_reserve_error::full ? "reserving on a full channel"
                                      : "reserving on a closed channel";
}
inline std::string to_string(reserve_timeout_error e) {
  switch (e) {
    case reserve_timeout_error::timeout:
      return "timed out waiting to reserve";
    case reserve_timeout_error::disconnected:
      return "reserving on a closed channel";
    case reserve_timeout_error::cancelled:
      break;
  }
  return "reserve cancelled";
}
inline std::ostream& operator<<(std::ostream& os, try_reserve_error e) {
  return os << to_string(e);
}
inline std::ostream& operator<<(std::ostream& os, reserve_timeout_error e) {
  return os << to_string(e);
}

/// try_select() completed no arm: none was ready.
struct try_select_error {
  friend bool operator==(try_select_error, try_select_error) noexcept = default;
  friend std::ostream& operator<<(std::ostream& os, try_select_error) {
    return os << "no select arm was ready";
  }
};

/// Why a select that may end early (select_timeout(), select_deadline(),
/// and every form taking a std::stop_token) completed no arm.
enum class select_timeout_error {
  timeout,    ///< the time ran out before any arm was ready
  cancelled,  ///< a stop request ended the wait; no arm completed
};

inline std::string to_string(select_timeout_error e) {
  return e == select_timeout_error::timeout ? "timed out waiting on select"
                                            : "select cancelled";
}
inline std::ostream& operator<<(std::ostream& os, select_timeout_error e) {
  return os << to_string(e);
}

}  // namespace sluice
