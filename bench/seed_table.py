#!/usr/bin/env python3
"""The seed suite's rows (docs/benchmarks.md section 1) beside the torch peer, each against its goal.

    python3 bench/seed_table.py WICK_JSON TORCH_JSONL GPU_NAME [--cpu] [--markdown]
    python3 bench/seed_table.py --filter DEVICE     wick_bench's --benchmark_filter for the seed rows on cpu or cuda

WICK_JSON is wick_bench's --benchmark_out (JSON); its /cuda rows are read (/cpu with --cpu). TORCH_JSONL is
`bench/peer/torch_peer.py micro`'s output (may be missing: the torch column is then "-"). The goals are the
project's targets for the CUDA rows (issue 8: "every CUDA row at or under its goal"); CPU rows get no verdict.
scripts/gpu-check.sh prints the aligned form, scripts/bench-train.sh (its `seed` row) the markdown one;
bench/cpu-vs-torch.sh reads the results with wick_rows / torch_micro_lines; it and bench-train.sh run the rows
that --filter names.
"""
import json
import os
import sys

# The one copy of the seed rows' goals (µs, median of one warm call, CUDA-event timed).
GOAL_US = {
    "lora_forward/small_512x512_r8": 10, "lora_forward/medium_1024x1024_r8": 10,
    "lora_forward/large_2048x2048_r8": 12, "lora_forward/small_512x512_r16": 10,
    "gradient_computation/forward_backward": 60, "optimizer_step/adamw_step": 15,
    "full_training_step/complete_iteration": 100, "layer_operations/softmax_stable": 8,
    "layer_operations/layer_norm": 8, "layer_operations/rms_norm": 8,
}
for _r in (4, 8, 16, 32, 64):
    GOAL_US[f"lora_rank_scaling/rank_{_r}"] = 10


def wick_rows(path, suffix):
    """name -> median µs of wick_bench's rows ending in suffix (a missing file: none)."""
    out = {}
    try:
        benchmarks = json.load(open(path)).get("benchmarks", [])
    except (OSError, ValueError) as e:  # no file, or wick_bench stopped before writing it
        print(f"(no wick_bench results in {path}: {e})", file=sys.stderr)
        return out
    for b in benchmarks:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        if suffix + "/" not in name + "/":
            continue
        out[name.rsplit(suffix, 1)[0]] = b.get("median_us", b.get("real_time"))
    return out


def torch_micro_lines(path):
    """torch_peer.py micro's result lines (a missing file: none)."""
    if not os.path.exists(path):
        return []
    lines = []
    for line in open(path):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("what") == "micro":
            lines.append(o)
    return lines


def torch_rows(path):
    """name -> median µs of torch_peer.py micro's lines; AdamW's key is torch's fused kernel."""
    return {o["name"].replace("(fused)", ""): o["median_us"] for o in torch_micro_lines(path)}


def benchmark_filter(device):
    """wick_bench's --benchmark_filter for the seed rows of one device (their families, any shape)."""
    families = sorted({name.split("/")[0] for name in GOAL_US})
    return "^(%s)/[^/]+/%s(/|$)" % ("|".join(families), device)


def main(argv):
    if argv[:1] == ["--filter"] and len(argv) == 2:
        print(benchmark_filter(argv[1]))
        return
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 3:
        sys.exit(__doc__)
    wick_path, torch_path, gpu = args
    cpu, markdown = "--cpu" in argv, "--markdown" in argv
    suffix = "/cpu" if cpu else "/cuda"
    wick, torch = wick_rows(wick_path, suffix), torch_rows(torch_path)

    def cell(v):
        return "-" if v is None else f"{v:.1f}"

    rows = [("seed row", f"wick {'CPU' if cpu else 'CUDA'} µs", "torch eager µs", "goal µs", "verdict")]
    met = 0
    for name, goal in GOAL_US.items():
        w, t = wick.get(name), torch.get(name)
        verdict = ""
        if w is not None and not cpu:
            verdict = "met" if w <= goal else f"not met ({w / goal:.2f}x the goal)"
            met += w <= goal
        rows.append((name, cell(w), cell(t), f"<= {goal}", verdict))
    if "optimizer_step/adamw_step(plain)" in torch:
        rows.append(("optimizer_step/adamw_step (torch's plain AdamW)", "", cell(torch["optimizer_step/adamw_step(plain)"]),
                     "", ""))
    if markdown:
        for i, r in enumerate(rows):
            print("| " + " | ".join(r) + " |")
            if i == 0:
                print("|" + "---|" * len(r))
    else:
        width = [max(len(r[i]) for r in rows) for i in range(5)]
        for i, r in enumerate(rows):
            print(" | ".join(c.ljust(width[j]) for j, c in enumerate(r)).rstrip())
            if i == 0:
                print("-|-".join("-" * w for w in width))
    clock = "wall-clock" if cpu else "CUDA-event"
    print(f"\n{gpu}: wick, the median of wick_bench's {clock} times (counter median_us); torch, the median of 200 "
          f"{clock} times (torch_peer.py micro); same machine, same call."
          + ("" if cpu else f" {met} of {sum(1 for n in GOAL_US if n in wick)} CUDA rows at or under their goal."))


if __name__ == "__main__":
    main(sys.argv[1:])
