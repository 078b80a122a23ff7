"""QAT wrapping (models/quantize.py): what tfmot's defaults get wrong for DeepLab, and our fixes."""
import contextlib

import numpy as np
import pytest

pytest.importorskip("tensorflow_model_optimization", reason="QAT needs the train extra")

from edge_deeplab.models import build_model  # noqa: E402
from edge_deeplab.models import quantize  # noqa: E402
from edge_deeplab.models.layers import keras, layers  # noqa: E402
from test_models import int8_tflite, small_config  # noqa: E402

CHANNEL_SCALES = np.array([1e-3, 1e-1, 1.0, 50.0], np.float32)  # ImageNet MobileNets span ~1000x


def depthwise_model():
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(len(CHANNEL_SCALES), 1, name="conv")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = layers.BatchNormalization(name="dw_bn")(x)
    x = layers.ReLU(6.0, name="dw_relu")(x)
    model = keras.Model(inputs, layers.Conv2D(2, 1, name="out")(x))
    kernel = np.random.default_rng(0).normal(size=(3, 3, len(CHANNEL_SCALES), 1)).astype(np.float32)
    model.get_layer("dw").set_weights([kernel * CHANNEL_SCALES[None, None, :, None]])
    return model


def test_depthwise_kernels_are_fake_quantized_per_channel():
    model = depthwise_model()
    qat = quantize.qat_model(model)
    qat(np.random.default_rng(1).random((2, 16, 16, 3), np.float32), training=True)  # sets weight ranges
    wrapper = qat.get_layer("quant_dw")
    [(kernel, quantizer, variables)] = wrapper._weight_vars
    assert variables["max_var"].shape == (len(CHANNEL_SCALES),)
    fake = quantizer(kernel, False, variables).numpy()
    error = np.abs(fake - kernel.numpy()).max(axis=(0, 1, 3)) / np.abs(kernel.numpy()).max(axis=(0, 1, 3))
    # One range per channel: each channel keeps 8 bits (error <= half a step of 127). A shared range
    # would round the 1e-3 channel to zero (error 1.0).
    assert (error <= 0.5 / 127 + 1e-6).all(), error


def test_per_channel_depthwise_converts_to_per_channel_int8():
    from ai_edge_litert.interpreter import Interpreter
    from edge_deeplab._optional import tensorflow
    from edge_deeplab.train.qat import calibrate_ranges
    tf = tensorflow()
    batch = np.random.default_rng(2).random((4, 16, 16, 3), np.float32)
    qat = quantize.qat_model(depthwise_model())
    calibrate_ranges(qat, tf.data.Dataset.from_tensors((batch, batch)).repeat(5), tf.distribute.get_strategy(), tf)
    interpreter = Interpreter(model_content=int8_tflite(qat))
    ops = interpreter._get_ops_details()
    [depthwise] = [op for op in ops if op["op_name"] == "DEPTHWISE_CONV_2D"]
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    filter_scales = details[depthwise["inputs"][1]]["quantization_parameters"]["scales"]
    assert len(filter_scales) == len(CHANNEL_SCALES)
    assert filter_scales.max() / filter_scales.min() > 100  # the ranges QAT learned, not one shared range


@pytest.mark.parametrize("head,decoder,concats", [
    ("aspp", False, ["aspp_concat"]), ("aspp", True, ["aspp_concat", "decoder_concat"]),
    ("lraspp", True, ["refine_concat"])])
def test_concat_inputs_keep_their_order(head, decoder, concats):
    model = build_model(small_config("mobilenet_v2", head, decoder=decoder, separable=decoder))
    qat = quantize.qat_model(model)
    for name in concats:
        expected = quantize._inbound_names(model.get_layer(name))
        assert [n.removeprefix("quant_") for n in quantize._inbound_names(qat.get_layer(f"quant_{name}"))] \
            == expected


def test_a_rewired_concat_is_refused(monkeypatch):
    """Without our fix tfmot 0.8 moves ASPP's image-pooling branch first; the check must catch that."""
    monkeypatch.setattr(quantize, "_inputs_in_call_order", contextlib.nullcontext)
    model = build_model(small_config("mobilenet_v2", "aspp"))
    try:
        quantize.qat_model(model)
    except RuntimeError as error:
        assert "aspp_concat" in str(error) and "rewired" in str(error)
    else:
        pytest.skip("this tensorflow-model-optimization keeps concat inputs in order by itself")
