#!/usr/bin/env bash
# Refreshes the libraries only the tests use, from the npm registry, into tests/vendor/:
# axe-core (MPL-2.0), which tests/axe.py injects into pages for the accessibility checks
# (tests/test_accessibility_browser.py). Run by hand after changing tests/vendor/package.json;
# the copies (tests/vendor/axe-core/axe.min.js and its LICENSE) are committed, so neither the
# tests nor CI ever need npm or the internet. Versions are pinned in tests/vendor/package-lock.json.
# The libraries the app itself serves are vendored by scripts/vendor-assets.sh.
set -euo pipefail
vendor="$(cd "$(dirname "$0")/../tests/vendor" && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$vendor/package.json" "$work/"
[ -f "$vendor/package-lock.json" ] && cp "$vendor/package-lock.json" "$work/"
(cd "$work" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
cp "$work/package-lock.json" "$vendor/"
rm -rf "$vendor/axe-core"
mkdir -p "$vendor/axe-core"
axe="$work/node_modules/axe-core"
cp "$axe/axe.min.js" "$axe/LICENSE" "$vendor/axe-core/"
echo "Vendored into $vendor:"
(cd "$vendor" && find axe-core -type f | sort)
