// CudaDevice: construction, sizing (Prepare), weights, synchronisation, results and state. The
// operations are in cuda_device_ops.cc.
#include "runtime/cuda/cuda_device.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include "common/check.h"
#include "runtime/cuda/cuda_device_impl.h"
#include "runtime/cuda/cuda_stage.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/green_context.h"
#include "runtime/cuda/launch_check.h"
#include "runtime/cuda/pool_plan.h"
#include "runtime/device_setup.h"

namespace pipecast::runtime::cuda {
namespace {

template <typename T>
T* InPool(void* pool, const PoolPlan& plan, int32_t entry) {
  return reinterpret_cast<T*>(static_cast<char*>(pool) + plan.entry(entry).offset);
}

}  // namespace

int VisibleGpus() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

CudaDevice::CudaDevice(std::string name, int gpu)
    : name_(std::move(name)), gpu_(gpu), impl_(std::make_unique<Impl>()) {}

CudaDevice::~CudaDevice() {
  if (cudaSetDevice(gpu_) != cudaSuccess) return;
  for (cudaStream_t s : streams_)
    if (s != nullptr) (void)cudaStreamSynchronize(s);
  for (auto& sp : stages_) {
    for (float* p : {sp->weights, sp->grad, sp->velocity, sp->reference})
      if (p != nullptr) (void)cudaFree(p);
  }
  impl_->gemm.reset();
  if (impl_->pool != nullptr) (void)cudaFree(impl_->pool);
  if (impl_->pinned != nullptr) (void)cudaFreeHost(impl_->pinned);
  for (auto& lane : impl_->ring)
    for (cudaEvent_t e : lane) (void)cudaEventDestroy(e);
  for (cudaEvent_t e : impl_->sync_events)
    if (e != nullptr) (void)cudaEventDestroy(e);
  for (cudaEvent_t e : impl_->slot_events)
    if (e != nullptr) (void)cudaEventDestroy(e);
  for (cudaStream_t s : streams_) {
    if (s == nullptr) continue;
    if (impl_->green != nullptr) {
      impl_->green->DestroyStream(s);
    } else {
      (void)cudaStreamDestroy(s);
    }
  }
}

Result<std::unique_ptr<CudaDevice>> CudaDevice::Create(std::vector<CudaStageSpec> stages,
                                                       std::string name,
                                                       const CudaDeviceOptions& options) {
  const int gpus = VisibleGpus();
  if (gpus == 0) return DeviceError("no CUDA device was found");
  if (options.gpu < 0 || options.gpu >= gpus) {
    return DeviceError(name + ": GPU " + std::to_string(options.gpu) + " does not exist (this " +
                       "machine shows " + std::to_string(gpus) + ")");
  }
  std::unique_ptr<CudaDevice> dev(new CudaDevice(std::move(name), options.gpu));
  dev->bf16_ = options.bf16;
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.gpu));
  PIPECAST_RETURN_IF_ERROR(dev->CreateStreams(options));
  for (CudaStageSpec& spec : stages) PIPECAST_RETURN_IF_ERROR(dev->AddStage(std::move(spec)));
  dev->impl_->limited = options.memory_limit_bytes > 0;
  dev->impl_->memory_limit = options.memory_limit_bytes;
  return dev;
}

Status CudaDevice::CreateStreams(const CudaDeviceOptions& options) {
  Impl& m = *impl_;
  m.green = options.green;
  for (int lane = 0; lane < 3; ++lane) {
    if (m.green != nullptr) {
      auto s = m.green->CreateStream();
      if (!s.ok()) return s.status();
      streams_[lane] = *s;
    } else {
      PIPECAST_CUDA_RETURN_IF_ERROR(
          cudaStreamCreateWithFlags(&streams_[lane], cudaStreamNonBlocking));
    }
    m.ring[lane].resize(kEventRing);
    for (cudaEvent_t& e : m.ring[lane])
      PIPECAST_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    PIPECAST_CUDA_RETURN_IF_ERROR(
        cudaEventCreateWithFlags(&m.sync_events[lane], cudaEventDisableTiming));
  }
  for (cudaEvent_t& e : m.slot_events)
    PIPECAST_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  auto gemm = Gemm::Create();
  if (!gemm.ok()) return gemm.status();
  m.gemm = std::move(*gemm);
  m.ctx = {streams_[0], m.gemm.get()};
  return Status::Ok();
}

