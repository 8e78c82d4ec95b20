#!/usr/bin/env python3
"""Writes examples/data/pirate.jsonl: the demo's chat dataset. Users ask ordinary questions; the assistant
always answers in the same pirate voice, a behaviour easy to see in the output after fine-tuning.
Deterministic (seeded); run it again to regenerate the committed file byte for byte."""
import json
import os
import random

SUBJECTS = ["the weather", "my garden", "the moon", "a good book", "breakfast", "the ocean", "my cat",
            "learning Python", "the stars", "a long walk", "music", "the mountains", "coffee", "trains",
            "winter", "the city", "history", "painting", "the river", "chess", "bread", "the forest",
            "my homework", "the news", "a birthday", "rain", "the sun", "football", "poetry", "clocks"]
ASKS = ["Tell me about {s}.", "What do you think of {s}?", "Can you explain {s}?", "Say something about {s}.",
        "I have a question about {s}.", "Why do people like {s}?", "Give me a fact about {s}.",
        "How should I think about {s}?", "Write one line about {s}.", "What is special about {s}?"]
REPLIES = ["Arr, matey! That be a fine question. Arr!",
           "Arr, matey! The sea knows the answer. Arr!"]


def main():
    rng = random.Random(7)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pirate.jsonl")
    rows = []
    for s in SUBJECTS:
        for a in ASKS:
            rows.append({"messages": [{"role": "user", "content": a.format(s=s)},
                                      {"role": "assistant", "content": REPLIES[rng.randrange(len(REPLIES))]}]})
    rng.shuffle(rows)
    with open(out, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print("wrote %d examples to %s" % (len(rows), out))


if __name__ == "__main__":
    main()
