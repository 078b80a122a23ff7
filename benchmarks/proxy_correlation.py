"""Does the accuracy proxy rank candidates like full training does? Spearman and Kendall rank correlation.

    python benchmarks/proxy_correlation.py --data ../shared/data/portrait [--candidates 6]
        [--full-epochs 18] [--init-weights ../shared/weights/mobilenet_v2_1.0_224_quant.tflite]
        [--out runs/proxy_correlation]

``--candidates`` architectures are drawn from the default search space (seeded, as the search draws
them). Each is trained twice: the search's proxy (default ProxySettings: a subset at half resolution,
a few epochs) and a full training (the portrait recipe of configs/portrait.yaml at the candidate's own
resolution on all of train/, scored on all of val/). Every run is resumable in ``--out``.

Cost on an idle 2-core machine: ~1-2 min per proxy, ~25-40 min per 18-epoch full training at
192-256 px, so ~3-4 h for 6 candidates; ``--full-epochs 8`` halves it.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from results_io import json_option, write_json

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "portrait.yaml"


def ranks(values) -> np.ndarray:
    """Ranks from 1, ties averaged."""
    values = np.asarray(values, float)
    order = values.argsort()
    result = np.empty(len(values))
    result[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        result[tied] = result[tied].mean()
    return result


def spearman(a, b) -> float:
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")  # one side ranks everything equal: no correlation to speak of
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    pairs = [(np.sign(a[i] - a[j]), np.sign(b[i] - b[j])) for i in range(len(a)) for j in range(i + 1, len(a))]
    concordant = sum(1 for x, y in pairs if x * y > 0)
    discordant = sum(1 for x, y in pairs if x * y < 0)
    return (concordant - discordant) / max(len(pairs), 1)


def full_training(config, data: Path, out: Path, epochs: int, init_weights: str) -> dict:
    """The best float validation row (val_miou, val_iou, val_boundary_iou...) of ``epochs`` epochs of the
    portrait recipe in ``out``; a finished training there is reused if it ran as many epochs."""
    import yaml

    from edge_deeplab.train.config import TrainConfig, TrainingSpec
    from edge_deeplab.train.trainer import Trainer

    summary = out / "summary.json"
    if not summary.is_file():
        recipe = yaml.safe_load(RECIPE.read_text())["train"]
        pretrained = bool(init_weights) and config.backbone == "mobilenet_v2"
        recipe.update(epochs=epochs, init="imagenet" if pretrained else "none",
                      init_weights=init_weights if pretrained else "")
        spec = TrainingSpec(config, TrainConfig.from_dict(recipe))
        Trainer(spec, data / "train", out, val_dir=data / "val", progress=False).run(resume=(out / "state").exists())
    done = json.loads(summary.read_text())
    if done["epochs"] != epochs:
        raise SystemExit(f"{out} holds a {done['epochs']}-epoch training, not {epochs}: use another --out")
    return done["float_best"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/portrait"))
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--full-epochs", type=int, default=18)
    parser.add_argument("--init-weights", default="", help="ImageNet MobileNetV2 int8 .tflite for v2 backbones")
    parser.add_argument("--proxy", default=None, help="ProxySettings YAML/JSON (default: the search's)")
    parser.add_argument("--space", default=None, help="SearchSpace YAML/JSON (default: the search's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/proxy_correlation")
    json_option(parser, __file__)
    args = parser.parse_args()

    from edge_deeplab.search.proxy import ProxySettings, prepare_data, proxy_score
    from edge_deeplab.search.run import CACHE_SCALE
    from edge_deeplab.search.space import SearchSpace, candidate_key, describe

    data, out = Path(args.data), Path(args.out)
    proxy = ProxySettings.load(args.proxy) if args.proxy else ProxySettings()
    proxy = proxy.replace(init_weights=args.init_weights)
    space = SearchSpace.load(args.space) if args.space else SearchSpace()
    largest = max(proxy.input_size(size) for size in space.input_sizes)
    proxy_data = prepare_data(data, out / "proxy_data", proxy, tuple(int(round(s * CACHE_SCALE)) for s in largest))
    space = space.replace(num_classes=proxy_data.num_classes)
    rng = np.random.default_rng(args.seed)
    configs = []
    while len(configs) < args.candidates:
        config = space.sample(rng)
        if config not in configs:
            configs.append(config)

    rows = []
    for i, config in enumerate(configs):
        key = candidate_key(config)
        started = time.time()
        proxy_miou = proxy_score(config, proxy_data, proxy, out / key / "proxy").score
        proxy_s = time.time() - started
        started = time.time()
        full_miou = full_training(config, data, out / key / "full", args.full_epochs, args.init_weights)["val_miou"]
        rows.append((describe(config), proxy_miou, full_miou, proxy_s, time.time() - started))
        print(f"{i + 1}/{len(configs)} {rows[-1][0]}: proxy {proxy_miou:.4f}, full {full_miou:.4f}", flush=True)

    proxy_scores, full_scores = [r[1] for r in rows], [r[2] for r in rows]
    proxy_rank, full_rank = ranks(proxy_scores), ranks(full_scores)
    print(f"\nproxy: {proxy.train_images} train / {proxy.val_images} val images at {proxy.scale:g}x resolution, "
          f"{proxy.epochs} epochs; full: {args.full_epochs} epochs of the portrait recipe on all of {data.name}\n")
    print("| candidate | proxy mIoU | full mIoU | proxy rank | full rank | proxy s | full s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (name, p, f, ps, fs), pr, fr in zip(rows, proxy_rank, full_rank):
        print(f"| {name} | {p:.4f} | {f:.4f} | {pr:g} | {fr:g} | {ps:.0f} | {fs:.0f} |")
    rho, tau = spearman(proxy_scores, full_scores), kendall(proxy_scores, full_scores)
    write_json(args.json, {"full_epochs": args.full_epochs, "spearman": rho, "kendall": tau,
                           "rows": [{"candidate": r[0], "proxy_miou": r[1], "full_miou": r[2]} for r in rows]})
    print(f"\nSpearman rho {rho:+.3f}, Kendall tau {tau:+.3f} "
          f"over {len(rows)} candidates (times: this invocation; 0 s = trained by an earlier one)")


if __name__ == "__main__":
    main()
