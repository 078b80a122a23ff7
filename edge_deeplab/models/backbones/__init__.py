"""Backbones: ``build(x, width, output_stride, reduced_tail, expansion_scale, expansion_blocks)`` returns
``{nominal stride: feature tensor}`` for strides 4-32.

A tap's real resolution is ``min(stride, output_stride)``: past the output stride, strides become
atrous rates.
"""
