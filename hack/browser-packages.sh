#!/usr/bin/env bash
# Installs the browser the console's browser tests drive: Debian's chromium and chromium-driver
# (/usr/bin/chromium, /usr/bin/chromedriver, the same version), and a font so screenshots show text. A no-op
# when they are there.
# Needs root and apt-get; elsewhere it says what to install. tests/console's browser fixture runs it.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver && -d /usr/share/fonts/truetype/dejavu ]]; then
  exit 0
fi
if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "[browser] install Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)" >&2
  exit 1
fi
echo "[browser] installing chromium, chromium-driver and fonts-dejavu-core (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
# Other setup scripts may be installing at the same time: wait for apt's lock instead of failing on it.
apt-get -o DPkg::Lock::Timeout=600 -qq update >&2
apt-get -o DPkg::Lock::Timeout=600 -qq install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core >&2
/usr/bin/chromium --version >&2
