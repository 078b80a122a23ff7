"""The Python API an app embeds: ``load`` a model, call it on images, stream it over video frames.

    import edge_deeplab
    seg = edge_deeplab.load("default")          # `default_int8`, an artifact path or a zoo name (`portrait`)
    r = seg(image)                              # PIL image or HxWx3 uint8 array
    r.labels, r.alpha                           # class indices / person alpha at the image's size, edges
                                                # refined (seg(image, refine=False): the model's own)
    r.blur(image).save("blurred.jpg")           # also r.replace(image, backdrop), r.overlay(image)
    for r in seg.stream(frames): ...            # one result per frame, smoothed over time

No TensorFlow is imported: models run on the runtime their file calls for (LiteRT for ``.tflite``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from edge_deeplab.errors import BadImageError, BadModelError, ConfigError
from edge_deeplab.processing import Segmentation, Segmenter
from edge_deeplab.temporal import Smoothing, TemporalSmoother

ASPECT_TIE = math.log(1.02)  # AspectMatchedSegmenter: this close to the midpoint of two variants is a tie


def as_rgb(image, what: str = "image") -> np.ndarray:
    """An HxWx3 uint8 RGB array from a PIL image (any mode) or an HxWx3 / HxWx4 / HxW uint8 array."""
    if isinstance(image, Image.Image):
        from edge_deeplab.imaging import to_rgb
        return to_rgb(image)
    if not isinstance(image, np.ndarray):
        raise BadImageError(f"{what}: expected a PIL image or a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise BadImageError(f"{what}: array of {image.dtype}; expected uint8 pixels 0..255 "
                            "(convert with np.clip(x, 0, 255).astype(np.uint8))")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4) and image.shape[0] > 0 and image.shape[1] > 0:
        if image.shape[2] == 4 and image[..., 3].min() < 255:  # see-through pixels: over white, as for PIL
            from edge_deeplab.imaging import to_rgb
            return to_rgb(Image.fromarray(np.ascontiguousarray(image), "RGBA"))
        return np.ascontiguousarray(image[..., :3])
    raise BadImageError(f"{what}: array of shape {image.shape}; expected HxWx3 RGB (or HxWx4, HxW)")


class Result:
    """One image's segmentation: ``labels`` (HxW uint8 class indices), ``alpha`` (HxW uint8 soft
    foreground = not class 0: the person for a person/background model) and the effects built on them.

    With ``refine`` (a still image's default) a one-foreground model's alpha is snapped to the photo's
    edges (guided filter, :mod:`edge_deeplab.refine`) and ``labels`` follow it, computed once, on first
    use: what ``segment --mode mask`` writes and ``evaluate`` scores. ``raw_labels`` / ``raw_alpha``
    are the model's own."""

    def __init__(self, segmentation: Segmentation, model_ms: float, class_names: list[str] | None,
                 alpha: Callable[[], np.ndarray] | None = None, refine: bool = False,
                 image: np.ndarray | None = None, one_foreground: bool | None = None):
        self.raw_labels = segmentation.labels
        # The effects' default for ``refine`` (guided-filter edge refinement, benchmarks/refine.py): on
        # for a still image, off for stream frames (~30 ms a 480p frame; the temporal smoothing runs first).
        self.refine = refine
        self._alpha, self._make_alpha = segmentation.alpha, alpha
        # Only a person/background model's labels are its alpha thresholded; a multi-class map stays.
        # Decided by the model's classes (``one_foreground``; None: by ``class_names``), not by whether
        # an alpha came along: a smoothed multi-class stream frame carries one too.
        if one_foreground is None:
            one_foreground = len(class_names or ()) <= 2
        self._one_foreground = one_foreground
        self._refines_labels = refine and image is not None and self._one_foreground
        self._image, self._refined, self._refined_labels = image, None, None
        self.model_ms = model_ms  # the engine's own time for this image
        self.class_names = class_names

    @property
    def raw_alpha(self) -> np.ndarray:
        """The model's soft foreground, before any refinement."""
        if self._alpha is None:
            self._alpha = self._make_alpha() if self._make_alpha else (self.raw_labels != 0).view(np.uint8) * np.uint8(255)
        return self._alpha

    @property
    def alpha(self) -> np.ndarray:
        """The soft foreground: refined for a still image of a person/background model, else the model's."""
        if not self._refines_labels:
            return self.raw_alpha
        if self._refined is None:
            from edge_deeplab.refine import refine_alpha
            self._refined = refine_alpha(self._image, self.raw_alpha)
        return self._refined

    @property
    def labels(self) -> np.ndarray:
        if not self._refines_labels:
            return self.raw_labels
        if self._refined_labels is None:  # two classes: the refined person alpha at one half
            self._refined_labels = (self.alpha >= 128).view(np.uint8)
        return self._refined_labels

    @property
    def size(self) -> tuple[int, int]:
        return self.raw_labels.shape[1], self.raw_labels.shape[0]

    def refined(self, image) -> Result:
        """This result with ``refine`` on, guided by ``image``, the one segmented (for stream frames,
        which come unrefined)."""
        segmentation = Segmentation(self.raw_labels, self._alpha)
        return Result(segmentation, self.model_ms, self.class_names, self._make_alpha, True, self._checked(image),
                      self._one_foreground)

    def _effect_alpha(self, options: dict) -> tuple[np.ndarray, dict]:
        """(alpha, options) for an effect: the result's own refined alpha unless ``refine`` is passed."""
        options = dict(options)
        refine = options.pop("refine", self.refine)
        if refine and self._refines_labels:  # computed once for labels and every effect
            return self.alpha, {**options, "refine": False}
        return self.raw_alpha, {**options, "refine": refine}

    def _checked(self, image) -> np.ndarray:
        pixels = as_rgb(image)
        if pixels.shape[:2] != self.raw_labels.shape:
            raise BadImageError(f"image is {pixels.shape[1]}x{pixels.shape[0]} but this result is for a "
                                f"{self.size[0]}x{self.size[1]} image; pass the image that was segmented")
        return pixels

    def mask(self) -> Image.Image:
        """The labels as a single-channel PIL image (what ``segment --mode mask`` writes)."""
        return Image.fromarray(self.labels)

    def blur(self, image, **options) -> Image.Image:
        """The image with its background blurred; ``options`` go to ``effects.blur_background``
        (e.g. ``strength``, the blur radius as a fraction of the longer side; ``refine``)."""
        from edge_deeplab import effects
        alpha, options = self._effect_alpha(options)
        return Image.fromarray(effects.blur_background(self._checked(image), alpha, **options))

    def replace(self, image, backdrop, **options) -> Image.Image:
        """The foreground over ``backdrop`` (PIL or array, any size: cover-fitted)."""
        from edge_deeplab import effects
        backdrop = as_rgb(backdrop, "backdrop")
        alpha, options = self._effect_alpha(options)
        return Image.fromarray(effects.replace_background(self._checked(image), alpha, backdrop, **options))

    def matte(self, image, **options) -> Image.Image:
        """The alpha as a grey image (white = foreground); ``image`` guides the optional ``refine``."""
        from edge_deeplab import effects
        alpha, options = self._effect_alpha(options)
        return Image.fromarray(effects.matte(self._checked(image), alpha, **options))

    def cutout(self, image, **options) -> Image.Image:
        """The image as RGBA with the alpha as its transparency."""
        from edge_deeplab import effects
        alpha, options = self._effect_alpha(options)
        return Image.fromarray(effects.cutout(self._checked(image), alpha, **options))

    def overlay(self, image, **options) -> Image.Image:
        """Every non-background pixel tinted with its class colour; ``options``: ``opacity`` (0-1,
        default 0.5), ``refine`` (default: as this result's labels)."""
        from edge_deeplab import effects
        options = dict(options)
        refine = options.pop("refine", self.refine)
        labels = self.refined(image).labels if refine and not self.refine else (
            self.labels if refine else self.raw_labels)
        return Image.fromarray(effects.overlay(self._checked(image), labels, **options))


class ImageSegmenter:
    """A loaded model: call it on an image, or :meth:`stream` it over frames. Not thread-safe: one
    engine runs one image at a time (load one per thread)."""

    def __init__(self, engine, input_range: str | None = None, model: str = "",
                 labels: list[str] | None = None):
        self.core = Segmenter(engine, input_range, labels)  # pre/post-processing, what the model declares
        self.engine = engine
        self.model = model

    @property
    def runtime(self) -> str:
        return self.engine.name

    @property
    def variants(self) -> list[ImageSegmenter]:
        """The model files this segmenter chooses from: itself (see :class:`AspectMatchedSegmenter`)."""
        return [self]

    def variant_for(self, width: int, height: int) -> ImageSegmenter:
        """The segmenter that runs a ``width`` x ``height`` image: this one."""
        return self

    @property
    def class_names(self) -> list[str] | None:
        return self.core.labels

    @property
    def num_classes(self) -> int | None:
        return self.core.num_classes

    @property
    def input_range(self) -> str | None:
        return self.core.input_range

    @property
    def metadata(self) -> dict:
        return self.core.metadata

    def _run(self, pixels: np.ndarray) -> tuple[np.ndarray, float]:
        tensor = self.core.preprocess(pixels)
        start = time.perf_counter()
        raw = self.engine.run(tensor)
        return raw, (time.perf_counter() - start) * 1000.0

    def __call__(self, image, refine: bool = True) -> Result:
        """Segment one image (PIL or HxWx3 uint8 array); the result is at the image's size. ``refine``
        (default on): a person/background model's mask edges snapped to the photo's (guided filter;
        ``benchmarks/refine.py``), as ``segment`` writes them; off: the model's own mask."""
        pixels = as_rgb(image)
        return self._result(pixels, *self._run(pixels), refine=refine)

    @property
    def one_foreground(self) -> bool:
        """A person/background model: its labels are its alpha at one half, so refining the alpha refines
        them. A labels-only model that names no classes is not assumed to be one (refining would merge
        its classes into one); ``load(..., labels=[two names])`` declares it (``--labels`` a file of two)."""
        return self.num_classes is not None and self.num_classes <= 2

    def _result(self, pixels: np.ndarray, raw: np.ndarray, model_ms: float, refine: bool = False) -> Result:
        one_foreground = self.one_foreground
        segmentation = self.core.postprocess(raw, pixels, with_alpha=one_foreground)
        later = None if one_foreground else (lambda: self.core.postprocess(raw, pixels, with_alpha=True).alpha)
        return Result(segmentation, model_ms, self.class_names, later, refine, pixels, one_foreground)

    def stream(self, frames: Iterable, smooth: bool | Smoothing = True) -> Iterator[Result]:
        """One :class:`Result` per frame, in order. ``smooth`` (default on) smooths the segmentation over
        time (see :mod:`edge_deeplab.temporal`); pass a :class:`Smoothing` to tune it, False for none. A
        labels-only model (the int8 files' fused argmax) is smoothed on its one-hot labels: a flip is a
        full change, followed at once, so only the hysteresis steadies it."""
        step = self.frame_step(smooth)
        for frame in frames:
            yield step(frame)

    def frame_step(self, smooth: bool | Smoothing = True) -> Callable[[object], Result]:
        """A function segmenting one frame at a time, carrying the smoothing state from call to call
        (what :meth:`stream` iterates; for pipelines that feed frames themselves)."""
        _check_smooth(smooth)
        if smooth is False:  # each frame on its own; like every stream result, refine off by default
            def single(frame) -> Result:
                pixels = as_rgb(frame, "frame")
                return self._result(pixels, *self._run(pixels))
            return single
        smoother = TemporalSmoother(smooth if isinstance(smooth, Smoothing) else None)
        classes = [self.num_classes or 2]  # a labels-only model's one-hot depth, grown by the labels seen

        def step(frame) -> Result:
            pixels = as_rgb(frame, "frame")
            raw, model_ms = self._run(pixels)
            output = self.core.output
            probabilities = output.probabilities(raw)
            if probabilities is None:  # labels only (int8 fused argmax): smooth them as hard probabilities
                classes[0] = max(classes[0], output.label_count(raw))
                probabilities = output.hard_probabilities(raw, classes[0])
            segmentation = smoother.update(probabilities, pixels.shape[1], pixels.shape[0])
            return Result(segmentation, model_ms, self.class_names, one_foreground=self.one_foreground)
        return step


class AspectMatchedSegmenter(ImageSegmenter):
    """One model at several input shapes (``default``: ``zoo.DEFAULT_VARIANTS``, square, 16:9 and 9:16):
    each image, or each stream as long as its frame size stays, runs on the variant whose input aspect
    ratio is nearest its own in log scale; a tie (4:3 between 1:1 and 16:9, 3:4 between 9:16 and 1:1) goes to the
    wider one. The first variant's engine and pre-processing stand for the family (``benchmark``,
    metadata): the variants' inputs hold about as many pixels, so its time stands for theirs give or
    take that difference (the shipped landscape file has 6% more than the square one, the tall 15% fewer)."""

    def __init__(self, variants: list[ImageSegmenter], model: str):
        if not variants:
            raise ValueError("AspectMatchedSegmenter needs at least one variant")
        self._variants = sorted(variants, key=lambda v: v.core.input.width / v.core.input.height)
        primary = variants[0]
        self.core, self.engine, self.model = primary.core, primary.engine, model

    @property
    def variants(self) -> list[ImageSegmenter]:
        """The variants, narrowest input first."""
        return self._variants

    def variant_for(self, width: int, height: int) -> ImageSegmenter:
        """The variant that runs a ``width`` x ``height`` image."""
        if not (width > 0 and height > 0):
            raise BadImageError(f"image size {width}x{height}: width and height must be positive")
        aspect = math.log(width / height)
        chosen = self.variants[0]
        for narrower, wider in zip(self.variants, self.variants[1:]):
            # Log-midpoint between neighbours; ties go wider (benchmarks/aspect.py: on 4:3 the 16:9 model
            # beats the square one on full-body frames and portraits; on 3:4 the square one beats the 9:16
            # one on both). Within 2% of the midpoint is a tie: an input a few pixels off its nominal
            # shape (288x160 is 1.8:1, not 16:9) moves the midpoint off 4:3.
            midpoint = (math.log(narrower.core.input.width / narrower.core.input.height)
                        + math.log(wider.core.input.width / wider.core.input.height)) / 2
            if aspect >= midpoint - ASPECT_TIE:
                chosen = wider
        return chosen

    def __call__(self, image, refine: bool = True) -> Result:
        pixels = as_rgb(image)
        return self.variant_for(pixels.shape[1], pixels.shape[0])(pixels, refine)

    def frame_step(self, smooth: bool | Smoothing = True) -> Callable[[object], Result]:
        """As :meth:`ImageSegmenter.frame_step`; a frame of another size than the previous one (a rotated
        camera) re-picks the variant and starts its smoothing afresh."""
        _check_smooth(smooth)  # now, not at the first frame
        current: dict = {}  # "size": the previous frame's (width, height), "step": its variant's

        def step(frame) -> Result:
            pixels = as_rgb(frame, "frame")
            size = (pixels.shape[1], pixels.shape[0])
            if current.get("size") != size:  # a portrait-to-landscape turn must not run the 9:16 model
                current.update(size=size, step=self.variant_for(*size).frame_step(smooth))
            return current["step"](pixels)
        return step


def _check_smooth(smooth) -> None:
    if not isinstance(smooth, (bool, Smoothing)):  # "no" or 0 would read as on or off by accident
        raise ConfigError(f"smooth={smooth!r}: expected True, False or an edge_deeplab.Smoothing")


def load(model: str | Path = "default", runtime: str = "auto", threads: int | None = None, *,
         input_range: str | None = None, labels: list[str] | None = None,
         precision: str | None = None) -> ImageSegmenter:
    """Load ``model`` (an artifact path, ``default``, or a zoo name that ships a model, e.g. ``portrait``;
    ``_int8`` appended names the shipped int8 file: ``default_int8``, ``portrait_int8``) on ``runtime``
    (``auto``: chosen from the file suffix) with ``threads`` CPU threads (None: the engine's default).
    ``default`` runs each image on the ``DEFAULT_VARIANTS`` model whose input shape is nearest the
    image's (:class:`AspectMatchedSegmenter`), ``default_int8`` on those that ship an int8 file; a zoo
    name or path runs that one file. ``input_range`` overrides the normalization of a float model
    without metadata, ``labels`` its class names; ``precision`` is for engines that offer a choice
    (OpenVINO)."""
    from edge_deeplab.runtimes import load_runtime
    from edge_deeplab.zoo import DEFAULT, INT8_SUFFIX, default_variants, split_int8
    base, int8 = split_int8(str(model))
    if base == DEFAULT:
        suffix = INT8_SUFFIX * int8
        variants = []
        for name in default_variants(int8):
            try:
                engine = load_runtime(name + suffix, runtime, threads, precision=precision)
            except BadModelError as exc:
                raise BadModelError(f"the default portrait model: {exc}") from None
            variants.append(ImageSegmenter(engine, input_range, name + suffix, labels))
        return AspectMatchedSegmenter(variants, str(model))
    engine = load_runtime(model, runtime, threads, precision=precision)
    return ImageSegmenter(engine, input_range, str(model), labels)
