// UNetConfig parsing, validation and presets, following diffusers v0.25 UNet2DConditionModel.__init__.
#include "models/unet_config.h"

#include <algorithm>

#include "util/error.h"

namespace draft {
namespace {

using nlohmann::json;

// An option diffusers accepts either as one value for every down block or as a per-block list.
template <typename T>
std::vector<T> per_block(const ConfigJson& c, const std::string& key, const T& fallback, size_t blocks) {
  if (!c.has(key)) return std::vector<T>(blocks, fallback);
  const json& value = c.json.at(key);
  if (value.is_array()) return c.required<std::vector<T>>(key);
  return std::vector<T>(blocks, c.required<T>(key));
}

// Options whose every non-default value changes the network in ways draft does not implement.
void require_value(const ConfigJson& c, const std::string& key, const json& supported) {
  if (!c.json.contains(key)) return;
  const json& value = c.json.at(key);
  if (value == supported) return;
  fail(c.source, ": unsupported UNet option ", key, " = ", value.dump(), " (draft supports only ", supported.dump(),
       ")");
}

void require_null(const ConfigJson& c, const std::string& key) {
  if (c.has(key)) {
    fail(c.source, ": unsupported UNet option ", key, " = ", c.json.at(key).dump(),
         " (draft supports only null: plain text-conditioned UNets)");
  }
}

// True when the key is present with an explicit null (absent keys take diffusers' defaults).
bool explicit_null(const ConfigJson& c, const std::string& key) {
  return c.json.contains(key) && c.json.at(key).is_null();
}

}  // namespace

UNetConfig UNetConfig::from_json(const ConfigJson& c) {
  // 1. options that select features draft does not implement must keep their "off" value
  for (const char* key : {"class_embed_type", "num_class_embeds", "addition_embed_type", "addition_time_embed_dim",
                          "encoder_hid_dim", "encoder_hid_dim_type", "time_cond_proj_dim", "timestep_post_act",
                          "time_embedding_act_fn", "cross_attention_norm", "reverse_transformer_layers_per_block"}) {
    require_null(c, key);
  }
  // diffusers v0.25 itself refuses num_attention_heads (attention_head_dim carries the head count).
  require_null(c, "num_attention_heads");
  require_value(c, "dual_cross_attention", false);
  require_value(c, "class_embeddings_concat", false);
  require_value(c, "resnet_skip_time_act", false);
  require_value(c, "resnet_time_scale_shift", "default");
  require_value(c, "time_embedding_type", "positional");
  require_value(c, "attention_type", "default");

  // 2. supported options
  UNetConfig u;
  u.sample_size = c.get<int64_t>("sample_size", u.sample_size);
  u.in_channels = c.get<int64_t>("in_channels", u.in_channels);
  u.out_channels = c.get<int64_t>("out_channels", u.out_channels);
  u.center_input_sample = c.get<bool>("center_input_sample", u.center_input_sample);
  u.flip_sin_to_cos = c.get<bool>("flip_sin_to_cos", u.flip_sin_to_cos);
  u.freq_shift = c.get<double>("freq_shift", u.freq_shift);
  u.down_block_types = c.required<std::vector<std::string>>("down_block_types");
  u.up_block_types = c.required<std::vector<std::string>>("up_block_types");
  DRAFT_CHECK(!explicit_null(c, "mid_block_type"), c.source,
              ": unsupported UNet option mid_block_type = null (draft supports "
              "only \"UNetMidBlock2DCrossAttn\")");
  u.mid_block_type = c.get<std::string>("mid_block_type", u.mid_block_type);
  u.block_out_channels = c.required<std::vector<int64_t>>("block_out_channels");
  const size_t n = u.down_block_types.size();
  u.layers_per_block = per_block<int64_t>(c, "layers_per_block", 2, n);
  u.downsample_padding = c.get<int64_t>("downsample_padding", u.downsample_padding);
  u.mid_block_scale_factor = c.get<double>("mid_block_scale_factor", u.mid_block_scale_factor);
  u.resnet_out_scale_factor = c.get<double>("resnet_out_scale_factor", u.resnet_out_scale_factor);
  u.act_fn = c.get<std::string>("act_fn", u.act_fn);
  DRAFT_CHECK(!explicit_null(c, "norm_num_groups"), c.source,
              ": unsupported UNet option norm_num_groups = null (draft "
              "needs the GroupNorms)");
  u.norm_num_groups = c.get<int64_t>("norm_num_groups", u.norm_num_groups);
  u.norm_eps = c.get<double>("norm_eps", u.norm_eps);
  u.cross_attention_dim = per_block<int64_t>(c, "cross_attention_dim", 1280, n);
  u.transformer_layers_per_block = per_block<int64_t>(c, "transformer_layers_per_block", 1, n);
  u.attention_head_dim = per_block<int64_t>(c, "attention_head_dim", 8, n);
  u.only_cross_attention = per_block<bool>(c, "only_cross_attention", false, n);
  u.use_linear_projection = c.get<bool>("use_linear_projection", u.use_linear_projection);
  u.upcast_attention = c.get<bool>("upcast_attention", u.upcast_attention);
  u.time_embedding_dim = c.get<int64_t>("time_embedding_dim", 0);
  u.conv_in_kernel = c.get<int64_t>("conv_in_kernel", u.conv_in_kernel);
  u.conv_out_kernel = c.get<int64_t>("conv_out_kernel", u.conv_out_kernel);
  u.dropout = c.get<double>("dropout", u.dropout);
  try {
    u.validate();
  } catch (const Error& e) {
    fail(c.source, ": ", e.what());
  }
  return u;
}

json UNetConfig::to_json() const {
  json j;
  j["_class_name"] = "UNet2DConditionModel";
  j["_diffusers_version"] = "0.25.1";
  j["sample_size"] = sample_size;
  j["in_channels"] = in_channels;
  j["out_channels"] = out_channels;
  j["center_input_sample"] = center_input_sample;
  j["flip_sin_to_cos"] = flip_sin_to_cos;
  j["freq_shift"] = freq_shift;
  j["down_block_types"] = down_block_types;
  j["mid_block_type"] = mid_block_type;
  j["up_block_types"] = up_block_types;
  j["only_cross_attention"] = only_cross_attention;
  j["block_out_channels"] = block_out_channels;
  j["layers_per_block"] = layers_per_block;
  j["downsample_padding"] = downsample_padding;
  j["mid_block_scale_factor"] = mid_block_scale_factor;
  j["resnet_out_scale_factor"] = resnet_out_scale_factor;
  j["act_fn"] = act_fn;
  j["norm_num_groups"] = norm_num_groups;
  j["norm_eps"] = norm_eps;
  j["cross_attention_dim"] = cross_attention_dim;
  j["transformer_layers_per_block"] = transformer_layers_per_block;
  j["attention_head_dim"] = attention_head_dim;
  j["use_linear_projection"] = use_linear_projection;
  j["upcast_attention"] = upcast_attention;
  j["time_embedding_dim"] = time_embedding_dim > 0 ? json(time_embedding_dim) : json(nullptr);
  j["conv_in_kernel"] = conv_in_kernel;
  j["conv_out_kernel"] = conv_out_kernel;
  j["dropout"] = dropout;
  return j;
}

void UNetConfig::validate() const {
  const size_t n = block_out_channels.size();
  DRAFT_CHECK(n > 0, "block_out_channels must not be empty");
  DRAFT_CHECK(down_block_types.size() == n, "down_block_types has ", down_block_types.size(),
              " entries but block_out_channels has ", n);
  DRAFT_CHECK(up_block_types.size() == n, "up_block_types has ", up_block_types.size(),
              " entries but block_out_channels has ", n);
  for (const auto& t : down_block_types) {
    DRAFT_CHECK(t == "CrossAttnDownBlock2D" || t == "DownBlock2D", "unsupported UNet option down_block_types entry '",
                t, "' (draft supports CrossAttnDownBlock2D and DownBlock2D)");
  }
  for (const auto& t : up_block_types) {
    DRAFT_CHECK(t == "CrossAttnUpBlock2D" || t == "UpBlock2D", "unsupported UNet option up_block_types entry '", t,
                "' (draft supports CrossAttnUpBlock2D and UpBlock2D)");
  }
  DRAFT_CHECK(mid_block_type == "UNetMidBlock2DCrossAttn", "unsupported UNet option mid_block_type = '", mid_block_type,
              "' (draft supports only UNetMidBlock2DCrossAttn)");
  DRAFT_CHECK(act_fn == "silu", "unsupported UNet option act_fn = '", act_fn, "' (draft supports only silu)");
  DRAFT_CHECK(dropout == 0.0, "unsupported UNet option dropout = ", dropout, " (draft supports only 0)");
  DRAFT_CHECK(conv_in_kernel > 0 && conv_in_kernel % 2 == 1, "conv_in_kernel must be odd, got ", conv_in_kernel);
  DRAFT_CHECK(conv_out_kernel > 0 && conv_out_kernel % 2 == 1, "conv_out_kernel must be odd, got ", conv_out_kernel);
  DRAFT_CHECK(in_channels > 0 && out_channels > 0, "in_channels and out_channels must be positive");
  DRAFT_CHECK(norm_num_groups > 0, "norm_num_groups must be positive, got ", norm_num_groups);
  DRAFT_CHECK(norm_eps > 0, "norm_eps must be positive, got ", norm_eps);
  DRAFT_CHECK(downsample_padding >= 0, "downsample_padding must be >= 0, got ", downsample_padding);
  auto check_len = [&](size_t size, const char* key) {
    DRAFT_CHECK(size == n, key, " has ", size, " entries but there are ", n, " down blocks");
  };
  check_len(layers_per_block.size(), "layers_per_block");
  check_len(cross_attention_dim.size(), "cross_attention_dim");
  check_len(transformer_layers_per_block.size(), "transformer_layers_per_block");
  check_len(attention_head_dim.size(), "attention_head_dim");
  check_len(only_cross_attention.size(), "only_cross_attention");
  for (size_t i = 0; i < n; ++i) {
    const int64_t ch = block_out_channels[i];
    DRAFT_CHECK(ch > 0 && ch % norm_num_groups == 0, "block_out_channels[", i, "] = ", ch,
                " is not a positive multiple of norm_num_groups = ", norm_num_groups);
    DRAFT_CHECK(layers_per_block[i] > 0, "layers_per_block[", i, "] must be positive");
    DRAFT_CHECK(transformer_layers_per_block[i] > 0, "transformer_layers_per_block[", i, "] must be positive");
    DRAFT_CHECK(cross_attention_dim[i] > 0, "cross_attention_dim[", i, "] must be positive");
    // Level i has attention when its down block, its mirrored up block or (last level) the mid block has.
    const bool attends = down_block_types[i] == "CrossAttnDownBlock2D" ||
                         up_block_types[n - 1 - i] == "CrossAttnUpBlock2D" || i == n - 1;
    DRAFT_CHECK(!attends || (attention_head_dim[i] > 0 && ch % attention_head_dim[i] == 0), "attention_head_dim[", i,
                "] = ", attention_head_dim[i], " (the number of heads) does not divide block_out_channels[", i,
                "] = ", ch);
  }
}

int64_t UNetConfig::time_embed_dim() const {
  return time_embedding_dim > 0 ? time_embedding_dim : 4 * block_out_channels.at(0);
}

UNetConfig UNetConfig::sd15() {
  UNetConfig u;
  u.sample_size = 64;
  u.block_out_channels = {320, 640, 1280, 1280};
  u.down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
  u.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  u.layers_per_block = std::vector<int64_t>(4, 2);
  u.cross_attention_dim = std::vector<int64_t>(4, 768);
  u.transformer_layers_per_block = std::vector<int64_t>(4, 1);
  u.attention_head_dim = std::vector<int64_t>(4, 8);
  u.only_cross_attention = std::vector<bool>(4, false);
  u.norm_num_groups = 32;
  return u;
}

UNetConfig UNetConfig::tiny() {
  UNetConfig u;
  u.sample_size = 16;
  u.block_out_channels = {32, 64};
  u.down_block_types = {"CrossAttnDownBlock2D", "DownBlock2D"};
  u.up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D"};
  u.layers_per_block = {2, 2};
  u.cross_attention_dim = {32, 32};
  u.transformer_layers_per_block = {1, 1};
  u.attention_head_dim = {8, 8};
  u.only_cross_attention = {false, false};
  u.norm_num_groups = 8;
  return u;
}

}  // namespace draft
