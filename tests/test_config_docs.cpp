// docs/config.md holds, for every training command, exactly the key reference that `draft config NAME
// --markdown` prints from the config tables: a key added to a table and not to the docs fails here.
// Regenerate the docs with scripts/update-config-docs.sh.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace {

using draft::test::run_cli;
using draft::test::slurp;

// The text between "<!-- draft config NAME --markdown -->" and the next "<!-- end -->" of docs/config.md.
std::string docs_block(const std::string& docs, const std::string& name) {
  const std::string open = "<!-- draft config " + name + " --markdown -->\n";
  const auto begin = docs.find(open);
  if (begin == std::string::npos) return "(no block for " + name + ")";
  const auto end = docs.find("<!-- end -->", begin);
  return docs.substr(begin + open.size(), end - begin - open.size());
}

TEST(ConfigDocs, EveryTableMatchesDocsConfigMd) {
  const std::string docs = slurp(std::string(DRAFT_SOURCE_DIR) + "/docs/config.md");
  ASSERT_FALSE(docs.empty()) << "docs/config.md is missing";
  for (const char* name : {"finetune", "pretrain-classifier", "pretrain-vae", "pretrain-unet"}) {
    const auto r = run_cli(std::string("config ") + name + " --markdown");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(docs_block(docs, name), r.out)
        << "docs/config.md differs from `draft config " << name << " --markdown`: run scripts/update-config-docs.sh";
  }
}

TEST(ConfigDocs, DefaultConfigIsAValidConfigFile) {
  const auto r = run_cli("config finetune");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json["method"]["name"], "draft-lv");
  EXPECT_EQ(json["optimizer"]["lr"], 4e-4);
  const auto bad = run_cli("config nothing");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("'nothing' is not a config"), std::string::npos) << bad.err;
}

}  // namespace
