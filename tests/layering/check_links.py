#!/usr/bin/env python3
"""ctest "layering_links": the layering at link level. Every wick symbol a layer's library needs must be
defined by that layer or one below it (an include root cannot catch a function declared by hand and defined
above, as core/device.cpp once did with the CUDA memory functions).
  check_links.py NM LAYER=ARCHIVE=BELOW1,BELOW2,... ...   (BELOW: the layer's closure, itself excluded)"""
import re
import subprocess
import sys

LINE = re.compile(r"^(?:[0-9a-fA-F]+)?\s+([A-Za-z?])\s+(.+)$")  # "<address> T name" or "         U name"


def symbols(nm, archive):
    out = subprocess.run([nm, "-C", archive], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        kind, name = m.group(1), m.group(2)
        if "wick::" not in name:
            continue
        if kind == "U":
            undefined.add(name)
        elif kind not in ("w", "v"):  # weak undefined: not needed to link
            defined.add(name)
    return defined, undefined


def main():
    nm = sys.argv[1]
    layers = {}
    for arg in sys.argv[2:]:
        name, archive, below = arg.split("=", 2)
        layers[name] = (archive, [b for b in below.split(",") if b])
    syms = {name: symbols(nm, archive) for name, (archive, _) in layers.items()}
    problems = []
    for name, (archive, below) in layers.items():
        visible = set(syms[name][0])
        for b in below:
            visible |= syms[b][0]
        for s in sorted(syms[name][1] - visible):
            owners = [l for l in layers if s in syms[l][0]]
            problems.append(f"{name} uses {s}, defined in {', '.join(owners) or 'no layer'}")
    if problems:
        print("layers that reach up at link time:\n  " + "\n  ".join(problems))
        return 1
    n = sum(len(u) for _, u in syms.values())
    print(f"layering_links: {n} wick symbols used across {len(layers)} layers, each defined at or below its user")
    return 0


if __name__ == "__main__":
    sys.exit(main())
