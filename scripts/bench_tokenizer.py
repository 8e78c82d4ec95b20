#!/usr/bin/env python3
"""Encode speed of Hugging Face `tokenizers` on the same text `wick tokenize --bench` times.

The text: the "text" fields of tests/fixtures/tokenizer/tokenizer_cases.jsonl joined by newlines, repeated
whole until it reaches --mb megabytes; one encode(add_special_tokens=False) call on one thread. Prints one
JSON line {"impl": "hf-tokenizers", "mb_per_s": best run, "mb_per_s_cold": first run, ...}. With --wick PATH
it also runs `PATH tokenize --tokenizer ... --jsonl ... --bench` and prints its line, and checks that both
produced the same number of tokens. Needs `pip install tokenizers` (present on the GPU machines).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "third_party/npm/qwen3-tokenizer/tokenizer.json"),
                    help="tokenizer.json (default: the one scripts/fetch_tokenizer.sh fetches)")
    ap.add_argument("--jsonl", default=os.path.join(ROOT, "tests/fixtures/tokenizer/tokenizer_cases.jsonl"))
    ap.add_argument("--mb", type=float, default=1.0, help="size of the text in MB (default 1)")
    ap.add_argument("--wick", help="path of a built wick binary to time the same way")
    args = ap.parse_args()

    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one core, like wick's measure
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import tokenizers

    with open(args.jsonl, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    one = "\n".join(texts)
    n_one = len(one.encode("utf-8"))
    reps = 0
    while reps * n_one < args.mb * 1e6:
        reps += 1
    big = one * reps
    n_bytes = len(big.encode("utf-8"))

    tok = tokenizers.Tokenizer.from_file(args.tokenizer)

    def once():
        t0 = time.perf_counter()
        n = len(tok.encode(big, add_special_tokens=False).ids)
        return time.perf_counter() - t0, n

    cold, n_tokens = once()
    best, total, runs = cold, 0.0, 0
    while runs < 5 or (total < 2.0 and runs < 50):
        t, n_tokens = once()
        best, total, runs = min(best, t), total + t, runs + 1
    print(json.dumps({"impl": "hf-tokenizers", "version": tokenizers.__version__, "mb_per_s": n_bytes / 1e6 / best,
                      "mb_per_s_cold": n_bytes / 1e6 / cold, "bytes": n_bytes, "tokens": n_tokens, "runs": runs}))

    if args.wick:
        out = subprocess.run([args.wick, "tokenize", "--tokenizer", args.tokenizer, "--jsonl", args.jsonl, "--bench",
                              "--bench-mb", str(args.mb)], check=True, capture_output=True, text=True).stdout
        line = out.strip().splitlines()[-1]
        print(line)
        w = json.loads(line)
        if w["bytes"] != n_bytes or w["tokens"] != n_tokens:
            print(f"bench_tokenizer: MISMATCH wick bytes/tokens {w['bytes']}/{w['tokens']} vs hf {n_bytes}/{n_tokens}",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