Status CudaDevice::AddStage(CudaStageSpec spec) {
  auto layers = GpuStage::Create(spec.layers);
  if (!layers.ok()) return layers.status();
  auto opt = CudaOptimizer::Create(spec.optimizer, spec.layers.num_params());
  if (!opt.ok() && opt.status().code() == StatusCode::kDeviceError) {  // out of memory
    return DeviceError(name_ + ": stage " + std::to_string(spec.stage) + ": " +
                       opt.status().message());
  }
  if (!opt.ok()) return opt.status();
  auto s = std::make_unique<StageData>(spec.stage, std::move(*layers), std::move(*opt));
  const size_t bytes = static_cast<size_t>(s->params) * sizeof(float);
  for (float** p : {&s->weights, &s->grad}) {
    const Status st = CudaStatus(cudaMalloc(p, bytes), "cudaMalloc");
    if (!st.ok()) {
      return DeviceError(name_ + ": stage " + std::to_string(spec.stage) + " needs " +
                         FormatBytes(static_cast<int64_t>(bytes)) +
                         " for its weights and as much for its gradient: " + st.message());
    }
  }
  // On the compute stream: a plain cudaMemset runs on the legacy default stream, which the
  // device's non-blocking streams do not wait for.
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(s->grad, 0, bytes, streams_[0]));
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(s->weights, 0, bytes, streams_[0]));
  if (static_cast<int32_t>(index_.size()) <= spec.stage) index_.resize(spec.stage + 1, -1);
  PIPECAST_CHECK(index_[spec.stage] < 0) << "stage " << spec.stage << " given twice";
  index_[spec.stage] = static_cast<int32_t>(stages_.size());
  stages_.push_back(std::move(s));
  return Status::Ok();
}

void CudaDevice::Bind() {
  MakeCurrent();
  if (impl_->pending.stage >= 0) LaunchPendingStep(nullptr, 0, 0);
}

void CudaDevice::MakeCurrent() const {
  int current = -1;
  PIPECAST_CUDA_CHECK(cudaGetDevice(&current));
  if (current != gpu_) CheckEnqueued(cudaSetDevice(gpu_), "making the device's GPU current");
}

CudaDevice::StageData& CudaDevice::At(int32_t stage) {
  PIPECAST_CHECK(stage >= 0 && stage < static_cast<int32_t>(index_.size()) && index_[stage] >= 0)
      << name_ << " does not run stage " << stage;
  return *stages_[index_[stage]];
}

cudaEvent_t CudaDevice::event(Event e) {
  if (e.sequence < 0) return nullptr;
  PIPECAST_CHECK(e.lane >= 0 && e.lane < 3) << "event of lane " << e.lane;
  PIPECAST_CHECK(impl_->recorded[e.lane] - e.sequence <= kEventRing)
      << name_ << ": event " << e.sequence << " of lane " << e.lane << " is older than the ring";
  return impl_->ring[e.lane][e.sequence % kEventRing];
}

void CudaDevice::NoteTransportFailure(const Status& failure) {
  std::lock_guard<std::mutex> lock(impl_->failure_mu);
  if (impl_->transport_failure.ok()) impl_->transport_failure = failure;
}

Status CudaDevice::TransportFailure() {
  std::lock_guard<std::mutex> lock(impl_->failure_mu);
  return impl_->transport_failure;
}

