// The launcher's environment and a c10d Gloo process group (see process_group.h).
// c10d's Gloo header is compiled only with USE_C10D_GLOO; Debian's LibTorch is built with it. NCCL is
// compiled in when CMake found a CUDA LibTorch with NCCL (it then defines USE_C10D_NCCL).
#define USE_C10D_GLOO 1
#include "train/process_group.h"

#include <cstdlib>
#include <cstring>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>

#include "util/error.h"
#include "util/log.h"

namespace draft {
namespace {

int parse_int(const char* name, const char* text, int low, int high) {
  std::string s = text;
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  DRAFT_CHECK(used == s.size() && !s.empty() && v >= low && v <= high, "environment variable ", name, "='", s,
              "' must be an integer in [", low, ", ", high, "]");
  return static_cast<int>(v);
}

// What to check when the store cannot be served or reached.
std::string options_hint(const DistributedEnv& env) {
  return env.rank == 0 ? "is MASTER_PORT " + std::to_string(env.master_port) + " already in use? choose another port"
                       : "is the master " + env.master_addr + ":" + std::to_string(env.master_port) +
                             " up and reachable, and did rank 0 start?";
}

bool is_loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

}  // namespace

DistributedEnv read_distributed_env(const std::function<const char*(const char*)>& getenv) {
  DistributedEnv env;
  auto get = [&](const char* name) -> const char* {
    const char* v = getenv(name);
    return v != nullptr && *v != '\0' ? v : nullptr;
  };
  const char* rank = get("RANK");
  const char* world = get("WORLD_SIZE");
  if (rank != nullptr || world != nullptr) {
    DRAFT_CHECK(rank != nullptr && world != nullptr, "environment: ", rank ? "RANK" : "WORLD_SIZE", " is set but ",
                rank ? "WORLD_SIZE" : "RANK", " is not; launch with torchrun or draft launch, which set both");
    env.source = "torchrun";
    env.world_size = parse_int("WORLD_SIZE", world, 1, 1 << 20);
    env.rank = parse_int("RANK", rank, 0, env.world_size - 1);
    env.local_rank = get("LOCAL_RANK") ? parse_int("LOCAL_RANK", get("LOCAL_RANK"), 0, env.world_size - 1) : env.rank;
    env.local_world_size =
        get("LOCAL_WORLD_SIZE") ? parse_int("LOCAL_WORLD_SIZE", get("LOCAL_WORLD_SIZE"), 1, env.world_size) : env.world_size;
    env.agent_store = get("TORCHELASTIC_USE_AGENT_STORE") && std::string(get("TORCHELASTIC_USE_AGENT_STORE")) == "True";
    if (get("TORCHELASTIC_RESTART_COUNT")) {
      env.restart_count = parse_int("TORCHELASTIC_RESTART_COUNT", get("TORCHELASTIC_RESTART_COUNT"), 0, 1 << 20);
    }
  } else if (get("SLURM_PROCID") && get("SLURM_NTASKS")) {
    env.source = "slurm";
    env.world_size = parse_int("SLURM_NTASKS", get("SLURM_NTASKS"), 1, 1 << 20);
    env.rank = parse_int("SLURM_PROCID", get("SLURM_PROCID"), 0, env.world_size - 1);
    env.local_rank = get("SLURM_LOCALID") ? parse_int("SLURM_LOCALID", get("SLURM_LOCALID"), 0, env.world_size - 1) : 0;
    env.local_world_size = get("SLURM_NTASKS_PER_NODE")
                               ? parse_int("SLURM_NTASKS_PER_NODE", get("SLURM_NTASKS_PER_NODE"), 1, env.world_size)
                               : 1;
    DRAFT_CHECK(get("MASTER_ADDR") != nullptr, "environment: SLURM_PROCID is set but MASTER_ADDR is not; export "
                "MASTER_ADDR (the first node of the allocation) and MASTER_PORT before srun");
  } else {
    return env;
  }
  env.launched = true;
  if (get("MASTER_ADDR")) env.master_addr = get("MASTER_ADDR");
  if (get("MASTER_PORT")) env.master_port = parse_int("MASTER_PORT", get("MASTER_PORT"), 1, 65535);
  return env;
}

DistributedEnv read_distributed_env() {
  return read_distributed_env([](const char* name) { return std::getenv(name); });
}

bool nccl_available() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

DistBackend resolve_dist_backend(const std::string& name, const std::string& device) {
  const bool cuda = device.rfind("cuda", 0) == 0;
  if (name == "auto") return cuda && nccl_available() ? DistBackend::kNccl : DistBackend::kGloo;
  if (name == "gloo") return DistBackend::kGloo;
  DRAFT_CHECK(name == "nccl", "dist.backend '", name, "' is not one of auto, gloo, nccl");
  DRAFT_CHECK(nccl_available(), "dist.backend nccl: this build's LibTorch has no NCCL (a CPU or non-NCCL build); "
              "use --dist-backend gloo, or build against a CUDA LibTorch");
  DRAFT_CHECK(cuda, "dist.backend nccl needs a CUDA device, but device is '", device,
              "': use --dist-backend gloo (or auto) for CPU runs");
  return DistBackend::kNccl;
}

namespace {

// The tensors as one flat buffer of the first one's dtype on `device`.
at::Tensor flatten(const std::vector<at::Tensor>& tensors, c10::Device device) {
  std::vector<at::Tensor> parts;
  for (const auto& t : tensors) parts.push_back(t.detach().reshape({-1}).to(device, tensors.front().scalar_type()));
  return torch::cat(parts);
}

void unflatten(const at::Tensor& flat, const std::vector<at::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& t : tensors) {
    const int64_t n = t.numel();
    t.copy_(flat.narrow(0, offset, n).view(t.sizes()));  // copy_ writes into t's storage
    offset += n;
  }
}

}  // namespace

