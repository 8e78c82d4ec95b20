#!/usr/bin/env python3
"""Seed corpora for the libFuzzer targets in fuzz/, made from the test fixtures (nothing committed in bulk).

usage: fuzz_seeds.py OUT_DIR [TOKENIZER_DIR]   -> OUT_DIR/<target>/seed-N files
"""
import glob
import json
import os
import struct
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
out = sys.argv[1]
tok_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "third_party/npm/qwen3-tokenizer")
fx = os.path.join(root, "tests/fixtures")


def put(target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    n = len(os.listdir(d))
    with open(os.path.join(d, "seed-%d" % n), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(p):
    with open(p, "rb") as f:
        return f.read()


# safetensors: small files whole; large ones as their header plus the first tensor bytes.
for p in sorted(glob.glob(fx + "/**/*.safetensors", recursive=True)):
    b = read(p)
    if len(b) <= 65536:
        put("safetensors", b)
    else:
        n = struct.unpack("<Q", b[:8])[0]
        head = json.loads(b[8:8 + n])
        # keep only the tensors that lie in the first 16 KiB of data
        small = {k: v for k, v in head.items() if k == "__metadata__" or v["data_offsets"][1] <= 16384}
        h = json.dumps(small).encode()
        h += b" " * (-len(h) % 8)
        end = max([v["data_offsets"][1] for k, v in small.items() if k != "__metadata__"] or [0])
        put("safetensors", struct.pack("<Q", len(h)) + h + b[8 + n:8 + n + end])

for p in sorted(glob.glob(fx + "/*/config.json")):
    put("config", read(p))
for p in sorted(glob.glob(fx + "/*/*/adapter_config.json")):
    put("adapter_config", read(p))

# `wick serve` request bodies (chat and completion shapes, every sampling field).
for body in (
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "temperature": 0.7,
     "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1, "frequency_penalty": 0.5,
     "presence_penalty": -0.5, "seed": 3, "stop": ["\n", "END"], "n": 1, "stream": True,
     "stream_options": {"include_usage": True}},
    {"messages": [{"role": "system", "content": [{"type": "text", "text": "a"}]}, {"role": "user", "content": None}]},
    {"prompt": "Once upon", "max_completion_tokens": 4, "stop": "x", "ignore_eos": True},
    {"prompt": [1, 2, 3], "logprobs": False, "response_format": {"type": "text"}},
):
    put("openai_request", json.dumps(body).encode())

# tokenizer.json: the real one is 7 MB (slow per run); seeds are the same structure with a cut vocabulary.
tj = os.path.join(tok_dir, "tokenizer.json")
if os.path.exists(tj):
    t = json.loads(read(tj))
    for nv, nm in ((300, 50), (1000, 400)):
        s = dict(t)
        model = dict(t["model"])
        vocab = {k: v for k, v in t["model"]["vocab"].items() if v < nv}
        model["vocab"] = vocab
        merges = []
        for m in t["model"]["merges"]:
            a, b = m if isinstance(m, list) else m.split(" ", 1)
            if a in vocab and b in vocab and a + b in vocab:
                merges.append(m)
            if len(merges) >= nm:
                break
        model["merges"] = merges
        s["model"] = model
        s["added_tokens"] = [dict(a, id=nv + i) for i, a in enumerate(t.get("added_tokens", [])[:5])]
        put("tokenizer_json", json.dumps(s, ensure_ascii=False))

for line in open(os.path.join(fx, "tokenizer/tokenizer_cases.jsonl"), encoding="utf-8"):
    c = json.loads(line)
    if len(c["text"]) < 2000:
        put("encode_decode", c["text"])
    if len(os.listdir(os.path.join(out, "encode_decode"))) >= 200:
        break

# JSONL datasets: the first byte picks format and options (fuzz/fuzz_jsonl.cpp).
pirate = open(os.path.join(root, "examples/data/pirate.jsonl"), encoding="utf-8").read().splitlines()
samples = [
    "\n".join(pirate[:3]),
    '{"text": "hello world"}\n{"text": "second"}',
    '{"prompt": "2+2=", "completion": "4"}',
    '{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}\n{"input_ids": [4, 5]}',
    '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}',
]
for i, s in enumerate(samples):
    for sel in (0, 0x18 + i, 0x70 + i):
        put("jsonl", bytes([sel]) + s.encode())

# chat templates: tokenizer_config.json text, then NUL-separated role / content pairs.
cfg = os.path.join(tok_dir, "tokenizer_config.json")
cfg_bytes = read(cfg) if os.path.exists(cfg) else b"{}"
n = 0
for line in open(os.path.join(fx, "chat/chat_template_cases.jsonl"), encoding="utf-8"):
    c = json.loads(line)
    parts = [cfg_bytes if n % 2 == 0 else b'{"chat_template": "{{ messages }}"}']
    for m in c["messages"]:
        parts += [m["role"].encode(), m["content"].encode()]
    put("chat_template", b"\0".join(parts))
    n += 1
    if n >= 40:
        break
