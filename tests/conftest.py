import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")


# --- synthetic captures (openhuman.synth) ----------------------------------------------------
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synth_capture_factory(tmp_path_factory):
    """Session-scoped, cached maker of synthetic captures: `make(**SynthConfig fields) -> Path`.

    Same arguments -> the same directory (generated once per session). Example:
    `synth_capture_factory(clips=("run",), views=2, frames=4, width=160, height=120)`.
    """
    from openhuman.synth import SynthConfig, generate_capture

    cache: dict = {}

    def make(**kwargs):
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()))
        if key not in cache:
            out = tmp_path_factory.mktemp("synth") / "capture"
            cache[key] = generate_capture(out, SynthConfig(**kwargs))
        return cache[key]

    return make


@pytest.fixture(scope="session")
def synth_capture(synth_capture_factory):
    """A small synthetic capture dir: clip walk, 4 views, 8 frames at 30 fps, 320x240, lossless RGB,
    depth, gt/2d and gt/3d. The person fills ~90% of the image height (mediapipe detects it)."""
    return synth_capture_factory(clips=("walk",), views=4, frames=8, width=320, height=240)


@pytest.fixture
def never_due(monkeypatch):
    """Paced rewrites (`openhuman.io.Throttle`: state.json, sequence.json) as if each were slow:
    nothing is rewritten until the end of a run, an error or Ctrl-C flushes it."""
    from openhuman.io import Throttle

    monkeypatch.setattr(Throttle, "due", lambda self: False)


# --- scripts under tools/ ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def load_tool():
    """Import a script under tools/ as a module: `load_tool("pack_synth")`."""
    import importlib.util
    import sys
    from pathlib import Path

    tools = Path(__file__).resolve().parents[1] / "tools"

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"_tool_{name}", tools / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module

    return load
