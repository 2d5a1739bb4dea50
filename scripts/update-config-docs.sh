#!/usr/bin/env bash
# Rewrites the key tables of docs/config.md from the config tables (`draft config NAME --markdown`), the
# blocks between "<!-- draft config NAME --markdown -->" and "<!-- end -->". test_config_docs checks them.
#   scripts/update-config-docs.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
draft="${1:-build}/bin/draft"
doc=docs/config.md
tmp=$(mktemp)
while IFS= read -r line; do
  printf '%s\n' "$line"
  if [[ "$line" =~ ^\<!--\ draft\ config\ ([a-z-]+)\ --markdown\ --\>$ ]]; then
    "$draft" config "${BASH_REMATCH[1]}" --markdown
    # skip the old block up to its end marker
    while IFS= read -r old && [[ "$old" != "<!-- end -->" ]]; do :; done
    printf '%s\n' "<!-- end -->"
  fi
done < "$doc" > "$tmp"
mv "$tmp" "$doc"
echo "updated $doc"
