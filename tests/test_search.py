"""NAS-lite: search space, kernel table + latency predictor, measurement, proxy, evolution, resume, CLI.

Small spaces at 32-96 px and a few timed runs keep this file fast; the end-to-end search runs are slow.
"""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_deeplab.cli import main
from edge_deeplab.errors import ConfigError, DatasetError, UnknownChoiceError
from edge_deeplab.models import BACKBONES, HEADS, ModelConfig
from edge_deeplab.search.kernels import GROUPS, Kernel
from edge_deeplab.search.latency import KernelCosts, Predictor
from edge_deeplab.search.measure import EXPORT_FORMATS, Timing, export_format
from edge_deeplab.search.search import STATE_FILE, Search, SearchSettings, SearchState, Trial, pareto_front
from edge_deeplab.search.space import DIMENSIONS, SearchSpace, candidate_key, describe
from edge_deeplab.search.table import LatencyTable

TINY_SPACE = SearchSpace(backbones=("mobilenet_v3_small", "mobilenet_v2"), widths=(0.35, 0.5),
                         output_strides=(32,), heads=("lraspp", "aspp"), aspp_rates=((), (2, 4)),
                         decoder=(False,), separable=(False,), head_channels=(16, 32), decoder_channels=(16,),
                         input_sizes=((64, 64), (96, 96)))
FAST_TIMING = Timing(threads=1, warmup=1, runs=5, kernel_runs=5, rounds=2, gap_s=0.0)


# -- data ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_data(shared, tmp_path_factory):
    """24 train + 8 val portrait pairs from the shared data, shrunk to 48x64."""
    source = shared("data/portrait")
    root = tmp_path_factory.mktemp("portrait")
    for split, count in (("train", 24), ("val", 8)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir()
        for image in sorted((source / split / "images").iterdir())[:count]:
            Image.open(image).convert("RGB").resize((48, 64)).save(root / split / "images" / f"{image.stem}.jpg")
            mask = Image.open(source / split / "masks" / f"{image.stem}.png").resize((48, 64), Image.NEAREST)
            mask.save(root / split / "masks" / f"{image.stem}.png")
    return root


# -- space -----------------------------------------------------------------------------------------
def test_samples_are_valid_models_of_the_space():
    space = SearchSpace()
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(200)]
    assert all(isinstance(c, ModelConfig) and space.contains(c) for c in configs)
    assert {c.backbone for c in configs} == set(space.backbones)
    assert {c.head for c in configs} == set(space.heads)
    assert {(c.head, c.decoder) for c in configs} == {(h, d) for h in space.heads for d in space.decoder}
    for config in configs:  # one canonical form: fields the head makes meaningless are neutral
        if config.head == "lraspp":
            assert (config.aspp_rates, config.separable) == ((), False)
        if not config.decoder:
            assert config.decoder_channels == 48
        low, high = BACKBONES.get(config.backbone).meta["widths"]
        assert low <= config.width <= high


def test_mutation_changes_one_choice_and_stays_in_the_space():
    space = SearchSpace()
    rng = np.random.default_rng(1)
    for _ in range(100):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        assert child != parent and space.contains(child)
        changed = [f for f in DIMENSIONS if getattr(child, f) != getattr(parent, f)]
        # One field, plus the fields a head/decoder switch makes relevant (re-drawn) or neutral.
        dependent = {"aspp_rates", "separable", "decoder", "decoder_channels"}
        assert len(set(changed) - dependent) <= 1, changed


def test_space_round_trips_and_rejects_bad_choices(tmp_path):
    TINY_SPACE.save(tmp_path / "space.yaml")
    assert SearchSpace.load(tmp_path / "space.yaml") == TINY_SPACE
    with pytest.raises(UnknownChoiceError, match="mobilenet_v2"):
        SearchSpace(backbones=("mobilenet_v9",))
    with pytest.raises(ConfigError, match="width"):
        SearchSpace(backbones=("mobilenet_v3_small",), widths=(0.35,))
    with pytest.raises(ConfigError, match="multiples"):
        SearchSpace(output_strides=(32,), input_sizes=((80, 80),))
    with pytest.raises(ConfigError, match="at least one"):
        SearchSpace(heads=())


def test_candidate_key_ignores_labels_only():
    config = ModelConfig(num_classes=2)
    assert candidate_key(config) == candidate_key(config.replace(labels=("bg", "person")))
    assert candidate_key(config) != candidate_key(config.replace(width=0.5))
    assert candidate_key(config) != candidate_key(config.replace(reduced_tail=True))
    assert candidate_key(config) != candidate_key(config.replace(expansion_scale=0.5))
    narrowed = config.replace(expansion_scale=0.5)
    assert candidate_key(narrowed) != candidate_key(narrowed.replace(expansion_blocks=(1, 2)))
    assert describe(narrowed.replace(expansion_blocks=(1, 2))).count(" e0.5b1-2 ") == 1
    fused = config.replace(head="lraspp", fusion_channels=64)
    assert candidate_key(fused) != candidate_key(fused.replace(fusion_channels=0))
    assert " fuse64 " in describe(fused)
    fine = fused.replace(decoder=True, decoder_stride=2)
    assert candidate_key(fine) != candidate_key(fine.replace(decoder_stride=4))
    assert " s2 " in describe(fine)
    # Latency tables are keyed by it: a field added later must not change the keys of older configs.
    assert candidate_key(config) == "4dd95f26480c"


