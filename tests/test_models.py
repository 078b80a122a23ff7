"""Every registered backbone x head: builds at each output stride, QAT-wraps, converts to full-int8."""
import itertools

import numpy as np
import pytest

from edge_deeplab.errors import ConfigError
from edge_deeplab.models import BACKBONES, HEADS, ModelConfig
from edge_deeplab.models.config import OUTPUT_STRIDES

pytest.importorskip("tf_keras", reason="model building needs the train extra")

SIZE = 64
# Every head variant: (head, decoder, separable).
HEAD_VARIANTS = [("aspp", False, False), ("aspp", True, True), ("lraspp", False, False), ("lraspp", True, False)]
assert {h for h, _, _ in HEAD_VARIANTS} == set(HEADS.names()), "a new head needs a variant here"


def small_config(backbone, head, decoder=False, separable=False, output_stride=16, size=SIZE):
    low, _ = BACKBONES.get(backbone).meta["widths"]
    return ModelConfig(backbone=backbone, width=max(low, 0.5), head=head, decoder=decoder,
                       separable=separable, output_stride=output_stride, head_channels=16,
                       decoder_channels=8, input_size=(size, size), num_classes=3)


def expected_head_stride(config):
    if config.decoder:
        return 4
    return 8 if config.head == "lraspp" else config.output_stride


@pytest.mark.parametrize("backbone,variant,output_stride", list(itertools.product(
    BACKBONES.names(), HEAD_VARIANTS, OUTPUT_STRIDES)))
def test_builds_with_expected_shapes(backbone, variant, output_stride):
    from edge_deeplab.models import build_model
    head, decoder, separable = variant
    config = small_config(backbone, head, decoder, separable, output_stride)
    model = build_model(config)
    assert model.input_shape == (None, SIZE, SIZE, 3)
    assert model.output_shape == (None, SIZE, SIZE, 3)
    # The atrous backbone really stops downsampling at the output stride.
    head_output = model.get_layer("logits").input_shape
    assert head_output[1] == SIZE // expected_head_stride(config)
    logits = model(np.random.default_rng(0).random((2, SIZE, SIZE, 3), np.float32), training=False)
    assert np.isfinite(logits.numpy()).all()


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_taps_cover_strides_2_to_32(backbone):
    from edge_deeplab.models.layers import keras
    inputs = keras.Input((SIZE, SIZE, 3))
    low, _ = BACKBONES.get(backbone).meta["widths"]
    taps = BACKBONES.load(backbone)(inputs, width=low, output_stride=32)
    for stride in (2, 4, 8, 16, 32):  # stride 2 feeds decoder_stride: 2
        assert taps[stride].shape[1] == SIZE // stride, stride


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_reduced_tail_halves_the_stride_32_stage_only(backbone):
    from edge_deeplab.models.layers import keras
    build = BACKBONES.load(backbone)
    full = build(keras.Input((SIZE, SIZE, 3)), width=1.0, output_stride=16)
    reduced = build(keras.Input((SIZE, SIZE, 3)), width=1.0, output_stride=16, reduced_tail=True)
    assert reduced[32].shape[-1] == full[32].shape[-1] // 2
    assert reduced[32].shape[1] == full[32].shape[1] == SIZE // 16  # still atrous past the output stride
    for stride in (4, 8, 16):
        assert reduced[stride].shape == full[stride].shape, stride
    config = small_config(backbone, "lraspp").replace(reduced_tail=True)
    from edge_deeplab.models import build_model
    assert build_model(config).count_params() < build_model(config.replace(reduced_tail=False)).count_params()


