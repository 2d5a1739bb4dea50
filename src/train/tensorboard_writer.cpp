// TensorBoard events files: tensorboard.Event protos (io/tensorboard.proto, TensorBoard's field numbers) framed
// as TFRecords, the format of TensorFlow's EventsWriter (tensorflow/core/util/events_writer.cc).
#include "train/tensorboard_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "io/tensorboard.pb.h"
#include "io/tfrecord.h"
#include "util/error.h"

namespace draft {
namespace {

namespace tb = ::draft::tensorboard;

constexpr const char* kFilePrefix = "events.out.tfevents.";

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// A new file per process start, as TensorFlow names them: the time first, so that sorting by name puts the
// files of a resumed run after the earlier ones, and host and pid to keep concurrent writers apart.
std::string event_file_name() {
  return kFilePrefix + std::to_string(static_cast<long long>(std::time(nullptr))) + "." + host_name() + "." +
         std::to_string(static_cast<long long>(::getpid()));
}

// What a failed write means to a user (as io/atomic_file.cpp says it).
std::string describe(int error) {
  if (error == ENOSPC) return "no space left on the device";
  if (error == EFBIG) return "the file-size limit (ulimit -f) is reached";
  if (error == EDQUOT) return "the disk quota is exceeded";
  return std::strerror(error);
}

tb::Event event_at(int64_t step) {
  tb::Event event;
  event.set_wall_time(now_seconds());
  event.set_step(step);
  return event;
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  DRAFT_CHECK(!ec, dir, ": cannot create the TensorBoard folder: ", ec.message(),
              " (or run without TensorBoard files: --no-tensorboard)");
  // Two writers of one process in the same second (a run resumed in-process) get "<name>.1", ...
  const std::string name = dir + "/" + event_file_name();
  for (int n = 0; fd_ < 0; ++n) {
    path_ = n == 0 ? name : name + "." + std::to_string(n);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || n >= 1000)) {
      fail(path_, ": cannot create the TensorBoard events file: ", std::strerror(errno),
           " (or run without TensorBoard files: --no-tensorboard)");
    }
  }
  tb::Event first = event_at(0);
  first.set_file_version("brain.Event:2");
  append(first.SerializeAsString());
}

TensorBoardWriter::~TensorBoardWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void TensorBoardWriter::append(const std::string& serialized_event) {
  DRAFT_CHECK(fd_ >= 0, path_, ": the TensorBoard events file is closed after an earlier failed write");
  const std::string record = tfrecord(serialized_event);
  std::size_t done = 0;
  while (done < record.size()) {  // one write() for the record, unless the system splits it
    const ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n == 0 ? ENOSPC : errno;
      ::close(fd_);
      fd_ = -1;
      fail(path_, ": appending a TensorBoard event failed: ", describe(error),
           " (the events before it are intact; free space, or run with --no-tensorboard)");
    }
    done += static_cast<std::size_t>(n);
  }
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  add_scalars({{tag, value}}, step);
}

void TensorBoardWriter::add_scalars(const std::vector<std::pair<std::string, double>>& scalars, int64_t step) {
  tb::Event event = event_at(step);
  for (const auto& [tag, value] : scalars) {
    tb::Summary::Value* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  append(event.SerializeAsString());
}

void TensorBoardWriter::add_image(const std::string& tag, const std::string& png, int64_t height, int64_t width,
                                  int64_t channels, int64_t step) {
  DRAFT_CHECK(channels == 1 || channels == 3, path_, ": TensorBoard image '", tag,
              "' needs 1 or 3 channels, got ", channels);
  tb::Event event = event_at(step);
  tb::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  tb::Summary::Image* image = v->mutable_image();
  image->set_height(static_cast<int32_t>(height));
  image->set_width(static_cast<int32_t>(width));
  image->set_colorspace(static_cast<int32_t>(channels));  // TensorBoard's colorspace 1 is grayscale, 3 is RGB
  image->set_encoded_image_string(png);
  append(event.SerializeAsString());
}

void TensorBoardWriter::add_text(const std::string& tag, const std::string& text, int64_t step) {
  tb::Event event = event_at(step);
  tb::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  // The text plugin reads a string tensor; its PluginData content is a TextPluginData, empty for version 0.
  v->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  tb::TensorProto* tensor = v->mutable_tensor();
  tensor->set_dtype(tb::DT_STRING);
  tensor->mutable_tensor_shape()->add_dim()->set_size(1);
  tensor->add_string_val(text);
  append(event.SerializeAsString());
}

void TensorBoardWriter::add_session_start(int64_t step) {
  tb::Event event = event_at(step);
  event.mutable_session_log()->set_status(tb::SessionLog::START);
  append(event.SerializeAsString());
}

std::vector<std::string> tensorboard_event_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().filename().string().rfind(kFilePrefix, 0) == 0) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace draft
