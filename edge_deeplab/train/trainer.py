"""Float training, then optional QAT fine-tuning; resumable, distributed, validated every epoch.

Output folder (an ``export`` SOURCE as is):
  config.yaml (training config), model.json (ModelConfig), best.weights.h5 (best float by val mIoU),
  last.weights.h5, qat.weights.h5 (best QAT, with ``--qat``), history.json, summary.json,
  state/{float,qat}/ (resumable checkpoints).
"""
from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
import time
from functools import cached_property
from pathlib import Path

import numpy as np

from edge_deeplab._optional import keras, tensorflow
from edge_deeplab.atomic import atomic_write_text
from edge_deeplab.errors import BadModelError, ConfigError, DatasetError, UnknownChoiceError
from edge_deeplab.train.checkpoint import TrainState
from edge_deeplab.train.config import TrainingSpec, check_run
from edge_deeplab.train.data import (CachedSet, folder_sources, load_folder, load_folders, steps_per_epoch,
                                     train_dataset)
from edge_deeplab.train.losses import SegmentationLoss
from edge_deeplab.train.optim import averaged_weights, make_optimizer, make_strategy
from edge_deeplab.train.validation import validate

tf = tensorflow("training")
tf_keras = keras()


class Trainer:
    def __init__(self, spec: TrainingSpec, data_dir, out_dir, val_dir=None, progress: bool = True):
        """``data_dir``/``val_dir``: a folder or a list of folders; training folders without masks/
        are labelled by a model-file teacher. With several val folders, epochs are ranked by their
        mean mIoU."""
        self.spec, self.model_config, self.config = spec, spec.model, spec.train
        self.out = Path(out_dir)
        self.progress = progress
        self._teacher_model = None  # built by the first phase that trains, shared by the next
        self.val_dirs, self.data_dirs = _folders(val_dir), _folders(data_dir)
        from edge_deeplab.datasets import is_unlabelled
        for folder in self.val_dirs:
            if is_unlabelled(folder):  # scores need ground truth: a teacher's labels would grade the teacher
                raise DatasetError(f"--val {folder} has images/ but no masks/; validation folders need masks/ "
                                   "(unlabelled folders go in --data, where a model-file teacher labels them)")
        self.file_teacher = self._file_teacher()
        # Dropout draws from tf.random.Generator variables, which checkpoints save and restore.
        tf_keras.backend.experimental.enable_tf_random_generator()
        self.strategy = make_strategy(self.config.strategy)
        # Multi-worker: only the chief writes the run folder; the other workers write the same files
        # (every save must run on all of them) to a private temp folder, deleted at the end: TF's
        # MultiWorkerMirroredStrategy guidance. Everyone resumes from the chief's folder.
        self.chief = bool(self.strategy.extended.should_checkpoint)
        self.write_dir = self.out
        self.model = None  # the last phase's model, once trained
        self.relabel = self._relabel_tables(self.data_dirs + self.val_dirs)
        self.person_free = self._person_free_entries(self.data_dirs)
        # Listed (and checked) now, decoded before the first epoch of a run that trains: `epochs: 0`
        # without --qat only writes its init weights and never needs the pixels, nor the model-file
        # teacher's labels.
        self.train_images = sum(len(folder_sources(f, self.file_teacher is not None,
                                                   self.person_free.get(Path(f).resolve())))
                                for f in self.data_dirs)
        self.val_images = sum(len(folder_sources(f, False)) for f in self.val_dirs)

    @cached_property
    def train_set(self) -> CachedSet:
        size = tuple(int(round(s * self.config.cache_scale)) for s in self.model_config.input_size)
        return load_folders(self.data_dirs, size, self.file_teacher, self.config.pseudo_label_band, self.relabel,
                            self.config.ignore_disputed_background, self.config.crop_to_input_aspect,
                            self.person_free, self.model_config.num_classes)

    @cached_property
    def val_sets(self) -> dict[str, CachedSet]:
        return {_set_name(v, self.val_dirs): load_folder(v, self.model_config.input_size, masks_at_size=False,
                                                         relabel=self.relabel.get(Path(v).resolve()),
                                                         crop=self.config.crop_to_input_aspect,
                                                         num_classes=self.model_config.num_classes)
                for v in self.val_dirs}

    @cached_property
    def steps(self) -> int:
        return steps_per_epoch(self.train_set, self.config)

    def _relabel_tables(self, folders) -> dict:
        """The config's class maps as lookup tables by resolved folder; each must name a given folder
        and map onto this model's classes."""
        tables = {}
        for key, class_map in _by_folder("class_maps", self.config.class_maps, folders, "--data or --val"):
            targets = [t for _, t in class_map.classes] + [class_map.other]
            bad = [t for t in targets if t != 255 and t >= self.model_config.num_classes]
            if bad:
                raise ConfigError(f"class_maps[{class_map.folder}] maps to class {bad[0]}, but the model has "
                                  f"{self.model_config.num_classes} classes (0-{self.model_config.num_classes - 1}"
                                  ", or 255 to ignore)")
            tables[key] = class_map.lookup()
        return tables

    def _person_free_entries(self, folders) -> dict:
        """The config's person_free entries by resolved folder; each must name an unlabelled --data
        folder, and each of its patterns match one of that folder's images."""
        from edge_deeplab.datasets import is_unlabelled, list_images
        entries = {}
        for key, entry in _by_folder("person_free", self.config.person_free, folders, "--data"):
            if not is_unlabelled(key):
                raise ConfigError(f"person_free names {entry.folder}, which has masks/; it is for unlabelled "
                                  "folders (a labelled one says where people are already)")
            unmatched = entry.unmatched([path.stem for path in list_images(key)])
            if unmatched:
                raise ConfigError(f"person_free[{entry.folder}]: no image matches {unmatched[0]!r}; "
                                  "patterns are file stems, e.g. bear_*")
            entries[key] = entry
        return entries

    def _file_teacher(self):
        from edge_deeplab.train.file_teacher import file_teacher, is_model_file
        if not is_model_file(self.config.teacher):
            return None
        if self.model_config.num_classes != 2:
            raise ConfigError(f"teacher {self.config.teacher!r} is a person segmentation model file; it "
                              f"can teach a 2-class (background, person) model, not "
                              f"{self.model_config.num_classes} classes")
        teacher = file_teacher([self.config.teacher, *self.config.teacher_ensemble],
                               tiles=self.config.teacher_tiles, tile_aspect=self.config.teacher_tile_aspect)
        print(f"teacher {teacher.path}: pseudo-labels for folders without masks/"
              + (f", distillation weight {self.config.distill_weight:g}" if self.config.distill_weight else ""),
              file=sys.stderr, flush=True)
        return teacher

    # -- phases --------------------------------------------------------------------------------
    def run(self, qat: bool = False, resume: bool = False) -> dict:
        """Train into the output folder; ``qat``: then QAT fine-tuning (needs qat_epochs >= 1);
        ``resume``: continue its last checkpoint, with its config (a longer schedule allowed)."""
        # Before anything is written: a refused resume leaves the folder matching its weights.
        check_run(self.spec, self.out, qat, resume)
        state_dir = self.out / "state"
        if state_dir.exists() and not resume:
            raise ConfigError(f"{self.out} already holds a training run; pass --resume to continue it "
                              "or choose another --out")
        if not resume:  # before any image is decoded (a resumed run restores its state instead)
            for option, path in self._init_files():
                if not path.is_file():
                    raise DatasetError(f"{option} {path}: no such file")
            if self.config.init == "weights_by_name":
                self._load_donor()  # a donor without weights or model config fails here, not after the data
        if not self.chief:
            self.write_dir = Path(tempfile.mkdtemp(prefix="edge_deeplab_worker_"))
            try:
                return self._train(qat)
            finally:
                shutil.rmtree(self.write_dir, ignore_errors=True)
        fresh = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            summary = self._train(qat)
        except BaseException:
            if fresh and not state_dir.exists():  # failed before anything resumable: leave no half-run
                shutil.rmtree(self.out, ignore_errors=True)
            raise
        return summary

    def _train(self, qat: bool) -> dict:
        if self.config.epochs or qat:  # run() refused --qat with qat_epochs: 0
            # Every folder is decoded, and its masks checked, before the first epoch: a bad val mask
            # fails the run now rather than an epoch in.
            self.train_set, self.val_sets  # noqa: B018 (cached properties)
        self.spec.save(self.write_dir / "config.yaml")
        self.model_config.save(self.write_dir / "model.json")
        started = time.time()
        from edge_deeplab.models import build_model
        float_history = self._phase("float", lambda: build_model(self.model_config), self.config.epochs,
                                    self.config.learning_rate, "best.weights.h5", init=True)
        qat_history = []
        if qat:
            qat_history = self._phase("qat", self._qat_model, self.config.qat_epochs,
                                      self.config.qat_learning_rate, "qat.weights.h5")
        summary = self._summary(float_history, qat_history, time.time() - started)
        atomic_write_text(self.write_dir / "history.json",
                          json.dumps({"float": float_history, "qat": qat_history}, indent=2))
        atomic_write_text(self.write_dir / "summary.json", json.dumps(summary, indent=2))
        return summary

    def _init_files(self) -> list[tuple[str, Path]]:
        """(option, path) of the weights files ``init: weights`` / ``weights_mean`` load as they are."""
        if self.config.init == "weights":
            return [("init_weights", Path(self.config.init_weights))]
        if self.config.init == "weights_mean":
            return [("init_weights_mean", Path(path)) for path in self.config.init_weights_mean]
        return []

    @cached_property
    def _donor(self):
        """``init: weights_by_name``'s trained model."""
        return self._trained_source(self.config.init_weights, "init_weights")

    def _load_donor(self) -> None:
        """Load (and cache) the donor now, so a bad one is reported before any image is decoded."""
        _ = self._donor

    def _init_from_weights(self, model) -> None:
        from edge_deeplab.sources import load_matching_weights, load_weights
        if self.config.init == "weights":
            load_weights(model, Path(self.config.init_weights), hint="init: weights takes the best.weights.h5 "
                         "of a run with the same model config (init: weights_by_name loads the layers that match)")
            return
        if self.config.init == "weights_mean":
            ingredients = []
            for _, path in self._init_files():
                load_weights(model, path, hint="init: weights_mean averages best.weights.h5 files of runs "
                             "with the same model config")
                ingredients.append(model.get_weights())
            # Floats averaged; anything else (a dropout generator's state) kept from the first.
            model.set_weights([np.mean(arrays, axis=0).astype(arrays[0].dtype)
                               if np.issubdtype(arrays[0].dtype, np.floating) else arrays[0]
                               for arrays in zip(*ingredients)])
            print(f"init: the mean of {', '.join(self.config.init_weights_mean)}", file=sys.stderr, flush=True)
            return
        donor = self._donor
        fresh, narrowed, widened = load_matching_weights(model, donor)
        print(f"init: layers from {donor.weights}; new, as initialized: {', '.join(fresh) or 'none'}"
              + (f"; narrowed to their leading channels: {', '.join(narrowed)}" if narrowed else "")
              + (f"; widened (the donor's in their leading channels): {', '.join(widened)}"
                 if widened else ""),
              file=sys.stderr, flush=True)

    def _qat_model(self):
        from edge_deeplab.models import build_model
        from edge_deeplab.models.quantize import qat_model
        model = build_model(self.model_config)
        # A worker's own copy when this process wrote one; the chief's after a resume.
        best = self.write_dir / "best.weights.h5"
        model.load_weights(str(best if best.is_file() else self.out / "best.weights.h5"))
        return qat_model(model)

    def _phase(self, name, build, epochs, learning_rate, best_file, init=False) -> list[dict]:
        # Model building draws from the global seeds (initializers, dropout generators). Seeding per
        # phase makes a phase independent of what the process did before it: a QAT phase resumed in
        # a new process, after a float phase that built an init-weights donor model, matches one run.
        teacher = self._teacher() if epochs else None  # before seeding: the model's draws do not depend on it
        tf_keras.utils.set_random_seed(self.config.seed)
        steps = self.steps if epochs else 1  # a phase that trains nothing never steps its optimizer
        with self.strategy.scope():
            model = build()
            set_bn_momentum(model, self.config.bn_momentum)
            optimizer = make_optimizer(self.config, learning_rate, epochs * steps, steps, warmup=name == "float")
        # Bookkeeping variables outside the scope: each worker keeps its own, updated identically
        # (MultiWorkerMirroredStrategy cannot broadcast the history's string variable).
        state = TrainState(self.write_dir / "state" / name, model, optimizer,
                           restore_from=self.out / "state" / name)
        self.model = model
        if not state.restore():
            if init and self.config.init == "imagenet":
                from edge_deeplab.train.pretrained import import_mobilenet_v2
                import_mobilenet_v2(model, self.config.init_weights)
            if init and self.config.init in ("weights", "weights_by_name", "weights_mean"):
                self._init_from_weights(model)
            if name == "qat" and self.config.qat_calibration_batches:
                from edge_deeplab.train.qat import calibrate_ranges
                batches = train_dataset(self.train_set, self.config, self.model_config.input_size, 30_000)
                calibrate_ranges(model, batches.take(self.config.qat_calibration_batches),
                                 self.strategy, tf)
        if epochs == 0 and init and not (self.write_dir / best_file).is_file():
            # `epochs: 0`: the init weights are the float model (e.g. `--qat` alone from shipped weights).
            model.save_weights(str(self.write_dir / best_file))
        if int(state.epoch.numpy()) >= epochs:
            return state.history
        step_fn = self._train_step(model, optimizer, teacher)
        while int(state.epoch.numpy()) < epochs:
            self._epoch(name, model, optimizer, state, step_fn, epochs, best_file)
        return state.history

    def _teacher(self):
        """The Keras distillation teacher (float weights, built once), or None when nothing is
        distilled from one (a model-file teacher's targets come precomputed with the batches)."""
        if not self.config.teacher or not self.config.distill_weight or self.file_teacher is not None:
            return None
        if self._teacher_model is None:
            with self.strategy.scope():
                self._teacher_model = self._load_teacher()
        return self._teacher_model

    @staticmethod
    def _trained_source(spec: str, role: str):
        from edge_deeplab.sources import trained_source
        try:
            return trained_source(spec, role)
        except BadModelError as exc:
            raise ConfigError(str(exc)) from None
        except UnknownChoiceError as exc:
            raise ConfigError(f"{role}: {exc}") from None

    def _load_teacher(self):
        source = self._trained_source(self.config.teacher, "teacher")
        if source.config.num_classes != self.model_config.num_classes:
            raise ConfigError(f"teacher {self.config.teacher!r} predicts {source.config.num_classes} "
                              f"classes, the model {self.model_config.num_classes}: distillation needs the "
                              "same classes")
        print(f"distilling from {source.weights} (weight {self.config.distill_weight:g}, temperature "
              f"{self.config.distill_temperature:g})", file=sys.stderr, flush=True)
        return source.model

    def _train_step(self, model, optimizer, teacher=None):
        loss_fn = SegmentationLoss(self.config, self.model_config.num_classes)
        replicas = self.strategy.num_replicas_in_sync
        size = tuple(self.model_config.input_size)

        def teacher_logits(images, probability=None):
            if probability is not None:  # a model file's person probability, as 2-class logits
                p = tf.clip_by_value(probability, 1e-4, 1.0 - 1e-4)
                return tf.stack([tf.math.log(1.0 - p), tf.math.log(p)], axis=-1)
            if teacher is None:
                return None
            teacher_size = tuple(teacher.input_shape[1:3])
            if teacher_size != size:  # the teacher sees the same crops at its own input size
                images = tf.image.resize(images, teacher_size)
            logits = teacher(images, training=False)
            return logits if teacher_size == size else tf.image.resize(logits, size)

        def replica_step(images, labels, probability=None):
            targets = teacher_logits(images, probability if self.config.distill_weight else None)
            with tf.GradientTape() as tape:
                logits = model(images, training=True)
                loss = loss_fn(labels, logits, targets) / replicas
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        @tf.function
        def step(images, labels, *probability):
            losses = self.strategy.run(replica_step, args=(images, labels, *probability))
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)
        return step

    def _epoch(self, name, model, optimizer, state, step_fn, epochs, best_file) -> None:
        from tqdm import tqdm

        from edge_deeplab.progress import BAR_STREAM
        epoch, start = int(state.epoch.numpy()), int(state.step.numpy())
        data = train_dataset(self.train_set, self.config, self.model_config.input_size,
                             epoch + (10_000 if name == "qat" else 0), start)
        batches = self.strategy.experimental_distribute_dataset(data)
        bar = tqdm(total=self.steps, initial=start, desc=f"{name} {epoch + 1}/{epochs}",
                   disable=not self.progress, file=BAR_STREAM, mininterval=1 if sys.stderr.isatty() else 30)
        with bar:  # closed (its line ended) on Ctrl-C or SIGTERM too, before the CLI says what is kept
            for batch in batches:
                loss = float(step_fn(*batch))
                state.step.assign_add(1)
                state.loss_sum.assign_add(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{state.loss_sum.numpy() / int(state.step.numpy()):.4f}")
                every = self.config.checkpoint_steps
                if every and int(state.step.numpy()) % every == 0 and int(state.step.numpy()) < self.steps:
                    state.save()
        record = {"epoch": epoch + 1, "loss": round(float(state.loss_sum.numpy()) / max(self.steps, 1), 6)}
        last = epoch + 1 == epochs
        validating = bool(self.val_sets) and ((epoch + 1) % self.config.val_every == 0 or last)
        with averaged_weights(model, optimizer):  # `ema_decay`: the average is what is scored and kept
            # BN statistics only matter to what is scored or kept; training itself uses batch statistics.
            if self.config.bn_recalibration_batches and (validating or last):
                self._recalibrate_bn(model, epoch)
            if validating:
                record.update(self._validate(model))
            # With a val set only scored epochs compete; without one the latest is the best.
            score = record.get("val_miou") if self.val_sets else float(epoch)
            if score is not None and score > float(state.best.numpy()):
                state.best.assign(score)
                record["best"] = True
                self._save_weights(model, best_file)
            if name == "float":
                self._save_weights(model, "last.weights.h5")
        self._log(name, record)
        state.append_history(record)
        state.epoch.assign_add(1)
        state.step.assign(0)
        state.loss_sum.assign(0.0)
        state.save()

    def _recalibrate_bn(self, model, epoch: int) -> None:
        """Forward passes in training mode (no weight update) so the BN moving averages describe the
        current weights; data from a seeded stream of its own, so runs and resumes stay identical."""
        data = train_dataset(self.train_set, self.config, self.model_config.input_size,
                             epoch + 20_000).take(self.config.bn_recalibration_batches)
        forward = tf.function(lambda images: self.strategy.run(
            lambda x: model(x, training=True), args=(images,)))
        for batch in self.strategy.experimental_distribute_dataset(data):
            forward(batch[0])

    def _validate(self, model) -> dict:
        """val_* metrics of the one val set; with several, val_miou/val_boundary_iou are their means
        and each set's figures are kept under val_<set>_*."""
        scores = {name: validate(model, data, self.model_config.num_classes)
                  for name, data in self.val_sets.items()}
        if len(scores) == 1:
            return {f"val_{k}": v for k, v in next(iter(scores.values())).items()}
        record = {f"val_{name}_{k}": v for name, result in scores.items() for k, v in result.items()
                  if k in ("miou", "iou", "boundary_iou")}
        for key in ("miou", "boundary_iou"):
            record[f"val_{key}"] = float(np.mean([result[key] for result in scores.values()]))
        return record

    def _save_weights(self, model, file_name: str) -> None:
        # h5 writers pick the format from the suffix: write a temp .h5 beside, then replace.
        tmp = self.write_dir / "state" / f".{file_name}"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(tmp))
        tmp.replace(self.write_dir / file_name)

    def _log(self, name: str, record: dict) -> None:
        if not self.progress:
            return
        parts = [f"{name} epoch {record['epoch']}", f"loss {record['loss']:.4f}"]
        for key in ("val_miou", "val_boundary_iou"):
            if record.get(key) is not None:
                parts.append(f"{key[4:]} {record[key]:.4f}")
        if len(self.val_sets) > 1 and record.get("val_miou") is not None:
            parts.append("(" + ", ".join(f"{name} {record[f'val_{name}_miou']:.4f}"
                                         for name in self.val_sets) + ")")
        print("  ".join(parts) + ("  (best)" if record.get("best") else ""), file=sys.stderr, flush=True)

    def _summary(self, float_history, qat_history, seconds) -> dict:
        def best(history):
            scored = [r for r in history if r.get("val_miou") is not None]
            return max(scored, key=lambda r: r["val_miou"]) if scored else (history[-1] if history else None)
        summary = {"out": str(self.out), "model": self.model_config.to_dict(), "epochs": len(float_history),
                   "train_images": self.train_images,
                   "strategy": self.config.strategy, "replicas": self.strategy.num_replicas_in_sync,
                   "val_images": self.val_images,
                   "seconds": round(seconds, 1), "float_best": best(float_history),
                   "weights": str(self.out / "best.weights.h5")}
        if qat_history:
            summary.update(qat_best=best(qat_history), qat_epochs=len(qat_history),
                           qat_weights=str(self.out / "qat.weights.h5"))
        return summary


