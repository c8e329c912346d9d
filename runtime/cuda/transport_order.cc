// CheckRendezvousOrder (transport_order.h): pairs each link's sends and receives by order, then
// runs the rendezvous model with a work list, each device re-examined when its state changes.
#include "runtime/cuda/transport_order.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

namespace pipecast::runtime::cuda {
namespace {

using Op = TransportCall::Op;

// A send or receive of a device: its call, the WaitReceived calls before it, its stream, its
// partner.
struct Transfer {
  int32_t call = -1;
  int32_t compute = 0;  // WaitReceived calls before it: the compute it waits for
  int32_t stream = -1;  // the device's stream it runs on, and its place there
  int32_t place = -1;
  int32_t peer = -1;  // partner's device and index in that device's receives (sends)
  int32_t partner = -1;
  bool done = false;
};

// One stream of a device: the transfers it runs in order (sends or receives), how many ran.
struct Stream {
  bool send = false;
  std::vector<int32_t> transfers;
  int32_t done = 0;
};

struct DeviceCalls {
  std::vector<Transfer> sends, recvs;  // in issue order
  std::vector<Stream> streams;
  std::map<std::tuple<bool, int32_t, int32_t>, int32_t> stream_of;  // (send, peer, class)
  std::vector<int32_t> waited;     // receives in WaitReceived order
  std::vector<int32_t> wait_sent;  // per call: the send a WaitSent waits for, else -1
  std::map<MessageKey, int32_t> send_of, recv_of;
};

// A node of the waits-for graph: a device's send (send = true) or receive.
struct Node {
  int32_t device = -1;
  bool send = false;
  int32_t index = -1;
  friend auto operator<=>(const Node&, const Node&) = default;
};

class Model {
 public:
  Model(std::span<const std::vector<TransportCall>> calls, TransferStreams streams,
        const DescribeAction& describe)
      : calls_(calls), streams_(streams), describe_(describe), dev_(calls.size()) {}

  Status Run() {
    PIPECAST_RETURN_IF_ERROR(Index());
    PIPECAST_RETURN_IF_ERROR(Pair());
    Simulate();
    return Stuck();
  }

 private:
  int32_t Devices() const { return static_cast<int32_t>(calls_.size()); }
  const TransportCall& Call(int32_t d, int32_t i) const { return calls_[d][i]; }

  std::string Where(int32_t d, int32_t call) const {
    const int32_t action = Call(d, call).action;
    if (action < 0) return "";
    return " (" + (describe_ ? describe_(d, action) : "action " + std::to_string(action)) + ")";
  }
  std::string Name(const Node& n) const {
    const Transfer& t = n.send ? dev_[n.device].sends[n.index] : dev_[n.device].recvs[n.index];
    const TransportCall& c = Call(n.device, t.call);
    return "device " + std::to_string(n.device) + (n.send ? " sends the " : " receives the ") +
           c.key.ToString() + (n.send ? " to device " : " from device ") + std::to_string(c.peer) +
           Where(n.device, t.call);
  }

  int32_t StreamOf(DeviceCalls& dc, bool send, const TransportCall& c) const {
    const auto key = streams_ == TransferStreams::kPerDevice
                         ? std::make_tuple(send, -1, -1)
                         : std::make_tuple(send, c.peer, ChannelClass(c.key.kind));
    const auto [it, added] = dc.stream_of.emplace(key, static_cast<int32_t>(dc.streams.size()));
    if (added) dc.streams.push_back({send, {}, 0});
    return it->second;
  }