def test_expansion_scale_is_searched_only_when_given_choices():
    rng = np.random.default_rng(0)
    assert {SearchSpace().sample(rng).expansion_scale for _ in range(20)} == {1.0}
    space = SearchSpace(expansion_scales=(0.5, 1.0))
    drawn = [space.sample(rng) for _ in range(40)]
    assert {c.expansion_scale for c in drawn} == {0.5, 1.0}
    narrow = next(c for c in drawn if c.expansion_scale == 0.5)
    assert " e0.5 " in describe(narrow)
    assert space.contains(narrow) and not SearchSpace().contains(narrow)


# -- kernels ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", BACKBONES.names())
@pytest.mark.parametrize("head", HEADS.names())
def test_every_architecture_maps_to_kernels_with_one_kernel_models(backbone, head):
    from edge_deeplab.models import build_model
    from edge_deeplab.search.kernels import kernels_of
    from edge_deeplab.search.micro import kernel_model

    low, _ = BACKBONES.get(backbone).meta["widths"]
    config = ModelConfig(backbone=backbone, width=low, head=head, head_channels=16, input_size=(64, 64),
                         num_classes=3, decoder=head == "aspp", decoder_channels=8, separable=True)
    model = build_model(config)
    kernels = kernels_of(model, classmap=True)
    layer_types = [type(layer).__name__ for layer in model.layers]
    assert sum(k.op == "conv" for k in kernels) == layer_types.count("Conv2D")
    assert sum(k.op == "depthwise" for k in kernels) == layer_types.count("DepthwiseConv2D")
    assert kernels[-1].op == "argmax" and kernels[-1].inputs == ((64, 64, 3),)
    assert {k.group for k in kernels} <= set(GROUPS)
    for kernel in {k.family: k for k in kernels}.values():  # each op's one-kernel model has its shapes
        micro = kernel_model(kernel)
        assert micro.input_shape[1:] == kernel.inputs[0]
        assert micro.output_shape[1:3] == kernel.output[:2], kernel.key


def test_kernel_arithmetic():
    conv = Kernel("conv", ((32, 32, 8),), (16, 16, 24), size=3, stride=2)
    assert conv.macs == 16 * 16 * 24 * 3 * 3 * 8
    assert conv.elements == 32 * 32 * 8 + 16 * 16 * 24
    assert conv.group == "conv" and Kernel("conv", ((8, 8, 8),), (8, 8, 8)).group == "conv1x1"
    assert Kernel.from_dict(conv.to_dict()) == conv
    assert Kernel("mul", ((8, 8, 16), (1, 1, 16)), (8, 8, 16)).group == "elementwise"


# -- kernel costs and predictor ---------------------------------------------------------------------
def _conv(channels, side):
    return Kernel("conv", ((side, side, channels),), (side, side, channels))


def test_kernel_costs_look_up_measured_and_interpolate_the_rest():
    kernels = [_conv(c, s) for c in (8, 16, 32, 64) for s in (8, 16, 32)]
    truth = {k.key: 1e-6 * k.macs + 2e-6 * k.elements + 0.01 for k in kernels}
    held = kernels.pop(4)
    costs = KernelCosts({k.key: truth[k.key] for k in kernels}, {k.key: k for k in kernels})
    assert costs(kernels[0]) == pytest.approx(truth[kernels[0].key])
    assert costs(held) == pytest.approx(truth[held.key], rel=0.01)  # least squares over the family
    depthwise = Kernel("depthwise", ((16, 16, 8),), (16, 16, 8), size=3)
    lonely = KernelCosts({depthwise.key: 1.0}, {depthwise.key: depthwise})  # one row: scaled by work
    bigger = Kernel("depthwise", ((32, 32, 8),), (32, 32, 8), size=3)
    assert lonely(bigger) == pytest.approx(4.0)
    assert KernelCosts({}, {})(bigger) == 0.0
    overhead = KernelCosts({depthwise.key: 1.0}, {depthwise.key: depthwise}, overhead_ms=0.25)
    assert overhead(depthwise) == pytest.approx(0.75)


def test_predictor_learns_group_weights_and_starts_from_the_sum():
    rng = np.random.default_rng(0)
    features = rng.uniform(0.1, 2.0, (30, len(GROUPS)))
    weights = np.array([1.3, 0.8, 1.1, 2.0, 0.5])
    latencies = features @ weights + 0.2
    fitted = Predictor(ridge=1e-6).fit(features, latencies)
    assert fitted.weights == pytest.approx(weights, rel=1e-3)
    assert fitted.intercept == pytest.approx(0.2, rel=1e-2)
    prior = Predictor().fit(np.zeros((0, len(GROUPS))), np.zeros(0))
    assert prior.predict(features[0]) == pytest.approx(features[0].sum())
    # A group that only hurts gets weight 0, never a negative one.
    skewed = Predictor(ridge=1e-6).fit(features, features[:, 0] * 1.0 + 0.1)
    assert (skewed.weights >= 0).all()


