"""Every registered runtime on real (tiny) models, metadata reading, bad model files, the profiler, and the
foreign MediaPipe model against a by-hand run."""
from __future__ import annotations

import importlib.util
import itertools
import json
import platform
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edge_deeplab
from conftest import in_ci
from edge_deeplab.errors import BadModelError, ConfigError, RuntimeUnavailableError
from edge_deeplab.processing import Segmenter
from edge_deeplab.runtimes import RUNTIMES, load_runtime, resolve_model, runtime_for
from edge_deeplab.runtimes import tflite_metadata
from edge_deeplab.runtimes.profiler import benchmark, benchmark_isolated

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"

# Stripes of grey 32 / 128 / 224 = brightness 0.125 / 0.5 / 0.88 (see tests/fixtures/make_fixtures.py).
STRIPE_LEVELS = (32, 128, 224)
CASES = [  # (runtime, model, class of each stripe)
    ("litert", "two_class_float.tflite", [0, 1, 1]),
    ("litert", "argmax_uint8.tflite", [0, 1, 2]),
    ("litert", "int8_logits.tflite", [0, 1, 2]),
    ("litert", "metadata_logit.tflite", [0, 0, 1]),  # metadata says [-1,1]: only the bright stripe > 0.1
    ("onnxruntime", "nchw_two_class.onnx", [0, 1, 1]),
    ("openvino", "nchw_two_class.xml", [0, 1, 1]),
    ("openvino", "nchw_two_class.onnx", [0, 1, 1]),
    ("openvino", "two_class_float.tflite", [0, 1, 1]),
    ("openvino", "argmax_uint8.tflite", [0, 1, 2]),
    ("openvino", "int8_logits.tflite", [0, 1, 2]),
]


