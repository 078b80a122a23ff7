"""Pre- and post-processing shared by every runtime, driven by what the model itself declares.

Input: size, layout (NHWC/NCHW), dtype and quantization come from the model's input tensor; the
pixel -> tensor mapping is a 256-entry lookup table, so normalization and quantization cost one take().
Output: C-channel scores (argmax), one channel (probability or logit, threshold 0.5), or an integer
label map; (u)int8 dequantized; any resolution, upsampled to the image's own size.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge_deeplab.errors import BadModelError, ConfigError
from edge_deeplab.normalization import Normalization, pixel_map, resolve
from edge_deeplab.runtimes.base import Runtime, TensorInfo


def _layout(shape: tuple[int, ...], name: str) -> str:
    if len(shape) == 4 and shape[3] in (1, 3):
        return "NHWC"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "NCHW"
    raise BadModelError(f"model input {name!r} has shape {list(shape)}; expected an image tensor "
                        "(1,H,W,3) or (1,3,H,W)")


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
    # Float inputs: pixel * scale + offset (floats, or per-channel arrays shaped for the layout);
    # integer inputs: pixel + offset, or lut[pixel] ((256,), or (channels, 256) per channel).
    scale: float | np.ndarray
    offset: float | np.ndarray
    lut: np.ndarray | None = None

    @classmethod
    def from_tensor(cls, info: TensorInfo, normalization: Normalization | str | None = None) -> InputSpec:
        """``normalization``: a :class:`Normalization`, a named range (``0,1``...) or None (the default)."""
        layout = _layout(info.shape, info.name)
        channels, height, width = ((info.shape[3], info.shape[1], info.shape[2]) if layout == "NHWC"
                                   else info.shape[1:4])
        if height <= 0 or width <= 0:
            raise BadModelError(f"model input {info.name!r} has a dynamic size {list(info.shape)}; "
                                "re-export it with a fixed height and width")
        dtype = np.dtype(info.dtype)
        if dtype.kind != "f" and dtype not in (np.uint8, np.int8):
            raise BadModelError(f"model input {info.name!r} is {dtype}; expected float32/16, uint8 or int8")
        if isinstance(normalization, str):
            normalization = Normalization.named(normalization)
        scale, offset, lut = pixel_map(dtype, channels, info.scale if info.quantized else None, info.zero_point,
                                       normalization)
        if isinstance(scale, np.ndarray):  # per channel: broadcast along the channel axis
            shape = (channels,) if layout == "NHWC" else (channels, 1, 1)
            scale, offset = scale.reshape(shape).astype(dtype), offset.reshape(shape).astype(dtype)
        return cls(height, width, channels, layout, dtype, scale, offset, lut)

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
            if np.any(self.offset):
                tensor += self.offset if isinstance(self.offset, np.ndarray) else self.dtype.type(self.offset)
            return tensor
        if self.lut is not None and self.lut.ndim == 2:  # one table per channel
            channel = np.arange(self.channels).reshape((self.channels,) if self.layout == "NHWC"
                                                       else (self.channels, 1, 1))
            return self.lut[channel, pixels]
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

    def probabilities(self, raw: np.ndarray) -> np.ndarray | None:
        """(C, h, w) float32 class probabilities at the model's own resolution (C = 2 for a one-channel
        model: background, foreground), or None for a model that outputs labels only."""
        if self.kind == "labels":
            return None
        planes = self._planes(raw).astype(np.float32, copy=False)
        if self.kind == "binary":
            foreground = planes if self._probabilities(planes) else _sigmoid(planes)
            return np.stack([1.0 - foreground, foreground]).astype(np.float32, copy=False)
        if self._probabilities(planes):
            return planes
        if self.channels == 2:  # softmax of two = the sigmoid of their difference: one exp, not two
            foreground = _sigmoid(planes[1] - planes[0]).astype(np.float32, copy=False)
            return np.stack([1.0 - foreground, foreground])
        planes = np.ascontiguousarray(planes)  # (C, h, w) view of an NHWC output: strided otherwise
        shifted = np.exp(planes - planes.max(axis=0, keepdims=True))
        return shifted / shifted.sum(axis=0)

    def label_count(self, raw: np.ndarray) -> int:
        """A labels-only model's highest label + 1 in this output."""
        return int(np.clip(self._planes(raw).max(), 0, 255)) + 1

    def hard_probabilities(self, raw: np.ndarray, classes: int) -> np.ndarray:
        """A labels-only model's labels as (classes, h, w) one-hot float32 probabilities at the model's
        resolution, for the temporal smoother (labels >= ``classes`` fall in no plane)."""
        labels = np.clip(self._planes(raw), 0, 255).astype(np.uint8)
        return (labels[None] == np.arange(classes, dtype=np.uint8)[:, None, None]).astype(np.float32)

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


def read_labels(path: str | Path) -> list[str]:
    """Class names from a text file, one per line (line i names class i), as TFLite label files are."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"labels file {path}: cannot read it ({exc.__class__.__name__}: "
                          f"{getattr(exc, 'strerror', None) or exc}); give a UTF-8 text file, one class "
                          "name per line") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ConfigError(f"labels file {path} holds no class names; give one name per line")
    return names


class Segmenter:
    """Image in, :class:`Segmentation` out, around one loaded runtime.

    Normalization: ``input_range`` if given, else the model's own ``edge_deeplab`` metadata, else its
    standard metadata (TFLite Model Metadata mean/std, float inputs), else ``0,1`` for float inputs and
    raw pixels for integer inputs (whose quantization already encodes the range). Class names:
    ``labels`` if given, else our metadata's, else the standard metadata's label file.
    """

    def __init__(self, runtime: Runtime, input_range: str | None = None, labels: list[str] | None = None):
        self.runtime = runtime
        self.metadata = runtime.metadata() or {}
        standard = runtime.standard_metadata()
        info = runtime.inputs[0]
        integer = np.dtype(info.dtype).kind != "f"
        self.normalization, self.normalization_source = resolve(input_range, self.metadata, standard, integer)
        self.declared = resolve(None, self.metadata, standard, integer)[0]  # what the model itself says
        self.input_range = self.normalization.range_name if self.normalization else None
        self.input = InputSpec.from_tensor(info, self.normalization)
        self.output = OutputSpec.from_tensor(runtime.outputs[0], self.input.layout, self.metadata.get("output"))
        names = labels or self.metadata.get("labels") or (standard.labels if standard is not None else None)
        if names and len(names) == 1 and self.output.kind == "binary":
            names = ["background", *names]  # one channel scores its class against everything else
        if labels and self.output.num_classes and len(names) != self.output.num_classes:
            raise ConfigError(f"--labels gives {len(labels)} class names, the model outputs "
                              f"{self.output.num_classes} classes; give one name per line, line i for class i")
        self.labels: list[str] | None = list(names) if names else None

    @property
    def num_classes(self) -> int | None:
        return len(self.labels) if self.labels else self.output.num_classes

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return self.input.prepare(image)

    def postprocess(self, raw: np.ndarray, image: np.ndarray, with_alpha: bool = False) -> Segmentation:
        return self.output.decode(raw, image.shape[1], image.shape[0], with_alpha)

    def __call__(self, image: np.ndarray, with_alpha: bool = False) -> Segmentation:
        return self.postprocess(self.runtime.run(self.preprocess(image)), image, with_alpha)
