"""Writes BodyPix's person-segmentation head as a model file a runtime can run (a training teacher).

``../shared/models/edgetpu_pairs/bodypix_mobilenet_v1_075_512_512_16_quant_decoder.tflite`` (Coral's
test data, Apache-2.0) ends in ``PosenetDecoderOp``, a custom op only Coral's runtime registers, so
LiteRT refuses the whole file. Its ``float_segments`` output (33x33 person logits for a 512x512 input)
does not depend on that op: this drops the op and the pose outputs and leaves the rest of the graph
as it was. From the repo root:

    python configs/bodypix_teacher.py [SOURCE] [DEST]   (default DEST: runs/teachers/bodypix_segments.tflite)
"""
import sys
from pathlib import Path

SOURCE = "../shared/models/edgetpu_pairs/bodypix_mobilenet_v1_075_512_512_16_quant_decoder.tflite"
DEST = "runs/teachers/bodypix_segments.tflite"
CUSTOM_OP, SEGMENTS = b"PosenetDecoderOp", b"float_segments"


def main(source: str = SOURCE, dest: str = DEST) -> None:
    from tensorflow.lite.tools import flatbuffer_utils
    expected = (f"error: {source} is not the BodyPix decoder model this script expects "
                f"(one {CUSTOM_OP.decode()} op and a {SEGMENTS.decode()} output)")
    if not Path(source).is_file():
        sys.exit(f"error: {source}: no such file (the BodyPix model is in ../shared/models/edgetpu_pairs)")
    try:
        model = flatbuffer_utils.read_model(source)
        graph = model.subgraphs[0]
    except Exception:  # the flatbuffer reader fails in many ways on a file that is not a .tflite
        sys.exit(expected)
    codes = model.operatorCodes
    kept = [op for op in graph.operators if codes[op.opcodeIndex].customCode != CUSTOM_OP]
    segments = [i for i in graph.outputs if graph.tensors[i].name == SEGMENTS]
    if len(kept) != len(graph.operators) - 1 or len(segments) != 1:
        sys.exit(expected)
    graph.operators, graph.outputs = kept, segments
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    flatbuffer_utils.write_model(model, dest)
    print(f"{dest}: BodyPix person logits (33x33 for a 512x512 input)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
