// SchedulerConfig: the keys of a diffusers scheduler_config.json that the DDIM / DDPM schedulers use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace draft {

struct ConfigJson;

/// The diffusers DDIMScheduler / DDPMScheduler configuration (v0.25 key names and defaults). Keys of
/// other schedulers (PNDM's skip_prk_steps, ...) are ignored, as diffusers' from_config does, so an SD
/// checkpoint's scheduler folder can be loaded whatever its `_class_name`.
struct SchedulerConfig {
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  /// "linear" | "scaled_linear" | "squaredcos_cap_v2" (ignored when trained_betas is given).
  std::string beta_schedule = "linear";
  /// Explicit betas (diffusers `trained_betas`); empty = use beta_schedule.
  std::vector<double> trained_betas;
  /// Clamp the predicted x0 to [-clip_sample_range, clip_sample_range].
  bool clip_sample = true;
  double clip_sample_range = 1.0;
  /// DDIM only: alpha-bar used when the previous timestep is below 0 (1 if true, else alphas_cumprod[0]).
  bool set_alpha_to_one = true;
  /// Added to 'leading' timesteps (SD: 1, so 50 steps run 981 ... 1).
  int64_t steps_offset = 0;
  /// "epsilon" | "v_prediction" | "sample".
  std::string prediction_type = "epsilon";
  /// Dynamic thresholding (Imagen) is not implemented; validate() rejects true.
  bool thresholding = false;
  double dynamic_thresholding_ratio = 0.995;
  double sample_max_value = 1.0;
  /// "leading" | "trailing" | "linspace".
  std::string timestep_spacing = "leading";
  /// Rescale betas to zero terminal SNR (Lin et al. 2023, Algorithm 1).
  bool rescale_betas_zero_snr = false;
  /// DDPM only: "fixed_small" | "fixed_large" (the learned variants need a model with 2x channels).
  std::string variance_type = "fixed_small";
  /// Where the values came from, for error messages.
  std::string source = "scheduler config";

  /// Reads the keys from a parsed scheduler_config.json (absent / null keys keep the defaults above),
  /// then validates.
  static SchedulerConfig from_json(const ConfigJson& json);
  /// The scheduler_config.json diffusers writes for `class_name` ("DDIMScheduler", "DDPMScheduler").
  nlohmann::json to_json(const std::string& class_name = "DDIMScheduler") const;
  /// Loads `<folder>/scheduler_config.json`, or the given .json file.
  static SchedulerConfig load(const std::string& scheduler_folder_or_json);
  /// Throws draft::Error naming the key and value of the first unsupported setting.
  void validate() const;
};

}  // namespace draft
