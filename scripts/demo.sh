#!/usr/bin/env bash
# The main job on the embedded defaults: set up, prepare models, install and index the demo
# catalogue, answer sample searches and hold a short scripted conversation (the local vLLM is
# started only when a step of the turn uses it: see README, "Conversations"). Re-runs reuse the
# venvs, the model cache, the index and a running server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-vllm.sh
exec .venv/bin/recagent demo "$@"