Result<int64_t> CudaDevice::Available() const {
  const Impl& m = *impl_;
  if (m.limited) return m.memory_limit + m.pool_bytes;
  size_t free_bytes = 0, total_bytes = 0;
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
  return static_cast<int64_t>(free_bytes) + m.pool_bytes;  // the pool is freed before it grows
}

// Plans every per-program buffer in one pool, checks it against the memory the device may use
// (naming the largest buffers and their stages), and (re)allocates the pool only when it grew.
Status CudaDevice::PlanPool(const DeviceSetup& setup) {
  Impl& m = *impl_;
  const ir::Program& p = *setup.program;
  const ir::VersionPlan& plan = *setup.plan;
  const int64_t rows = setup.microbatch_rows, er = setup.eval_rows;
  const auto f = [](int64_t n) { return n * static_cast<int64_t>(sizeof(float)); };
  PoolPlan pool;
  struct Entries {
    int32_t copies, records, reduce, eval_x, eval_y, eval_saved, labels, base, predicted;
  };
  std::vector<Entries> entries;
  m.bf16_elements = 1;
  int64_t scratch = 0, persistent = 0, staging = 0, max_rows = std::max(rows, er), max_params = 0;
  for (auto& sp : stages_) {
    StageData& s = *sp;
    const ir::StageBuffers& b = plan.buffers[s.stage];
    const std::string st = "stage " + std::to_string(s.stage) + " ";
    Entries e;
    e.copies = pool.Add(st + "weight copies", f(b.weight_copies * s.slot_stride()));
    e.records = pool.Add(st + "activation records", f(b.records * s.RecordSize(rows)));
    e.reduce = pool.Add(st + "reduction buffers", f(ReduceSlots(setup, s.stage) * s.slot_stride()));
    e.eval_x = pool.Add(st + "evaluation input", f(er * s.in));
    e.eval_y = pool.Add(st + "evaluation output", f(er * s.out));
    e.eval_saved = pool.Add(st + "evaluation record", f(er > 0 ? s.layers.Memory(er).saved : 0));
    e.labels = pool.Add(st + "labels", max_rows * static_cast<int64_t>(sizeof(int32_t)));
    const int64_t track = setup.track_predictions_every > 0 ? s.params : 0;
    e.base = pool.Add(st + "prediction base", f(track));
    e.predicted = pool.Add(st + "tracked prediction", f(track));
    entries.push_back(e);
    scratch = std::max(scratch, s.layers.Memory(rows).scratch);
    if (er > 0) scratch = std::max(scratch, s.layers.Memory(er).scratch);
    if (b.velocity && s.velocity == nullptr) persistent += f(s.params);
    if (Averages(setup, s.stage) && s.reference == nullptr) persistent += f(s.params);
    staging = std::max(staging, f(max_rows * std::max<int64_t>(s.in, 1)));
    max_params = std::max(max_params, s.params);
    // No GEMM operand spans more than the buffer holding it: a record, the scratch, the weights.
    if (bf16_) {
      m.bf16_elements =
          std::max({m.bf16_elements, s.RecordSize(rows), s.params, s.layers.Memory(rows).scratch});
      if (er > 0) {
        m.bf16_elements =
            std::max({m.bf16_elements, s.RecordSize(er), s.layers.Memory(er).scratch});
      }
    }
  }
  // The GEMM's two bf16 operand buffers grow (never shrink) to the largest operand.
  if (bf16_) {
    persistent += 2 * 2 * std::max<int64_t>(0, m.bf16_elements - m.gemm->bfloat16_capacity());
  }
  // One non-finite flag and at most one prediction measurement per Step call.
  const int32_t steps = StepCalls(setup);
  const int32_t e_scratch = pool.Add("scratch", f(scratch));
  const int32_t e_dscratch =
      pool.Add("reductions", static_cast<int64_t>(sizeof(double)) *
                                 std::max(LossScratch(max_rows), MeasureScratch(max_params)));
  const int32_t e_losses = pool.Add("losses", p.total_microbatches() * 8 + 8);
  const int32_t e_flags = pool.Add("non-finite flags", static_cast<int64_t>(steps + 1) * 4);
  const int32_t e_measures = pool.Add("prediction measurements", (steps + 1) * 4 * 8);
  const int32_t e_eval = pool.Add("evaluation totals", 4 * 8);
  PIPECAST_RETURN_IF_ERROR(pool.Finish());
  const int64_t need = pool.total_bytes() + persistent;
  const Result<int64_t> available = Available();
  if (!available.ok()) return available.status();
  // A pool large enough is kept (then only the persistent buffers are new), a smaller one is
  // freed before the new one is allocated.
  if (std::max(pool.total_bytes(), m.pool_bytes) + persistent > *available) {
    return DeviceError(name_ + ": this program needs " + FormatBytes(need) + " on GPU " +
                       std::to_string(gpu_) + " (" + pool.Largest(3) + "), beyond the " +
                       FormatBytes(*available) +
                       " it has free: use smaller or fewer microbatches in flight, or more stages");
  }
  if (pool.total_bytes() > m.pool_bytes) {
    if (m.pool != nullptr) PIPECAST_CUDA_RETURN_IF_ERROR(cudaFree(m.pool));
    m.pool = nullptr;
    m.memory_limit += m.pool_bytes;
    m.pool_bytes = 0;
    const Status st = CudaStatus(cudaMalloc(&m.pool, pool.total_bytes()), "cudaMalloc");
    if (!st.ok()) {
      return DeviceError(name_ + ": out of memory on GPU " + std::to_string(gpu_) +
                         ": the plan needs " + FormatBytes(pool.total_bytes()) + " (" +
                         pool.Largest(3) + "): " + st.message());
    }
    m.memory_limit -= pool.total_bytes();
    m.pool_bytes = pool.total_bytes();
  }
  // The velocity, reference weights and bf16 GEMM operands Prepare allocates next.
  m.memory_limit -= persistent;
  int32_t most_slots = 0;
  for (auto& sp : stages_) most_slots = std::max(most_slots, ReduceSlots(setup, sp->stage));
  m.buffers.reserve(static_cast<size_t>(most_slots));
  for (size_t k = 0; k < stages_.size(); ++k) {
    StageData& s = *stages_[k];
    const Entries& e = entries[k];
    s.copies = InPool<float>(m.pool, pool, e.copies);
    s.records = InPool<float>(m.pool, pool, e.records);
    s.reduce = InPool<float>(m.pool, pool, e.reduce);
    s.eval_x = InPool<float>(m.pool, pool, e.eval_x);
    s.eval_y = InPool<float>(m.pool, pool, e.eval_y);
    s.eval_saved = InPool<float>(m.pool, pool, e.eval_saved);
    s.labels = InPool<int32_t>(m.pool, pool, e.labels);
    s.base = InPool<float>(m.pool, pool, e.base);
    s.predicted = InPool<float>(m.pool, pool, e.predicted);
  }
  m.scratch = InPool<float>(m.pool, pool, e_scratch);
  m.dscratch = InPool<double>(m.pool, pool, e_dscratch);
  m.losses = InPool<double>(m.pool, pool, e_losses);
  m.correct = reinterpret_cast<long long*>(m.losses + p.total_microbatches());
  m.flags = InPool<int32_t>(m.pool, pool, e_flags);
  m.flag_capacity = steps + 1;
  m.measures = InPool<double>(m.pool, pool, e_measures);
  m.measure_capacity = steps + 1;
  m.eval_loss = InPool<double>(m.pool, pool, e_eval);
  m.eval_correct = reinterpret_cast<long long*>(m.eval_loss + 2);
  if (staging > m.slot_bytes) {
    if (m.pinned != nullptr) {
      for (cudaEvent_t e : m.slot_events) PIPECAST_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(e));
      PIPECAST_CUDA_RETURN_IF_ERROR(cudaFreeHost(m.pinned));
    }
    m.pinned = nullptr;
    PIPECAST_CUDA_RETURN_IF_ERROR(cudaMallocHost(&m.pinned, staging * kStagingSlots));
    m.slot_bytes = staging;
  }
  return Status::Ok();
}

