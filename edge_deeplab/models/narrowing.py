"""Which channels a narrower model keeps when it starts from a trained wider one (``weights_by_name``),
and which blocks a wider one may grow.

Narrowed layers take their leading channels, the same indices in every layer, so residual sums still
add matching channels. Inside an inverted residual the expanded channels are private to the block, so
they are first reordered most important first: that reorder leaves the block's function unchanged,
and keeping the leading channels then keeps the ones that carry the most signal.
"""
from __future__ import annotations

import numpy as np

BN_EPSILON = 1e-3  # the builders' batch-norm epsilon
PARTS = ("expand", "expand_bn", "depthwise", "depthwise_bn", "project")  # layers of {block}_...


def rank_expansions(stored: dict[str, list[np.ndarray]],
                    targets: dict[str, list[tuple[int, ...]]]) -> list[str]:
    """Reorder in place, in ``stored`` (layer name -> weight arrays), the expanded channels of each
    inverted residual that ``targets`` (layer name -> weight shapes) narrows; returns those blocks.

    A channel's importance is the scale its depthwise batch norm gives it times the L2 norm of its
    projection weights. Blocks with squeeze-excite (which also reads the expanded channels) keep their
    order.
    """
    ranked = []
    for name in list(stored):
        if not name.endswith("_expand"):
            continue
        block = name[: -len("_expand")]
        parts = [f"{block}_{part}" for part in PARTS]
        if not all(p in stored and p in targets for p in parts):
            continue
        if any(n.startswith(f"{block}_se") for n in stored):
            continue
        if targets[name][0][-1] >= stored[name][0].shape[-1]:
            continue
        gamma, _, _, variance = stored[f"{block}_depthwise_bn"]
        projection = stored[f"{block}_project"][0]  # (1, 1, expanded, out)
        scale = np.abs(gamma) / np.sqrt(variance + BN_EPSILON)
        importance = scale * np.linalg.norm(projection[0, 0], axis=1)
        order = np.argsort(-importance, kind="stable")
        stored[f"{block}_expand"][0] = stored[f"{block}_expand"][0][..., order]
        stored[f"{block}_depthwise"][0] = stored[f"{block}_depthwise"][0][:, :, order, :]
        stored[f"{block}_project"][0] = projection[:, :, order, :]
        for norm in (f"{block}_expand_bn", f"{block}_depthwise_bn"):
            stored[norm] = [w[order] for w in stored[norm]]
        ranked.append(block)
    return ranked


def widened_blocks(stored: dict[str, list[np.ndarray]], targets: dict[str, list[tuple[int, ...]]]) -> set[str]:
    """The inverted residuals (``block3``, ...) whose expanded channels ``targets`` widens while their
    input and output channels stay: only there do new channels stay private to the block, so a widened
    copy can start as the stored function (a wider residual stream would shift concatenated channels)."""
    blocks = set()
    for name in stored:
        if not name.endswith("_expand"):
            continue
        block = name[: -len("_expand")]
        project = f"{block}_project"
        if not all(p in stored and p in targets for p in (name, project)):
            continue
        expand, target_expand = stored[name][0].shape, targets[name][0]  # (1, 1, in, expanded)
        target_project = targets[project][0]  # (1, 1, expanded, out)
        if (target_expand[-1] > expand[-1] and target_expand[:-1] == expand[:-1]
                and target_project == (*stored[project][0].shape[:2], target_expand[-1],
                                       stored[project][0].shape[-1])):
            blocks.add(block)
    return blocks
