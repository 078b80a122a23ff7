"""NAS-lite: which DeepLab fits a latency budget on a device, and how good can it be?

space.py (choices -> ModelConfig), kernels.py + micro.py (a model as kernels; one-kernel models),
measure.py (convert + time on a runtime), table.py (the on-disk latency lookup table),
latency.py (kernel costs + least-squares predictor), proxy.py (short training via the Trainer),
search.py (evolution warm-started from the zoo, resumable), report.py (search.json, pareto.png, best export),
run.py (the ``search`` command end to end).
"""