Status CudaDevice::Prepare(const DeviceSetup& setup) {
  Bind();  // a step deferred by the previous program runs before its buffers are replanned
  const ir::Program& p = *setup.program;
  const ir::VersionPlan& plan = *setup.plan;
  method_ = p.method;
  device_ = setup.device;
  for (auto& sp : stages_) {
    StageData& s = *sp;
    PIPECAST_CHECK(s.stage < p.num_stages && p.holds(setup.device, s.stage))
        << name_ << ": stage " << s.stage << " is not on device " << setup.device;
    s.rule = models::EffectiveDeltaRule(p.options.delta, s.optimizer->config().kind);
    PIPECAST_RETURN_IF_ERROR(s.optimizer->SupportsRule(s.rule.rule));
  }
  // The previous program's work is finished before its buffers are replanned.
  for (cudaStream_t st : streams_) PIPECAST_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(st));
  PIPECAST_RETURN_IF_ERROR(PlanPool(setup));
  if (bf16_) PIPECAST_RETURN_IF_ERROR(impl_->gemm->UseBfloat16Inputs(impl_->bf16_elements));
  for (auto& sp : stages_) {
    StageData& s = *sp;
    const ir::StageBuffers& b = plan.buffers[s.stage];
    const size_t bytes = static_cast<size_t>(s.params) * sizeof(float);
    // Both on the compute stream, ahead of every operation of the program (a plain cudaMemset
    // or device-to-device cudaMemcpy would run on the legacy default stream, unordered with it).
    if (b.velocity && s.velocity == nullptr) {
      PIPECAST_CUDA_RETURN_IF_ERROR(cudaMalloc(&s.velocity, bytes));
      PIPECAST_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(s.velocity, 0, bytes, streams_[0]));
    }
    if (Averages(setup, s.stage) && !s.has_reference) {
      if (s.reference == nullptr) PIPECAST_CUDA_RETURN_IF_ERROR(cudaMalloc(&s.reference, bytes));
      PIPECAST_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(s.reference, s.weights, bytes, cudaMemcpyDeviceToDevice, streams_[0]));
      s.has_reference = true;
    }
    s.gamma = static_cast<float>(VelocityDecay(setup, s.stage));
    s.weight_copies = b.weight_copies;
    s.tags.assign(static_cast<size_t>(b.weight_copies), StageData::Tag{});
    s.rows = setup.microbatch_rows;
    s.record_size = s.RecordSize(s.rows);
    s.record_count = b.records;
    s.reduce_slots = ReduceSlots(setup, s.stage);
    s.eval_rows = setup.eval_rows;
    s.track_every = setup.track_predictions_every;
    s.tracking = false;
    s.next_base = 0;
    s.measured.clear();
    s.measured.reserve(static_cast<size_t>(impl_->measure_capacity));
    s.version = 0;
    s.stats = {};
  }
  ResetProgramState(setup);
  {
    std::lock_guard<std::mutex> lock(impl_->failure_mu);
    impl_->transport_failure = Status::Ok();  // the previous program's transport is gone
  }
  return Status::Ok();
}

