"""`recagent bench index` on a small slice: the figures exist and the re-run bar holds."""

import json
from pathlib import Path

from tests.conftest import recagent


def test_bench_index_writes_figures(
    demo_slice: Path, tmp_path: Path, prepared_models: Path
) -> None:
    out = tmp_path / "bench.json"
    env = {"RECAGENT_CACHE_DIR": str(prepared_models), "RECAGENT_DATA_DIR": str(tmp_path)}
    result = recagent(
        "bench",
        "index",
        "--catalogue",
        str(demo_slice),
        "--limit",
        "16",
        "--out",
        str(out),
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(out.read_text())
    assert figures["items"] == 16 and figures["pipeline"]["indexed"] == 16
    for stage in ("embed_text", "embed_image", "caption", "store"):
        assert figures["pipeline"]["stages"][stage]["items_per_s"] > 0
        assert figures["raw"][stage]["items_per_s"] > 0
    assert figures["batching"]["embed_text"]["speedup"] > 1
    assert figures["rerun"]["model_calls"] == 0 and figures["rerun"]["unchanged"] == 16
    assert figures["bars"]["rerun_ok (== 0)"] is True
