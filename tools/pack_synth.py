"""Pack synthetic captures for a GPU machine that has torch and OpenCV but not pybullet, PyAV or decord.

Each view of each capture becomes `<pack>/<name>/<view>.mp4` (x264, crf 12, yuv444p: ~5x smaller
than the lossless capture video, mean absolute error 0.6 grey levels) and `<view>.labels.npy.xz`
(its gt/2d label maps, one lzma-compressed uint8 [T, H, W] array, exact). `--crf 20` makes the
videos ~40 % smaller; one H100 run trained on such a pack scored 0.05 lower held-out (not
established, see the README), so the reported figures all use crf 12.
`tools/train_schnet_packed.py` trains and evaluates SCHNet on such a pack with OpenCV alone.

    .venv/bin/python tools/pack_synth.py PACK_DIR runs/synth_data_384_13/walk ... [--view-every 2]
    .venv/bin/python tools/pack_synth.py PACK_DIR runs/synth_data_384/test_kick=test_kick
"""

from __future__ import annotations

import argparse
import io
import lzma
from pathlib import Path

import numpy as np

from openhuman.capture import Capture


def pack_capture(src: Path, dst: Path, view_every: int = 1, crf: int = 12, preset: str = "slow") -> None:
    import av

    cap = Capture.open(src)
    dst.mkdir(parents=True, exist_ok=True)
    for view in cap.view_ids[::view_every]:
        frames, labels = [], []
        for frame in cap.frames(view):
            frames.append(frame.rgb)
            labels.append(np.asarray(cap.gt_2d(view, frame.index), np.uint8))
        h, w = frames[0].shape[:2]
        with av.open(str(dst / f"{view}.mp4"), "w") as out:
            stream = out.add_stream("libx264", rate=round(cap.meta.fps))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv444p"
            stream.options = {"crf": str(crf), "preset": preset}
            for rgb in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            out.mux(stream.encode())
        buf = io.BytesIO()
        np.save(buf, np.stack(labels))
        (dst / f"{view}.labels.npy.xz").write_bytes(lzma.compress(buf.getvalue(), preset=9))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pack", help="output folder")
    ap.add_argument("captures", nargs="+", help="capture dirs, each optionally DIR=NAME (default NAME: the dir's name)")
    ap.add_argument("--view-every", type=int, default=1, help="pack every n-th view only")
    ap.add_argument("--crf", type=int, default=12, help="x264 quality (12: near lossless; 20: videos ~40 %% smaller)")
    ap.add_argument(
        "--preset", default="slow", help="x264 preset (veryfast: 10-35 %% less packing time, ~4 %% larger videos)"
    )
    args = ap.parse_args()
    for spec in args.captures:
        src, _, name = spec.partition("=")
        dst = Path(args.pack) / (name or Path(src).name)
        pack_capture(Path(src), dst, args.view_every, args.crf, args.preset)
        print(f"{src} -> {dst}")


if __name__ == "__main__":
    main()
