#!/usr/bin/env python3
"""A random PEFT LoRA adapter (r=16, alpha 32, q/k/v/o of every layer, f32) for a model folder, for the serve
load test (scripts/serve-load-test.sh); standard library only, so it runs where node does not.
  python3 bench/random_adapter.py OUT_DIR MODEL_DIR SEED
The values come from a 32-bit LCG seeded with SEED, uniform in [-0.01, 0.01).
"""
import array
import json
import os
import struct
import sys


def main():
    out_dir, model_dir, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    C, H, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or C // H
    r = 16
    s = seed & 0xFFFFFFFF
    header, bufs, off = {}, [], 0
    for layer in range(cfg["num_hidden_layers"]):
        for proj, out in (("q_proj", H * D), ("k_proj", Hkv * D), ("v_proj", Hkv * D), ("o_proj", C)):
            for ab, shape in (("lora_A", [r, H * D if proj == "o_proj" else C]), ("lora_B", [out, r])):
                n = shape[0] * shape[1]
                vals = array.array("f", bytes(4 * n))
                for i in range(n):
                    s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
                    vals[i] = (s / 4294967296 - 0.5) * 0.02
                name = "base_model.model.model.layers.%d.self_attn.%s.%s.weight" % (layer, proj, ab)
                header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + 4 * n]}
                off += 4 * n
                if sys.byteorder != "little":
                    vals.byteswap()
                bufs.append(vals.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "adapter_model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(bufs))
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": 32,
                   "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
