"""Benchmark SCHNet inference speed (random init) at a given input size, per model size.

    .venv/bin/python tools/bench_schnet.py --sizes tiny base --image-size 512 --repeats 2
    .venv/bin/python tools/bench_schnet.py --sizes tiny small base --cpu-bf16    # bfloat16 autocast (parser.cpu_bf16)

Prints a table (model size, parameters, seconds per image, images/s) and writes JSON to --out
(default bench_out/schnet.json). No weights are needed; speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np


def bench_size(size: str, image_size: int, repeats: int, device: str, cpu_bf16: bool = False) -> dict:
    import torch

    from openhuman.parsing.schnet.backend import SchnetParser
    from openhuman.parsing.schnet.config import SchnetConfig
    from openhuman.parsing.schnet.model import build_schnet

    t0 = time.perf_counter()
    model = build_schnet(SchnetConfig(size=size, image_size=image_size))  # type: ignore[arg-type]
    parser = SchnetParser(model, device, cpu_bf16)  # the backend's own inference, bfloat16 included
    build_s = time.perf_counter() - t0
    rgb = (np.random.default_rng(0).random((image_size, image_size, 3)) * 255).astype(np.uint8)
    parser.predict(rgb)  # warm-up (text embeddings, allocator)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        parser.predict(rgb)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    sec = float(np.median(times))
    return {
        "size": size,
        "image_size": image_size,
        "device": device,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "build_s": round(build_s, 2),
        "seconds_per_image": round(sec, 4),
        "images_per_s": round(1.0 / sec, 3),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "cpu_bf16": cpu_bf16,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "small", "base"])
    ap.add_argument("--image-size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2, help="timed images per size (after one warm-up)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpu-bf16", action="store_true", help="bfloat16 autocast on the CPU (parser.cpu_bf16)")
    ap.add_argument("--out", default="bench_out/schnet.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    torch.set_num_threads(args.threads)
    rows = [bench_size(s, args.image_size, args.repeats, args.device, args.cpu_bf16) for s in args.sizes]
    print(f"{'size':<6} {'params(M)':>9} {'input':>7} {'s/image':>9} {'images/s':>9}")
    for r in rows:
        print(
            f"{r['size']:<6} {r['params_m']:>9} {r['image_size']:>7} {r['seconds_per_image']:>9} {r['images_per_s']:>9}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.machine(), "processor": platform.processor(), "torch": torch.__version__}
    out.write_text(json.dumps({"results": rows, "meta": meta}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
