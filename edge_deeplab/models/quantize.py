"""Quantization-aware training wrappers (tensorflow-model-optimization)."""
from __future__ import annotations

from edge_deeplab._optional import require
from edge_deeplab.models.layers import HardSwish, keras

tfmot = require("tensorflow_model_optimization", "train", "quantization-aware training")
quantizers = tfmot.quantization.keras.quantizers


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


CUSTOM_OBJECTS = {"HardSwish": HardSwish, "OutputQuantizeConfig": OutputQuantizeConfig}


_REGISTRY = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()


def _annotate(layer):
    # Weightless layers tfmot's registry does not know (our hard-swish, Multiply) are
    # element-wise or broadcasts: their output range is all that QAT needs to learn.
    if not layer.weights and not _REGISTRY.supports(layer):
        return tfmot.quantization.keras.quantize_annotate_layer(layer, OutputQuantizeConfig())
    return tfmot.quantization.keras.quantize_annotate_layer(layer)


def qat_model(model: keras.Model) -> keras.Model:
    """Wrap a float model for quantization-aware training (fake-quant on weights and activations)."""
    annotated = keras.models.clone_model(model, clone_function=_annotate)
    annotated.set_weights(model.get_weights())
    with tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS):
        return tfmot.quantization.keras.quantize_apply(annotated)


def quantize_scope():
    """Scope in which saved QAT models (with our custom layers) deserialize."""
    return tfmot.quantization.keras.quantize_scope(CUSTOM_OBJECTS)
