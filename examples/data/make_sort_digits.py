#!/usr/bin/env python3
"""Writes the demo's skill dataset: "Sort the digits 4821" -> "1248" (3 to 6 different digits), as chats.

  sort_digits_train.jsonl    training chats
  sort_digits_heldout.jsonl  held-out chats: their digit SETS never occur in training, in any order, so the
                             answer to each held-out prompt is a string the model never saw as an answer

A fine-tuned adapter that gets the held-out prompts right has learned to sort, not memorised answers.
Deterministic (seeded); run it again to regenerate the committed files byte for byte. It checks that no
held-out set occurs in training and exits non-zero if one does. With --check it writes nothing and exits
non-zero unless the committed files are exactly what it makes (the ctest Demo.SortDigitsData)."""
import itertools
import json
import os
import random
import sys

LENGTHS = (3, 4, 5, 6)
HELDOUT_PER_LENGTH = 10      # digit sets held out per length: 40 held-out prompts
TRAIN_EXAMPLES = 3000


def chat(digits):
    return {"messages": [{"role": "user", "content": "Sort the digits " + digits},
                         {"role": "assistant", "content": "".join(sorted(digits))}]}


def make(rng):
    heldout_sets, train_sets = [], []
    for n in LENGTHS:
        sets = ["".join(c) for c in itertools.combinations("0123456789", n)]
        rng.shuffle(sets)
        heldout_sets += sets[:HELDOUT_PER_LENGTH]
        train_sets += sets[HELDOUT_PER_LENGTH:]
    # A held-out prompt: its set in a random order. Training: random sets of the rest, random orders.
    heldout = ["".join(rng.sample(s, len(s))) for s in heldout_sets]
    rng.shuffle(heldout)
    train = []
    for _ in range(TRAIN_EXAMPLES):
        s = rng.choice(train_sets)
        train.append("".join(rng.sample(s, len(s))))
    return train, heldout


def check_disjoint(train, heldout):
    seen = {"".join(sorted(d)) for d in train}
    clash = sorted({"".join(sorted(d)) for d in heldout} & seen)
    if clash:
        sys.exit("make_sort_digits: held-out digit sets occur in training: " + ", ".join(clash))


def jsonl(digit_strings):
    return "".join(json.dumps(chat(d)) + "\n" for d in digit_strings)


def main():
    check = "--check" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--check"]
    out_dir = args[0] if args else os.path.dirname(os.path.abspath(__file__))
    train, heldout = make(random.Random(11))
    check_disjoint(train, heldout)
    files = {"sort_digits_train.jsonl": jsonl(train), "sort_digits_heldout.jsonl": jsonl(heldout)}
    for name, text in files.items():
        path = os.path.join(out_dir, name)
        if check:
            with open(path) as f:
                if f.read() != text:
                    sys.exit("make_sort_digits: %s is not what this script makes: run it to regenerate" % path)
        else:
            with open(path, "w") as f:
                f.write(text)
    print("%s %d training and %d held-out chats in %s; no held-out digit set occurs in training"
          % ("checked" if check else "wrote", len(train), len(heldout), out_dir))


if __name__ == "__main__":
    main()