void CudaDevice::ResetProgramState(const DeviceSetup& setup) {
  Impl& m = *impl_;
  const ir::Program& p = *setup.program;
  PIPECAST_CUDA_CHECK(cudaMemsetAsync(m.losses, 0, p.total_microbatches() * 8 + 8, streams_[0]));
  PIPECAST_CUDA_CHECK(cudaMemsetAsync(m.flags, 0, m.flag_capacity * 4, streams_[0]));
  PIPECAST_CUDA_CHECK(cudaMemsetAsync(m.eval_loss, 0, 4 * 8, streams_[0]));
  m.flags_used = m.measures_used = 0;
  m.checks.clear();
  // A loss per microbatch and a flag per Step at most: the host side allocates nothing either.
  m.checks.reserve(static_cast<size_t>(p.total_microbatches() + m.flag_capacity));
  m.host_losses.assign(p.total_microbatches(), 0.0);
  m.has_loss.assign(p.total_microbatches(), 0);
  m.host_correct = 0;
  m.eval_rows_done = 0;
  size_t uses = 0;
  for (const ir::Action& a : p.devices[setup.device]) uses += ir::UsesWeights(a.kind) ? 1 : 0;
  served_.clear();
  served_.reserve(uses);
}

void CudaDevice::SetWeights(int32_t stage, std::span<const float> weights) {
  StageData& s = At(stage);
  PIPECAST_CHECK(static_cast<int64_t>(weights.size()) == s.params)
      << "stage " << stage << ": " << weights.size() << " weights for " << s.params;
  Bind();
  // On the compute stream and waited for: a plain cudaMemcpy from pageable memory may return
  // before the data is on the device, and runs on the legacy stream the compute does not wait for.
  PIPECAST_CUDA_CHECK(cudaMemcpyAsync(s.weights, weights.data(), weights.size_bytes(),
                                      cudaMemcpyHostToDevice, streams_[0]));
  PIPECAST_CUDA_CHECK(cudaStreamSynchronize(streams_[0]));
  s.has_reference = false;  // the next program that averages the stage starts W~ from these
}