def _by_folder(option: str, entries, folders, kind: str):
    """(resolved folder, entry) of a config option's per-folder entries; each must name one of this
    run's ``folders``, once (two entries for one folder would leave one of them silently unused)."""
    given = {Path(f).resolve() for f in folders}
    seen = set()
    for entry in entries:
        key = Path(entry.folder).resolve()
        if key not in given:
            raise ConfigError(f"{option} names {entry.folder}, which is not a {kind} folder of this run; "
                              "fix the path or drop the entry")
        if key in seen:
            raise ConfigError(f"{option} names {entry.folder} twice; merge the two entries")
        seen.add(key)
        yield key, entry


def _folders(spec) -> list:
    """None, one folder or several -> a list of folders."""
    if spec is None:
        return []
    return [spec] if isinstance(spec, (str, Path)) else list(spec)


def _set_name(folder, folders) -> str:
    """A short, unique name for a val folder: its own name, with its parent's when they clash
    (portrait/val and people/val -> portrait, people)."""
    path = Path(folder)
    if sum(Path(f).name == path.name for f in folders) == 1:
        return path.name
    return path.parent.name or path.name


def set_bn_momentum(model, momentum: float) -> None:
    """Set every batch norm's momentum, including those inside QAT wrappers."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, tf_keras.layers.BatchNormalization):
            inner.momentum = momentum


def format_summary(summary: dict, calibration: str | None = None) -> str:
    """The end-of-training report printed by the CLI, ending in an export command that runs as printed:
    a QAT run's int8 carries its learned ranges; a float run's is calibrated on ``calibration`` (the
    training images), or without it the command exports float32."""
    lines = [f"trained {summary['epochs']} epochs on {summary['train_images']} images "
             f"in {summary['seconds'] / 60:.1f} min -> {summary['out']}"]
    for key, label in (("float_best", "float"), ("qat_best", "qat")):
        record = summary.get(key)
        if not record:
            continue
        miou, biou = record.get("val_miou"), record.get("val_boundary_iou")
        metric = (f"val mIoU {miou:.4f}, boundary IoU {biou:.4f}" if miou is not None and biou is not None
                  else "no val set")
        lines.append(f"  {label:5s} best epoch {record['epoch']}: {metric}")
    lines.append(f"  weights: {summary['weights']}" + (f", {summary['qat_weights']}"
                                                       if "qat_weights" in summary else ""))
    command = f"edge-deeplab export {shlex.quote(summary['out'])}"
    if "qat_weights" in summary:
        command += " --format tflite-int8"
    elif calibration:
        command += f" --format tflite-int8 --calibration {shlex.quote(str(calibration))}"
    else:
        command += " --format tflite"
    lines.append(f"  export:  {command}")
    return "\n".join(lines)


