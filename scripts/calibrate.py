#!/usr/bin/env python3
"""Distil ../shared/data into brownout/sim/calibration.json (quantile tables, no raw rows).

Sources (real, public; keep this attribution):
- ray-project/llmperf-leaderboard, raw_data/individual (Apache-2.0): per-request TTFT and
  inter-token latency of 8 providers serving Llama-2, Dec 2023.
- Azure/AzurePublicDataset AzureLLMInferenceTrace_{conv,code} (CC-BY-4.0): arrival times and
  token counts, one hour on 2023-11-16.

Usage: python scripts/calibrate.py [DATA_DIR]
"""

import csv
import json
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np

Q = np.linspace(0, 100, 101)


def quantiles(xs):
    return [round(float(v), 6) for v in np.percentile(np.asarray(xs, dtype=float), Q)]


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared" / "data"
    profiles = {}
    groups = defaultdict(list)
    with open(data / "llmperf_leaderboard_2023-12_individual.csv") as f:
        for r in csv.DictReader(f):
            groups[f"{r['provider']}-{r['model_size']}"].append(r)
    for name, rows in sorted(groups.items()):
        ok = [r for r in rows if not r["error_code"]]
        if len(ok) < 20:
            continue
        ttft = [float(r["ttft_s"]) for r in ok]
        # inter_token_latency_s is inconsistent across runs (data README): recompute it.
        itl = [(float(r["end_to_end_latency_s"]) - float(r["ttft_s"])) / max(1, int(r["number_output_tokens"]) - 1)
               for r in ok]
        profiles[name] = {"requests": len(rows), "errors": len(rows) - len(ok),
                          "ttft_s": quantiles(ttft), "itl_s": quantiles(itl)}
    workloads = {}
    for kind in ("conv", "code"):
        with open(data / f"azure_llm_2023_{kind}.csv") as f:
            rows = list(csv.DictReader(f))
        ts = [datetime.fromisoformat(r["TIMESTAMP"][:26]).timestamp() for r in rows]
        t0 = min(ts)
        per_min = np.bincount(((np.asarray(ts) - t0) // 60).astype(int))
        workloads[kind] = {
            "requests": len(rows),
            "input_tokens": quantiles([int(r["ContextTokens"]) for r in rows]),
            "output_tokens": quantiles([max(1, int(r["GeneratedTokens"])) for r in rows]),
            "rate_per_minute_shape": [round(float(x), 4) for x in per_min[:60] / per_min[:60].mean()],
        }
    out = {
        "attribution": __doc__.split("Usage:")[0].strip(),
        "quantiles": "101 points, percentiles 0..100",
        "latency_profiles": profiles,
        "workloads": workloads,
    }
    dest = root / "brownout" / "sim" / "calibration.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {dest}: {len(profiles)} latency profiles, {len(workloads)} workloads")


if __name__ == "__main__":
    main()
