"""A model as the list of kernels an inference engine runs, and one-kernel models to time each alone.

A *kernel* is what a converter leaves of a few Keras layers: Conv2D + BatchNorm + ReLU fold into one
convolution, Dropout vanishes. Kernels are keyed by op and shapes, so two candidates that share a
layer (same backbone, width and input size) share its measured latency in the lookup table.
"""
from __future__ import annotations

from dataclasses import dataclass

from edge_deeplab.errors import UnsupportedOpError

Shape = tuple[int, int, int]  # (height, width, channels)

# Layers with no kernel of their own: folded into the preceding convolution or removed at export.
FOLDED = ("InputLayer", "BatchNormalization", "ReLU", "Dropout")
# Predictor groups: latency is fitted per group, so each group should hold ops of one cost profile.
GROUPS = ("conv1x1", "conv", "depthwise", "elementwise", "other")
_GROUP_OF = {"depthwise": "depthwise", "add": "elementwise", "mul": "elementwise", "hswish": "elementwise",
             "logistic": "elementwise", "concat": "other", "mean": "other", "resize_bilinear": "other",
             "resize_nearest": "other", "argmax": "other"}


@dataclass(frozen=True)
class Kernel:
    """One op: inputs[0] is the activation; further inputs are broadcast/concatenated operands."""

    op: str
    inputs: tuple[Shape, ...]
    output: Shape
    size: int = 1  # kernel size of convolutions
    stride: int = 1
    dilation: int = 1

    @property
    def key(self) -> str:
        shapes = ",".join("x".join(map(str, s)) for s in self.inputs) + ">" + "x".join(map(str, self.output))
        return f"{self.op}:{shapes}:k{self.size}s{self.stride}d{self.dilation}"

    @property
    def family(self) -> str:
        """Kernels whose latency follows one curve in (MACs, elements): interpolation happens per family."""
        return f"{self.op}{self.size}s{self.stride}" if self.op in ("conv", "depthwise") else self.op

    @property
    def group(self) -> str:
        if self.op == "conv":
            return "conv1x1" if self.size == 1 else "conv"
        return _GROUP_OF[self.op]

    @property
    def macs(self) -> int:
        h, w, c = self.output
        if self.op == "conv":
            return h * w * c * self.size * self.size * self.inputs[0][2]
        if self.op == "depthwise":
            return h * w * c * self.size * self.size
        return 0

    @property
    def elements(self) -> int:
        """Tensor elements read and written: the memory traffic of the op."""
        return sum(h * w * c for h, w, c in self.inputs) + self.output[0] * self.output[1] * self.output[2]

    def to_dict(self) -> dict:
        return {"op": self.op, "inputs": [list(s) for s in self.inputs], "output": list(self.output),
                "size": self.size, "stride": self.stride, "dilation": self.dilation}

    @classmethod
    def from_dict(cls, data: dict) -> Kernel:
        return cls(data["op"], tuple(tuple(s) for s in data["inputs"]), tuple(data["output"]),
                   data["size"], data["stride"], data["dilation"])


def _shape(shape) -> Shape:
    return tuple(int(d) for d in shape[1:4])


def _layer_kernel(layer) -> Kernel | None:
    kind = type(layer).__name__
    if kind in FOLDED:
        return None
    shapes = layer.input_shape if isinstance(layer.input_shape, list) else [layer.input_shape]
    inputs, output = tuple(_shape(s) for s in shapes), _shape(layer.output_shape)
    if kind in ("Conv2D", "DepthwiseConv2D"):
        return Kernel("conv" if kind == "Conv2D" else "depthwise", inputs, output, layer.kernel_size[0],
                      layer.strides[0], layer.dilation_rate[0])
    simple = {"Add": "add", "Multiply": "mul", "Concatenate": "concat", "GlobalAveragePooling2D": "mean",
              "HardSwish": "hswish"}
    if kind in simple:
        return Kernel(simple[kind], inputs, output)
    if kind == "UpSampling2D":
        return Kernel(f"resize_{layer.interpolation}", inputs, output)
    if kind == "Activation" and layer.get_config()["activation"] in ("sigmoid", "relu"):
        return Kernel("logistic", inputs, output) if layer.get_config()["activation"] == "sigmoid" else None
    raise UnsupportedOpError(f"the latency model has no kernel rule for layer {layer.name!r} ({kind}); "
                             "add one in edge_deeplab/search/kernels.py")


def kernels_of(model, classmap: bool = False) -> list[Kernel]:
    """The kernels of a built Keras model in execution order; ``classmap`` adds the fused output argmax."""
    kernels = [k for k in map(_layer_kernel, model.layers) if k is not None]
    if classmap:
        output = _shape(model.output_shape)
        kernels.append(Kernel("argmax", (output,), (output[0], output[1], 1)))
    return kernels