@pytest.mark.parametrize("scale", [0.5, 1 / 3], ids=["x0.5", "x0.33"])
@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_expansion_scale_narrows_expanded_channels_only(backbone, scale):
    from edge_deeplab.models import build_model
    config = small_config(backbone, "lraspp", output_stride=32)
    full, narrow = build_model(config), build_model(config.replace(expansion_scale=scale))
    assert narrow.count_params() < (0.25 + scale) * full.count_params()
    assert narrow.output_shape == full.output_shape
    full_layers = {layer.name: layer for layer in full.layers}
    assert [layer.name for layer in narrow.layers] == list(full_layers)  # no block gains or loses a layer
    expanding = 0
    for layer in narrow.layers:
        if layer.name.endswith("_se_expand"):  # squeeze-excite follows the narrowed expansion
            assert layer.filters <= full_layers[layer.name].filters, layer.name
        elif layer.name.endswith(("_expand", "_fused")):
            wide, in_channels = full_layers[layer.name].filters, layer.input.shape[-1]
            expected = wide if wide <= in_channels else pytest.approx(max(wide * scale, in_channels + 8), abs=8)
            assert layer.filters == expected, layer.name
            expanding += wide > in_channels
        elif layer.name.endswith("_project"):  # block outputs, and so every tap, keep their width
            assert layer.filters == full_layers[layer.name].filters, layer.name
    assert expanding >= 10
    with pytest.raises(ConfigError, match="expansion_scale"):
        config.replace(expansion_scale=0.2)


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_expansion_blocks_narrow_only_the_listed_blocks(backbone):
    from edge_deeplab.models import build_model
    config = small_config(backbone, "lraspp", output_stride=32)
    full = {layer.name: layer for layer in build_model(config).layers}
    last = BACKBONES.get(backbone).meta["blocks"] - 1
    assert f"block{last}_project" in full and f"block{last + 1}_project" not in full  # the count is right
    expanding = [b for b in range(last + 1) if any(
        name in full and full[name].filters > full[name].input.shape[-1]
        for name in (f"block{b}_expand", f"block{b}_fused"))]
    chosen = (expanding[1], expanding[-1])
    narrow = build_model(config.replace(expansion_scale=0.5, expansion_blocks=chosen))
    for layer in narrow.layers:
        if layer.name.endswith(("_expand", "_fused")):
            block = int(layer.name[len("block"):].split("_")[0])
            wide = full[layer.name].filters
            expected = pytest.approx(wide / 2, abs=8) if block in chosen else wide
            assert layer.filters == expected, layer.name
    assert narrow.output_shape == build_model(config).output_shape
    for bad in ((last + 1,), (-1,), (chosen[0], chosen[0])):
        with pytest.raises(ConfigError, match="expansion_blocks"):
            config.replace(expansion_scale=0.5, expansion_blocks=bad)
    with pytest.raises(ConfigError, match="no effect"):
        config.replace(expansion_blocks=chosen)
    assert ModelConfig.from_yaml(config.replace(expansion_scale=0.5, expansion_blocks=chosen).to_yaml()
                                 ).expansion_blocks == chosen


