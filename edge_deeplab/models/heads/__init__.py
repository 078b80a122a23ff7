"""Heads: ``build(taps, config) -> logits`` at the head's own resolution (upsampled by the model)."""
