// TensorBoard event files of a run: RUN/tensorboard/events.out.tfevents.<seconds>.<host>.<pid>, one per
// process start, holding the scalars, sample grids and text the run logs (view with `tensorboard --logdir`).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace draft {

/// Appends events to a new TensorBoard events file (TFRecords of tensorboard.Event protos, io/tfrecord.h and
/// io/tensorboard.proto). Each event is one write() to the end of the file (no fsync): a process killed while
/// appending leaves at most one record cut short, which fails its length or CRC and readers skip.
class TensorBoardWriter {
 public:
  /// Creates `dir` when missing and a new events file in it named as TensorFlow names them
  /// (events.out.tfevents.<unix seconds>.<hostname>.<pid>), whose first event is file_version
  /// "brain.Event:2". Throws draft::Error naming the folder or file when it cannot.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  /// The events file.
  const std::string& path() const { return path_; }

  /// A scalar (TensorBoard's Scalars dashboard), stored as float32.
  void add_scalar(const std::string& tag, double value, int64_t step);
  /// Several scalars of one step as one event (one write): (tag, value) pairs.
  void add_scalars(const std::vector<std::pair<std::string, double>>& scalars, int64_t step);
  /// An image (the Images dashboard): an encoded PNG of `height` x `width` pixels with 1 (grayscale) or 3
  /// (RGB) `channels`.
  void add_image(const std::string& tag, const std::string& png, int64_t height, int64_t width, int64_t channels,
                 int64_t step);
  /// Markdown text (the Text dashboard's plugin: a string tensor with plugin name "text").
  void add_text(const std::string& tag, const std::string& text, int64_t step);
  /// A SessionLog START at `step`: TensorBoard then drops the events it read before at steps >= `step`
  /// (from an earlier process of the run), the convention for a run resumed from a checkpoint.
  void add_session_start(int64_t step);

 private:
  void append(const std::string& serialized_event);

  std::string path_;
  int fd_ = -1;
};

/// The events files in `dir` (events.out.tfevents.*), sorted by name (oldest first); none when `dir` is missing.
std::vector<std::string> tensorboard_event_files(const std::string& dir);

}  // namespace draft
