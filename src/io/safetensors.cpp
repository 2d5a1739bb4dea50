// safetensors reading (mmap) and streaming writing.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <torch/torch.h>

#include "io/atomic_file.h"
#include "util/error.h"

namespace draft {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

struct TypePair {
  DType dtype;
  c10::ScalarType type;
};
constexpr TypePair kTypes[] = {
    {DType::F64, c10::kDouble}, {DType::F32, c10::kFloat}, {DType::F16, c10::kHalf},
    {DType::BF16, c10::kBFloat16}, {DType::I64, c10::kLong}, {DType::I32, c10::kInt},
    {DType::I16, c10::kShort}, {DType::I8, c10::kChar}, {DType::U8, c10::kByte},
    {DType::BOOL, c10::kBool},
};

}  // namespace

c10::ScalarType to_scalar_type(DType dtype) {
  for (const auto& p : kTypes) {
    if (p.dtype == dtype) return p.type;
  }
  fail("internal: unknown DType ", static_cast<int>(dtype));
}

DType from_scalar_type(c10::ScalarType type) {
  for (const auto& p : kTypes) {
    if (p.type == type) return p.dtype;
  }
  fail("tensors of type ", c10::toString(type), " cannot be stored in safetensors; convert to one of "
       "float64/32/16, bfloat16, int64/32/16/8, uint8, bool");
}

// ---- reading ----------------------------------------------------------------------------------------

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const bool folder = S_ISDIR(st.st_mode);
    ::close(fd);
    fail(path, folder ? ": is a folder; a .safetensors file is expected (in a diffusers folder, e.g. "
                        "unet/diffusion_pytorch_model.safetensors)"
                      : ": not a regular file; a .safetensors file is expected");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* map = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    ::close(fd);
    if (map == MAP_FAILED) fail(path, ": cannot map into memory: ", std::strerror(map_errno));
    data_ = static_cast<const uint8_t*>(map);
  } else {
    ::close(fd);
  }
  try {
    header_ = parse_safetensors_header(data_, size_, path);
  } catch (...) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = nullptr;
    throw;
  }
  for (std::size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

SafeTensorsFile::~SafeTensorsFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

const TensorInfo* SafeTensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

int64_t SafeTensorsFile::parameter_count() const {
  int64_t n = 0;
  for (const auto& t : header_.tensors) n += t.numel();
  return n;
}

at::Tensor SafeTensorsFile::load(const std::string& name, const LoadOptions& options) const {
  const TensorInfo* info = find(name);
  if (!info) fail(path_, ": has no tensor named '", name, "'");
  auto type = to_scalar_type(info->dtype);
  const uint8_t* src = data_ + header_.data_start + info->begin;

  // Copy out of the mapping (the file may change or be unmapped later). The copy is aligned, which
  // the data in the file need not be.
  at::Tensor cpu = torch::empty(info->shape, torch::TensorOptions().dtype(type));
  if (info->nbytes() > 0) std::memcpy(cpu.data_ptr(), src, info->nbytes());
  if (info->dtype == DType::BOOL && cpu.numel() > 0) {
    DRAFT_CHECK(cpu.view(torch::kUInt8).le(1).all().item<bool>(), path_, ": tensor '", name,
                "' is BOOL but holds bytes other than 0 and 1");
  }
  auto target = type;
  if (options.dtype && at::isFloatingType(type)) target = *options.dtype;
  if (target == type && options.device.is_cpu()) return cpu;
  return cpu.to(options.device, target);
}

std::map<std::string, at::Tensor> SafeTensorsFile::load_all(const LoadOptions& options) const {
  std::map<std::string, at::Tensor> out;
  for (const auto& t : header_.tensors) out.emplace(t.name, load(t.name, options));
  return out;
}

// ---- writing ----------------------------------------------------------------------------------------

struct SafeTensorsWriter::Impl {
  std::string path;
  std::unique_ptr<AtomicFileWriter> out;
  std::vector<TensorInfo> tensors;
  std::size_t next = 0;
  bool closed = false;
};

SafeTensorsWriter::SafeTensorsWriter(const std::string& path, const std::vector<Entry>& entries,
                                     const std::map<std::string, std::string>& metadata)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  for (const auto& e : entries) impl_->tensors.push_back(TensorInfo{e.name, e.dtype, e.shape, 0, 0});
  std::string header;
  try {
    header = build_safetensors_header(impl_->tensors, metadata);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  header.append((8 - header.size() % 8) % 8, ' ');
  impl_->out = std::make_unique<AtomicFileWriter>(path);
  uint8_t size_bytes[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) size_bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  impl_->out->write(size_bytes, 8);
  impl_->out->write(header);
}

// An unfinished file never appears under the real name: AtomicFileWriter removes its temporary file.
SafeTensorsWriter::~SafeTensorsWriter() = default;

void SafeTensorsWriter::write(const std::string& name, const at::Tensor& tensor) {
  auto& im = *impl_;
  DRAFT_CHECK(!im.closed, im.path, ": write('", name, "') after close()");
  DRAFT_CHECK(im.next < im.tensors.size(), im.path, ": tensor '", name, "' was not declared");
  const TensorInfo& info = im.tensors[im.next];
  DRAFT_CHECK(info.name == name, im.path, ": expected tensor '", info.name, "' next, got '", name, "'");
  DRAFT_CHECK(from_scalar_type(tensor.scalar_type()) == info.dtype, im.path, ": tensor '", name,
              "' was declared ", dtype_name(info.dtype), " but is ", c10::toString(tensor.scalar_type()));
  DRAFT_CHECK(tensor.sizes().vec() == info.shape, im.path, ": tensor '", name, "' was declared with shape ",
              c10::IntArrayRef(info.shape), " but has ", tensor.sizes());
  at::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  im.out->write(cpu.data_ptr(), info.nbytes());
  ++im.next;
}

void SafeTensorsWriter::close() {
  auto& im = *impl_;
  if (im.closed) return;
  DRAFT_CHECK(im.next == im.tensors.size(), im.path, ": closed after ", im.next, " of ", im.tensors.size(),
              " declared tensors; next missing: '", im.tensors[im.next].name, "'");
  im.out->commit();
  im.out.reset();
  im.closed = true;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<SafeTensorsWriter::Entry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    entries.push_back({name, from_scalar_type(t.scalar_type()), t.sizes().vec()});
  }
  SafeTensorsWriter writer(path, entries, metadata);
  for (const auto& [name, t] : tensors) writer.write(name, t);
  writer.close();
}

}  // namespace draft