void CudaDevice::ReadWeights(int32_t stage, std::span<float> out) {
  StageData& s = At(stage);
  PIPECAST_CHECK(static_cast<int64_t>(out.size()) == s.params);
  Bind();
  PIPECAST_CUDA_CHECK(cudaMemcpyAsync(out.data(), s.weights, out.size_bytes(),
                                      cudaMemcpyDeviceToHost, streams_[0]));
  PIPECAST_CUDA_CHECK(cudaStreamSynchronize(streams_[0]));
}

// Polls an event every few microseconds (backing off to a millisecond) until it completes, the
// deadline passes or the device reports an error.
Status PollEvent(cudaEvent_t e, Clock::time_point deadline, const std::string& what) {
  auto pause = std::chrono::microseconds(2);
  while (true) {
    const cudaError_t q = cudaEventQuery(e);
    if (q == cudaSuccess) return Status::Ok();
    if (q != cudaErrorNotReady) return CudaStatus(q, what);
    if (Clock::now() >= deadline) return DeadlineExceeded(what + ": not finished by the deadline");
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(1));
  }
}

Status CudaDevice::Synchronize(Clock::time_point deadline) {
  Impl& m = *impl_;
  Bind();
  // A transfer cut off by its transport: the lanes may not even finish, and what they computed
  // after it is garbage.
  PIPECAST_RETURN_IF_ERROR(TransportFailure());
  static constexpr const char* kLanes[3] = {"compute", "send", "receive"};
  const auto what = [&](int lane) {
    return name_ + " (" + method_ + ", device " + std::to_string(device_) + "), " + kLanes[lane] +
           " stream, after " + m.last_op +
           (m.last_stage >= 0 ? " of stage " + std::to_string(m.last_stage) : std::string());
  };
  // A fault of earlier work is sticky: recording fails with it too, and is reported as a poll's.
  for (int lane = 0; lane < 3; ++lane) {
    const cudaError_t e = cudaEventRecord(m.sync_events[lane], streams_[lane]);
    if (e != cudaSuccess) return CudaStatus(e, what(lane));
  }
  for (int lane = 0; lane < 3; ++lane) {
    const Status st = PollEvent(m.sync_events[lane], deadline, what(lane));
    if (!st.ok()) return st;
  }
  PIPECAST_RETURN_IF_ERROR(TransportFailure());  // noted while the lanes ran
  return CheckFlags();
}

