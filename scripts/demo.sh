#!/usr/bin/env bash
# The main job on the embedded defaults: set up, prepare models, install and index the demo
# catalogue, answer sample searches. Re-runs reuse the venv, the model cache and the index.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/recagent demo "$@"