def stripes(height: int = 80, width: int = 120) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    for i, level in enumerate(STRIPE_LEVELS):
        image[:, i * width // 3:(i + 1) * width // 3] = level
    return image


def stripe_classes(labels: np.ndarray) -> list[int]:
    """The class at the centre of each stripe, checking the stripe is uniform away from its borders."""
    width = labels.shape[1]
    classes = []
    for i in range(3):
        core = labels[:, i * width // 3 + width // 12:(i + 1) * width // 3 - width // 12]
        values = np.unique(core)
        assert len(values) == 1, f"stripe {i} is not uniform: {values}"
        classes.append(int(values[0]))
    return classes


def require_available(name: str) -> None:
    reason = RUNTIMES.load(name).unavailable_reason()
    if reason is not None:
        pytest.skip(f"{name} unavailable here: {reason}")


# ---------------------------------------------------------------- registry-wide
# Engines that a pip package brings (CI installs them all with [all]); the others need a platform/device.
PIP_RUNTIMES = {"litert": "ai_edge_litert", "onnxruntime": "onnxruntime", "openvino": "openvino"}


@pytest.mark.parametrize("name", RUNTIMES.names())
def test_every_runtime_runs_here_or_says_why(name):
    reason = RUNTIMES.load(name).unavailable_reason()
    installed = name in PIP_RUNTIMES and importlib.util.find_spec(PIP_RUNTIMES[name]) is not None
    if name in PIP_RUNTIMES and in_ci():
        assert installed, f"CI installs [all], which brings {PIP_RUNTIMES[name]}"
    if installed:
        assert reason is None, reason  # installed means it runs: its tests must not skip
    if name == "coreml" and platform.system() != "Darwin":
        assert "macOS" in reason
    if reason is None:
        assert any(case[0] == name for case in CASES), f"{name} is available but has no test case"
    else:
        assert len(reason) > 20  # a sentence that says how to fix it, not a bare flag


@pytest.mark.parametrize("entry", list(RUNTIMES), ids=RUNTIMES.names())
def test_auto_picks_the_runtime_by_suffix(entry):
    for suffix in entry.meta["suffixes"]:
        assert runtime_for(f"some/model{suffix}").name == entry.name
    with pytest.raises(BadModelError, match="pass --runtime"):
        runtime_for("model.pb")


# A file of each kind an engine may be handed (content real where a fixture exists: the refusal must not
# depend on the engine failing to parse it).
FILE_OF_SUFFIX = {".tflite": "two_class_float.tflite", ".onnx": "nchw_two_class.onnx",
                  ".xml": "nchw_two_class.xml", ".mlpackage": None, ".mlmodel": None}


@pytest.mark.parametrize("entry", list(RUNTIMES), ids=RUNTIMES.names())
def test_runtime_declares_what_it_loads_and_how_to_export_it(entry):
    from edge_deeplab.converters import FORMATS
    cls = entry.load()
    assert cls.accepts and all(suffix.startswith(".") for suffix in cls.accepts)
    assert all(suffix.endswith(cls.accepts) for suffix in entry.meta["suffixes"])  # auto never picks a refusal
    assert FORMATS.load(cls.export_format).suffix.endswith(cls.accepts)  # the hint makes a file it loads


@pytest.mark.parametrize("entry", list(RUNTIMES), ids=RUNTIMES.names())
def test_runtime_refuses_another_engines_file_before_loading_it(entry, tmp_path):
    cls = entry.load()
    foreign = [suffix for suffix in FILE_OF_SUFFIX if not suffix.endswith(cls.accepts)]
    assert foreign, f"{entry.name} accepts every kind of file"
    for suffix in foreign:
        path = tmp_path / f"model{suffix}"
        fixture = FILE_OF_SUFFIX[suffix]
        if fixture is None:
            path.write_bytes(b"not parsed")
        else:
            shutil.copy(FIXTURES / fixture, path)
            if suffix == ".xml":
                shutil.copy(FIXTURES / "nchw_two_class.bin", tmp_path / "model.bin")
        with pytest.raises(BadModelError) as info:
            load_runtime(path, entry.name)
        message = str(info.value)
        runs_on = runtime_for(path).name
        assert "\n" not in message and str(path) in message
        assert f"{suffix} files run on {runs_on}" in message, message
        assert f"edge-deeplab export SOURCE --format {cls.export_format}" in message, message


def test_default_model_on_the_wrong_engine_names_its_source_to_export():
    with pytest.raises(BadModelError, match=r"\.tflite files run on litert \(also edgetpu, openvino\).*"
                                            r"edge-deeplab export portrait --format onnx"):
        edge_deeplab.load("default", runtime="onnxruntime")


@pytest.mark.parametrize("threads", [0, -2, 1.5, True, "2"])
def test_threads_out_of_range_is_a_config_error_naming_the_argument(threads):
    for load in (lambda: edge_deeplab.load("default", threads=threads),
                 lambda: load_runtime(FIXTURES / "two_class_float.tflite", threads=threads)):
        with pytest.raises(ConfigError, match=f"threads={threads!r}: expected a whole number of CPU threads, 1 or more"):
            load()
    assert load_runtime(FIXTURES / "two_class_float.tflite", threads=np.int64(2)).threads == 2


@pytest.mark.parametrize("runtime,model,expected", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_runtime_segments_fixture_model(runtime, model, expected):
    require_available(runtime)
    engine = load_runtime(FIXTURES / model, runtime, threads=1)
    assert engine.name == runtime
    segmentation = Segmenter(engine)(stripes(), with_alpha=True)
    assert segmentation.labels.shape == (80, 120) and segmentation.alpha.shape == (80, 120)
    assert stripe_classes(segmentation.labels) == expected


@pytest.mark.parametrize("name", ["edgetpu", "coreml"])
def test_unavailable_runtime_error_says_how_to_fix(name, tmp_path):
    cls = RUNTIMES.load(name)
    if cls.unavailable_reason() is None:
        pytest.skip(f"{name} is available on this machine")
    model = tmp_path / ("m_edgetpu.tflite" if name == "edgetpu" else "m.mlpackage")
    shutil.copy(FIXTURES / "two_class_float.tflite", model) if name == "edgetpu" else model.mkdir()
    with pytest.raises(RuntimeUnavailableError) as info:
        load_runtime(model)
    message = str(info.value)
    expected = ("Edge TPU", "libedgetpu1-std", "Coral") if name == "edgetpu" else ("macOS",)
    assert all(word in message for word in expected), message


def _as_edgetpu_model(source: Path, target: Path) -> None:
    """Rewrite every op of ``source`` as the custom op edgetpu_compiler emits (no compiler needed)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(source.read_bytes(), 0))
    for code in model.operatorCodes:
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = b"edgetpu-custom-op"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    target.write_bytes(bytes(builder.Output()))


def test_cpu_runtime_on_an_edgetpu_model_says_so(tmp_path):
    model = tmp_path / "m_edgetpu.tflite"
    _as_edgetpu_model(FIXTURES / "two_class_float.tflite", model)
    with pytest.raises(BadModelError, match="compiled for the Edge TPU; run it with --runtime edgetpu"):
        load_runtime(model, "litert")


# ---------------------------------------------------------------- metadata
def test_tflite_metadata_round_trip_keeps_the_model_working(tmp_path):
    source = FIXTURES / "two_class_float.tflite"
    target = tmp_path / "with_meta.tflite"
    assert tflite_metadata.read_metadata(source) is None
    tflite_metadata.write_metadata(source, target, b'{"labels": ["a", "b"]}')
    tflite_metadata.write_metadata(target, target, b'{"labels": ["dark", "bright"], "input_range": "0,1"}')
    assert json.loads(tflite_metadata.read_metadata(target)) == {"labels": ["dark", "bright"], "input_range": "0,1"}
    before = load_runtime(source).run(np.full((1, 32, 48, 3), 0.7, np.float32))
    engine = load_runtime(target)
    np.testing.assert_array_equal(engine.run(np.full((1, 32, 48, 3), 0.7, np.float32)), before)
    assert Segmenter(engine).labels == ["dark", "bright"]


def test_metadata_drives_normalization_and_the_flag_overrides_it():
    engine = load_runtime(FIXTURES / "metadata_logit.tflite")
    assert engine.metadata() == {"input_range": "-1,1", "labels": ["background", "bright"], "output": "logits"}
    assert stripe_classes(Segmenter(engine)(stripes()).labels) == [0, 0, 1]
    assert stripe_classes(Segmenter(engine, input_range="0,1")(stripes()).labels) == [1, 1, 1]


def test_openvino_reads_rt_info_and_onnx_runtime_reads_metadata_props(tmp_path):
    require_available("openvino")
    require_available("onnxruntime")
    assert load_runtime(FIXTURES / "nchw_two_class.xml").metadata()["labels"] == ["dark", "bright"]
    import onnx
    model = onnx.load(FIXTURES / "nchw_two_class.onnx")
    model.metadata_props.add(key="edge_deeplab", value=json.dumps({"labels": ["x", "y"], "input_range": "0,255"}))
    onnx.save(model, tmp_path / "meta.onnx")
    for runtime in ("onnxruntime", "openvino"):
        segmenter = Segmenter(load_runtime(tmp_path / "meta.onnx", runtime))
        assert segmenter.labels == ["x", "y"] and segmenter.input_range == "0,255"


def test_malformed_metadata_is_a_bad_model(tmp_path):
    target = tmp_path / "broken_meta.tflite"
    tflite_metadata.write_metadata(FIXTURES / "two_class_float.tflite", target, b"{not json")
    with pytest.raises(BadModelError, match="not valid JSON"):
        load_runtime(target).metadata()


# ---------------------------------------------------------------- bad model files
BAD_FILES = {
    "empty": b"",
    "text": b"this is not a model at all\n" * 10,
    "truncated": "truncate",
}
MODEL_OF = {"litert": "two_class_float.tflite", "onnxruntime": "nchw_two_class.onnx",
            "openvino": "nchw_two_class.xml"}


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize("runtime", list(MODEL_OF))
def test_bad_model_files_raise_bad_model_error(tmp_path, runtime, kind):
    require_available(runtime)
    good = FIXTURES / MODEL_OF[runtime]
    path = tmp_path / good.name
    content = BAD_FILES[kind]
    path.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2] if content == "truncate" else content)
    if runtime == "openvino":
        shutil.copy(good.with_suffix(".bin"), path.with_suffix(".bin"))
    with pytest.raises(BadModelError) as info:
        load_runtime(path, runtime)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_model_and_missing_openvino_weights(tmp_path):
    with pytest.raises(BadModelError, match="not found"):
        load_runtime(tmp_path / "nope.tflite")
    require_available("openvino")
    shutil.copy(FIXTURES / "nchw_two_class.xml", tmp_path / "lonely.xml")
    with pytest.raises(BadModelError, match="lonely.bin"):
        load_runtime(tmp_path / "lonely.xml")


def test_default_model_resolves_to_the_packaged_artifact():
    from edge_deeplab.zoo import ZOO
    artifact = ZOO.get("portrait").meta["artifact"]
    path = resolve_model("default")
    assert path.name == artifact and path.parent.name == "assets" and path.is_file()


def test_default_model_not_packaged_says_so(monkeypatch):
    from edge_deeplab import zoo
    monkeypatch.setattr(zoo, "asset_path", lambda name: None)  # an install without the assets
    with pytest.raises(BadModelError, match="default portrait model .* is not packaged"):
        resolve_model("default")


# ---------------------------------------------------------------- profiler
@pytest.mark.parametrize("runtime,model", [(r, m) for r, m in MODEL_OF.items()])
def test_benchmark_statistics_and_op_profiles(runtime, model):
    require_available(runtime)
    result = benchmark(FIXTURES / model, runtime, threads=1, warmup=2, runs=20, profile_ops=True).to_dict()
    assert {"model", "runtime", "threads", "warmup", "runs", "load_ms", "latency_ms", "peak_rss_mb",
            "ops"} <= set(result)
    latency = result["latency_ms"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert result["runs"] == 20 and result["peak_rss_mb"] > 10 and result["load_ms"] > 0
    ops = result["ops"]
    if runtime == "litert":
        assert ops == {"available": False, "reason": RUNTIMES.load("litert").op_profiling_unavailable}
    else:
        assert ops["available"] and ops["total_ms"] > 0
        assert any("Conv" in kind["type"] for kind in ops["by_type"]), ops["by_type"]
        assert ops["top"][0]["ms"] == max(op["ms"] for op in ops["top"])


class _Recorder:
    """A runtime that only records which of its kind invoked when."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def invoke(self):
        self.log.append(self.name)


def test_interleaved_timing_alternates_bursts_each_after_untimed_invokes():
    from edge_deeplab.runtimes.profiler import time_interleaved
    log = []
    samples = time_interleaved([_Recorder("a", log), _Recorder("b", log)], runs=25, burst=10, settle=2)
    assert [len(s) for s in samples] == [25, 25]
    bursts = [(name, len(list(group))) for name, group in itertools.groupby(log)]
    assert bursts == [("a", 12), ("b", 12)] * 2 + [("a", 7), ("b", 7)]  # 2 untimed + 10, 10, then the 5 left


class _FailsAfter(_Recorder):
    def __init__(self, name, log, invokes):
        super().__init__(name, log)
        self.left = invokes

    def invoke(self):
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("Invoke failed: tensor data was freed")  # as LiteRT words its errors
        super().invoke()


def test_interleaved_timing_gives_a_failing_runtime_s_error_in_its_place_and_times_the_others():
    from edge_deeplab.runtimes.profiler import time_interleaved
    log = []
    good, failing = time_interleaved([_Recorder("a", log), _FailsAfter("b", log, 15)], runs=30, burst=10, settle=2)
    assert len(good) == 30 and log.count("a") == 3 * 12
    assert isinstance(failing, RuntimeError) and "tensor data was freed" in str(failing)
    assert log.count("b") == 15  # its second burst failed; it was not invoked again


def test_interleaved_latency_times_each_target_and_reports_one_that_fails_in_its_place():
    from edge_deeplab.errors import BadModelError
    from edge_deeplab.runtimes.profiler import LatencyStats, latency_interleaved
    model = FIXTURES / MODEL_OF["litert"]
    first, missing, second = latency_interleaved([(model, "litert", 1, None), ("absent.tflite", "litert", 1, None),
                                                  (model, "auto", 1, None)], warmup=1, runs=12)
    assert isinstance(first, LatencyStats) and isinstance(second, LatencyStats)
    assert 0 < first.min <= first.p50 <= first.max and 0 < second.min <= second.p50 <= second.max
    assert isinstance(missing, BadModelError) and "model file not found" in str(missing)


def test_benchmark_figures_of_a_model_do_not_depend_on_the_models_before_it(shared):
    """A model's peak RSS is the same whether it is benchmarked alone or after bigger ones (in one
    process it grew by what they left: 49 -> 69 MB for the fixture after `default`)."""
    small = FIXTURES / "two_class_float.tflite"
    mediapipe = shared("models/mediapipe_selfie_segmentation.tflite")
    for earlier in (["default"], ["default", mediapipe]):
        for model in (small, mediapipe):
            alone = benchmark_isolated(model, threads=1, warmup=1, runs=3)
            after = [benchmark_isolated(m, threads=1, warmup=1, runs=3) for m in [*earlier, model]][-1]
            assert abs(after.peak_rss_mb - alone.peak_rss_mb) < 3, (earlier, model, alone, after)
            assert after.load_ms > 0 and alone.load_ms > 0


def test_benchmark_isolated_raises_the_childs_error_as_itself(tmp_path):
    with pytest.raises(BadModelError, match="model file not found"):
        benchmark_isolated(tmp_path / "missing.tflite", runs=1)
    with pytest.raises(BadModelError, match=".onnx files run on onnxruntime"):
        benchmark_isolated(FIXTURES / "nchw_two_class.onnx", "litert", runs=1)


def test_benchmark_load_time_leaves_out_the_engines_import(monkeypatch):
    """The engine library's import is a once-per-process cost: only the first model of a process would
    pay it, so it stays out of every model's load_ms."""
    import time
    cls = RUNTIMES.load("litert")
    real = cls.import_engine.__func__
    monkeypatch.setattr(cls, "import_engine", classmethod(lambda c: (time.sleep(1.0), real(c))))
    assert benchmark(FIXTURES / "two_class_float.tflite", threads=1, warmup=0, runs=1).load_ms < 1000


# ---------------------------------------------------------------- the foreign reference model
def test_mediapipe_selfie_matches_a_by_hand_run(shared):
    """Out of the box (float [0,1] in, one probability channel out) the SDK gets the same person IoU
    as the textbook by-hand pipeline, on real portraits."""
    from ai_edge_litert.interpreter import Interpreter
    from edge_deeplab.datasets import list_pairs, load_mask
    from edge_deeplab.imaging import load_image
    from edge_deeplab.metrics import SegmentationMetrics

    mediapipe = shared("models/mediapipe_selfie_segmentation.tflite")
    portrait_val = shared("data/portrait/val")
    segmenter = Segmenter(load_runtime(mediapipe, threads=2))
    assert segmenter.output.kind == "binary" and segmenter.input.dtype == np.float32
    interpreter = Interpreter(str(mediapipe), num_threads=2)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    ours, by_hand = SegmentationMetrics(2), SegmentationMetrics(2)
    for pair in list_pairs(portrait_val)[:10]:
        image, mask = load_image(pair.image), load_mask(pair.mask)
        ours.update(segmenter(image).labels, mask)
        pil = Image.fromarray(image)
        interpreter.set_tensor(inp["index"], np.asarray(pil.resize((256, 256), Image.BILINEAR), np.float32)[None] / 255)
        interpreter.invoke()
        probability = Image.fromarray(interpreter.get_tensor(out["index"])[0, :, :, 0]).resize(pil.size, Image.BILINEAR)
        by_hand.update((np.asarray(probability) > 0.5).astype(np.uint8), mask)
    assert ours.iou()[1] > 0.93
    assert abs(ours.iou()[1] - by_hand.iou()[1]) < 0.003


def test_litert_without_any_interpreter_package_says_what_to_install(monkeypatch):
    from edge_deeplab.runtimes import litert
    monkeypatch.setattr(litert, "_installed", lambda module: False)
    assert "pip install ai-edge-litert" in litert.LiteRTRuntime.unavailable_reason()
    with pytest.raises(RuntimeUnavailableError, match="pip install ai-edge-litert"):
        load_runtime(FIXTURES / "two_class_float.tflite")


def test_onnxruntime_op_profile_averages_the_profiled_runs_not_the_warm_up(tmp_path):
    require_available("onnxruntime")
    engine = load_runtime(FIXTURES / "nchw_two_class.onnx", "onnxruntime", threads=1, profile_ops=True)
    shape = tuple(1 if side < 0 else side for side in engine.inputs[0].shape)  # a dynamic batch: 1
    engine.set_input(np.zeros(shape, engine.inputs[0].dtype))
    engine.invoke()
    real = engine._session

    class Profiled:  # the real session, with a profile of one cold warm-up run and two timed ones
        def run(self, *args):
            return real.run(*args)

        def end_profiling(self):
            events = []
            for start, kernel_us in ((0, 9000), (10_000, 1000), (20_000, 1000)):
                events.append({"cat": "Session", "name": "model_run", "ts": start, "dur": kernel_us + 50})
                events.append({"cat": "Node", "name": "conv_kernel_time", "ts": start + 10, "dur": kernel_us,
                               "args": {"op_name": "Conv"}})
            path = tmp_path / "profile.json"
            path.write_text(json.dumps(events))
            return str(path)

    engine._session = Profiled()
    [op] = engine.profile_ops(runs=2)
    assert op.type == "Conv" and op.ms == pytest.approx(1.0)  # the cold 9 ms run left out
