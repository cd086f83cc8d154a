#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver from Debian packages, for the admin page's browser
# test (tests/e2e/tests/admin_page.rs). stdout is only the `export …` lines, so callers do:
#   eval "$(bash deploy/ci/browser.sh)"
set -euo pipefail

if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  echo "browser.sh: installing chromium and chromium-driver" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
fi
echo "export CHROMEDRIVER=$(command -v chromedriver)"
echo "export CHROMIUM=$(command -v chromium)"
