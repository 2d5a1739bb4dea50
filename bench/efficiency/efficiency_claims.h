// The DRaFT paper's claims, judged per task from the efficiency benchmark's computed report: DRaFT needs far
// fewer reward queries than DDPO, DRaFT-LV learns about 2x faster than ReFL, K = 1 is the best truncation and
// full backpropagation is unstable. Each verdict follows a criterion fixed here, before the numbers, and
// printed beside them, so that a reader can disagree with the criterion rather than with a summary.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace draft {

/// The benchmark's method keys that the claims compare (the shipped preset's keys by default). A claim
/// whose methods have no finished runs in a task is "n/a".
struct PaperClaimKeys {
  std::string lv = "draft-lv";    ///< DRaFT-LV, the paper's recommended method
  std::string k1 = "draft-1";     ///< DRaFT-K with K = 1
  std::string k_mid = "draft-k5";  ///< an intermediate K
  std::string full = "draft";     ///< full DRaFT (K = N)
  std::string refl = "refl";
  std::string ddpo = "ddpo";
};

/// Thresholds of the verdicts.
inline constexpr double kFarFewerQueries = 10.0;  ///< "DRaFT ≫ DDPO": a speed-up of at least this
inline constexpr double kAboutTwice = 1.5;        ///< "DRaFT-LV ≈ 2x ReFL": a speed-up of at least this

/// For one task of compute_efficiency_report's output (an element of report["tasks"]): an array of
/// {"claim", "paper", "measured", "verdict", "criterion"}, verdict one of "reproduced", "weaker" (the
/// direction holds, the size does not), "not reproduced", "n/a".
nlohmann::json paper_claims_json(const nlohmann::json& task, const PaperClaimKeys& keys = {});

/// The Markdown table of paper_claims_json's output ("" when it is empty).
std::string paper_claims_markdown(const nlohmann::json& claims);

}  // namespace draft
