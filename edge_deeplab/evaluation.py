"""Score a model on a dataset folder (images/ + masks/): what ``edge-deeplab evaluate`` reports."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from edge_deeplab.errors import BadImageError, DatasetError


def evaluate(model, data_dir: str | Path, runtime: str = "auto", threads: int | None = None,
             input_range: str | None = None, show_progress: bool = True, *, labels: list[str] | None = None,
             precision: str | None = None, refine: bool = True) -> dict:
    """The ``evaluate`` JSON for ``model`` (a path, ``default``, a zoo name or a loaded segmenter from
    :func:`edge_deeplab.load`): mIoU, per-class IoU, pixel accuracy, boundary IoU, model latency.
    ``refine`` (default on, as ``segment`` and the API treat a photo): a person/background model's masks
    are scored with their edges snapped to the photo's; off: the model's own masks.

    Unreadable pairs are skipped and listed under ``skipped``; none usable is a :class:`DatasetError`.
    """
    from edge_deeplab.api import ImageSegmenter, load
    from edge_deeplab.datasets import check_masks, list_pairs, load_mask
    from edge_deeplab.imaging import load_image
    from edge_deeplab.metrics import SegmentationMetrics
    from edge_deeplab.progress import progress
    from edge_deeplab.runtimes.profiler import LatencyStats

    pairs = list_pairs(data_dir)
    segmenter = model if isinstance(model, ImageSegmenter) else load(
        model, runtime, threads, input_range=input_range, labels=labels, precision=precision)
    metrics = SegmentationMetrics(num_classes=segmenter.num_classes or 2)
    # Masks of the wrong kind fail the run before any image is scored (every score would be off). Decoding
    # each mask twice costs ~1.5 ms of the ~40 ms an image takes; keeping them all would cost memory.
    unreadable = check_masks(data_dir, segmenter.num_classes, pairs)
    latencies, skipped = [], []
    for pair in progress(pairs, "evaluate") if show_progress else pairs:
        try:
            if pair.mask in unreadable:
                raise DatasetError(unreadable[pair.mask])
            image, mask = load_image(pair.image), load_mask(pair.mask)
            if mask.shape != image.shape[:2]:
                raise DatasetError(f"{pair.mask}: mask is {mask.shape[1]}x{mask.shape[0]}, its image "
                                   f"{image.shape[1]}x{image.shape[0]}")
        except (BadImageError, DatasetError) as exc:
            skipped.append(str(exc))
            continue
        result = segmenter(image, refine=refine)
        latencies.append(result.model_ms)
        metrics.update(result.labels, mask)
    if not latencies:
        raise DatasetError(f"no usable image/mask pair in {data_dir}: {skipped[0] if skipped else ''}")
    name = segmenter.model if isinstance(model, ImageSegmenter) else str(model)
    result = {"model": name, "runtime": segmenter.runtime, "images": metrics.images, **metrics.summary(),
              "latency_ms": asdict(LatencyStats.from_samples(latencies)),
              "refine": refine and segmenter.one_foreground}
    if segmenter.engine.precision:
        result["precision"] = segmenter.engine.precision
    if skipped:
        result["skipped"] = skipped
    if segmenter.class_names:
        result["labels"] = list(segmenter.class_names)
    return result
