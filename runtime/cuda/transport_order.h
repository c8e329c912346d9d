// The order a device transport with rendezvous semantics needs, checked on the host before a
// run: NCCL matches the k-th send from device a to device b with the k-th receive at b from a
// (by order, not by tag), and a send completes only once its receive runs. Host code (no CUDA).
//
// The model is that of NcclTransport (nccl_transport.h):
//   - transfers run on streams, one after another in the order the executor issues them: either
//     one send stream and one receive stream per device (TransferStreams::kPerDevice), or one
//     stream per channel, a (peer, direction, class of message) with the classes activations,
//     gradients and reductions (kPerChannel: what NcclTransport does);
//   - a send starts once the device's compute issued before it is done (its ready event); a
//     receive starts once the compute issued before it is done (it writes into a buffer that
//     compute may still read); compute waits for a receive from the WaitReceived call on;
//   - a send and its receive complete together, once both have started (rendezvous);
//   - WaitSent blocks the device's thread until the send completed; nothing else blocks it.
// ExecutorCalls derives each device's calls from a lowered program with runtime/executor.cc's
// rules; CheckRendezvousOrder runs the model to completion or reports why it cannot.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/ir.h"
#include "common/status.h"
#include "common/version_plan.h"
#include "runtime/transport.h"

namespace pipecast::runtime::cuda {

// One call a device makes on its transport.
struct TransportCall {
  enum class Op : uint8_t { kSend, kRecv, kWaitReceived, kWaitSent };
  Op op = Op::kSend;
  int32_t peer = -1;    // kSend: the receiving device; kRecv: the sending device; waits: unused
  MessageKey key;       // waits: the key of the device's send or receive they wait for
  int32_t action = -1;  // the index of the program action that makes the call; -1: none
};

// The calls of every device, in the order runtime/executor.cc makes them for `program`:
// sends and receives at their actions and collectives, WaitReceived before the F or B that
// consumes a message, WaitSent before a record is reused, inside collectives and at the end.
// REQUIRES: program lowered and valid, plan = BuildVersionPlan(program, kExecution).
std::vector<std::vector<TransportCall>> ExecutorCalls(const ir::Program& program,
                                                      const ir::VersionPlan& plan);

// How a message names a call's action: "action 5 (SA3)"; default "action 5".
using DescribeAction = std::function<std::string(int32_t device, int32_t action)>;

enum class TransferStreams : uint8_t {
  kPerDevice,   // a device's sends share one stream, its receives another; links pair by order
  kPerChannel,  // one stream and one order per (from, to, ChannelClass)
};

// The class of a message's channel: 0 activations (training and evaluation), 1 gradients,
// 2 reductions (all-reduce and averaging). The validator keeps each class's order on a link
// (docs/schedule-formats.md); a link's classes may interleave differently at its two ends.
int32_t ChannelClass(MessageKey::Kind kind);

// Ok when every channel's sends and receives are the same messages in the same order and
// the model above runs every call to completion. kInvalidArgument: a link's order differs (the
// message names both devices and both messages), a message is sent but never received or the
// reverse, or a wait names a message its device never sent or received. kDeadlock: the calls
// wait on each other in a cycle; the message lists the cycle, each device's operation and what
// it waits for, in the terms of MessageKey::ToString.
Status CheckRendezvousOrder(std::span<const std::vector<TransportCall>> calls,
                            TransferStreams streams = TransferStreams::kPerChannel,
                            const DescribeAction& describe = {});

// A directed channel: messages of one class (ChannelClass) from device `from` to device `to`.
struct Channel {
  int32_t from = 0;
  int32_t to = 0;
  int32_t cls = 0;
  friend auto operator<=>(const Channel&, const Channel&) = default;
};

// The channels the calls' sends use, sorted: the same list on every rank for the same program.
std::vector<Channel> ChannelsOf(std::span<const std::vector<TransportCall>> calls);
// ChannelsOf(ExecutorCalls(program, plan)) plus the evaluation's links (stage s's replica-0
// device to stage s + 1's, runtime/evaluator.cc), which use the activation channels.
std::vector<Channel> ChannelsOf(const ir::Program& program, const ir::VersionPlan& plan);

// CheckRendezvousOrder(ExecutorCalls(program, plan)), naming actions by their tokens.
Status CheckProgramOrder(const ir::Program& program, const ir::VersionPlan& plan,
                         TransferStreams streams = TransferStreams::kPerChannel);

}  // namespace pipecast::runtime::cuda
