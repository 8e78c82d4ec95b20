#!/usr/bin/env python3
"""How far transformers + PEFT themselves land from a fixture's float32 reference when they run in bfloat16.

wick's bf16 fixture tests (tests/cuda/test_model_cuda.cpp) compare a bf16 run with the float32 reference. How
much bf16 rounding moves the result is a property of the model's numerics (Gemma's four norms per layer and its
embedding scale move it more than Qwen2), not of the engine. This script measures it with the reference
implementation, on the same inputs and with the same metrics as tests/common/model_checks.cpp, and writes
FIXTURE/bf16_noise.json; the tests allow a bf16 deviation of max(their fixed bound, 2 x this figure).

Metrics (each the largest over its tensors or steps):
  logits, lora_logits, merged_logits, gen_logits   max|bf16 - f32| / max|f32| (gen_logits teacher-forced on gen_ids)
  loss0, loss                                      |bf16 - f32| / |f32| (loss0; the 6 trace steps' losses)
  grad_norm, loss_after                            the same, for the trace's grad norms and the loss after it
  grad                                             max|bf16 - f32| / max|f32| per adapter gradient at adapter_init
  weights, weights_abs_lr                          trained adapters: ||diff|| / ||ref||, max|diff| / lr

Two bf16 recipes of the reference, both written to the file: "noise" is the model in bf16 with PEFT's adapters
upcast to f32 (PEFT's default: the adapter product computed in f32 and added to the bf16 base output);
"noise_autocast" is the same under torch.autocast(bfloat16), where the adapter matmuls run in bf16 with f32
accumulation. wick's CUDA bf16 path computes the adapter the autocast way (model/linear.h), so the tests take the
larger of the two per check: wick is held to the reference's own bf16 behaviour in either recipe.

Runs where transformers + PEFT + a GPU are (the device machine):
  python3 scripts/bf16_noise.py tests/fixtures/*-tiny-* [--device cuda]
"""
import argparse
import contextlib
import json
import os

import torch
from safetensors.torch import load_file


def rel_max(a, b):
    a, b = a.float().cpu(), b.float().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def measure(d, device, autocast):
    # cache_enabled=False: autocast's cache of cast weights lives as long as the context, so with it the trace's
    # later steps would run on the bf16 copies of the adapters as they were before the optimizer's first step.
    ctx = (torch.autocast(device_type=device, dtype=torch.bfloat16, cache_enabled=False) if autocast
           else contextlib.nullcontext())
    with ctx:
        return measure_in_context(d, device)


def measure_in_context(d, device):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ref = load_file(os.path.join(d, "reference.safetensors"))
    scal = json.load(open(os.path.join(d, "reference.json")))
    out = {}
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16).to(device).eval()
    ids = ref["input_ids"].to(device)
    with torch.no_grad():
        out["logits"] = rel_max(model(ids).logits, ref["logits"])
        gen = ref["gen_ids"].to(device)
        n_new = ref["gen_logits"].shape[1]
        lg = model(gen).logits[:, gen.shape[1] - n_new - 1:-1]
        out["gen_logits"] = rel_max(lg, ref["gen_logits"])
    pm = PeftModel.from_pretrained(model, os.path.join(d, "adapter_init"), is_trainable=True)
    with torch.no_grad():
        out["lora_logits"] = rel_max(pm(ids).logits, ref["lora_logits"])
    tid, lab = ref["train_input_ids"].to(device), ref["train_labels"].to(device)
    params = {n: p for n, p in pm.named_parameters() if p.requires_grad}
    pm.train()
    loss = pm(input_ids=tid, labels=lab).loss
    loss.backward()
    out["loss0"] = abs(loss.item() - scal["loss0"]) / abs(scal["loss0"])
    out["grad"] = max(rel_max(p.grad, ref["grad." + n]) for n, p in params.items())
    for p in params.values():
        p.grad = None
    hp = scal["train"]
    opt = torch.optim.AdamW(params.values(), lr=hp["lr"], betas=tuple(hp["betas"]), eps=hp["eps"],
                            weight_decay=hp["weight_decay"])
    out["loss"], out["grad_norm"] = 0.0, 0.0
    for s in range(hp["steps"]):
        loss = pm(input_ids=tid, labels=lab).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), hp["max_grad_norm"]).item()
        opt.step()
        opt.zero_grad(set_to_none=True)
        want, want_norm = scal["losses"][s], scal["grad_norms_before_clip"][s]
        out["loss"] = max(out["loss"], abs(loss.item() - want) / abs(want))
        out["grad_norm"] = max(out["grad_norm"], abs(norm - want_norm) / abs(want_norm))
    pm.eval()
    with torch.no_grad():
        out["loss_after"] = abs(pm(input_ids=tid, labels=lab).loss.item() - scal["loss_after"]) / abs(scal["loss_after"])
    trained = load_file(os.path.join(d, "adapter_trained", "adapter_model.safetensors"))
    got = {n.replace(".default", ""): p.detach().float().cpu() for n, p in params.items()}
    out["weights"], out["weights_abs_lr"] = 0.0, 0.0
    for n, r in trained.items():
        g = got[n]
        out["weights"] = max(out["weights"], ((g - r).norm() / r.norm().clamp_min(1e-30)).item())
        out["weights_abs_lr"] = max(out["weights_abs_lr"], ((g - r).abs().max() / hp["lr"]).item())
    with torch.no_grad():
        merged = pm.merge_and_unload()
        out["merged_logits"] = rel_max(merged(ids).logits, ref["merged_logits"])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dirs", nargs="+")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    import peft
    import transformers
    for d in a.dirs:
        if not os.path.exists(os.path.join(d, "reference.safetensors")):
            continue
        doc = {"made_by": "scripts/bf16_noise.py", "transformers": transformers.__version__, "peft": peft.__version__,
               "torch": torch.__version__, "device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu"}
        for key, autocast in (("noise", False), ("noise_autocast", True)):
            torch.manual_seed(0)
            m = measure(d, a.device, autocast)
            doc[key] = {k: float("%.3g" % v) for k, v in m.items()}
        with open(os.path.join(d, "bf16_noise.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(os.path.basename(d.rstrip("/")), json.dumps(doc["noise"]), json.dumps(doc["noise_autocast"]))


if __name__ == "__main__":
    main()
