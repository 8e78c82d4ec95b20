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


# safetensors: small files whole; larger ones as their header plus the tensors in the first 4 KiB of data
# (every header shape and dtype of the fixtures is kept by some seed; bytes beyond that add nothing).
for p in sorted(glob.glob(fx + "/**/*.safetensors", recursive=True)):
    b = read(p)
    if len(b) <= 8192:
        put("safetensors", b)
    else:
        n = struct.unpack("<Q", b[:8])[0]
        head = json.loads(b[8:8 + n])
        small = {k: v for k, v in head.items() if k == "__metadata__" or v["data_offsets"][1] <= 4096}
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

# tokenizer.json: the real ones are 2-33 MB (each mutation would re-parse megabytes). The seeds keep each
# family's whole structure (normalizer, pre-tokenizer, post-processor, decoder, model options, added tokens)
# with a vocabulary cut to a consistent few hundred tokens: the byte alphabet (byte-level) or the byte
# fallback tokens <0x00>..<0xFF>, ASCII and "\u2581" (SentencePiece style), the first ids (specials), and the
# first merges whose parts are kept, ids renumbered densely. A family whose tokenizer was not fetched is left out.
def byte_level_alphabet():  # GPT-2's bytes_to_unicode: the symbol of each byte in a byte-level vocabulary
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            n += 1
    return {chr(c) for c in bs[:188]} | {chr(256 + i) for i in range(n)}


def small_tokenizer(t, n_low, n_merges):
    vocab = t["model"]["vocab"]
    alphabet = byte_level_alphabet() | {chr(c) for c in range(32, 127)} | {"\u2581"}
    keep = {k for k, i in vocab.items()
            if i < n_low or k in alphabet or (len(k) == 6 and k.startswith("<0x") and k.endswith(">"))}
    merges = []
    for m in t["model"]["merges"]:
        if len(merges) >= n_merges:
            break
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        if a in keep and b in keep and a + b in vocab:
            keep.add(a + b)
            merges.append(m)
    ordered = sorted(keep, key=lambda k: vocab[k])
    new_id = {k: i for i, k in enumerate(ordered)}
    s = dict(t)
    s["model"] = dict(t["model"], vocab={k: new_id[k] for k in ordered}, merges=merges)
    added, next_id = [], len(ordered)
    for a in t.get("added_tokens", []):
        if a["content"] in new_id:
            added.append(dict(a, id=new_id[a["content"]]))
        elif len(added) < 8:
            added.append(dict(a, id=next_id))
            next_id += 1
    s["added_tokens"] = added
    # Post-processors name special tokens by id (Llama 2, Gemma 3): follow the renumbering.
    pp = json.loads(json.dumps(s.get("post_processor")))
    if isinstance(pp, dict) and isinstance(pp.get("special_tokens"), dict):
        for v in pp["special_tokens"].values():
            v["ids"] = [new_id.get(tok, i) for tok, i in zip(v.get("tokens", []), v.get("ids", []))]
        s["post_processor"] = pp
    return json.dumps(s, ensure_ascii=False, separators=(",", ":"))


families = [tok_dir] + [os.path.join(root, "third_party/npm", f) for f in
                        ("llama3-tokenizer", "llama2-tokenizer", "gemma3-tokenizer")]
for d in families:
    tj = os.path.join(d, "tokenizer.json")
    if not os.path.exists(tj):
        continue
    t = json.loads(read(tj))
    for n_low, n_merges in ((12, 40), (300, 200)):
        seed = small_tokenizer(t, n_low, n_merges)
        if len(seed) <= 12000:  # Gemma's first ids and merges are long runs of spaces: its larger cut is left out
            put("tokenizer_json", seed)

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

# chat templates: a flags byte (fuzz/fuzz_chat_template.cpp), tokenizer_config.json text, then NUL-separated
# role / content pairs. The configs are each
# fixture template (tests/fixtures/chat/templates: Qwen 2.5 and 3, Llama 3 / 3.1, Gemma 3, Mistral-style, the
# Jinja feature sampler) with its special tokens - not the real files' kilobytes of added_tokens_decoder,
# which the renderer ignores.
cases = [json.loads(line) for line in open(os.path.join(fx, "chat/chat_template_cases.jsonl"), encoding="utf-8")]
n_chat = 0
for i, p in enumerate(sorted(glob.glob(fx + "/chat/templates/*.json"))):
    fixture = json.loads(read(p))
    cfg = dict(fixture.get("variables", {}), chat_template=fixture["template"])
    parts = [json.dumps(cfg, ensure_ascii=False, separators=(",", ":")).encode()]
    for c in (cases[i % len(cases)], cases[(i + 7) % len(cases)]):
        parts = parts[:1]
        for m in c["messages"]:
            parts += [m["role"].encode(), m["content"].encode()]
        put("chat_template", bytes([n_chat % 6]) + b"\0".join(parts))
        n_chat += 1
put("chat_template", b'\x03{"chat_template": "{{ messages }}"}\0user\0hi')