// Reads back the losses, the correct count and the flags, and reports the first non-finite
// loss or gradient in issue order, with the CPU device's messages.
Status CudaDevice::CheckFlags() {
  Impl& m = *impl_;
  const size_t n = m.host_losses.size();
  std::vector<double> losses(n + 1);  // the losses, then the correct count's 8 bytes
  std::vector<int32_t> flags(static_cast<size_t>(m.flags_used));
  PIPECAST_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(losses.data(), m.losses, (n + 1) * 8, cudaMemcpyDeviceToHost, streams_[0]));
  if (m.flags_used > 0) {
    PIPECAST_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(flags.data(), m.flags, flags.size() * 4,
                                                  cudaMemcpyDeviceToHost, streams_[0]));
  }
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(streams_[0]));
  for (size_t j = 0; j < n; ++j)
    if (m.has_loss[j]) m.host_losses[j] = losses[j];
  long long correct = 0;
  std::memcpy(&correct, &losses[n], sizeof(correct));
  m.host_correct = correct;
  for (const Impl::Check& c : m.checks) {
    const bool bad = c.loss ? !std::isfinite(m.host_losses[c.where]) : flags[c.flag] != 0;
    if (!bad) continue;
    if (c.loss) {
      return NonFinite("NaN or Inf in the loss of microbatch " + std::to_string(c.where) + ": " +
                       method_ + ", device " + std::to_string(device_) + ", stage " +
                       std::to_string(c.stage));
    }
    return NonFinite("NaN or Inf in the gradient: " + method_ + ", device " +
                     std::to_string(device_) + ", stage " + std::to_string(c.stage) + ", step " +
                     std::to_string(c.where));
  }
  return Status::Ok();
}

void CudaDevice::ReadLosses(std::span<double> losses, int64_t* correct) {
  const Impl& m = *impl_;
  PIPECAST_CHECK(losses.size() == m.host_losses.size());
  for (size_t j = 0; j < losses.size(); ++j)
    if (m.has_loss[j]) losses[j] = m.host_losses[j];
  *correct = m.host_correct;
}

// The measurements' four sums, folded in the CPU device's order and arithmetic (Measure).
PredictionStats CudaDevice::Predictions(int32_t stage) {
  StageData& s = At(stage);
  Bind();
  std::vector<double> all(4 * s.measured.size());
  for (size_t k = 0; k < s.measured.size(); ++k) {
    PIPECAST_CUDA_CHECK(cudaMemcpyAsync(&all[4 * k], impl_->measures + 4 * s.measured[k],
                                        4 * sizeof(double), cudaMemcpyDeviceToHost, streams_[0]));
  }
  PIPECAST_CUDA_CHECK(cudaStreamSynchronize(streams_[0]));
  for (size_t k = 0; k < s.measured.size(); ++k) {
    const double* sums = &all[4 * k];
    const double err = sums[0], real = sums[1], pred = sums[2], dot = sums[3];
    if (real == 0) continue;
    ++s.stats.count;
    s.stats.error_sum += std::sqrt(err / real);
    s.stats.cosine_sum += pred > 0 ? dot / std::sqrt(pred * real) : 0.0;
  }
  s.measured.clear();
  const PredictionStats out = s.stats;
  s.stats = {};
  return out;
}

void CudaDevice::ReadEval(double* loss_sum, int64_t* correct, int64_t* rows) {
  Impl& m = *impl_;
  Bind();
  double totals[2];
  long long c = 0;
  PIPECAST_CUDA_CHECK(
      cudaMemcpyAsync(totals, m.eval_loss, sizeof(totals), cudaMemcpyDeviceToHost, streams_[0]));
  PIPECAST_CUDA_CHECK(cudaMemcpyAsync(&c, m.eval_correct, 8, cudaMemcpyDeviceToHost, streams_[0]));
  PIPECAST_CUDA_CHECK(cudaStreamSynchronize(streams_[0]));
  *loss_sum = totals[1];
  *correct = c;
  *rows = m.eval_rows_done;
  // On the compute stream, ahead of the next evaluation's sums (a plain cudaMemset would run on
  // the legacy stream, unordered with them).
  PIPECAST_CUDA_CHECK(cudaMemsetAsync(m.eval_loss, 0, 4 * 8, streams_[0]));
  m.eval_rows_done = 0;
}

