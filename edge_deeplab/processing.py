"""Pre- and post-processing shared by every runtime, driven by what the model itself declares.

Input: size, layout (NHWC/NCHW), dtype and quantization come from the model's input tensor; the
pixel -> tensor mapping is a 256-entry lookup table, so normalization and quantization cost one take().
Output: C-channel scores (argmax), one channel (probability or logit, threshold 0.5), or an integer
label map; (u)int8 dequantized; any resolution, upsampled to the image's own size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from edge_deeplab.errors import BadModelError
from edge_deeplab.runtimes.base import INPUT_RANGES, Runtime, TensorInfo

RANGES = dict(zip(INPUT_RANGES, ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))))
_PIXELS = np.arange(256, dtype=np.float64)


def _layout(shape: tuple[int, ...], name: str) -> str:
    if len(shape) == 4 and shape[3] in (1, 3):
        return "NHWC"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "NCHW"
    raise BadModelError(f"model input {name!r} has shape {list(shape)}; expected an image tensor "
                        "(1,H,W,3) or (1,3,H,W)")


def _pixel_map(info: TensorInfo, input_range: str | None) -> tuple[float, float, np.ndarray | None]:
    """(scale, offset, lut): tensor = pixel * scale + offset for floats; ``lut[pixel]`` for integers.

    An integer input whose table is the identity (uint8) or a shift by -128 (int8) gets ``lut=None``,
    handled without a gather.
    """
    dtype = np.dtype(info.dtype)
    if dtype.kind == "f":
        low, high = RANGES[input_range or "0,1"]
        return (high - low) / 255.0, low, None
    if dtype not in (np.uint8, np.int8):
        raise BadModelError(f"model input {info.name!r} is {dtype}; expected float32/16, uint8 or int8")
    qmin, qmax = (0, 255) if dtype == np.uint8 else (-128, 127)
    if input_range is None or not info.quantized:
        # Integer models fold normalization into their input quantization: raw pixels span [qmin, qmax].
        return 1.0, qmin, None
    low, high = RANGES[input_range]
    real = low + _PIXELS * ((high - low) / 255.0)
    lut = np.clip(np.round(real / info.scale + info.zero_point), qmin, qmax)
    return 1.0, qmin, None if np.array_equal(lut, _PIXELS + qmin) else lut.astype(dtype)


def resize_rgb(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize; large reductions go through 2x nearest supersampling + a 2x2 box (5x faster
    than Pillow's wide antialiasing kernel, within ~1 grey level of it)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    pil = Image.fromarray(image)
    if image.shape[1] >= 2 * width and image.shape[0] >= 2 * height:
        return np.asarray(pil.resize((2 * width, 2 * height), Image.NEAREST).reduce(2))
    return np.asarray(pil.resize((width, height), Image.BILINEAR))


@dataclass(frozen=True, eq=False)
class InputSpec:
    """How to turn an RGB uint8 image into the model's input tensor."""

    height: int
    width: int
    channels: int
    layout: str
    dtype: np.dtype
    scale: float  # float inputs: pixel * scale + offset; integer inputs: pixel + offset (or lut)
    offset: float
    lut: np.ndarray | None = None

    @classmethod
    def from_tensor(cls, info: TensorInfo, input_range: str | None = None) -> InputSpec:
        layout = _layout(info.shape, info.name)
        channels, height, width = ((info.shape[3], info.shape[1], info.shape[2]) if layout == "NHWC"
                                   else info.shape[1:4])
        if height <= 0 or width <= 0:
            raise BadModelError(f"model input {info.name!r} has a dynamic size {list(info.shape)}; "
                                "re-export it with a fixed height and width")
        return cls(height, width, channels, layout, np.dtype(info.dtype), *_pixel_map(info, input_range))

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB (any size) -> a (1, ...) tensor in the model's dtype and layout."""
        pixels = resize_rgb(image, self.width, self.height)
        if self.channels == 1:
            pixels = np.asarray(Image.fromarray(pixels).convert("L"))[..., None]
        if self.layout == "NCHW":
            pixels = pixels.transpose(2, 0, 1)
        pixels = pixels[None]
        if self.dtype.kind == "f":
            tensor = np.multiply(pixels, self.scale, dtype=self.dtype, order="C")
            if self.offset:
                tensor += self.dtype.type(self.offset)
            return tensor
        if self.lut is not None:
            return self.lut[pixels]
        if self.dtype == np.int8:
            return np.bitwise_xor(pixels, np.uint8(0x80), order="C").view(np.int8)  # p - 128, no gather
        return np.ascontiguousarray(pixels)


@dataclass
class Segmentation:
    """A prediction at the image's resolution: class indices, and a soft foreground alpha if asked."""

    labels: np.ndarray  # (H, W) uint8 class index
    alpha: np.ndarray | None = None  # (H, W) uint8, 255 = surely not class 0 (for blur/replace)


def _resize_u8(plane: np.ndarray, width: int, height: int, resample: int) -> np.ndarray:
    if plane.shape == (height, width):
        return plane
    return np.asarray(Image.fromarray(plane).resize((width, height), resample))


def _to_alpha(probability: np.ndarray) -> np.ndarray:
    return (probability * 255.0 + 0.5).astype(np.uint8)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _is_probability(x: np.ndarray) -> bool:
    return float(x.min()) >= 0.0 and float(x.max()) <= 1.0