# -- latency table ---------------------------------------------------------------------------------
def test_table_round_trip_and_header_checks(tmp_path):
    table = LatencyTable(tmp_path / "t.json", "litert", "int8", 2)
    kernel = _conv(8, 8)
    config = ModelConfig(num_classes=2)
    table.kernels[kernel.key] = 0.5
    table.add_structure(candidate_key(config), [kernel, kernel])
    table.add_candidate(candidate_key(config), config, 3.0)
    table.save()
    again = LatencyTable.open(tmp_path / "t.json", "litert", "int8", 2)
    assert again.kernels == {kernel.key: 0.5}
    assert again.structure(candidate_key(config)) == [kernel, kernel]
    assert again.candidates[candidate_key(config)]["latency_ms"] == 3.0
    with pytest.raises(ConfigError, match="precision"):
        LatencyTable.open(tmp_path / "t.json", "litert", "float", 2)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a latency table"):
        LatencyTable.open(tmp_path / "bad.json", "litert", "int8", 2)
    with pytest.raises(ConfigError, match="not found"):
        LatencyTable.open(tmp_path / "none.json", "litert", "int8", 2, must_exist=True)


def test_export_format_per_runtime_and_precision():
    assert export_format("litert", "int8") == "tflite-int8"
    assert export_format("openvino", "float") == "openvino"
    with pytest.raises(ConfigError, match="--precision float"):
        export_format("onnxruntime", "int8")
    with pytest.raises(UnknownChoiceError):
        export_format("tensorrt", "int8")


# -- measurement -----------------------------------------------------------------------------------
def _measurable():
    from edge_deeplab.runtimes import RUNTIMES
    params = []
    for runtime, precision in EXPORT_FORMATS:
        reason = RUNTIMES.load(runtime).unavailable_reason()
        marks = [pytest.mark.skipif(reason is not None, reason=reason or "")]
        if (runtime, precision) == ("openvino", "int8"):
            marks.append(pytest.mark.slow)  # NNCF calibration: seconds per kernel model
        params.append(pytest.param(runtime, precision, marks=marks, id=f"{runtime}-{precision}"))
    return params


@pytest.mark.parametrize("runtime,precision", _measurable())
def test_meter_times_candidates_and_kernels(runtime, precision):
    from edge_deeplab.search.measure import Meter
    meter = Meter(runtime, precision, FAST_TIMING)
    config = ModelConfig(backbone="mobilenet_v3_small", width=0.5, output_stride=32, head="lraspp",
                         head_channels=16, input_size=(64, 64), num_classes=2)
    assert 0 < meter.candidate(config) < math.inf  # a real timing; no wall-clock bound (machines vary)
    # The kernels with constant operands (the others are plain single-input layers).
    for kernel in (Kernel("mul", ((16, 16, 16), (1, 1, 16)), (16, 16, 16)),
                   Kernel("concat", ((8, 8, 8), (8, 8, 4)), (8, 8, 12))):
        assert 0 < meter.kernel(kernel) < math.inf


def test_meter_reports_the_quietest_round(monkeypatch, tmp_path):
    """Latency = lowest round median: a burst of load in one round does not move the figure."""
    from edge_deeplab.runtimes import profiler
    from edge_deeplab.search import measure
    rounds = iter([[5.0, 5.1, 9.0], [2.0, 2.1, 2.2], [2.1, 7.0, 7.0]])  # medians 5.1, 2.1, 7.0
    calls = []

    def fake_invokes(runtime, warmup, runs):
        calls.append((warmup, runs))
        return next(rounds)

    monkeypatch.setattr(profiler, "time_invokes", fake_invokes)
    meter = measure.Meter("litert", "float", Timing(warmup=4, runs=3, rounds=3))
    model = Path(__file__).parent / "fixtures" / "models" / "two_class_float.tflite"
    assert meter._time(model, 3) == 2.1
    assert calls == [(4, 3), (0, 3), (0, 3)]  # warm-up once, before the first round


class FakeClock:
    """A monotonic clock that only moves when something takes time (``advance``) or sleeps."""

    def __init__(self):
        self.now, self.sleeps = 100.0, []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("meanwhile_s, expected_sleep", [(1.5, 3.5), (7.0, 0.0)])
