"""Benchmark multi-view lifting: fusion throughput, scaling, and 3D mIoU on synthetic captures.

    HF_HUB_OFFLINE=1 .venv/bin/python tools/bench_lifting.py [--out bench_out/lifting.json]
        [--frames 6] [--clips walk run] [--no-parser] [--repeats 3] [--sequence-frames 3000]

Targets: >= 5 million point-view visibility tests per second; <= 0.1 s fusion per frame for
4 views x 100k points; 3D mIoU near 1.0 when lifting ground-truth 2D labels. The sequence row
shows that writing a labelled sequence costs the same per frame at its end as at its start
(the manifest's rewrites are paced, so they do not grow with the square of its length).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lifting import Lifter, LiftingConfig  # noqa: E402
from lifting.fusion import fuse_labels  # noqa: E402
from lifting.metrics import point_miou  # noqa: E402
from lifting.scene import SPHERES, parse_from_labels, sphere_scene  # noqa: E402
from lifting.sources import Points  # noqa: E402
from openhuman.metrics import confusion_matrix, mean_iou  # noqa: E402
from openhuman.ontology import NUM_CLASSES  # noqa: E402

log = logging.getLogger("bench_lifting")


def surface_points(n: int, seed: int = 0) -> np.ndarray:
    """float32 [n, 3] random points on the sphere person's surface (area-weighted)."""
    rng = np.random.default_rng(seed)
    area = SPHERES[:, 3] ** 2
    idx = rng.choice(len(SPHERES), n, p=area / area.sum())
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return (SPHERES[idx, :3] + d * SPHERES[idx, 3:4]).astype(np.float32)


def time_fusion(n_points: int, n_views: int, repeats: int, scenes: dict) -> dict:
    """Best-of-`repeats` time of fuse_labels for n_points x n_views at 640x480 (z-buffer visibility)."""
    if n_views not in scenes:
        scenes[n_views] = sphere_scene(n_views=n_views, width=640, height=480)
    s = scenes[n_views]
    xyz = surface_points(n_points)
    pts = Points(xyz, None, np.full((n_points, 3), 128, np.uint8))  # coloured, like depth points
    parses = {p.view_id: p for p in s.parses}
    frames = {f.view_id: f for f in s.frames}
    cfg = LiftingConfig()
    best, best_cpu = np.inf, np.inf
    fuse_labels(pts, s.cameras, parses, frames, None, cfg)  # warm-up (lazy imports)
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fused = fuse_labels(pts, s.cameras, parses, frames, None, cfg)
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    tests = fused.visibility_tests
    return {
        "points": n_points, "views": n_views, "seconds": best, "cpu_seconds": best_cpu,
        "tests_per_s": tests / best, "tests_per_cpu_s": tests / best_cpu,
    }  # fmt: skip


def capture_miou(clip: str, n_frames: int, use_parser: bool, workdir: Path) -> list[dict]:
    """3D mIoU of lifting a synthetic capture of `clip`, with GT 2D labels and (optionally) the parser."""
    from openhuman.capture import Capture
    from openhuman.synth import SynthConfig, generate_capture

    root = generate_capture(workdir / clip, SynthConfig(clips=(clip,), views=4, frames=n_frames, width=640, height=480))
    cap = Capture.open(root)
    labelers: dict[str, object] = {"gt_2d": None}
    if use_parser:
        try:
            from openhuman.parsing.base import Parser
            from openhuman.parsing.config import ParserConfig

            labelers["mediapipe"] = {v: Parser.from_config(ParserConfig()) for v in cap.view_ids}
        except Exception as exc:  # the parser is optional here; report why it is missing
            log.warning("mediapipe parser unavailable: %s", exc)
    rows = []
    for name, parsers in labelers.items():
        for source in ("depth", "hull"):
            lifter = Lifter(cap.cameras, LiftingConfig(source=source))
            mious, mious6, secs, relabel_secs = [], [], [], []
            views_conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)  # the views' 2D labels against gt/2d
            relabelled_conf = views_conf.copy()  # after `Lifter.relabel` (labels from 3D, masks cut with depth)
            for frames in cap.synced():
                i = frames[0].index
                if parsers is None:
                    parses = [parse_from_labels(f.view_id, i, cap.gt_2d(f.view_id, i), True) for f in frames]
                else:
                    parses = [parsers[f.view_id](f) for f in frames]  # type: ignore[index]
                depths = {v: cap.depth(v, i) for v in cap.view_ids} if source == "depth" else None
                t = time.perf_counter()
                cloud = lifter.lift(i, frames[0].timestamp_s, frames, parses, depths)
                secs.append(time.perf_counter() - t)
                gx, gl = cap.gt_3d(i)
                mious.append(point_miou(cloud.xyz, cloud.labels, gx, gl, 0.03)[0])
                mious6.append(point_miou(cloud.xyz, cloud.labels, gx, gl, 0.06)[0])
                t = time.perf_counter()
                relabelled = lifter.relabel(parses, cloud, depths)
                relabel_secs.append(time.perf_counter() - t)
                for before, after in zip(parses, relabelled, strict=True):
                    gt2d = cap.gt_2d(before.view_id, i)
                    views_conf += confusion_matrix(before.labels, gt2d, NUM_CLASSES)
                    relabelled_conf += confusion_matrix(after.labels, gt2d, NUM_CLASSES)
            rows.append(
                {"clip": clip, "labels": name, "source": source, "miou": float(np.nanmean(mious)), "miou_6cm": float(np.nanmean(mious6)),
                 "lift_s_per_frame": float(np.median(secs[1:] or secs)), "frames": len(mious),
                 "miou_2d_views": mean_iou(views_conf), "miou_2d_relabelled": mean_iou(relabelled_conf),
                 "relabel_s_per_frame": float(np.median(relabel_secs[1:] or relabel_secs))}
            )  # fmt: skip
            if parsers is not None:
                for p in parsers.values():  # type: ignore[attr-defined]
                    p.reset()
    return rows


