#!/usr/bin/env python3
"""Charges each instruction of a callgrind profile to the source line it was inlined from.

callgrind_annotate charges an inlined instruction to its innermost source line, so a hot
loop built from many inlined helpers shows as scattered library lines (`option.rs`,
`index.rs`). This script reads a profile made with `--dump-instr=yes`, asks `addr2line -i`
for the inline chain of every executed instruction of BINARY, and charges the instruction to
the innermost frame of that chain whose file contains ANCHOR (else to its outermost frame).
It prints instructions per unit (`--per`, e.g. entries) by line, most first.

  ip netns exec NS valgrind --tool=callgrind --dump-instr=yes \\
      --callgrind-out-file=cg.out tests/bench/cdump_built struct
  tests/bench/inline_costs.py cg.out tests/bench/cdump_built --anchor entry_fill.rs --per 250000

Needs binutils (addr2line) and a binary with debug info (the release profile keeps it).
"""
import argparse
import collections
import re
import subprocess


def position(tok, prev):
    """A callgrind position: absolute, relative (+n/-n) or the same (*)."""
    if tok == "*":
        return prev
    if tok[0] in "+-":
        return prev + int(tok, 0)
    return int(tok, 0)


def self_costs(path, binary_name):
    """Instructions executed at each address of the object named `binary_name`."""
    cost = collections.Counter()
    names = {}
    obj = None
    addr = line = 0
    skip_next = False
    with open(path) as f:
        for raw in f:
            text = raw.rstrip("\n")
            m = re.match(r"(c?ob)=\((\d+)\)(?: (.*))?", text)
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3)
                if m.group(1) == "ob":
                    obj = names.get(m.group(2))
                continue
            if text.startswith("calls="):
                # The next cost line is the call's inclusive cost, not this address's own.
                skip_next = True
                continue
            if not text or text[0] not in "0123456789+-*":
                continue
            parts = text.split()
            addr = position(parts[0], addr)
            line = position(parts[1], line)
            if skip_next:
                skip_next = False
                continue
            if obj and obj.endswith(binary_name) and len(parts) > 2:
                cost[addr] += int(parts[2])
    return cost


def inline_chains(binary, addrs):
    """For each address, its inline chain as `file:line` strings, innermost first."""
    out = subprocess.run(
        ["addr2line", "-a", "-i", "-e", binary] + [hex(a) for a in addrs],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    chains = {}
    current = None
    for text in out:
        if text.startswith("0x"):
            current = int(text, 16)
            chains[current] = []
        elif current is not None:
            chains[current].append(text.split(" ")[0])
    return chains


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("profile", help="callgrind output made with --dump-instr=yes")
    p.add_argument("binary", help="the profiled program (with debug info)")
    p.add_argument("--anchor", default="", help="charge to the innermost frame in this file")
    p.add_argument("--per", type=float, default=1.0, help="divide counts by this (entries)")
    p.add_argument("--top", type=int, default=40, help="lines to print")
    p.add_argument("--strip", default="", help="prefix to remove from file names")
    args = p.parse_args()

    cost = self_costs(args.profile, args.binary.split("/")[-1])
    chains = inline_chains(args.binary, sorted(cost))
    by_line = collections.Counter()
    for addr, chain in chains.items():
        where = next((loc for loc in chain if args.anchor and args.anchor in loc), None)
        if where is None:
            where = chain[-1] if chain else "?"
        by_line[where.replace(args.strip, "")] += cost[addr]
    total = sum(by_line.values())
    for where, n in by_line.most_common(args.top):
        print(f"{n / args.per:9.1f}  {where}")
    print(f"{total / args.per:9.1f}  total")


if __name__ == "__main__":
    main()