def test_meter_times_a_candidate_twice_apart_and_keeps_the_lower(monkeypatch, meanwhile_s, expected_sleep):
    """Load comes in bursts of seconds and only adds time: two timings gap_s apart, the lower kept; the
    work done in the gap (``meanwhile``) counts towards it."""
    from edge_deeplab.search import measure
    clock = FakeClock()
    meter = measure.Meter("litert", "float", FAST_TIMING.replace(gap_s=5.0), clock=clock, sleep=clock.sleep)
    config = ModelConfig(backbone="mobilenet_v2", width=0.35, output_stride=32, head="lraspp", head_channels=16,
                         input_size=(64, 64), num_classes=2)
    for figures in ([5.0, 2.0], [2.0, 5.0]):
        calls, events = iter(figures), []
        clock.sleeps.clear()

        def timed(path, runs):
            events.append((path, clock()))
            clock.advance(0.25)  # the timing itself takes time; the gap counts from its end
            return next(calls)

        monkeypatch.setattr(meter, "_time", timed)
        assert meter.candidate(config, meanwhile=lambda: events.append("meanwhile") or clock.advance(meanwhile_s)) \
            == 2.0
        (first, t0), middle, (second, t1) = events
        assert first == second and middle == "meanwhile"  # one artifact
        assert clock.sleeps == [expected_sleep]
        assert t1 - (t0 + 0.25) == max(5.0, meanwhile_s)  # the second timing starts gap_s after the first ends


def test_meter_times_a_surprisingly_slow_candidate_once_more(monkeypatch):
    from edge_deeplab.search import measure
    meter = measure.Meter("litert", "float", FAST_TIMING)
    config = ModelConfig(backbone="mobilenet_v2", width=0.35, output_stride=32, head="lraspp", head_channels=16,
                         input_size=(64, 64), num_classes=2)
    for figures, again_above, expected in (([5.0, 6.0, 2.0, 3.0], 3.0, 2.0), ([2.0, 2.5], 3.0, 2.0),
                                           ([5.0, 6.0], None, 5.0), ([5.0, 6.0, 7.0, 8.0], 3.0, 5.0)):
        calls = iter(figures)
        monkeypatch.setattr(meter, "_time", lambda path, runs: next(calls))
        assert meter.candidate(config, again_above=again_above) == expected
        assert next(calls, None) is None  # every figure used: 2 timings, or 4 when the first pair is slow


def test_latency_model_rechecks_only_once_calibrated(tmp_path):
    from edge_deeplab.search.latency import LatencyModel, LatencySettings

    class RecordingMeter:
        classmap = False

        def __init__(self):
            self.thresholds = []

        def candidate(self, config, model=None, meanwhile=None, again_above=None):
            self.thresholds.append(again_above)
            return 1.0 + config.width

        def kernel(self, kernel):
            return 0.01

    meter = RecordingMeter()
    settings = LatencySettings(kernel_seconds=0.0, recheck_after=2, recheck_above=0.25)
    model = LatencyModel(LatencyTable(tmp_path / "t.json", "litert", "int8", 1), meter, settings)
    configs = list({candidate_key(c): c for c in (TINY_SPACE.sample(np.random.default_rng(i))
                                                  for i in range(8))}.values())[:3]
    for config in configs[:2]:
        model.measure(config)
    assert meter.thresholds == [None, None]  # nothing to expect yet
    expected = 1.25 * model.predict(configs[2])
    model.measure(configs[2])
    assert expected > 0 and meter.thresholds[2] == pytest.approx(expected)


def test_latency_model_measures_kernels_between_the_two_timings(tmp_path):
    from edge_deeplab.search.latency import LatencyModel, LatencySettings

    class RecordingMeter:
        classmap = False

        def __init__(self):
            self.kernels_during = None

        def candidate(self, config, model=None, meanwhile=None, again_above=None):
            before = len(table.kernels)
            meanwhile()
            self.kernels_during = len(table.kernels) - before
            return 1.0

        def kernel(self, kernel):
            return 0.01

    table = LatencyTable(tmp_path / "t.json", "litert", "int8", 1)
    meter = RecordingMeter()
    model = LatencyModel(table, meter, LatencySettings(kernel_seconds=1000))
    config = TINY_SPACE.sample(np.random.default_rng(0))
    assert model.measure(config) == 1.0
    assert meter.kernels_during == len({k.key for k in model.kernels(config)})
    assert LatencyTable.open(tmp_path / "t.json", "litert", "int8", 1).candidates  # saved


def test_meter_retries_a_model_that_failed_to_load_once(monkeypatch):
    from edge_deeplab import runtimes
    from edge_deeplab.errors import BadModelError
    from edge_deeplab.search import measure
    real, failures = runtimes.load_runtime, []

    def flaky(path, *args, **kwargs):
        if not failures:
            failures.append(path)
            raise BadModelError(f"{path}: LiteRT cannot load this model (failed to create XNNPACK runtime)")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(runtimes, "load_runtime", flaky)
    model = Path(__file__).parent / "fixtures" / "models" / "two_class_float.tflite"
    assert measure.Meter("litert", "float", FAST_TIMING)._time(model, 3) > 0 and failures == [model]


class CountingMeter:
    """A real Meter that counts what it measures."""

    def __init__(self, meter):
        self.meter, self.candidates, self.kernels = meter, 0, 0
        self.classmap = meter.classmap

    def candidate(self, config, model=None, meanwhile=None, again_above=None):
        self.candidates += 1
        return self.meter.candidate(config, model, meanwhile, again_above)

    def kernel(self, kernel):
        self.kernels += 1
        return self.meter.kernel(kernel)


