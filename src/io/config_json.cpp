// config.json access.
#include "io/config_json.h"

#include "io/json_file.h"

namespace draft {

ConfigJson ConfigJson::load(const std::string& path) {
  ConfigJson c{read_json_file(path), path};
  DRAFT_CHECK(c.json.is_object(), path, ": expected a JSON object");
  return c;
}

}  // namespace draft
