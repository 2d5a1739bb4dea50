// MethodConfig (the method.* keys) and the method factory.
#include "finetune/method.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "finetune/method_support.h"
#include "util/error.h"

namespace draft {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<std::string> method_names() { return {"draft", "draft-k", "draft-lv", "refl", "alignprop", "ddpo"}; }

const ConfigTable<MethodConfig>& method_config_table() {
  static const ConfigTable<MethodConfig> table = [] {
    ConfigTable<MethodConfig> t;
    t.add("name", "--method", "draft, draft-k, draft-lv, refl, alignprop or ddpo", DRAFT_MEMBER(name),
          check_one_of(method_names()));
    t.add("k", "--k", "draft-k: the last K steps keep gradients (1 <= K <= sampler.steps)", DRAFT_MEMBER(k));
    t.add("lv_n", "--lv-n", "draft-lv: re-noised copies of the last step per sample", DRAFT_MEMBER(lv_n));
    t.add("refl_min", "--refl-min",
          "refl: smallest stop step (0-based step index; -1 with refl_max -1: the last quarter of the steps; "
          "--refl-range A:B sets both)", DRAFT_MEMBER(refl_min));
    t.add("refl_max", "--refl-max", "refl: largest stop step (0-based step index; -1: see refl_min)",
          DRAFT_MEMBER(refl_max));
    t.add("refl_loss", "--refl-loss", "refl: neg (-r) or relu-margin (relu(margin - r) * scale, ImageReward)",
          DRAFT_MEMBER(refl_loss));
    t.add("refl_margin", "--refl-margin", "refl: margin of relu-margin", DRAFT_MEMBER(refl_margin));
    t.add("refl_scale", "--refl-scale", "refl: scale of relu-margin", DRAFT_MEMBER(refl_scale));
    t.add("alignprop_k_min", "--alignprop-k-min", "alignprop: smallest K per trajectory", DRAFT_MEMBER(alignprop_k_min));
    t.add("alignprop_k_max", "--alignprop-k-max", "alignprop: largest K per trajectory", DRAFT_MEMBER(alignprop_k_max));
    t.add("alignprop_distribution", "--alignprop-distribution",
          "alignprop: uniform or gaussian (rounded, clipped to the bounds)", DRAFT_MEMBER(alignprop_distribution));
    t.add("alignprop_mean", "--alignprop-mean", "alignprop: mean of the gaussian K", DRAFT_MEMBER(alignprop_mean));
    t.add("alignprop_std", "--alignprop-std", "alignprop: std of the gaussian K", DRAFT_MEMBER(alignprop_std));
    t.add("ddpo_clip_range", "--ddpo-clip-range", "ddpo: PPO ratio clip range", DRAFT_MEMBER(ddpo_clip_range));
    t.add("ddpo_adv_clip", "--ddpo-adv-clip", "ddpo: advantages clipped to [-a, a]", DRAFT_MEMBER(ddpo_adv_clip));
    t.add("ddpo_timestep_fraction", "--ddpo-timestep-fraction", "ddpo: fraction of the steps trained on",
          DRAFT_MEMBER(ddpo_timestep_fraction));
    t.add("ddpo_inner_epochs", "--ddpo-inner-epochs", "ddpo: optimizer steps per sample batch",
          DRAFT_MEMBER(ddpo_inner_epochs));
    t.add("ddpo_per_prompt", "--ddpo-per-prompt", "ddpo: normalise advantages per prompt (else over the batch)",
          DRAFT_MEMBER(ddpo_per_prompt));
    t.add("ddpo_buffer_size", "--ddpo-buffer-size", "ddpo: rewards kept per prompt", DRAFT_MEMBER(ddpo_buffer_size));
    t.add("ddpo_min_count", "--ddpo-min-count", "ddpo: rewards a prompt needs before its own statistics",
          DRAFT_MEMBER(ddpo_min_count));
    return t;
  }();
  return table;
}

MethodConfig MethodConfig::from_json(const nlohmann::json& json, const std::string& source) {
  MethodConfig v;
  method_config_table().read(json, source, v, "method.");
  return v;
}

nlohmann::json MethodConfig::to_json() const { return method_config_table().to_json(*this); }

std::pair<int64_t, int64_t> MethodConfig::refl_range(int64_t steps) const {
  if (refl_min < 0 && refl_max < 0) return {steps - std::max<int64_t>(1, steps / 4), steps - 1};
  return {refl_min, refl_max};
}

void MethodConfig::validate(int64_t steps) const {
  DRAFT_CHECK(steps >= 1, "sampler.steps must be at least 1, got ", steps);
  const auto names = method_names();
  DRAFT_CHECK(std::find(names.begin(), names.end(), name) != names.end(), "method.name '", name,
              "' is not a method (one of ", joined(names), "; --method)");
  if (name == "draft-k") {
    DRAFT_CHECK(k >= 1 && k <= steps, "method.k must be in [1, sampler.steps] (", steps, "), got ", k, " (--k)");
  }
  if (name == "draft-lv") DRAFT_CHECK(lv_n >= 1, "method.lv_n must be at least 1, got ", lv_n, " (--lv-n)");
  if (name == "refl") {
    DRAFT_CHECK((refl_min < 0) == (refl_max < 0), "method.refl_min and method.refl_max must both be set or both be -1 "
                "(the last quarter of the steps), got ", refl_min, ":", refl_max, " (--refl-range A:B)");
    auto [a, b] = refl_range(steps);
    DRAFT_CHECK(0 <= a && a <= b && b <= steps - 1, "method.refl_min:refl_max must satisfy 0 <= A <= B <= sampler.steps - 1 (",
                steps - 1, "), got ", a, ":", b, " (--refl-range A:B; step indices, 0 = the first, noisiest step)");
    DRAFT_CHECK(refl_loss == "neg" || refl_loss == "relu-margin", "method.refl_loss '", refl_loss,
                "' is not supported (neg or relu-margin)");
    DRAFT_CHECK(std::isfinite(refl_margin), "method.refl_margin must be finite, got ", refl_margin);
    DRAFT_CHECK(std::isfinite(refl_scale) && refl_scale > 0, "method.refl_scale must be positive, got ", refl_scale);
  }
  if (name == "alignprop") {
    DRAFT_CHECK(alignprop_k_min >= 1 && alignprop_k_min <= alignprop_k_max && alignprop_k_max <= steps,
                "method.alignprop_k_min and alignprop_k_max must satisfy 1 <= k_min <= k_max <= sampler.steps (",
                steps, "), got ", alignprop_k_min, " and ", alignprop_k_max);
    DRAFT_CHECK(alignprop_distribution == "uniform" || alignprop_distribution == "gaussian",
                "method.alignprop_distribution '", alignprop_distribution, "' is not supported (uniform or gaussian)");
    DRAFT_CHECK(std::isfinite(alignprop_mean), "method.alignprop_mean must be finite, got ", alignprop_mean);
    DRAFT_CHECK(std::isfinite(alignprop_std) && alignprop_std >= 0, "method.alignprop_std must be >= 0, got ",
                alignprop_std);
  }
  if (name == "ddpo") {
    DRAFT_CHECK(std::isfinite(ddpo_clip_range) && ddpo_clip_range > 0, "method.ddpo_clip_range must be > 0, got ",
                ddpo_clip_range, " (--ddpo-clip-range; DDPO uses 1e-4)");
    DRAFT_CHECK(std::isfinite(ddpo_adv_clip) && ddpo_adv_clip > 0, "method.ddpo_adv_clip must be > 0, got ",
                ddpo_adv_clip, " (--ddpo-adv-clip; DDPO uses 5)");
    DRAFT_CHECK(ddpo_timestep_fraction > 0 && ddpo_timestep_fraction <= 1, "method.ddpo_timestep_fraction must be in "
                "(0, 1], got ", ddpo_timestep_fraction, " (--ddpo-timestep-fraction)");
    DRAFT_CHECK(ddpo_inner_epochs >= 1, "method.ddpo_inner_epochs must be >= 1, got ", ddpo_inner_epochs,
                " (--ddpo-inner-epochs)");
    DRAFT_CHECK(ddpo_buffer_size >= 1, "method.ddpo_buffer_size must be >= 1, got ", ddpo_buffer_size,
                " (--ddpo-buffer-size)");
    DRAFT_CHECK(ddpo_min_count >= 1 && ddpo_min_count <= ddpo_buffer_size, "method.ddpo_min_count must be in [1, "
                "method.ddpo_buffer_size] (", ddpo_buffer_size, "), got ", ddpo_min_count,
                " (--ddpo-min-count): a prompt's buffer never holds more than buffer_size rewards");
  }
}

void parse_refl_range(const std::string& text, MethodConfig& config) {
  const auto colon = text.find(':');
  try {
    DRAFT_CHECK(colon != std::string::npos, "");
    std::size_t used_a = 0, used_b = 0;
    const std::string a = text.substr(0, colon), b = text.substr(colon + 1);
    config.refl_min = std::stoll(a, &used_a);
    config.refl_max = std::stoll(b, &used_b);
    DRAFT_CHECK(used_a == a.size() && used_b == b.size(), "");
  } catch (const std::exception&) {
    fail("--refl-range '", text, "' must be A:B, two step indices such as 30:39");
  }
}

std::unique_ptr<Method> make_method(const MethodConfig& config) {
  if (config.name == "draft") return make_draft_k_method("draft", 0);
  if (config.name == "draft-k") return make_draft_k_method("draft-k", config.k);
  if (config.name == "draft-lv") return make_draft_lv_method(config.lv_n);
  if (config.name == "refl") return make_refl_method(config);
  if (config.name == "alignprop") return make_alignprop_method(config);
  if (config.name == "ddpo") return make_ddpo_method(config);
  fail("method.name '", config.name, "' is not a method (one of ", joined(method_names()), "; --method)");
}

}  // namespace draft