def test_latency_model_measures_once_and_predicts_from_the_table(tmp_path):
    from edge_deeplab.search.latency import LatencyModel, LatencySettings
    from edge_deeplab.search.measure import Meter

    meter = CountingMeter(Meter("litert", "int8", FAST_TIMING))
    settings = LatencySettings(kernel_seconds=1000)
    model = LatencyModel(LatencyTable(tmp_path / "t.json", "litert", "int8", 1), meter, settings)
    first = ModelConfig(backbone="mobilenet_v2", width=0.35, output_stride=32, head="lraspp", head_channels=16,
                        input_size=(64, 64), num_classes=2)
    second = first.replace(width=0.5, input_size=(96, 96))
    model.seed([first])
    assert meter.candidates == 1 and meter.kernels > 5  # the candidate, its kernels, the overhead model
    measured = model.measure(first)
    assert meter.candidates == 1  # cached
    # Every kernel of the first candidate is in the table: the prediction is close to its measurement.
    assert model.predict(first) == pytest.approx(measured, rel=0.5)
    assert model.predict(second) > 0
    # A new process with the same table file measures nothing again and predicts the same.
    again = CountingMeter(Meter("litert", "int8", FAST_TIMING))
    reloaded = LatencyModel(LatencyTable.open(tmp_path / "t.json", "litert", "int8", 1), again, settings)
    assert reloaded.measure(first) == measured and again.candidates == again.kernels == 0
    assert reloaded.predict(second) == pytest.approx(model.predict(second))


# -- search ----------------------------------------------------------------------------------------
class FormulaLatency:
    """Latency as a formula of the config (a stand-in engine), counting measurements."""

    class _Table:
        def save(self):
            pass

    def __init__(self):
        self.table, self.measured = self._Table(), []

    def predict(self, config):
        side = config.input_size[0]
        return config.width * (side / 64) ** 2 * (2.0 if config.backbone == "mobilenet_v2" else 1.0) \
            + config.head_channels / 64

    def measure(self, config):
        self.measured.append(candidate_key(config))
        return self.predict(config) * 1.05


def formula_score(config, folder):
    return config.width + config.input_size[0] / 1000 + config.head_channels / 1000, folder / "w.h5"


def test_evolution_stays_under_budget_and_finds_a_pareto_front(tmp_path):
    settings = SearchSettings(budget_ms=2.0, runtime="litert", trials=12, population=4)
    state = SearchState.start(tmp_path, settings, TINY_SPACE, resume=False)
    latency = FormulaLatency()
    Search(state, tmp_path, latency, formula_score, progress=False).run()
    assert len(state.trials) == 12 and all(t.done for t in state.trials)
    assert len({t.key for t in state.trials}) == 12  # never the same candidate twice
    assert all(t.latency_ms_predicted <= 2.0 for t in state.trials)
    front = pareto_front(state.trials)

    def beats(a, b):
        return (a.latency_ms <= b.latency_ms and a.score >= b.score
                and (a.latency_ms < b.latency_ms or a.score > b.score))

    assert front and all(not beats(other, member) for member in front for other in state.trials)
    assert all(any(beats(member, trial) for member in front) for trial in state.trials if trial not in front)
    assert [t.latency_ms for t in front] == sorted(t.latency_ms for t in front)
    saved = json.loads((tmp_path / STATE_FILE).read_text())
    assert len(saved["trials"]) == 12


def test_unreachable_budget_is_a_clear_error(tmp_path):
    settings = SearchSettings(budget_ms=0.01, runtime="litert", trials=2, proposals=10)
    state = SearchState.start(tmp_path, settings, TINY_SPACE, resume=False)
    with pytest.raises(ConfigError, match="raise --budget-ms"):
        Search(state, tmp_path, FormulaLatency(), formula_score, progress=False).run()


def test_resume_after_a_kill_measures_nothing_twice(tmp_path):
    settings = SearchSettings(budget_ms=3.0, runtime="litert", trials=5, population=2)
    calls = []

    def killed_at_third(config, folder):
        calls.append(candidate_key(config))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the kill lands in the proxy training of trial 3
        return formula_score(config, folder)

    first = FormulaLatency()
    state = SearchState.start(tmp_path, settings, TINY_SPACE, resume=False)
    with pytest.raises(KeyboardInterrupt):
        Search(state, tmp_path, first, killed_at_third, progress=False).run()
    saved = SearchState.load(tmp_path)
    assert [t.done for t in saved.trials] == [True, True, False]
    assert saved.trials[2].latency_ms is not None  # measured before the kill, kept

    second = FormulaLatency()
    with pytest.raises(ConfigError, match="--resume"):
        SearchState.start(tmp_path, settings, TINY_SPACE, resume=False)
    resumed = SearchState.start(tmp_path, settings, TINY_SPACE, resume=True)
    Search(resumed, tmp_path, second, formula_score, progress=False).run()
    assert [t.key for t in resumed.trials[:3]] == [t.key for t in saved.trials]
    assert second.measured == [t.key for t in resumed.trials[3:]]  # only the two new trials
    # Same result as a search that was never interrupted.
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh = SearchState.start(fresh_dir, settings, TINY_SPACE, resume=False)
    Search(fresh, fresh_dir, FormulaLatency(), formula_score, progress=False).run()
    assert [t.key for t in fresh.trials] == [t.key for t in resumed.trials]
    with pytest.raises(ConfigError, match="budget_ms"):
        SearchState.start(tmp_path, settings.replace(budget_ms=9.0), TINY_SPACE, resume=True)


