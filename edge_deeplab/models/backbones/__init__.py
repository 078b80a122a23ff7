"""Backbones: ``build(x, width, output_stride, reduced_tail) -> {nominal stride: feature tensor}``, 4-32.

A tap's real resolution is ``min(stride, output_stride)``: past the output stride, strides become
atrous rates.
"""
