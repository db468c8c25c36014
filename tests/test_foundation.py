import dataclasses
import importlib
import json
import re
import subprocess
import sys
import typing

import numpy as np
import pytest
import torch

from openhuman.config import PipelineConfig, from_dict, load_config, save_config, to_dict
from openhuman.errors import InputError
from openhuman.io import Throttle, atomic_path, read_png, write_json_atomic, write_png_atomic
from openhuman.metrics import confusion_matrix, flip_rate, iou_per_class, mean_iou
from openhuman.ontology import BODY14, LR_SWAP, PALETTE, taxonomy


def test_torch_is_cpu_build_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the CPU-build guard applies to machines without one")
    assert torch.version.cuda is None, "a CUDA torch was installed; pin torch==2.13.0 with torchvision==0.28.0"


def test_torchvision_shim_gives_working_nms():
    from openhuman._compat import ensure_torchvision

    ensure_torchvision()
    import torchvision

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def test_import_openhuman_loads_no_heavy_library():
    code = (
        "import sys, openhuman, openhuman.parsing, tracking, lifting; "
        "print([m for m in ('torch','mediapipe','open3d','cv2','decord') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_native_stderr_filter_drops_chatter_and_keeps_the_rest():
    """Lines written straight to descriptor 2 (as mediapipe's C++ does): absl info/warning and
    TFLite info lines are dropped; errors, other lines and Python's own stderr come through."""
    code = """if True:
        import os, sys
        from openhuman.native_log import filter_native_stderr
        assert filter_native_stderr() and not filter_native_stderr()
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
        os.write(2, b"W0000 00:00:1795431479.963673   11021 inference_feedback_manager.cc:114] Feedback manager\\n")
        os.write(2, b"I0000 00:00:1795431479.9 11 gl_context.cc:369] GL version\\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
        os.write(2, b"E0000 00:00:1795431479.963673   11021 graph.cc:1] a real error\\n")
        os.write(2, b"a plain native line\\n")
        print("from python", file=sys.stderr)
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert sorted(out.stderr.splitlines()) == [
        "E0000 00:00:1795431479.963673   11021 graph.cc:1] a real error",
        "a plain native line",
        "from python",
    ]


def test_config_yaml_round_trip(tmp_path):
    cfg = PipelineConfig(query="left hand")
    cfg.tracking.keyframe_interval = 4
    cfg.parser.schnet.vocabulary = ["head", "hat"]
    save_config(cfg, tmp_path / "c.yaml")
    back = load_config(tmp_path / "c.yaml", PipelineConfig)
    assert back == cfg
    assert to_dict(back)["tracking"]["keyframe_interval"] == 4
    # a bad key or section names the file it is in (a list, a typo)
    for text, words in (("- 1\n- 2\n", "must be a mapping"), ("trackin: {}\n", "trackin")):
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(InputError, match=rf"^config file {re.escape(str(tmp_path / 'bad.yaml'))}: .*{words}"):
            load_config(tmp_path / "bad.yaml", PipelineConfig)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"tracking": {"keyframe_intervall": 2}}, "tracking.keyframe_intervall"),
        ({"parser": {"backend": "yolo"}}, "parser.backend"),
        ({"tracking": {"keyframe_interval": "four"}}, "tracking.keyframe_interval"),
    ],
)
def test_config_errors_name_the_key(data, needle):
    with pytest.raises(InputError, match=needle.replace(".", r"\.")):
        from_dict(PipelineConfig, data)


def test_every_config_field_has_a_default():
    seen = []

    def walk(cls):
        seen.append(cls.__name__)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            assert has_default, f"{cls.__name__}.{f.name} has no default"
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name])

    walk(PipelineConfig)
    assert {"ParserConfig", "SchnetConfig", "TrackingConfig", "LiftingConfig"} <= set(seen)


def test_ontology_mappings():
    assert len(BODY14) == 15 and len(PALETTE) == 15
    assert all(LR_SWAP[LR_SWAP] == np.arange(15))
    assert BODY14[LR_SWAP[BODY14.index("left hand")]] == "right hand"
    ppp = taxonomy("pascal_person_part")
    assert ppp.classes[ppp.convert(np.array([BODY14.index("left hand")]))[0]] == "lower arms"
    assert ppp.classes[ppp.convert(np.array([BODY14.index("right foot")]))[0]] == "lower legs"
    with pytest.raises(ValueError, match="unknown taxonomy"):
        taxonomy("coco")


def test_metrics_on_known_case():
    gt = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    conf = confusion_matrix(pred, gt, 3)
    np.testing.assert_allclose(iou_per_class(conf), [1 / 3, 2 / 3, 1 / 2])
    assert mean_iou(conf) == pytest.approx((2 / 3 + 1 / 2) / 2)
    flips, stable = flip_rate(np.array([1, 1, 2]), np.array([1, 2, 2]), np.array([1, 1, 2]), np.array([1, 1, 1]))
    assert (flips, stable) == (1, 2)


@pytest.mark.parametrize("umask, mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_atomic_files_get_the_mode_of_a_plainly_created_file(tmp_path, umask, mode, dir_mode):
    """mkstemp/mkdtemp make owner-only files and folders; what the project writes follows the
    umask like open() and mkdir do."""
    code = (
        f"import os; os.umask({umask}); from openhuman.io import write_json_atomic; "
        f"write_json_atomic({str(tmp_path / 'a.json')!r}, {{}}); print(oct(os.stat({str(tmp_path / 'a.json')!r}).st_mode & 0o777))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == oct(mode)
    video = tmp_path / "v.mp4"  # the video writer renames its own temporary file
    code = (
        f"import os; os.umask({umask}); import numpy as np; from openhuman.video import VideoWriter\n"
        f"with VideoWriter({str(video)!r}, 10) as w: w.write(np.zeros((16, 16, 3), np.uint8))\n"
        f"print(oct(os.stat({str(video)!r}).st_mode & 0o777))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == oct(mode)
    root = tmp_path / "capture"  # the capture writer renames its own temporary folder
    code = (
        f"import os; os.umask({umask}); import numpy as np\n"
        "from openhuman.capture import CaptureWriter\nfrom openhuman.types import CameraView\n"
        "cam = CameraView('c', np.array([[10.0, 0, 8], [0, 10, 8], [0, 0, 1]]), np.eye(4), 16, 16)\n"
        f"with CaptureWriter({str(root)!r}, 10, [cam]) as w: w.write_frame('c', 0, np.zeros((16, 16, 3), np.uint8))\n"
        f"print(oct(os.stat({str(root)!r}).st_mode & 0o777))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == oct(dir_mode)


def test_temporary_files_carry_the_name_a_resume_cleans_up(tmp_path):
    """Runs and exports delete leftovers by `TEMP_NAME` after a hard kill; every writer's
    temporary file (atomic writes, videos) must match it, and a finished file must not."""
    from openhuman.io import TEMP_NAME, temporary_file

    for name in ("masks.json", "cam0.mp4", "000012.ply", "no_suffix"):
        tmp = temporary_file(tmp_path / "sub" / name)
        assert tmp.parent == tmp_path / "sub" and TEMP_NAME.fullmatch(tmp.name), tmp.name
        assert not TEMP_NAME.fullmatch(name)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.png"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []
    img = (np.arange(12, dtype=np.uint8).reshape(2, 2, 3)) * 10
    write_png_atomic(target, img)
    np.testing.assert_array_equal(read_png(target), img)


def test_json_rows_round_trips_with_one_row_per_line(tmp_path):
    frames = [{"index": i, "counts": {"head": i}, "files": {"ply": f"frames/{i:06d}.ply"}} for i in range(3)]
    obj = {"format": "x/1", "empty_frames": [], "classes": ["a", "b"], "frames": frames, "query": None}
    write_json_atomic(tmp_path / "m.json", obj, rows=True)
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text) == obj
    lines = text.splitlines()
    assert (
        lines[0] == "{" and lines[-1] == "}" and len(lines) == 11
    )  # 5 keys, 3 frame rows and the list's closing bracket
    assert [json.loads(line.rstrip(",")) for line in lines[5:8]] == frames


def test_modules_import():
    for name in ("openhuman.cli", "openhuman.parsing.base"):
        importlib.import_module(name)


def test_throttle_paces_a_rewrite_that_grows_with_the_run():
    now, frame = [0.0], [0]
    rewrites = []

    def rewrite():
        now[0] += 0.05 * frame[0]  # the rewrite costs more as the manifest grows
        rewrites.append(frame[0])

    throttle = Throttle(rewrite, ratio=4.0, clock=lambda: now[0])
    for frame[0] in range(100):
        now[0] += 1.0  # a frame takes one time unit
        throttle.request()
    assert throttle.owed and rewrites[-1] < 99  # the last frames' rewrite is owed, not made
    end = now[0]
    throttle.flush()  # the end: the owed rewrite is made
    assert rewrites[-1] == 99 and not throttle.owed
    rewrites.pop()  # (not paced: left out of the figures below)
    assert rewrites[:4] == [0, 1, 2, 3]  # cheap rewrites: after every frame
    assert 10 < len(rewrites) < 40  # growing ones: paced, not after all 100 frames
    gaps = np.diff(rewrites)
    assert gaps[-1] > gaps[len(gaps) // 2] >= 1  # further apart as they get dearer
    spent = sum(0.05 * f for f in rewrites)
    assert spent < 0.25 * end  # at most about 1 / (ratio + 1) of the time


def test_nearest_source_finds_the_nearest_true_pixel():
    from scipy.ndimage import distance_transform_edt

    from openhuman.arrays import nearest_source

    rng = np.random.default_rng(3)
    src = rng.random((40, 60)) > 0.97
    dist, idx = nearest_source(src)
    exact = distance_transform_edt(~src)
    ys, xs = np.divmod(idx, src.shape[1])
    assert src[ys, xs].all()  # every pixel points at a true pixel
    assert (idx.reshape(src.shape)[src] == np.flatnonzero(src)).all()  # true pixels point at themselves
    picked = np.hypot(ys - np.arange(40)[:, None], xs - np.arange(60)[None])
    assert np.abs(picked - exact).max() < 0.1 * exact.max()  # the nearest within OpenCV's approximation
    assert np.abs(dist - exact).max() < 0.05 * exact.max()