def test_a_space_smaller_than_the_trials_stops_when_it_is_exhausted(tmp_path):
    one = SearchSpace(backbones=("mobilenet_v2",), widths=(0.35,), reduced_tail=(False,), output_strides=(32,),
                      heads=("lraspp",), aspp_rates=((),), decoder=(False,), separable=(False,),
                      head_channels=(16,), decoder_channels=(16,), input_sizes=((64, 64),))
    settings = SearchSettings(budget_ms=50.0, runtime="litert", trials=3, population=2)
    state = SearchState.start(tmp_path, settings, one, resume=False)
    lines = []
    Search(state, tmp_path, FormulaLatency(), formula_score, progress=False, log=lines.append).run()
    assert len(state.trials) == 1 and state.trials[0].done  # the one candidate, not a budget error
    assert len(lines) == 1 and "stopping after 1 trials" in lines[0] and "holds no more" in lines[0]


def test_report_follows_the_contract(tmp_path):
    from edge_deeplab.search.report import search_report, write_report
    settings = SearchSettings(budget_ms=2.0, runtime="litert", trials=4, population=2)
    state = SearchState.start(tmp_path, settings, TINY_SPACE, resume=False)
    Search(state, tmp_path, FormulaLatency(), formula_score, progress=False).run()
    state.trials.append(Trial(TINY_SPACE.sample(np.random.default_rng(5)), 1.9, 2.5, 0.99, None))  # over budget
    report = search_report(state, {"format": "tflite-int8", "status": "ok", "path": "x.tflite"})
    write_report(tmp_path, report)
    data = json.loads((tmp_path / "search.json").read_text())
    assert {"budget_ms", "runtime", "candidates", "pareto", "best"} <= set(data)
    assert set(data["candidates"][0]) == {"config", "latency_ms", "latency_ms_predicted", "score"}
    assert {"config", "latency_ms", "score", "artifact"} <= set(data["best"])
    assert data["best"]["latency_ms"] <= 2.0 and data["best"]["score"] < 0.99  # over budget is never best
    assert data["best"]["artifact"] == "x.tflite"
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- proxy -----------------------------------------------------------------------------------------
def test_proxy_data_is_a_resized_subset_written_once(tiny_data, tmp_path):
    from edge_deeplab.search.proxy import ProxySettings, prepare_data
    settings = ProxySettings(train_images=16, val_images=4, batch_size=8)
    data = prepare_data(tiny_data, tmp_path / "proxy", settings, (40, 40))
    assert data.num_classes == 2
    assert len(list((data.train / "images").iterdir())) == 16
    assert len(list((data.val / "masks").iterdir())) == 4
    assert Image.open(next((data.train / "images").iterdir())).size == (40, 40)
    stamp = (tmp_path / "proxy" / "proxy.json").stat().st_mtime_ns
    prepare_data(tiny_data, tmp_path / "proxy", settings, (40, 40))
    assert (tmp_path / "proxy" / "proxy.json").stat().st_mtime_ns == stamp  # reused
    # One folder without splits: a seeded held-out part.
    single = prepare_data(tiny_data / "train", tmp_path / "single", settings, (40, 40))
    train = {p.stem for p in (single.train / "images").iterdir()}
    val = {p.stem for p in (single.val / "images").iterdir()}
    assert val and not train & val
    assert ProxySettings(scale=0.5).input_size((256, 192)) == (128, 96)
    assert ProxySettings(scale=0.5).input_size((96, 96)) == (64, 64)


def test_proxy_data_refuses_binary_masks_whose_255_was_meant_as_person(tiny_data, tmp_path):
    from edge_deeplab.search.proxy import ProxySettings, prepare_data
    binary = tmp_path / "binary"
    shutil.copytree(tiny_data / "train", binary)
    for path in (binary / "masks").iterdir():
        mask = np.asarray(Image.open(path)).copy()
        mask[mask == 1] = 255
        Image.fromarray(mask).save(path)
    with pytest.raises(DatasetError, match="hold only 0 and 255"):
        prepare_data(binary, tmp_path / "proxy", ProxySettings(train_images=16, val_images=4, batch_size=8), (40, 40))
    assert not (tmp_path / "proxy").exists() and list(tmp_path.iterdir()) == [binary]


@pytest.mark.slow
def test_proxy_trains_and_scores(tiny_data, tmp_path):
    from edge_deeplab.search.proxy import ProxySettings, prepare_data, proxy_score
    settings = ProxySettings(train_images=16, val_images=8, scale=1.0, epochs=1, batch_size=8)
    data = prepare_data(tiny_data, tmp_path / "proxy", settings, (80, 80))
    config = ModelConfig(backbone="mobilenet_v3_small", width=0.5, output_stride=32, head="lraspp",
                         head_channels=16, input_size=(64, 64), num_classes=2)
    result = proxy_score(config, data, settings, tmp_path / "trial")
    assert 0.0 <= result.score <= 1.0 and result.weights.is_file()
    again = proxy_score(config, data, settings, tmp_path / "trial")  # finished: read back, not retrained
    assert again.score == result.score


