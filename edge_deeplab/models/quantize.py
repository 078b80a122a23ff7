"""Quantization-aware training wrappers (tensorflow-model-optimization)."""
from __future__ import annotations

import contextlib

from edge_deeplab._optional import require
from edge_deeplab.models.layers import HardSwish, keras

tfmot = require("tensorflow_model_optimization", "train", "quantization-aware training")
quantizers = tfmot.quantization.keras.quantizers
_default_8bit = require("tensorflow_model_optimization.python.core.quantization.keras.default_8bit."
                        "default_8bit_quantize_registry", "train", "quantization-aware training")
_transformer = require("tensorflow_model_optimization.python.core.quantization.keras.graph_transformations."
                       "model_transformer", "train", "quantization-aware training")
_default_scheme = require("tensorflow_model_optimization.python.core.quantization.keras.default_8bit."
                          "default_8bit_quantize_scheme", "train", "quantization-aware training")


class DepthwiseKernelQuantizer(quantizers.LastValueQuantizer):
    """Per-channel fake-quant of a depthwise kernel (kh, kw, C, M), one range per output channel.

    tfmot's conv quantizer takes the kernel's last axis as the channel axis, which for a depthwise
    kernel is the multiplier M (= 1): one range for all channels. ImageNet MobileNets (batch norm
    folded into the weights) have depthwise channels whose ranges differ by 1000x, so a shared range
    rounds most of them to a few levels (CamVid, benchmarks/qat_fidelity.py: 92.9% of pixels agree with
    the float model after wrapping, 98.8% per channel). TFLite quantizes depthwise filters per channel
    anyway; this makes QAT train against that.
    """

    def __init__(self):
        super().__init__(num_bits=8, per_axis=True, symmetric=True, narrow_range=True)

    def build(self, tensor_shape, name, layer):
        channels = int(tensor_shape[-2]) * int(tensor_shape[-1])
        return {bound: layer.add_weight(f"{name}_{bound[:3]}", shape=(channels,), trainable=False,
                                        initializer=keras.initializers.Constant(6.0 if bound == "max_var"
                                                                                else -6.0))
                for bound in ("min_var", "max_var")}

    def __call__(self, inputs, training, weights, **kwargs):
        kh, kw, channels, multiplier = inputs.shape
        # (kh, kw, C, M) -> (kh, kw, 1, C*M) is a pure reshape (same memory order): TFLite's layout.
        flat = super().__call__(keras.backend.reshape(inputs, (kh, kw, 1, channels * multiplier)),
                                training, weights, **kwargs)
        return keras.backend.reshape(flat, (kh, kw, channels, multiplier))


class _Registry(_default_8bit.Default8BitQuantizeRegistry):
    """tfmot's 8-bit registry with per-channel depthwise kernels."""

    def __init__(self):
        super().__init__()
        config = _default_8bit.Default8BitConvQuantizeConfig(["depthwise_kernel"], ["activation"], False)
        config.weight_quantizer = DepthwiseKernelQuantizer()
        self._layer_quantize_map[keras.layers.DepthwiseConv2D] = config


class QuantizeScheme(_default_scheme.Default8BitQuantizeScheme):
    """tfmot's default 8-bit scheme (TFLite's) with per-channel depthwise kernels."""

    def get_quantize_registry(self):
        return _Registry()


class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """Quantize only the output of a weightless element-wise layer (hard-swish, broadcast multiply)."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                  narrow_range=False)]

    def get_config(self):
        return {}


CUSTOM_OBJECTS = {"HardSwish": HardSwish, "OutputQuantizeConfig": OutputQuantizeConfig,
                  "DepthwiseKernelQuantizer": DepthwiseKernelQuantizer}


_REGISTRY = _Registry()


def _annotate(layer):
    # Weightless layers tfmot's registry does not know (our hard-swish, Multiply) are
    # element-wise or broadcasts: their output range is all that QAT needs to learn.
    if not layer.weights and not _REGISTRY.supports(layer):
        return tfmot.quantization.keras.quantize_annotate_layer(layer, OutputQuantizeConfig())
    return tfmot.quantization.keras.quantize_annotate_layer(layer)


@contextlib.contextmanager
def _inputs_in_call_order():
    """Make tfmot's graph transformer keep a multi-input layer's inputs in call order.

    tfmot 0.8 (tensorflow/model-optimization#1179) looks inputs up in declaration order, so its
    Concatenate transform rewires ``concat([a, b])`` as ``concat([b, a])`` when ``b`` was declared
    first: ASPP's image-pooling branch moved to the front and the projection read scrambled
    channels (CamVid: 53.7% of pixels agreed with the float model after wrapping). Remove once tfmot
    is fixed; :func:`_check_input_order` fails loudly if a version breaks it again.
    """
    original = _transformer.ModelTransformer._get_layers

    def in_given_order(self, layer_names):
        by_name = {layer["config"]["name"]: layer for layer in self._config["layers"]}
        return [by_name[name] for name in layer_names if name in by_name]

    _transformer.ModelTransformer._get_layers = in_given_order
    try:
        yield
    finally:
        _transformer.ModelTransformer._get_layers = original


def _inbound_names(layer) -> list[str]:
    inbound = layer.inbound_nodes[0].inbound_layers
    return [x.name for x in (inbound if isinstance(inbound, list) else [inbound])]


def _check_input_order(model: keras.Model, qat: keras.Model) -> None:
    wrapped = {layer.name: layer for layer in qat.layers}
    for layer in model.layers:
        counterpart = wrapped.get(f"quant_{layer.name}", wrapped.get(layer.name))
        if counterpart is None or len(layer.inbound_nodes) != 1:
            continue
        expected = _inbound_names(layer)
        if len(expected) < 2:
            continue
        got = [name.removeprefix("quant_") for name in _inbound_names(counterpart)]
        if got != expected:
            raise RuntimeError(f"tensorflow-model-optimization rewired {layer.name}'s inputs as {got} "
                               f"(expected {expected}): this tfmot version breaks QAT for this model")


def qat_model(model: keras.Model) -> keras.Model:
    """Wrap a float model for quantization-aware training (fake-quant on weights and activations)."""
    annotated = keras.models.clone_model(model, clone_function=_annotate)
    annotated.set_weights(model.get_weights())
    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS), _inputs_in_call_order():
        qat = tfmot.quantization.keras.quantize_apply(annotated, QuantizeScheme())
    _check_input_order(model, qat)
    return qat


def quantize_scope():
    """Scope in which saved QAT models (with our custom layers) deserialize."""
    return tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS)