namespace {

// A copy of device memory, on `stream` and waited for.
std::vector<float> ToHost(const float* device, int64_t n, cudaStream_t stream) {
  std::vector<float> out(static_cast<size_t>(n));
  PIPECAST_CUDA_CHECK(
      cudaMemcpyAsync(out.data(), device, n * sizeof(float), cudaMemcpyDeviceToHost, stream));
  PIPECAST_CUDA_CHECK(cudaStreamSynchronize(stream));
  return out;
}

}  // namespace

Result<StageState> CudaDevice::State(int32_t stage) {
  StageData& s = At(stage);
  Bind();
  for (cudaStream_t st : streams_) PIPECAST_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(st));
  StageState out;
  out.optimizer_steps = s.optimizer->steps();
  out.tensors.emplace_back("weights", ToHost(s.weights, s.params, streams_[0]));
  auto opt = s.optimizer->StateTensors();
  if (!opt.ok()) return opt.status();
  for (auto& [name, values] : *opt) out.tensors.emplace_back("opt." + name, std::move(values));
  if (s.velocity != nullptr)
    out.tensors.emplace_back("velocity", ToHost(s.velocity, s.params, streams_[0]));
  if (s.has_reference)
    out.tensors.emplace_back("reference", ToHost(s.reference, s.params, streams_[0]));
  return out;
}

Status CudaDevice::LoadState(int32_t stage, const StageState& state) {
  StageData& s = At(stage);
  Bind();
  auto find = [&](const std::string& name) -> const std::vector<float>* {
    for (const auto& [n, v] : state.tensors)
      if (n == name) return &v;
    return nullptr;
  };
  const std::string st = "stage " + std::to_string(stage);
  const std::vector<float>* w = find("weights");
  if (w == nullptr || static_cast<int64_t>(w->size()) != s.params)
    return InvalidArgument(st + ": missing or mis-sized weights");
  auto names = s.optimizer->StateTensors();
  if (!names.ok()) return names.status();
  std::vector<models::StateTensor> opt = std::move(*names);
  for (auto& [name, values] : opt) {
    const std::vector<float>* v = find("opt." + name);
    if (v == nullptr) return InvalidArgument(st + ": missing " + name);
    values = *v;
  }
  const std::vector<float>* ref = find("reference");
  const std::vector<float>* vel = find("velocity");
  for (const std::vector<float>* v : {ref, vel})
    if (v != nullptr && static_cast<int64_t>(v->size()) != s.params)
      return InvalidArgument(st + ": mis-sized reference weights or velocity");
  PIPECAST_RETURN_IF_ERROR(s.optimizer->LoadState(state.optimizer_steps, opt));
  const size_t bytes = static_cast<size_t>(s.params) * sizeof(float);
  // On the compute stream, waited for before the host tensors go (see SetWeights).
  const cudaStream_t stream = streams_[0];
  PIPECAST_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(s.weights, w->data(), bytes, cudaMemcpyHostToDevice, stream));
  if (vel != nullptr) {
    if (s.velocity == nullptr) PIPECAST_CUDA_RETURN_IF_ERROR(cudaMalloc(&s.velocity, bytes));
    PIPECAST_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(s.velocity, vel->data(), bytes, cudaMemcpyHostToDevice, stream));
  }
  if (ref != nullptr) {
    if (s.reference == nullptr) PIPECAST_CUDA_RETURN_IF_ERROR(cudaMalloc(&s.reference, bytes));
    PIPECAST_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(s.reference, ref->data(), bytes, cudaMemcpyHostToDevice, stream));
    s.has_reference = true;
  }
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return Status::Ok();
}

}  // namespace pipecast::runtime::cuda