// The c10d group of a launched run. Gloo's and NCCL's classes share no base class across LibTorch versions
// (1.13: ProcessGroup, 2.x: Backend), so each collective is dispatched to whichever one is held.
struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef USE_C10D_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};
  std::string where;  // "rank R of W (MASTER_ADDR:PORT)" for messages

  bool single() const { return size == 1 && !gloo; }

  template <typename F>
  c10::intrusive_ptr<c10d::Work> call(F&& f) const {
#ifdef USE_C10D_NCCL
    if (nccl) return f(*nccl);
#endif
    return f(*gloo);
  }

  // The device the flat buffers live on: NCCL reduces on this rank's GPU (cuda:LOCAL_RANK), Gloo on the
  // CPU; the results are copied back to each tensor's own device.
  c10::Device device = c10::Device(c10::kCPU);

  void wait(const char* what, const c10::intrusive_ptr<c10d::Work>& work) const {
    try {
      work->wait(timeout);
    } catch (const std::exception& e) {
      fail("distributed ", what, " failed on ", where, " within ", timeout.count(), " ms: a rank was lost or is "
           "stuck (", first_line(e.what()), "); the last checkpoint is intact: resume with --resume");
    }
  }

  // One all-reduce of the tensors' flat buffer with `op`; returns the buffer (the tensors are not written).
  at::Tensor reduce(const std::vector<at::Tensor>& tensors, c10d::ReduceOp op) const {
    std::vector<at::Tensor> buffer = {flatten(tensors, device)};
    c10d::AllreduceOptions options;
    options.reduceOp = op;
    wait("all-reduce", call([&](auto& group) { return group.allreduce(buffer, options); }));
    return buffer.front();
  }

  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }
};

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

std::unique_ptr<ProcessGroup> ProcessGroup::single() {
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::make_unique<Impl>()));
}