# -- CLI -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--runtime", "tensorrt"], "unknown search runtime"),
    (["--runtime", "onnxruntime"], "--precision float"),
    (["--runtime", "coreml"], "unknown search runtime"),
    (["--runtime", "edgetpu"], "--latency-table"),
    (["--runtime", "litert", "--resume"], "nothing to resume"),
])
def test_cli_bad_input_is_one_line(args, message, tiny_data, tmp_path):
    result = CliRunner().invoke(main, ["search", "--data", str(tiny_data), "--budget-ms", "5",
                                       "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out" / "search.json").exists()


def test_cli_bad_data_leaves_no_run_folder(tmp_path):
    for data in (tmp_path / "absent", tmp_path):  # not there; there, without images/ and masks/
        result = CliRunner().invoke(main, ["search", "--data", str(data), "--budget-ms", "5", "--runtime", "litert",
                                           "--out", str(tmp_path / "out")])
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert not (tmp_path / "out").exists()


TINY_PROXY = {"train_images": 16, "val_images": 8, "scale": 1.0, "min_side": 64, "epochs": 1, "batch_size": 8}


@pytest.mark.slow  # ~80 s: the latency model measures its seed candidates first
def test_cli_unreachable_budget_leaves_no_run_folder(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_DEEPLAB_CACHE", str(tmp_path / "cache"))
    TINY_SPACE.save(tmp_path / "space.yaml")
    (tmp_path / "proxy.json").write_text(json.dumps(TINY_PROXY))
    result = CliRunner().invoke(main, ["search", "--data", str(tiny_data), "--budget-ms", "0.001", "--runtime",
                                       "litert", "--threads", "1", "--trials", "1", "--out", str(tmp_path / "out"),
                                       "--space", str(tmp_path / "space.yaml"), "--proxy", str(tmp_path / "proxy.json")])
    assert result.exit_code == 1 and "no new candidate predicted under 0.001 ms" in result.output
    assert not (tmp_path / "out").exists()  # its proxy_data went with it


@pytest.mark.slow
def test_cli_search_end_to_end_with_resume(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_DEEPLAB_CACHE", str(tmp_path / "cache"))
    TINY_SPACE.save(tmp_path / "space.yaml")
    (tmp_path / "proxy.json").write_text(json.dumps(TINY_PROXY))
    args = ["search", "--data", str(tiny_data), "--budget-ms", "50", "--runtime", "litert", "--threads", "1",
            "--out", str(tmp_path / "out"), "--space", str(tmp_path / "space.yaml"),
            "--proxy", str(tmp_path / "proxy.json")]
    first = CliRunner().invoke(main, [*args, "--trials", "2"])
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(main, [*args, "--trials", "3", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    report = json.loads((tmp_path / "out" / "search.json").read_text())
    assert len(report["candidates"]) == 3
    assert all(0 < c["latency_ms"] and 0 <= c["score"] <= 1 for c in report["candidates"])
    best = report["best"]
    assert best["latency_ms"] <= 50 and Path(best["artifact"]).is_file()
    assert (tmp_path / "out" / "pareto.png").is_file() and (tmp_path / "out" / "best.yaml").is_file()
    table = next((tmp_path / "cache" / "latency").glob("litert-int8-threads1-*.json"))
    measured = json.loads(table.read_text())["candidates"]
    assert all(candidate_key(ModelConfig.from_dict(c["config"])) in measured for c in report["candidates"])

    # The same table, relabelled as measured on a Coral device, drives an edgetpu search with no device.
    data = json.loads(table.read_text())
    data["header"]["runtime"] = "edgetpu"
    (tmp_path / "coral.json").write_text(json.dumps(data))
    coral = CliRunner().invoke(main, ["search", "--data", str(tiny_data), "--budget-ms", "50", "--runtime",
                                      "edgetpu", "--threads", "1", "--trials", "1", "--out",
                                      str(tmp_path / "coral"), "--latency-table", str(tmp_path / "coral.json"),
                                      "--space", str(tmp_path / "space.yaml"), "--proxy", str(tmp_path / "proxy.json")])
    assert coral.exit_code == 0, coral.output
    report = json.loads((tmp_path / "coral" / "search.json").read_text())
    assert report["latency_source"].startswith("predicted") and report["runtime"] == "edgetpu"
    # The best candidate's Edge TPU export carries the same op report as `export --format edgetpu`.
    exported = report["best"]["export"]
    manifest = json.loads(Path(exported["path"] + ".json").read_text())["details"]["edgetpu_report"]
    assert exported["edgetpu_report"]["ops_on_edgetpu"] == manifest["ops_on_edgetpu"] > 0
    assert exported["edgetpu_report"]["first_cpu_op"] == manifest["first_cpu_op"]
    assert manifest["first_cpu_op"]["op"] == "ARG_MAX"  # the fused argmax: everything before it maps
    assert f"Edge TPU report: {manifest['summary']}" in coral.output
    shutil.rmtree(tmp_path / "out")


def test_zoo_configs_in_the_space_start_the_population(tmp_path):
    from edge_deeplab.search.run import zoo_in_space
    from edge_deeplab.zoo import ZOO
    space = SearchSpace(num_classes=3)
    warm = list(zoo_in_space(space).values())
    portrait = ZOO.get("portrait_teacher").target
    assert space.canonical(portrait.replace(input_size=(288, 384))) is None  # not in the space
    narrowed_blocks = ZOO.get("portrait_selfie").target  # expansion_blocks: the space narrows all blocks or none
    assert narrowed_blocks.expansion_blocks and not SearchSpace(
        num_classes=3, expansion_scales=(0.5, 1.0)).contains(narrowed_blocks)
    assert warm and all(space.contains(c) and c.num_classes == 3 for c in warm)
    canon = space.canonical(portrait)
    assert canon in warm and canon.aspp_rates == () and canon.num_classes == 3  # unused rates neutralized
    assert space.canonical(canon) == canon

    small = TINY_SPACE.sample(np.random.default_rng(1))
    big = small.replace(width=0.5, input_size=(96, 96), backbone="mobilenet_v2")
    latency = FormulaLatency()
    budget = (latency.predict(small) + latency.predict(big)) / 2
    assert latency.predict(small) < budget < latency.predict(big)
    settings = SearchSettings(budget_ms=budget, runtime="litert", trials=5, population=3)
    state = SearchState.start(tmp_path, settings, TINY_SPACE, resume=False)
    Search(state, tmp_path, latency, formula_score, progress=False, warm_start=[big, small]).run()
    keys = [t.key for t in state.trials]
    assert keys[0] == candidate_key(small)  # first trial; the over-budget one is never proposed
    assert candidate_key(big) not in keys and len(set(keys)) == 5


@pytest.mark.parametrize("selection", ["best", "aging"])
def test_parents_are_the_best_or_the_most_recent(selection, tmp_path, monkeypatch):
    parents_seen = []
    real_mutate = SearchSpace.mutate

    def recording_mutate(self, config, rng):
        parents_seen.append((len(state.trials), candidate_key(config)))
        return real_mutate(self, config, rng)

    monkeypatch.setattr(SearchSpace, "mutate", recording_mutate)
    settings = SearchSettings(budget_ms=100.0, runtime="litert", trials=10, population=3, tournament=3,
                              selection=selection)
    state = SearchState.start(tmp_path, settings, TINY_SPACE, resume=False)
    Search(state, tmp_path, FormulaLatency(), formula_score, progress=False).run()
    assert parents_seen
    score = {t.key: t.score for t in state.trials}
    for index, parent in parents_seen:
        earlier = state.trials[:index]  # the trial being proposed is appended after mutate returns
        pool = sorted(earlier, key=lambda t: -t.score)[:3] if selection == "best" else earlier[-3:]
        # tournament = population: the parent is (one of equal score to) the best of the pool
        assert parent in {t.key for t in pool} and score[parent] == max(t.score for t in pool)
    with pytest.raises(UnknownChoiceError):
        SearchSettings(budget_ms=1.0, runtime="litert", selection="random")


@pytest.mark.parametrize("flag, expected", [([], True), (["--no-warm-start"], False)])
def test_cli_passes_warm_start_to_the_search(flag, expected, tiny_data, tmp_path, monkeypatch):
    from edge_deeplab.search import run
    seen = {}

    def fake_run_search(data_dir, out, settings, *args, **kwargs):
        seen["settings"] = settings
        return {"candidates": [], "pareto": [], "best": None}

    monkeypatch.setattr(run, "run_search", fake_run_search)
    result = CliRunner().invoke(main, ["search", "--data", str(tiny_data), "--budget-ms", "5", "--runtime",
                                       "litert", "--out", str(tmp_path / "out"), *flag])
    assert result.exit_code == 0, result.output
    assert seen["settings"].warm_start is expected and seen["settings"].selection == "best"


def test_export_of_the_best_checks_calibration_masks_against_its_classes(tmp_path):
    """A mask with a class the candidate does not have is refused before any artifact is written."""
    pytest.importorskip("tf_keras")
    from edge_deeplab.models import build_model
    from edge_deeplab.search.report import export_best

    data = tmp_path / "data" / "val"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(data / "images" / "a.jpg")
    Image.fromarray(np.full((32, 32), 3, np.uint8)).save(data / "masks" / "a.png")
    config = ModelConfig(backbone="mobilenet_v2", width=0.35, output_stride=32, head="lraspp",
                         input_size=(32, 32), num_classes=2)
    build_model(config).save_weights(tmp_path / "proxy.weights.h5")
    trial = Trial(config, 1.0, 1.0, 0.5, str(tmp_path / "proxy.weights.h5"))
    with pytest.raises(DatasetError, match="value 3, but the model has 2 classes"):
        export_best(trial, "tflite", tmp_path / "data", tmp_path / "out")
    assert not (tmp_path / "out" / "best").exists()
