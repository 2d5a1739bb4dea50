// Reading and validating diffusers scheduler_config.json files.
#include "diffusion/scheduler_config.h"

#include <cmath>
#include <filesystem>
#include <initializer_list>

#include "io/config_json.h"
#include "util/error.h"

namespace draft {

namespace {

bool one_of(const std::string& value, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (value == a) return true;
  }
  return false;
}

}  // namespace

SchedulerConfig SchedulerConfig::from_json(const ConfigJson& json) {
  SchedulerConfig c;
  c.source = json.source;
  c.num_train_timesteps = json.get<int64_t>("num_train_timesteps", c.num_train_timesteps);
  c.beta_start = json.get<double>("beta_start", c.beta_start);
  c.beta_end = json.get<double>("beta_end", c.beta_end);
  c.beta_schedule = json.get<std::string>("beta_schedule", c.beta_schedule);
  c.trained_betas = json.get<std::vector<double>>("trained_betas", c.trained_betas);
  c.clip_sample = json.get<bool>("clip_sample", c.clip_sample);
  c.clip_sample_range = json.get<double>("clip_sample_range", c.clip_sample_range);
  c.set_alpha_to_one = json.get<bool>("set_alpha_to_one", c.set_alpha_to_one);
  c.steps_offset = json.get<int64_t>("steps_offset", c.steps_offset);
  c.prediction_type = json.get<std::string>("prediction_type", c.prediction_type);
  c.thresholding = json.get<bool>("thresholding", c.thresholding);
  c.dynamic_thresholding_ratio = json.get<double>("dynamic_thresholding_ratio", c.dynamic_thresholding_ratio);
  c.sample_max_value = json.get<double>("sample_max_value", c.sample_max_value);
  c.timestep_spacing = json.get<std::string>("timestep_spacing", c.timestep_spacing);
  c.rescale_betas_zero_snr = json.get<bool>("rescale_betas_zero_snr", c.rescale_betas_zero_snr);
  c.variance_type = json.get<std::string>("variance_type", c.variance_type);
  c.validate();
  return c;
}

nlohmann::json SchedulerConfig::to_json(const std::string& class_name) const {
  nlohmann::json j = {{"_class_name", class_name},
                      {"_diffusers_version", "0.25.1"},
                      {"num_train_timesteps", num_train_timesteps},
                      {"beta_start", beta_start},
                      {"beta_end", beta_end},
                      {"beta_schedule", beta_schedule},
                      {"trained_betas", nullptr},
                      {"clip_sample", clip_sample},
                      {"clip_sample_range", clip_sample_range},
                      {"steps_offset", steps_offset},
                      {"prediction_type", prediction_type},
                      {"thresholding", thresholding},
                      {"dynamic_thresholding_ratio", dynamic_thresholding_ratio},
                      {"sample_max_value", sample_max_value},
                      {"timestep_spacing", timestep_spacing},
                      {"rescale_betas_zero_snr", rescale_betas_zero_snr}};
  if (!trained_betas.empty()) j["trained_betas"] = trained_betas;
  if (class_name == "DDIMScheduler") j["set_alpha_to_one"] = set_alpha_to_one;
  if (class_name == "DDPMScheduler") j["variance_type"] = variance_type;
  return j;
}

SchedulerConfig SchedulerConfig::load(const std::string& scheduler_folder_or_json) {
  std::filesystem::path path(scheduler_folder_or_json);
  if (std::filesystem::is_directory(path)) path /= "scheduler_config.json";
  DRAFT_CHECK(std::filesystem::is_regular_file(path), "scheduler config not found: ", path.string(),
              " (pass a scheduler folder containing scheduler_config.json, or the .json file)");
  return from_json(ConfigJson::load(path.string()));
}

void SchedulerConfig::validate() const {
  const std::string& s = source;
  DRAFT_CHECK(num_train_timesteps >= 1, s, ": num_train_timesteps must be >= 1, got ", num_train_timesteps);
  if (!trained_betas.empty()) {
    DRAFT_CHECK(static_cast<int64_t>(trained_betas.size()) == num_train_timesteps, s, ": trained_betas has ",
                trained_betas.size(), " values but num_train_timesteps is ", num_train_timesteps);
    for (double b : trained_betas) {
      DRAFT_CHECK(std::isfinite(b) && b >= 0.0 && b < 1.0, s, ": trained_betas values must be in [0, 1), got ", b);
    }
  } else {
    DRAFT_CHECK(one_of(beta_schedule, {"linear", "scaled_linear", "squaredcos_cap_v2"}), s, ": beta_schedule '",
                beta_schedule, "' is not supported (use 'linear', 'scaled_linear' or 'squaredcos_cap_v2')");
    if (beta_schedule != "squaredcos_cap_v2") {
      DRAFT_CHECK(std::isfinite(beta_start) && beta_start >= 0.0 && beta_start < 1.0, s,
                  ": beta_start must be in [0, 1), got ", beta_start);
      DRAFT_CHECK(std::isfinite(beta_end) && beta_end >= 0.0 && beta_end < 1.0, s,
                  ": beta_end must be in [0, 1), got ", beta_end);
    }
  }
  DRAFT_CHECK(one_of(prediction_type, {"epsilon", "v_prediction", "sample"}), s, ": prediction_type '",
              prediction_type, "' is not supported (use 'epsilon', 'v_prediction' or 'sample')");
  DRAFT_CHECK(one_of(timestep_spacing, {"leading", "trailing", "linspace"}), s, ": timestep_spacing '",
              timestep_spacing, "' is not supported (use 'leading', 'trailing' or 'linspace')");
  DRAFT_CHECK(!thresholding, s,
              ": thresholding=true (dynamic thresholding) is not supported; set thresholding to false");
  DRAFT_CHECK(!clip_sample || (std::isfinite(clip_sample_range) && clip_sample_range > 0.0), s,
              ": clip_sample_range must be > 0 when clip_sample is true, got ", clip_sample_range);
  DRAFT_CHECK(steps_offset >= 0 && steps_offset < num_train_timesteps, s, ": steps_offset must be in [0, ",
              num_train_timesteps, "), got ", steps_offset);
  DRAFT_CHECK(one_of(variance_type, {"fixed_small", "fixed_large"}), s, ": variance_type '", variance_type,
              "' is not supported (use 'fixed_small' or 'fixed_large')");
}

}  // namespace draft
