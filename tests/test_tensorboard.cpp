// TensorBoard event files: CRC-32C, TFRecord framing (round trip, corruption, a torn last record), the
// events TensorBoardWriter writes decoded back with the generated protobuf classes, and ResumableRun's
// events (metrics as scalars, the config as text, a session start on resume, a new run dropping old files).
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/png.h"
#include "io/tensorboard.pb.h"
#include "io/tfrecord.h"
#include "train/resumable_run.h"
#include "train/tensorboard_writer.h"
#include "support.h"

namespace {

namespace tb = draft::tensorboard;
using draft::test::expect_error;
using draft::test::TempDir;

std::vector<tb::Event> read_events(const std::string& path) {
  std::vector<tb::Event> events;
  for (const auto& record : draft::read_tfrecords(path)) {
    tb::Event event;
    EXPECT_TRUE(event.ParseFromString(record)) << path;
    events.push_back(event);
  }
  return events;
}

// (tag, step) -> value of every scalar in the events.
std::map<std::pair<std::string, int64_t>, float> scalars_of(const std::vector<tb::Event>& events) {
  std::map<std::pair<std::string, int64_t>, float> scalars;
  for (const auto& e : events) {
    for (const auto& v : e.summary().value()) {
      if (v.value_case() == tb::Summary::Value::kSimpleValue) scalars[{v.tag(), e.step()}] = v.simple_value();
    }
  }
  return scalars;
}

TEST(Crc32c, MatchesTheCheckValue) {
  const std::string digits = "123456789";
  EXPECT_EQ(draft::crc32c(digits.data(), digits.size()), 0xE3069283u);
  EXPECT_EQ(draft::crc32c(nullptr, 0), 0u);
  // Continuing from a prefix's CRC gives the CRC of the whole.
  EXPECT_EQ(draft::crc32c(digits.data() + 4, 5, draft::crc32c(digits.data(), 4)), 0xE3069283u);
  const uint32_t crc = 0xE3069283u;
  EXPECT_EQ(draft::masked_crc32c(digits.data(), digits.size()), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(TFRecord, RoundTripsAndNamesTheOffsetOfACorruptRecord) {
  TempDir dir;
  const std::string path = dir.file("r.tfrecord");
  const std::vector<std::string> records = {"first", std::string(1000, 'x'), "", std::string("\0\1\2", 3)};
  std::string bytes;
  for (const auto& r : records) bytes += draft::tfrecord(r);
  EXPECT_EQ(draft::tfrecord("abc").size(), 8u + 4u + 3u + 4u);
  draft::test::write_bytes(path, bytes);
  EXPECT_EQ(draft::read_tfrecords(path), records);

  // A flipped byte in the second record's data: its offset (the first record's 21 bytes) is named.
  std::string bad = bytes;
  bad[21 + 12 + 500] ^= 0x40;
  draft::test::write_bytes(path, bad);
  std::string m = expect_error([&] { draft::read_tfrecords(path); });
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("record at byte 21 "), std::string::npos) << m;
  // A flipped byte in a length.
  bad = bytes;
  bad[21 + 2] ^= 0x01;
  draft::test::write_bytes(path, bad);
  m = expect_error([&] { draft::read_tfrecords(path); });
  EXPECT_NE(m.find("the length of the record at byte 21 fails its CRC"), std::string::npos) << m;
  EXPECT_NE(expect_error([&] { draft::read_tfrecords(dir.file("missing")); }).find("missing"), std::string::npos);
}

TEST(TFRecord, ATruncatedLastRecordIsSkipped) {
  TempDir dir;
  const std::string path = dir.file("r.tfrecord");
  const std::string whole = draft::tfrecord("one") + draft::tfrecord("two") + draft::tfrecord("three");
  const std::size_t last = whole.size() - draft::tfrecord("three").size();
  for (std::size_t cut = last; cut < whole.size(); ++cut) {  // every way a kill can cut the last record
    draft::test::write_bytes(path, whole.substr(0, cut));
    EXPECT_EQ(draft::read_tfrecords(path), (std::vector<std::string>{"one", "two"})) << cut;
  }
}

TEST(TensorBoardWriter, WritesEventsTensorBoardDecodes) {
  TempDir dir;
  std::string path;
  const at::Tensor image = torch::rand({3, 5, 7});
  const std::string png = draft::encode_png(image);
  {
    draft::TensorBoardWriter writer(dir.file("run/tensorboard"));
    path = writer.path();
    writer.add_scalar("train/loss", 0.5, 1);
    writer.add_scalars({{"train/loss", 0.25}, {"train/lr", 1e-3}}, 2);
    writer.add_image("samples", png, 5, 7, 3, 2);
    writer.add_text("config", "```json\n{}\n```", 0);
    writer.add_session_start(3);
  }
  const std::string name = std::filesystem::path(path).filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  EXPECT_EQ(draft::tensorboard_event_files(dir.file("run/tensorboard")), std::vector<std::string>{path});

  const std::vector<tb::Event> events = read_events(path);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_GT(events[0].wall_time(), 1.6e9);
  const auto scalars = scalars_of(events);
  EXPECT_EQ(scalars.size(), 3u);
  EXPECT_FLOAT_EQ(scalars.at({"train/loss", 1}), 0.5f);
  EXPECT_FLOAT_EQ(scalars.at({"train/loss", 2}), 0.25f);
  EXPECT_FLOAT_EQ(scalars.at({"train/lr", 2}), 1e-3f);

  const tb::Summary::Value& img = events[3].summary().value(0);
  EXPECT_EQ(events[3].step(), 2);
  EXPECT_EQ(img.tag(), "samples");
  EXPECT_EQ(img.image().height(), 5);
  EXPECT_EQ(img.image().width(), 7);
  EXPECT_EQ(img.image().colorspace(), 3);
  EXPECT_EQ(img.image().encoded_image_string(), png);
  const std::string& bytes = img.image().encoded_image_string();
  EXPECT_EQ(draft::decode_png(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "event").sizes(),
            image.sizes());

  const tb::Summary::Value& text = events[4].summary().value(0);
  EXPECT_EQ(text.tag(), "config");
  EXPECT_EQ(text.metadata().plugin_data().plugin_name(), "text");
  EXPECT_EQ(text.tensor().dtype(), tb::DT_STRING);
  ASSERT_EQ(text.tensor().tensor_shape().dim_size(), 1);
  EXPECT_EQ(text.tensor().tensor_shape().dim(0).size(), 1);
  ASSERT_EQ(text.tensor().string_val_size(), 1);
  EXPECT_EQ(text.tensor().string_val(0), "```json\n{}\n```");

  EXPECT_EQ(events[5].step(), 3);
  EXPECT_EQ(events[5].session_log().status(), tb::SessionLog::START);

  // A second writer on the folder (a resumed process) opens a file of its own.
  draft::TensorBoardWriter second(dir.file("run/tensorboard"));
  EXPECT_NE(second.path(), path);
  EXPECT_EQ(draft::tensorboard_event_files(dir.file("run/tensorboard")).size(), 2u);
}

TEST(TensorBoardWriter, AFailedWriteNamesTheFile) {
  TempDir dir;
  draft::test::write_bytes(dir.file("blocker"), "a file where the folder should be");
  std::string m = expect_error([&] { draft::TensorBoardWriter w(dir.file("blocker/tensorboard")); });
  EXPECT_NE(m.find("blocker/tensorboard"), std::string::npos) << m;
  EXPECT_NE(m.find("--no-tensorboard"), std::string::npos) << m;
  // A file-size limit reached while appending (as a full disk): the error names the file and the cause.
  draft::TensorBoardWriter writer(dir.file("tensorboard"));
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = std::filesystem::file_size(writer.path()) + 100;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  m = expect_error([&] { writer.add_text("big", std::string(10000, 'x'), 1); });
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(m.find(writer.path()), std::string::npos) << m;
  EXPECT_NE(m.find("file-size limit"), std::string::npos) << m;
  // What was written before is intact; the cut record is skipped.
  EXPECT_EQ(read_events(writer.path()).size(), 1u);
}

// ResumableRun keeps the events in step with metrics.jsonl: each record's numbers as scalars tagged by its
// kind, the config as text, and on resume a session start at the first step done again.
TEST(TensorBoardWriter, ResumableRunLogsMetricsConfigAndRestarts) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  torch::nn::Linear net(2, 2);
  const nlohmann::json config = {{"train", {{"steps", 4}}}};
  {
    draft::ResumableRun run(run_dir, false);
    run.start(config, {}, true);
    run.log({{"step", 1}, {"reward_mean", 0.5}, {"skipped", false}, {"grad_norm", nullptr}, {"ci", {1, 2}}});
    run.log({{"kind", "eval"}, {"step", 1}, {"eval_reward_mean", 0.75}, {"feature_space", "pixels"}});
    run.log({{"event", "train"}, {"step", 2}, {"epoch", 0.5}, {"loss", 3}, {"skipped", true}});
    run.log_image("samples", torch::zeros({1, 4, 6}), 2);
    run.save({{"model.", net.ptr().get()}}, nullptr, {1, 0, 0});
  }
  const auto first_files = draft::tensorboard_event_files(run_dir + "/tensorboard");
  ASSERT_EQ(first_files.size(), 1u);
  const std::vector<tb::Event> first = read_events(first_files[0]);
  const auto scalars = scalars_of(first);
  EXPECT_EQ(scalars.size(), 5u);
  EXPECT_FLOAT_EQ(scalars.at({"train/reward_mean", 1}), 0.5f);
  EXPECT_FLOAT_EQ(scalars.at({"train/skipped", 1}), 0.0f);
  EXPECT_FLOAT_EQ(scalars.at({"eval/eval_reward_mean", 1}), 0.75f);
  EXPECT_FLOAT_EQ(scalars.at({"train/loss", 2}), 3.0f);
  EXPECT_FLOAT_EQ(scalars.at({"train/skipped", 2}), 1.0f);
  const tb::Summary::Value& text = first[1].summary().value(0);
  EXPECT_EQ(text.tag(), "config");
  EXPECT_EQ(text.tensor().string_val(0), "```json\n" + config.dump(2) + "\n```");
  const tb::Event& image = first.back();
  EXPECT_EQ(image.step(), 2);
  EXPECT_EQ(image.summary().value(0).image().height(), 4);
  EXPECT_EQ(image.summary().value(0).image().width(), 6);
  EXPECT_EQ(image.summary().value(0).image().colorspace(), 1);

  // Resumed from the checkpoint of step 1: a new file that starts with a session start at step 2.
  {
    draft::ResumableRun resumed(run_dir, true);
    resumed.start(config, {}, true);
    resumed.restore({{"model.", net.ptr().get()}}, nullptr);
    resumed.log({{"step", 2}, {"reward_mean", 0.25}});
  }
  const auto files = draft::tensorboard_event_files(run_dir + "/tensorboard");
  ASSERT_EQ(files.size(), 2u);
  const std::vector<tb::Event> second = read_events(files[1]);
  ASSERT_GE(second.size(), 4u);
  EXPECT_EQ(second[0].file_version(), "brain.Event:2");
  EXPECT_EQ(second[1].session_log().status(), tb::SessionLog::START);
  EXPECT_EQ(second[1].step(), 2);
  EXPECT_EQ(second[2].summary().value(0).tag(), "config");
  EXPECT_EQ(second[2].step(), 2);
  EXPECT_FLOAT_EQ(scalars_of(second).at({"train/reward_mean", 2}), 0.25f);

  // A new run in the folder (--resume before a first checkpoint, here after removing it) drops the old
  // files, as it drops metrics.jsonl; with TensorBoard off it writes none.
  std::filesystem::remove(run_dir + "/checkpoint.safetensors");
  draft::ResumableRun fresh(run_dir, true);
  fresh.start(config, {}, false);
  fresh.log({{"step", 1}, {"reward_mean", 0.5}});
  fresh.log_image("samples", torch::zeros({1, 4, 6}), 1);
  EXPECT_TRUE(draft::tensorboard_event_files(run_dir + "/tensorboard").empty());
}

}  // namespace
