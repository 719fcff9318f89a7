#!/usr/bin/env bash
# Installs everything and runs the whole test suite (ruff and mypy included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-vllm.sh   # the integration tests start a real vLLM server
exec .venv/bin/python -m pytest "$@"