  // Per device: its sends and receives, the receives its WaitReceived calls name, the sends its
  // WaitSent calls name.
  Status Index() {
    for (int32_t d = 0; d < Devices(); ++d) {
      DeviceCalls& dc = dev_[d];
      dc.wait_sent.assign(calls_[d].size(), -1);
      for (int32_t i = 0; i < static_cast<int32_t>(calls_[d].size()); ++i) {
        const TransportCall& c = Call(d, i);
        const int32_t compute = static_cast<int32_t>(dc.waited.size());
        const std::string what = "device " + std::to_string(d) + Where(d, i);
        if (c.op == Op::kSend || c.op == Op::kRecv) {
          const bool send = c.op == Op::kSend;
          auto& table = send ? dc.send_of : dc.recv_of;
          auto& list = send ? dc.sends : dc.recvs;
          if (!table.emplace(c.key, static_cast<int32_t>(list.size())).second)
            return InvalidArgument(what + (send ? " sends" : " receives") + " the " +
                                   c.key.ToString() + " twice");
          const int32_t stream = StreamOf(dc, send, c);
          list.push_back(
              {i, compute, stream, static_cast<int32_t>(dc.streams[stream].transfers.size())});
          dc.streams[stream].transfers.push_back(static_cast<int32_t>(list.size()) - 1);
          continue;
        }
        const auto& table = c.op == Op::kWaitSent ? dc.send_of : dc.recv_of;
        const auto it = table.find(c.key);
        if (it == table.end()) {
          return InvalidArgument(what + " waits for the " + c.key.ToString() + ", which it " +
                                 (c.op == Op::kWaitSent ? "did not send" : "did not receive") +
                                 " before");
        }
        if (c.op == Op::kWaitSent) {
          dc.wait_sent[i] = it->second;
        } else {
          dc.waited.push_back(it->second);
        }
      }
    }
    return Status::Ok();
  }

  // Each directed link's k-th send with its k-th receive; they must be the same message.
  Status Pair() {
    // (from, to, class) -> (sends of `from`, receives of `to`); class -1: one channel per link
    std::map<std::tuple<int32_t, int32_t, int32_t>,
             std::pair<std::vector<int32_t>, std::vector<int32_t>>>
        links;
    for (int32_t d = 0; d < Devices(); ++d) {
      for (int32_t k = 0; k < static_cast<int32_t>(dev_[d].sends.size()); ++k) {
        const int32_t to = Call(d, dev_[d].sends[k].call).peer;
        if (to < 0 || to >= Devices())
          return InvalidArgument(Name({d, true, k}) + ": no such device");
        links[{d, to, Class(Call(d, dev_[d].sends[k].call))}].first.push_back(k);
      }
      for (int32_t k = 0; k < static_cast<int32_t>(dev_[d].recvs.size()); ++k) {
        const int32_t from = Call(d, dev_[d].recvs[k].call).peer;
        if (from < 0 || from >= Devices())
          return InvalidArgument(Name({d, false, k}) + ": no such device");
        links[{from, d, Class(Call(d, dev_[d].recvs[k].call))}].second.push_back(k);
      }
    }
    for (const auto& [link, lists] : links) {
      const auto [from, to, cls] = link;
      const auto& [sends, recvs] = lists;
      const size_t n = std::min(sends.size(), recvs.size());
      for (size_t k = 0; k < n; ++k) {
        Transfer& s = dev_[from].sends[sends[k]];
        Transfer& r = dev_[to].recvs[recvs[k]];
        const MessageKey& sent = Call(from, s.call).key;
        const MessageKey& got = Call(to, r.call).key;
        if (!(sent == got)) {
          return InvalidArgument(
              "link " + std::to_string(from) + "->" + std::to_string(to) + ChannelName(cls) +
              " out of order: message " + std::to_string(k) + " of the link is the " +
              sent.ToString() + " at the sender" + Where(from, s.call) + " but the " +
              got.ToString() + " at the receiver" + Where(to, r.call) +
              "; the transport pairs a link's sends and receives by order, so both devices must "
              "issue them in the same order");
        }
        s.peer = to;
        s.partner = recvs[k];
        r.peer = from;
        r.partner = sends[k];
      }
      if (sends.size() != recvs.size()) {
        const bool extra_send = sends.size() > recvs.size();
        const Node n = extra_send ? Node{from, true, sends[recvs.size()]}
                                  : Node{to, false, recvs[sends.size()]};
        return InvalidArgument(
            Name(n) + (extra_send ? ", which device " + std::to_string(to) + " never receives"
                                  : ", which device " + std::to_string(from) + " never sends"));
      }
    }
    return Status::Ok();
  }