std::unique_ptr<ProcessGroup> ProcessGroup::join(const DistributedEnv& env, std::chrono::milliseconds timeout,
                                                 DistBackend backend) {
  auto impl = std::make_unique<Impl>();
  impl->rank = env.rank;
  impl->size = env.world_size;
  impl->timeout = timeout;
  impl->where = "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + " (" +
                env.master_addr + ":" + std::to_string(env.master_port) + ")";
  const std::string step = env.rank == 0 && !env.agent_store ? "serving the rendezvous store" : "reaching the master";
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = env.rank == 0 && !env.agent_store;
    options.numWorkers = env.world_size;
    options.waitWorkers = false;
    options.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    // torchrun's agent store outlives the workers and holds its own keys: like torch.distributed's env://
    // rendezvous, each attempt's workers keep their keys under /worker/attempt_N, so that ranks restarted
    // by the agent never read the keys of the attempt before.
    if (env.agent_store) {
      impl->store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(env.restart_count),
                                                           impl->store);
    }
  } catch (const std::exception& e) {
    fail("distributed start: ", impl->where, " failed ", step, " (", Impl::first_line(e.what()), "): ",
         options_hint(env));
  }
  const char* name = backend == DistBackend::kNccl ? "NCCL" : "Gloo";
  try {
    if (backend == DistBackend::kNccl) {
#ifdef USE_C10D_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, options);
      impl->device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
#else
      fail("distributed start: this build has no NCCL; use --dist-backend gloo");
#endif
    } else {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      options->devices.push_back(is_loopback(env.master_addr)
                                     ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                     : c10d::ProcessGroupGloo::createDefaultDevice());
      impl->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, options);
    }
  } catch (const draft::Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("distributed start: ", impl->where, " could not form the ", name, " group within ", timeout.count(),
         " ms: not all ", env.world_size, " ranks arrived (", Impl::first_line(e.what()), ")");
  }
  DRAFT_LOG_INFO("joined the process group: {}, {}", impl->where, name);
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

int ProcessGroup::rank() const { return impl_->rank; }
int ProcessGroup::size() const { return impl_->size; }
std::string ProcessGroup::where() const { return impl_->where; }


void ProcessGroup::all_reduce_mean(const std::vector<at::Tensor>& tensors) {
  if (tensors.empty() || impl_->single()) return;
  at::Tensor flat = impl_->reduce(tensors, c10d::ReduceOp::SUM);
  flat.div_(static_cast<double>(size()));
  unflatten(flat, tensors);
}

void ProcessGroup::all_reduce_sum(const std::vector<at::Tensor>& tensors) {
  if (tensors.empty() || impl_->single()) return;
  unflatten(impl_->reduce(tensors, c10d::ReduceOp::SUM), tensors);
}

void ProcessGroup::all_reduce_max(const std::vector<at::Tensor>& tensors) {
  if (tensors.empty() || impl_->single()) return;
  unflatten(impl_->reduce(tensors, c10d::ReduceOp::MAX), tensors);
}

double ProcessGroup::all_reduce_sum(double value) {
  const at::Tensor t = torch::tensor({value}, torch::kDouble);
  all_reduce_sum(std::vector<at::Tensor>{t});
  return t.item<double>();
}

void ProcessGroup::broadcast(const std::vector<at::Tensor>& tensors, int root) {
  if (tensors.empty() || impl_->single()) return;
  std::vector<at::Tensor> buffer = {flatten(tensors, impl_->device)};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  impl_->wait("broadcast", impl_->call([&](auto& group) { return group.broadcast(buffer, options); }));
  unflatten(buffer.front(), tensors);
}

std::string ProcessGroup::broadcast(const std::string& text, int root) {
  if (impl_->single()) return text;
  // The length first, then the bytes (a buffer of that length on every rank).
  const at::Tensor length = torch::tensor({static_cast<int64_t>(text.size())}, torch::kLong);
  broadcast(std::vector<at::Tensor>{length}, root);
  const int64_t n = length.item<int64_t>();
  if (n == 0) return "";
  at::Tensor bytes = torch::zeros({n}, torch::kUInt8);
  if (rank() == root) std::memcpy(bytes.data_ptr<uint8_t>(), text.data(), static_cast<std::size_t>(n));
  broadcast(std::vector<at::Tensor>{bytes}, root);
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<std::size_t>(n));
}

void ProcessGroup::barrier() {
  if (impl_->single()) return;
  impl_->wait("barrier", impl_->call([&](auto& group) { return group.barrier(); }));
}

}  // namespace draft
