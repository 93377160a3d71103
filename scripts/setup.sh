#!/usr/bin/env bash
# Installs grootvl and everything it needs on Debian/Ubuntu with Python >= 3.10.
#   bash scripts/setup.sh          # the library, CLI and demo
#   bash scripts/setup.sh --dev    # + test tools (pytest, playwright, chromium)
# Idempotent; safe to re-run. Uses the current `python3` (activate a venv first if you want one).
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    *) echo "setup.sh: unknown option '$arg' (use --dev)" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}

# Debian packages: real data for the bundled models (Fashion-MNIST, fortunes), never downloaded at
# run time; with --dev also the browser the Playwright tests drive (/usr/bin/chromium: they never let
# Playwright download one).
apt_packages=(dataset-fashion-mnist fortunes)
if [ "$dev" = 1 ]; then apt_packages+=(chromium); fi
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "[setup] apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[setup] WARNING: no apt-get; install ${missing[*]} (or their files) yourself" >&2
  fi
fi
extras="app"
[ "$dev" = 1 ] && extras="app,dev"

echo "[setup] python packages (grootvl[$extras], editable)"
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[$extras]"

echo "[setup] building the native tree-scan op (cached after the first time)"
if ! "$PY" -m grootvl_core.ops.build; then
  echo "[setup] WARNING: native CPU build failed; grootvl falls back to the slow pure-PyTorch path." >&2
  echo "[setup]          Install a C++ compiler (apt-get install g++) and re-run." >&2
fi
echo "[setup] done"