def test_ranking_expanded_channels_keeps_the_function_and_puts_the_strongest_first():
    from edge_deeplab.models import build_model
    from edge_deeplab.models.narrowing import BN_EPSILON, rank_expansions
    config = small_config("mobilenet_v2", "lraspp", output_stride=32)
    model = build_model(config)
    rng = np.random.default_rng(0)
    batch = rng.random((2, SIZE, SIZE, 3), np.float32)
    for layer in model.layers:  # distinct batch-norm scales, so the ranking has something to rank
        if layer.name.endswith("_bn"):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.1, 2.0, gamma.shape).astype(np.float32), beta, mean, variance])
    settle_batch_norm(model, batch)
    before = model(batch, training=False).numpy()
    stored = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    narrow = build_model(config.replace(reduced_tail=True))
    targets = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in narrow.layers if layer.weights}
    assert rank_expansions({k: list(v) for k, v in stored.items()}, {
        layer.name: [tuple(w.shape) for w in layer.weights]
        for layer in build_model(config.replace(expansion_scale=0.5)).layers if layer.weights
    }) == [f"block{i}" for i in range(1, 17)]  # every block that expands (block 0 does not)
    assert rank_expansions(stored, targets) == ["block14", "block15", "block16"]
    gamma, _, _, variance = stored["block14_depthwise_bn"]
    importance = np.abs(gamma) / np.sqrt(variance + BN_EPSILON) * np.linalg.norm(
        stored["block14_project"][0][0, 0], axis=1)
    assert (np.diff(importance) <= 0).all()
    for layer in model.layers:
        if layer.name in stored:
            layer.set_weights(stored[layer.name])
    np.testing.assert_allclose(model(batch, training=False).numpy(), before, rtol=1e-4, atol=1e-4)
    # Squeeze-excite also reads the expanded channels: those blocks keep their order.
    se_config = small_config("mobilenet_v3_small", "lraspp", output_stride=32)
    se_model, se_narrow = build_model(se_config), build_model(se_config.replace(reduced_tail=True))
    stored = {layer.name: layer.get_weights() for layer in se_model.layers if layer.weights}
    targets = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in se_narrow.layers if layer.weights}
    assert rank_expansions(stored, targets) == []


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "mobilenet_v3_small"])
def test_widening_starts_from_the_narrow_models_function(backbone, tmp_path):
    """init: weights_by_name from a narrower model (a larger expansion_scale) computes what it did."""
    from edge_deeplab.models import build_model
    from edge_deeplab.sources import load_matching_weights, resolve_source
    narrow_config = small_config(backbone, "lraspp", decoder=True).replace(expansion_scale=0.5)
    narrow = build_model(narrow_config)
    rng = np.random.default_rng(0)
    batch = rng.random((2, SIZE, SIZE, 3), np.float32)
    settle_batch_norm(narrow, batch)
    narrow.save_weights(str(tmp_path / "best.weights.h5"))
    narrow_config.save(tmp_path / "model.json")
    wide = build_model(narrow_config.replace(expansion_scale=1.0))
    assert wide.count_params() > narrow.count_params()
    fresh, narrowed, widened = load_matching_weights(wide, resolve_source(str(tmp_path / "best.weights.h5")))
    assert fresh == narrowed == [] and any(name.endswith("_expand") for name in widened)
    np.testing.assert_allclose(wide(batch, training=False).numpy(), narrow(batch, training=False).numpy(),
                               rtol=1e-4, atol=1e-4)
    # The new channels are live: their expansion weights are not zero, so training can use them.
    expand = next(layer for layer in wide.layers if layer.name.endswith("_expand") and layer.name in widened)
    stored_channels = narrow.get_layer(expand.name).get_weights()[0].shape[-1]
    assert np.abs(expand.get_weights()[0][..., stored_channels:]).max() > 0
    # A wider residual stream (another width) is not widened: concatenations would shift its channels.
    from edge_deeplab.errors import BadModelError
    stream = build_model(narrow_config.replace(width=narrow_config.width * 2))
    try:
        _, _, widened = load_matching_weights(stream, resolve_source(str(tmp_path / "best.weights.h5")))
    except BadModelError:
        widened = []
    assert widened == []


def int8_tflite(model, calibration=None):
    """Full-integer TFLite (uint8 in, int8 out): from a QAT model's learned ranges, or calibrated."""
    from edge_deeplab._optional import tensorflow
    from edge_deeplab.models.serving import serving_module
    tf = tensorflow()
    module = serving_module(model)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve], module)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if calibration is not None:
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.int8
    return converter.convert()


def run_int8(tflite: bytes, image):
    """Run a uint8-in/int8-out model on a float [0,1] image; check it is integer-only; dequantize."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "DEQUANTIZE" not in ops, f"float islands left in the int8 model: {sorted(ops)}"
    float_tensors = [t["name"] for t in interpreter.get_tensor_details() if t["dtype"] == np.float32]
    assert not float_tensors, float_tensors[:5]
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.uint8 and out["dtype"] == np.int8
    interpreter.set_tensor(inp["index"], np.round(image * 255).astype(np.uint8))
    interpreter.invoke()
    scale, zero = out["quantization"]
    return (interpreter.get_tensor(out["index"]).astype(np.float32) - zero) * scale


def settle_batch_norm(model, batch):
    """Give an untrained model real batch-norm statistics, so inference activations neither vanish
    nor explode through 50 layers (which would make int8-vs-float comparisons meaningless)."""
    from edge_deeplab.models.layers import layers
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(batch, training=True)
    for layer in norms:
        layer.momentum = 0.99


def copy_layers(source, target):
    """Each weighted layer of ``source`` into ``target``'s layer of that name."""
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())


def assert_qat_converts_to_int8(model, batch):
    """``model`` QAT-wraps, takes a few training steps and converts to a full-int8 TFLite that runs."""
    from edge_deeplab.models.quantize import qat_model
    qat = qat_model(model)
    for _ in range(3):
        qat(batch, training=True)
    out = run_int8(int8_tflite(qat), batch[:1])
    assert out.shape == (1, *batch.shape[1:3], model.output_shape[-1]) and out.std() > 0