def time_sequence(n_frames: int, n_points: int = 500) -> dict:
    """SequenceWriter (NPZ + manifest) writing n_frames small clouds: ms per frame, first and last 100."""
    from lifting.export import SequenceWriter
    from openhuman.types import LabeledPointCloud

    rng = np.random.default_rng(0)
    ms = []
    with tempfile.TemporaryDirectory() as tmp, SequenceWriter(tmp, formats=("npz",)) as writer:
        for i in range(n_frames):
            cloud = LabeledPointCloud(
                rng.random((n_points, 3), dtype=np.float32), np.zeros((n_points, 3), np.uint8),
                rng.integers(0, 15, n_points).astype(np.int16), np.ones(n_points, np.float32),
                np.zeros(n_points, np.int32), i, i / 30,
            )  # fmt: skip
            t0 = time.perf_counter()
            writer.write(cloud)
            ms.append(1000 * (time.perf_counter() - t0))
    k = min(100, n_frames)
    return {"frames": n_frames, "points": n_points, "ms_first": float(np.mean(ms[:k])),
            "ms_last": float(np.mean(ms[-k:])), "seconds": sum(ms) / 1000}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench_out/lifting.json", help="JSON results file")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats (best is kept)")
    ap.add_argument("--frames", type=int, default=6, help="frames per synthetic capture")
    ap.add_argument("--clips", nargs="*", default=["walk", "kick"], help="synthetic clips for 3D mIoU")
    ap.add_argument("--no-parser", action="store_true", help="skip the mediapipe parser run")
    ap.add_argument("--sequence-frames", type=int, default=3000, help="frames of the sequence-writing row (0 = skip)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    scenes: dict = {}
    fusion = [time_fusion(100_000, 4, args.repeats, scenes)]
    fusion += [time_fusion(100_000, v, args.repeats, scenes) for v in (2, 8)]
    fusion += [time_fusion(n, 4, args.repeats, scenes) for n in (10_000, 300_000)]
    print("fusion (wall = elapsed; cpu = this process's CPU time, what a shared machine cannot steal)")
    print(f"{'points':>8} {'views':>5} {'wall s':>8} {'cpu s':>8} {'Mtests/s':>9} {'Mtests/cpu-s':>13}")
    for r in sorted(fusion, key=lambda r: (r["views"], r["points"])):
        print(
            f"{r['points']:>8} {r['views']:>5} {r['seconds']:>8.4f} {r['cpu_seconds']:>8.4f} "
            f"{r['tests_per_s'] / 1e6:>9.2f} {r['tests_per_cpu_s'] / 1e6:>13.2f}"
        )
    m = fusion[0]
    print(
        f"4 views x 100k: {m['seconds']:.3f} s wall, {m['cpu_seconds']:.3f} s cpu per frame (target <= 0.1); "
        f"{m['tests_per_s'] / 1e6:.1f} M tests/s wall, {m['tests_per_cpu_s'] / 1e6:.1f} per cpu-s (target >= 5)"
    )

    quality = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            quality += capture_miou(clip, args.frames, not args.no_parser, Path(tmp))
    print("\n3D part mIoU against gt/3d (points matched within 3 cm, and within 6 cm); the views' 2D mIoU")
    print("against gt/2d as parsed and after Lifter.relabel (labels from the cloud, masks cut with depth)")
    print(
        f"{'clip':>10} {'labels':>10} {'source':>6} {'mIoU':>6} {'@6cm':>6} {'lift s':>7} {'2D':>6} {'2D rel':>6} {'rel s':>6}"
    )
    for r in quality:
        print(
            f"{r['clip']:>10} {r['labels']:>10} {r['source']:>6} {r['miou']:>6.3f} {r['miou_6cm']:>6.3f} "
            f"{r['lift_s_per_frame']:>7.3f} {r['miou_2d_views']:>6.3f} {r['miou_2d_relabelled']:>6.3f} "
            f"{r['relabel_s_per_frame']:>6.3f}"
        )

    sequence = time_sequence(args.sequence_frames) if args.sequence_frames > 0 else None
    if sequence:
        print(
            f"\nsequence export ({sequence['frames']} frames of {sequence['points']} points, NPZ + sequence.json): "
            f"{sequence['ms_first']:.2f} ms/frame for the first 100, {sequence['ms_last']:.2f} for the last 100, "
            f"{sequence['seconds']:.1f} s in all"
        )

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from openhuman.io import write_json_atomic

    write_json_atomic(
        out,
        {
            "fusion": fusion,
            "quality": quality,
            "sequence": sequence,
            "targets": {"tests_per_s": 5e6, "s_per_frame_4x100k": 0.1},
        },
    )
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    from openhuman.native_log import filter_native_stderr

    filter_native_stderr()  # mediapipe's start-up chatter off the table
    raise SystemExit(main())
