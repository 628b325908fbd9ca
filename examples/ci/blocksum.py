"""A small real workload for the CI example: SHA-256 of a generated input, block by block, with an index.

Each block is hashed and recorded in an index (offset, length, CRC-32 of its first bytes): the index is
the per-block cost that makes small blocks slow. ``--impl`` picks one of two implementations of the block
loop, which cost the same today. ``CI_EXAMPLE_SLOWDOWN=N`` injects a regression into the default
implementation ("a"): every block is hashed N times, as a careless change might. The time of the loop
(not of the interpreter's start-up) is written as ``seconds`` to the JSON file named by
``$TUNESMITH_RESULT``, with ``correct``: the digest checked against a one-shot hash of the whole input
(``CI_EXAMPLE_CORRUPT=1`` injects a wrong answer, which tunesmith reports as a correctness failure).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
import zlib


def block_loop(data: memoryview, block: int, passes: int) -> tuple[bytes, list[tuple[int, int, int]]]:
    """Hash ``data`` block by block (``passes`` times each block: 1 is correct and fast) and index it."""
    digest = hashlib.sha256()
    index = []
    for offset in range(0, len(data), block):
        chunk = data[offset:offset + block]
        for _ in range(passes - 1):
            hashlib.sha256(chunk).digest()  # the injected regression: wasted work
        digest.update(chunk)
        index.append((offset, len(chunk), zlib.crc32(chunk[:64])))
    return digest.digest(), index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--block-kib", type=int, default=4)
    parser.add_argument("--impl", choices=("a", "b"), default="a")
    parser.add_argument("--mib", type=int, default=16)
    args = parser.parse_args()
    slowdown = max(1, int(os.environ.get("CI_EXAMPLE_SLOWDOWN", "1") or 1))
    data = memoryview(random.Random(7).randbytes(args.mib << 20))
    passes = slowdown if args.impl == "a" else 1
    start = time.perf_counter()
    digest, index = block_loop(data, args.block_kib << 10, passes)
    seconds = time.perf_counter() - start
    if os.environ.get("CI_EXAMPLE_CORRUPT") == "1":
        digest = bytes(32)  # the injected wrong answer
    correct = digest == hashlib.sha256(data).digest() and sum(n for _, n, _ in index) == len(data)
    with open(os.environ.get("TUNESMITH_RESULT", os.devnull), "w", encoding="utf-8") as f:
        json.dump({"seconds": seconds, "blocks": len(index), "correct": correct}, f)
    print(f"{len(index)} blocks, {seconds * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