  int32_t Class(const TransportCall& c) const {
    return streams_ == TransferStreams::kPerDevice ? -1 : ChannelClass(c.key.kind);
  }
  static std::string ChannelName(int32_t cls) {
    if (cls < 0) return "";
    return cls == 0 ? " (activations)" : cls == 1 ? " (gradients)" : " (reductions)";
  }

  const Transfer& At(const Node& n) const {
    return n.send ? dev_[n.device].sends[n.index] : dev_[n.device].recvs[n.index];
  }
  Transfer& At(const Node& n) {
    return n.send ? dev_[n.device].sends[n.index] : dev_[n.device].recvs[n.index];
  }
  bool Issued(const Node& n) const { return At(n).call < host_[n.device]; }
  bool ComputeReady(const Node& n) const { return At(n).compute <= waited_done_[n.device]; }
  const Stream& StreamAt(const Node& n) const { return dev_[n.device].streams[At(n).stream]; }
  bool Head(const Node& n) const { return At(n).place == StreamAt(n).done; }
  Node HeadOf(int32_t d, const Stream& st) const { return {d, st.send, st.transfers[st.done]}; }
  Node Partner(const Node& n) const { return {At(n).peer, !n.send, At(n).partner}; }
  bool Startable(const Node& n) const { return Head(n) && Issued(n) && ComputeReady(n); }
  void Finish(const Node& n) {
    At(n).done = true;
    ++dev_[n.device].streams[At(n).stream].done;
  }

  // Advances device d's thread and compute as far as completed transfers allow, then completes
  // the transfers at the heads of its streams whose partners can start too.
  void Examine(int32_t d, std::vector<int32_t>& work) {
    DeviceCalls& dc = dev_[d];
    while (waited_done_[d] < static_cast<int32_t>(dc.waited.size()) &&
           dc.recvs[dc.waited[waited_done_[d]]].done)
      ++waited_done_[d];
    while (host_[d] < static_cast<int32_t>(calls_[d].size()) &&
           (dc.wait_sent[host_[d]] < 0 || dc.sends[dc.wait_sent[host_[d]]].done))
      ++host_[d];
    for (size_t k = 0; k < dc.streams.size(); ++k) {
      const Stream& st = dc.streams[k];
      if (st.done >= static_cast<int32_t>(st.transfers.size())) continue;
      const Node n = HeadOf(d, st);
      const Node p = Partner(n);
      if (!Startable(n) || !Startable(p)) continue;
      Finish(n);
      Finish(p);
      work.push_back(d);
      work.push_back(p.device);
    }
  }

  void Simulate() {
    host_.assign(Devices(), 0);
    waited_done_.assign(Devices(), 0);
    std::vector<int32_t> work;
    for (int32_t d = Devices() - 1; d >= 0; --d) work.push_back(d);
    while (!work.empty()) {
      const int32_t d = work.back();
      work.pop_back();
      Examine(d, work);
    }
  }

  // What a transfer that cannot complete waits for, and why.
  std::pair<Node, std::string> WaitsFor(const Node& n) const {
    const int32_t d = n.device;
    const std::string dev = "device " + std::to_string(d);
    if (!Head(n)) {
      return {HeadOf(d, StreamAt(n)), std::string("waits behind the earlier ") +
                                          (n.send ? "send" : "receive") + " on " + dev + "'s " +
                                          (n.send ? "send" : "receive") + " stream"};
    }
    if (!Issued(n)) {
      const int32_t blocked = dev_[d].wait_sent[host_[d]];
      return {Node{d, true, blocked},
              "is not issued yet: " + dev + "'s thread first waits for its earlier send of the " +
                  Call(d, dev_[d].sends[blocked].call).key.ToString() + " to complete"};
    }
    if (!ComputeReady(n)) {
      const int32_t r = dev_[d].waited[waited_done_[d]];
      return {Node{d, false, r}, "waits for " + dev + "'s compute, which waits for the " +
                                     Call(d, dev_[d].recvs[r].call).key.ToString()};
    }
    const Node p = Partner(n);
    return {p, std::string("waits for device ") + std::to_string(p.device) + " to start the " +
                   (n.send ? "receive" : "send")};
  }

