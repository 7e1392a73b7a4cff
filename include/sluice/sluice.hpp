// sluice/sluice.hpp - everything: channels with the semantics of Rust's
// std::sync::mpsc (unbounded, bounded, rendezvous), for C++23.
#pragma once

#include <sluice/channel.hpp>    // channel(), sync_channel()
#include <sluice/error.hpp>      // recv_error, try_recv_error, send_error, ...
#include <sluice/oneshot.hpp>    // oneshot(), oneshot_sender<T>, oneshot_receiver<T>
#include <sluice/permit.hpp>     // permit<T> (sync_sender::reserve())
#include <sluice/receiver.hpp>   // receiver<T>
#include <sluice/select.hpp>     // select(), try_select(), async_select(), recv_from(), send_to()
#include <sluice/selector.hpp>   // selector: a select over arms added at run time
#include <sluice/sendable.hpp>   // the sendable concept
#include <sluice/sender.hpp>     // sender<T>, sync_sender<T>
#include <sluice/timer.hpp>      // after(), tick(), never()
#include <sluice/weak_sender.hpp> // weak_sender<T>, weak_sync_sender<T>
