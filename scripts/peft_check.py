#!/usr/bin/env python3
"""Checks that adapters written by wick load in Hugging Face PEFT and compute what wick computes.

Needs torch, transformers, peft and safetensors; no network (every path is local).

  python3 scripts/peft_check.py DIR
      DIR as written by `WICK_PEFT_EXPORT_DIR=DIR wick_tests --gtest_filter='PeftExport.*'`: cases.json and one
      folder per case with model/, adapter/, ids.json and wick_logits.safetensors. For each case: loads the
      base model with transformers (float32), applies the adapter with PeftModel.from_pretrained, and FAILS
      on any PEFT/transformers warning about missing or unexpected adapter keys, on any adapter tensor that
      did not land in the PEFT model unchanged, on a LoRA module PEFT created that the file lacks, and on
      logits further than the tolerance (max |diff| / max |ref|) from wick's. Prints one line per case and
      PASS or FAIL; exits 0 only on PASS.

  python3 scripts/peft_check.py --model M --adapter A --ids IDS [--out FILE]
      Prints (or writes) PEFT's logits for the ids as JSON: {"logits": [[[...]]]}; fails the same way on
      missing adapter keys. IDS is a JSON file {"input_ids": [[...], ...]}.
"""
import argparse
import json
import logging
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from peft import PeftModel  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

BAD_WORDS = ("missing adapter keys", "missing keys", "unexpected keys", "unexpected adapter keys")


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def load_base(model_dir, device):
    try:
        m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    except TypeError:  # transformers < 4.56 knows only torch_dtype
        m = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    return m.to(device).eval()


def load_peft(model_dir, adapter_dir, device):
    """Base + adapter; raises RuntimeError listing every problem with the adapter's keys."""
    base = load_base(model_dir, device)
    handler = Captured()
    loggers = [logging.getLogger(), logging.getLogger("peft"), logging.getLogger("transformers")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=False)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    messages = [str(w.message) for w in caught] + handler.messages
    problems = [m for m in messages if any(b in m.lower() for b in BAD_WORDS)]

    # Independently of PEFT's own warnings: every tensor of the file is in the model, unchanged, and every
    # LoRA parameter of the model came from the file.
    file_tensors = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    state = {k: v for k, v in model.state_dict().items() if ".lora_" in k}
    expected = set()
    for name, t in file_tensors.items():
        if not name.endswith(".weight") or ".lora_" not in name:
            problems.append(f"unexpected tensor in the adapter file: {name}")
            continue
        key = name[: -len(".weight")] + ".default.weight"
        expected.add(key)
        if key not in state:
            problems.append(f"adapter tensor {name} has no place in the PEFT model (expected {key})")
        elif tuple(state[key].shape) != tuple(t.shape):
            problems.append(f"{name}: file shape {tuple(t.shape)}, PEFT model {tuple(state[key].shape)}")
        elif not torch.equal(state[key].detach().cpu().float(), t.float()):
            problems.append(f"{name}: PEFT holds other values than the file")
    for key in sorted(set(state) - expected):
        problems.append(f"PEFT created {key}, which the adapter file does not provide (left at its init)")
    if problems:
        raise RuntimeError("; ".join(problems[:10]) + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""))
    return model.eval()


def read_ids(path):
    with open(path) as f:
        ids = json.load(f)["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def logits_of(model, ids, device):
    return model(input_ids=ids.to(device)).logits.float().cpu()


def max_rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def check_dir(root, device):
    with open(os.path.join(root, "cases.json")) as f:
        manifest = json.load(f)
    tol = float(manifest.get("tolerance", 1e-4))
    ok = True
    if not manifest["cases"]:
        print("FAIL: no cases in cases.json")
        return False
    for name in manifest["cases"]:
        case = os.path.join(root, name)
        try:
            model = load_peft(os.path.join(case, "model"), os.path.join(case, "adapter"), device)
            ids = read_ids(os.path.join(case, "ids.json"))
            wick = load_file(os.path.join(case, "wick_logits.safetensors"))
            got = logits_of(model, ids, device)
            with model.disable_adapter():
                base = logits_of(model, ids, device)
            if tuple(got.shape) != tuple(wick["logits"].shape):
                raise RuntimeError(f"logits shape {tuple(got.shape)} vs wick {tuple(wick['logits'].shape)}")
            d = max_rel(got, wick["logits"])
            d_base = max_rel(base, wick["base_logits"])
            effect = max_rel(got, base)
            passed = d <= tol and d_base <= tol and effect > 10 * tol
            print(f"{'ok  ' if passed else 'FAIL'} {name}: adapter logits max|diff|/max|ref| {d:.3g}, "
                  f"base logits {d_base:.3g} (tol {tol:g}); adapter effect {effect:.3g}")
            ok = ok and passed
        except Exception as e:  # one failing case must not hide the others
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            ok = False
    print("PASS" if ok else "FAIL")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", help="folder written by wick_tests PeftExport.*")
    ap.add_argument("--model")
    ap.add_argument("--adapter")
    ap.add_argument("--ids")
    ap.add_argument("--out", help="write the logits JSON here instead of stdout")
    ap.add_argument("--device", default="cpu", help="torch device (default cpu: exact f32, no TF32)")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if a.dir:
        sys.exit(0 if check_dir(a.dir, a.device) else 1)
    if not (a.model and a.adapter and a.ids):
        ap.error("give DIR, or --model, --adapter and --ids")
    try:
        model = load_peft(a.model, a.adapter, a.device)
    except RuntimeError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    text = json.dumps({"logits": logits_of(model, read_ids(a.ids), a.device).tolist()})
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