def qat_combinations():
    combos = [(b, v) for b in BACKBONES.names() for v in HEAD_VARIANTS]
    # Each backbone and each head variant at least once in the default run; the rest is slow.
    fast = {("mobilenet_v2", HEAD_VARIANTS[1]), ("mobilenet_v3_small", HEAD_VARIANTS[2]),
            ("mobilenet_v3_large", HEAD_VARIANTS[0]), ("mobilenet_edgetpu", HEAD_VARIANTS[1])}
    return [pytest.param(b, v, marks=() if (b, v) in fast else pytest.mark.slow) for b, v in combos]


@pytest.mark.parametrize("backbone,variant", qat_combinations())
def test_qat_and_calibrated_int8(backbone, variant):
    from edge_deeplab.models import build_model
    from edge_deeplab.models.quantize import qat_model
    head, decoder, separable = variant
    config = small_config(backbone, head, decoder, separable, output_stride=16)
    rng = np.random.default_rng(1)
    batch = rng.random((4, SIZE, SIZE, 3), np.float32)
    model = build_model(config)
    settle_batch_norm(model, batch)

    # Numeric fidelity is checked on trained models (converters' parity tests): an untrained net
    # amplifies rounding noise layer by layer, so here the checks are structural.
    ptq = run_int8(int8_tflite(model, calibration=batch), batch[:1])
    assert ptq.shape == (1, SIZE, SIZE, 3) and ptq.std() > 0

    # QAT: wraps, and converts to an integer-only model from its own ranges (no calibration data).
    qat = qat_model(model)
    assert any("quantize_layer" in layer.name for layer in qat.layers)
    for _ in range(3):  # training-mode passes learn activation ranges, as fine-tuning would
        qat(batch, training=True)
    qat_int8 = run_int8(int8_tflite(qat), batch[:1])
    assert qat_int8.shape == (1, SIZE, SIZE, 3) and qat_int8.std() > 0


def test_lraspp_fusion_starts_as_a_zero_correction_and_quantizes():
    """fusion_channels adds a stride-8 correction whose last conv starts at zero: the plain head's
    weights, loaded by name, give the same logits; the fused model QAT-wraps and converts to int8."""
    from edge_deeplab.models import build_model
    plain_config = small_config("mobilenet_v2", "lraspp", decoder=True, output_stride=32)
    plain, fused = build_model(plain_config), build_model(plain_config.replace(fusion_channels=8))
    batch = np.random.default_rng(2).random((2, SIZE, SIZE, 3), np.float32)
    settle_batch_norm(plain, batch)
    copy_layers(plain, fused)
    assert {"fusion_conv_dw", "fusion_conv_pw", "fusion_classifier"} <= {layer.name for layer in fused.layers}
    np.testing.assert_allclose(fused(batch).numpy(), plain(batch).numpy(), atol=1e-5)
    assert "fusion8" in fused.name
    assert_qat_converts_to_int8(fused, batch)
    with pytest.raises(ConfigError, match="LR-ASPP option"):
        plain_config.replace(head="aspp", fusion_channels=8)


def test_stride_2_refinement_starts_from_the_stride_4_models_masks_and_quantizes():
    """decoder_stride: 2 adds a second zero-initialized correction over the stride-2 features: the
    stride-4 model's weights, loaded by name, give the same masks (logits differ only by upsampling in
    steps); it QAT-wraps and converts to int8; other heads refuse it."""
    from edge_deeplab.models import build_model
    config = small_config("mobilenet_v2", "lraspp", decoder=True, output_stride=32)
    coarse, fine = build_model(config), build_model(config.replace(decoder_stride=2))
    batch = np.random.default_rng(3).random((2, SIZE, SIZE, 3), np.float32)
    settle_batch_norm(coarse, batch)
    copy_layers(coarse, fine)
    assert fine.get_layer("refine_s2_low").input.shape[1] == SIZE // 2
    assert not fine.get_layer("refine_s2_classifier").get_weights()[0].any()
    assert "_s2" in fine.name and "_s2" not in coarse.name
    agree = (fine(batch).numpy().argmax(-1) == coarse(batch).numpy().argmax(-1)).mean()
    assert agree > 0.98, agree
    assert_qat_converts_to_int8(fine, batch)
    for bad in (config.replace(decoder=False), config.replace(head="aspp")):
        with pytest.raises(ConfigError, match="decoder_stride"):
            bad.replace(decoder_stride=2)
    from edge_deeplab.errors import UnknownChoiceError
    with pytest.raises(UnknownChoiceError, match="decoder_stride 8"):
        config.replace(decoder_stride=8)