@dataclass(frozen=True)
class OutputSpec:
    """How to read the model's output: ``kind`` is ``labels``, ``binary`` (one channel) or ``scores``."""

    kind: str
    channel_axis: int | None  # of the batch-less array
    channels: int
    scale: float | None
    zero_point: int | None
    declared: str | None  # metadata "output": logits / probabilities / labels

    @classmethod
    def from_tensor(cls, info: TensorInfo, input_layout: str = "NHWC", declared: str | None = None) -> OutputSpec:
        shape, dtype = info.shape, np.dtype(info.dtype)
        if len(shape) not in (3, 4) or shape[0] not in (1, -1):
            raise BadModelError(f"model output {info.name!r} has shape {list(shape)}; expected a "
                                "segmentation map (1,H,W), (1,H,W,C) or (1,C,H,W)")
        axis, channels = None, 1
        if len(shape) == 4:
            axis = 0 if input_layout == "NCHW" else 2
            if input_layout == "NCHW" and shape[1] > 1 and shape[3] == 1:
                axis = 2  # an NHWC one-channel output behind an NCHW input
            channels = shape[axis + 1]
        quant = info.quantized
        if declared == "labels" or (dtype.kind in "iu" and not quant):
            if channels != 1:
                raise BadModelError(f"model output {info.name!r} is an integer {list(shape)} tensor; an "
                                    "integer output must be a one-channel class map")
            kind = "labels"
        elif dtype.kind in "fiu":
            kind = "binary" if channels == 1 else "scores"
        else:
            raise BadModelError(f"model output {info.name!r} has dtype {dtype}, not a segmentation map")
        return cls(kind, axis, channels, info.scale if quant else None,
                   info.zero_point if quant else None, declared)

    @property
    def num_classes(self) -> int | None:
        return None if self.kind == "labels" else max(self.channels, 2)

    def _planes(self, raw: np.ndarray) -> np.ndarray:
        """Batch-less (H, W) for labels/binary, (C, H, W) float32 for scores."""
        array = raw[0]
        if self.scale is not None:
            array = (array.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)
        if self.channel_axis is None:
            return array
        planes = np.moveaxis(array, self.channel_axis, 0)  # a view: no copy of the output
        return planes if self.kind == "scores" else planes[0]

    def decode(self, raw: np.ndarray, width: int, height: int, with_alpha: bool = False) -> Segmentation:
        """Model output (with batch axis) -> :class:`Segmentation` at ``width`` x ``height``."""
        planes = self._planes(raw)
        if self.kind == "labels":
            labels = np.clip(planes, 0, 255).astype(np.uint8)
            alpha = _resize_u8((labels != 0).view(np.uint8) * np.uint8(255), width, height,
                               Image.BILINEAR) if with_alpha else None
            return Segmentation(_resize_u8(labels, width, height, Image.NEAREST), alpha)
        if self.kind == "binary":
            probability = planes if self._probabilities(planes) else _sigmoid(planes)
        elif self.channels == 2:
            scores = planes.astype(np.float32, copy=False)
            probability = scores[1] if self._probabilities(scores) else _sigmoid(scores[1] - scores[0])
        else:
            return self._decode_multiclass(planes.astype(np.float32, copy=False), width, height, with_alpha)
        alpha = _resize_u8(_to_alpha(probability), width, height, Image.BILINEAR)
        return Segmentation((alpha >= 128).view(np.uint8), alpha if with_alpha else None)

    def _probabilities(self, x: np.ndarray) -> bool:
        if self.declared is not None:
            return self.declared == "probabilities"
        return _is_probability(x)  # foreign model without metadata: tell by the values

    def _decode_multiclass(self, scores: np.ndarray, width: int, height: int, with_alpha: bool) -> Segmentation:
        if scores.shape[1:] != (height, width):  # upsample scores, then argmax: smooth class borders
            scores = np.stack([np.asarray(Image.fromarray(plane).resize((width, height), Image.BILINEAR))
                               for plane in scores])
        labels = scores.argmax(axis=0).astype(np.uint8)
        alpha = None
        if with_alpha:
            shifted = np.exp(scores - scores.max(axis=0, keepdims=True))
            probability = scores if self._probabilities(scores) else shifted / shifted.sum(axis=0)
            alpha = _to_alpha(1.0 - probability[0])
        return Segmentation(labels, alpha)


class Segmenter:
    """Image in, :class:`Segmentation` out, around one loaded runtime.

    Normalization: ``input_range`` if given, else the model's embedded metadata, else ``0,1`` for float
    inputs and raw pixels for integer inputs (whose quantization already encodes the range).
    """

    def __init__(self, runtime: Runtime, input_range: str | None = None):
        self.runtime = runtime
        self.metadata = runtime.metadata() or {}
        self.input_range = input_range or self.metadata.get("input_range")
        self.input = InputSpec.from_tensor(runtime.inputs[0], self.input_range)
        self.output = OutputSpec.from_tensor(runtime.outputs[0], self.input.layout, self.metadata.get("output"))
        self.labels: list[str] | None = self.metadata.get("labels")

    @property
    def num_classes(self) -> int | None:
        return len(self.labels) if self.labels else self.output.num_classes

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return self.input.prepare(image)

    def postprocess(self, raw: np.ndarray, image: np.ndarray, with_alpha: bool = False) -> Segmentation:
        return self.output.decode(raw, image.shape[1], image.shape[0], with_alpha)

    def __call__(self, image: np.ndarray, with_alpha: bool = False) -> Segmentation:
        return self.postprocess(self.runtime.run(self.preprocess(image)), image, with_alpha)
