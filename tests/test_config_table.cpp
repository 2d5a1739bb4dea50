// Config tables: one declaration per key gives reading (unknown keys and wrong types named as
// section.key), writing, checks, the resume allow-list and the docs table; and the resume comparison.
#include <gtest/gtest.h>

#include "finetune/finetune_config.h"
#include "io/config_json.h"
#include "io/config_table.h"
#include "io/json_file.h"
#include "support.h"
#include "train/resumable_run.h"

namespace {

using draft::test::expect_error;

struct Inner {
  int64_t rank = 4;
  std::vector<std::string> targets = {"to_q"};
};

struct Outer {
  std::string name = "x";
  double lr = 1e-3;
  bool flag = true;
  uint64_t seed = 7;
  std::vector<int64_t> at;
  Inner inner;
};

const draft::ConfigTable<Inner>& inner_table() {
  static const draft::ConfigTable<Inner> t = [] {
    draft::ConfigTable<Inner> t;
    t.add("rank", "--rank", "the rank", DRAFT_MEMBER(rank), draft::check_at_least(1));
    t.add("targets", "--targets", "layers | patterns", DRAFT_MEMBER(targets), draft::check_not_empty());
    return t;
  }();
  return t;
}

const draft::ConfigTable<Outer>& outer_table() {
  static const draft::ConfigTable<Outer> t = [] {
    draft::ConfigTable<Outer> t;
    t.add("name", "--name", "a name", DRAFT_MEMBER(name), draft::check_one_of({"x", "y"}));
    t.add("opt.lr", "--lr", "learning rate", DRAFT_MEMBER(lr), draft::check_positive());
    t.add("opt.flag", "", "a switch", DRAFT_MEMBER(flag), {}, true);
    t.add("seed", "--seed", "seed", DRAFT_MEMBER(seed));
    t.add("eval.at", "--at", "steps", DRAFT_MEMBER(at), {}, true);
    t.add_section("inner", inner_table(), DRAFT_MEMBER(inner));
    return t;
  }();
  return t;
}

TEST(ConfigTable, WritesNestedJsonAndReadsItBack) {
  Outer o;
  o.lr = 0.5;
  o.inner.rank = 8;
  o.at = {3, 5};
  const nlohmann::json j = outer_table().to_json(o);
  EXPECT_EQ(j["opt"]["lr"], 0.5);
  EXPECT_EQ(j["inner"]["rank"], 8);
  EXPECT_EQ(j["eval"]["at"], nlohmann::json::array({3, 5}));
  Outer back;
  outer_table().read(j, "test", back);
  EXPECT_EQ(outer_table().to_json(back), j);
}

TEST(ConfigTable, ReadsOnlyThePresentKeys) {
  Outer o;
  outer_table().read({{"opt", {{"lr", 0.25}}}, {"inner", {{"rank", 2}}}, {"name", nullptr}}, "test", o);
  EXPECT_EQ(o.lr, 0.25);
  EXPECT_EQ(o.inner.rank, 2);
  EXPECT_EQ(o.name, "x");  // null keeps the value
  EXPECT_EQ(o.inner.targets, std::vector<std::string>{"to_q"});
}

TEST(ConfigTable, ErrorsNameTheSourceAndTheDottedKey) {
  Outer o;
  std::string m = expect_error([&] { outer_table().read({{"opt", {{"lrr", 1}}}}, "run.json", o); });
  EXPECT_NE(m.find("run.json: unknown key 'opt.lrr'"), std::string::npos) << m;
  EXPECT_NE(m.find("'lr'"), std::string::npos) << m;  // the known keys of the section
  m = expect_error([&] { outer_table().read({{"inner", {{"rank", "four"}}}}, "run.json", o); });
  EXPECT_NE(m.find("key 'inner.rank' has the wrong type: \"four\" (expected integer)"), std::string::npos) << m;
  m = expect_error([&] { outer_table().read({{"opt", 3}}, "run.json", o); });
  EXPECT_NE(m.find("'opt' must be a JSON object"), std::string::npos) << m;
  m = expect_error([&] { outer_table().read({{"rank", 3}}, "run.json", o, "outer."); });
  EXPECT_NE(m.find("unknown key 'outer.rank'"), std::string::npos) << m;
}

// Found by fuzz/fuzz_config.cpp's seeds: nlohmann's get<int64_t>() casts 1e30 to an integer, which is undefined
// behaviour (UBSan: float-cast-overflow); 2.5 was truncated to 2 and -1 became a huge unsigned seed.
TEST(ConfigTable, NumbersMustFitTheirKeyExactly) {
  Outer o;
  for (const char* text : {R"({"inner": {"rank": 1e30}})", R"({"inner": {"rank": -1e300}})", R"({"inner": {"rank": 2.5}})",
                           R"({"inner": {"rank": true}})", R"({"seed": -1})", R"({"seed": 1.8446744073709552e19})",
                           R"({"eval": {"at": [1, 1e30]}})", R"({"opt": {"lr": "0.1"}})"}) {
    const std::string m = expect_error([&] { outer_table().read(nlohmann::json::parse(text), "run.json", o); });
    EXPECT_NE(m.find("has the wrong type"), std::string::npos) << text << ": " << m;
  }
  outer_table().read(nlohmann::json::parse(R"({"inner": {"rank": 1e3}, "seed": 18446744073709551615,
                                                "eval": {"at": [2.0, -3]}, "opt": {"lr": 1}})"), "run.json", o);
  EXPECT_EQ(o.inner.rank, 1000);
  EXPECT_EQ(o.seed, UINT64_MAX);
  EXPECT_EQ(o.at, (std::vector<int64_t>{2, -3}));
  EXPECT_EQ(o.lr, 1.0);
}

TEST(ConfigJson, NumbersMustFitTheirKeyExactly) {
  const draft::ConfigJson c{nlohmann::json::parse(R"({"layers": 1e30, "size": 2.5, "ok": 64.0, "big": 3e9})"),
                            "config.json"};
  EXPECT_NE(expect_error([&] { c.required<int64_t>("layers"); }).find("config.json: key 'layers' has the wrong type"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { c.get<int64_t>("size", 1); }).find("key 'size' has the wrong type"), std::string::npos);
  EXPECT_NE(expect_error([&] { c.required<int>("big"); }).find("key 'big' has the wrong type"), std::string::npos);
  EXPECT_EQ(c.required<int64_t>("ok"), 64);
  EXPECT_EQ(c.required<double>("layers"), 1e30);
}

// Found by fuzz/fuzz_config.cpp: nlohmann throws a number beyond a double's range as out_of_range, not as a
// parse_error, and that escaped read_json_file as another exception type.
TEST(JsonFile, NumberBeyondADoubleIsInvalidJson) {
  draft::test::TempDir dir;
  draft::test::write_bytes(dir.file("config.json"), R"({"train": {"steps": 1e400}})");
  const std::string m = expect_error([&] { draft::read_json_file(dir.file("config.json")); });
  EXPECT_NE(m.find("config.json: invalid JSON"), std::string::npos) << m;
  EXPECT_NE(m.find("number overflow"), std::string::npos) << m;
}

TEST(ConfigTable, ChecksNameTheKeyTheValueAndTheFlag) {
  Outer o;
  o.lr = 0;
  std::string m = expect_error([&] { outer_table().validate(o); });
  EXPECT_NE(m.find("opt.lr must be > 0, got 0.0 (--lr)"), std::string::npos) << m;
  o = {};
  o.name = "z";
  m = expect_error([&] { outer_table().validate(o); });
  EXPECT_NE(m.find("name must be one of x, y, got 'z' (--name)"), std::string::npos) << m;
  o = {};
  o.inner.targets.clear();
  m = expect_error([&] { outer_table().validate(o); });
  EXPECT_NE(m.find("inner.targets must not be empty"), std::string::npos) << m;
  o = {};
  o.name = "";
  m = expect_error([&] { outer_table().validate(o); });  // an empty string is empty too
  EXPECT_NE(m.find("name must be one of x, y, got ''"), std::string::npos) << m;
  EXPECT_NO_THROW(outer_table().validate(Outer()));
}

TEST(ConfigTable, ResumablePathsAndMarkdown) {
  EXPECT_EQ(outer_table().resumable_paths(), (std::vector<std::string>{"opt.flag", "eval.at"}));
  const std::string md = outer_table().markdown(Outer());
  EXPECT_NE(md.find("| `opt.lr` | `--lr` | number | `0.001` | fixed | learning rate |"), std::string::npos) << md;
  EXPECT_NE(md.find("| `opt.flag` | – | bool | `true` | may change | a switch |"), std::string::npos) << md;
  EXPECT_NE(md.find("layers \\| patterns"), std::string::npos) << md;  // pipes escaped
}

TEST(ChangedSettings, NamesEveryChangedLeafExceptTheAllowedOnes) {
  const nlohmann::json saved = {{"optimizer", {{"lr", 1e-3}, {"beta1", 0.9}}}, {"eval", {{"every", 5}}}, {"steps", 10}};
  nlohmann::json now = saved;
  EXPECT_TRUE(draft::changed_settings(saved, now, {}).empty());
  now["optimizer"]["lr"] = 2e-3;
  now["eval"]["every"] = 7;
  now["steps"] = 20;
  auto changes = draft::changed_settings(saved, now, {"eval", "steps"});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "optimizer.lr: 0.001 -> 0.002");
  changes = draft::changed_settings(saved, now, {});
  EXPECT_EQ(changes.size(), 3u);
  now["new_key"] = 1;  // a key only one side has
  EXPECT_EQ(draft::changed_settings(saved, now, {"eval", "steps", "optimizer.lr"}).size(), 1u);
}

TEST(FinetuneConfigTable, EveryKeyRoundTripsAndHasAFlagOrIsAnObject) {
  const auto& table = draft::finetune_config_table();
  std::set<std::string> flags;
  for (const auto& key : table.keys()) {
    if (key.path == "lora.text_encoder") continue;  // not supported yet: no flag on purpose
    EXPECT_FALSE(key.flag.empty()) << key.path << " has no flag";
    EXPECT_TRUE(flags.insert(key.flag).second) << key.flag << " is used twice";
  }
  draft::FinetuneConfig c;
  c.method.name = "refl";
  c.lora.rank = 16;
  c.eval.at = {2, 4};
  EXPECT_EQ(draft::FinetuneConfig::from_json(c.to_json(), "t").to_json(), c.to_json());
  const auto resumable = c.resumable_keys();
  EXPECT_NE(std::find(resumable.begin(), resumable.end(), "train.steps"), resumable.end());
  c.optimizer.schedule = "cosine";  // the schedule spans train.steps
  const auto cosine = c.resumable_keys();
  EXPECT_EQ(std::find(cosine.begin(), cosine.end(), "train.steps"), cosine.end());
}

}  // namespace