  Status Stuck() const {
    Node start{-1, false, -1};
    for (int32_t d = 0; d < Devices() && start.device < 0; ++d) {
      for (const bool send : {true, false}) {
        const std::vector<Transfer>& list = send ? dev_[d].sends : dev_[d].recvs;
        for (int32_t i = 0; i < static_cast<int32_t>(list.size()) && start.device < 0; ++i)
          if (!list[i].done) start = {d, send, i};
      }
    }
    if (start.device < 0) return Status::Ok();  // every transfer completed, so every WaitSent
    std::map<Node, size_t> seen;
    std::vector<std::pair<Node, std::string>> path;
    Node n = start;
    while (!seen.count(n)) {
      seen[n] = path.size();
      path.push_back({n, ""});
      auto [next, why] = WaitsFor(n);
      path.back().second = std::move(why);
      n = next;
    }
    std::string cycle;
    std::set<int32_t> devices;
    for (size_t k = seen[n]; k < path.size(); ++k) {
      cycle += "\n  " + Name(path[k].first) + ": " + path[k].second;
      devices.insert(path[k].first.device);
    }
    std::string who;
    for (int32_t d : devices) who += (who.empty() ? "" : ", ") + std::to_string(d);
    return Status(StatusCode::kDeadlock,
                  "the transfers of devices " + who +
                      " wait on each other when a send completes only once its receive runs "
                      "(NCCL):" +
                      cycle +
                      "\nreceive earlier or send later in one of these devices' programs, so that "
                      "every link's messages can complete in order");
  }

  std::span<const std::vector<TransportCall>> calls_;
  const TransferStreams streams_;
  const DescribeAction& describe_;
  std::vector<DeviceCalls> dev_;
  std::vector<int32_t> host_;         // per device: the first call its thread has not passed
  std::vector<int32_t> waited_done_;  // per device: WaitReceived receives completed (a prefix)
};

}  // namespace

int32_t ChannelClass(MessageKey::Kind kind) {
  switch (kind) {
    case MessageKey::Kind::kActivation:
    case MessageKey::Kind::kEvalActivation:
      return 0;
    case MessageKey::Kind::kGradient:
      return 1;
    default:
      return 2;
  }
}

std::vector<Channel> ChannelsOf(std::span<const std::vector<TransportCall>> calls) {
  std::set<Channel> all;
  for (size_t d = 0; d < calls.size(); ++d)
    for (const TransportCall& c : calls[d])
      if (c.op == Op::kSend)
        all.insert({static_cast<int32_t>(d), c.peer, ChannelClass(c.key.kind)});
  return {all.begin(), all.end()};
}

std::vector<Channel> ChannelsOf(const ir::Program& program, const ir::VersionPlan& plan) {
  std::vector<Channel> channels = ChannelsOf(ExecutorCalls(program, plan));
  std::set<Channel> all(channels.begin(), channels.end());
  for (int32_t s = 0; s + 1 < program.num_stages; ++s) {
    const int32_t a = program.device_of(s), b = program.device_of(s + 1);
    if (a != b) all.insert({a, b, ChannelClass(MessageKey::Kind::kEvalActivation)});
  }
  return {all.begin(), all.end()};
}

Status CheckRendezvousOrder(std::span<const std::vector<TransportCall>> calls,
                            TransferStreams streams, const DescribeAction& describe) {
  return Model(calls, streams, describe).Run();
}

Status CheckProgramOrder(const ir::Program& program, const ir::VersionPlan& plan,
                         TransferStreams streams) {
  const std::vector<std::vector<TransportCall>> calls = ExecutorCalls(program, plan);
  return CheckRendezvousOrder(calls, streams, [&](int32_t d, int32_t i) {
    return "action " + std::to_string(i) + " (" + ir::ActionToken(program.devices[d][i], true) +
           ")";
  });
}

}  // namespace pipecast::runtime::cuda
