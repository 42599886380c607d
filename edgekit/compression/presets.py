"""Named ONNX Runtime quantization presets per hardware, as Optimum has them.

Each preset is an :class:`OrtQuantConfig`; the comment says why it suits the hardware.
Sources: ONNX Runtime's quantization guide ("Data type selection", and the FAQ "When to
use reduce-range and per-channel quantization?"), Optimum's ``AutoQuantizationConfig``
and TensorRT's "Explicit Quantization" guide. All presets write QDQ graphs with int8
weight initializers feeding DequantizeLinear (the file is int8-sized on disk).

The CPU presets keep ``float_thin_convs`` on: ONNX Runtime's int8 convolution is slower than its fp32
one when a layer reduces over fewer than ``THIN_CONV_DEPTH`` values (a first layer on 1-channel images),
so that layer stays float and the rest is laid out the way ORT fuses it, with uint8 activations where a tensor
feeds a residual join (see :mod:`edgekit.compression.quantize`; measured by ``benchmarks/int8_speed.py`` and
``benchmarks/int8_zoo.py``).
"""

from __future__ import annotations

from edgekit.compression.quantize import OrtQuantConfig

PRESETS: dict[str, OrtQuantConfig] = {
    # x86 with AVX2 (or AVX-512 without VNNI): ONNX Runtime runs int8 GEMM/conv as U8S8 with
    # VPMADDUBSW, which adds pairs of u8×s8 products into a saturating int16 — large weights
    # and activations can clip (signed QDQ activations are shifted to u8 on x86, so S8S8 hits
    # this too). ORT's guide: reduce_range (7-bit weights) "is designed for the U8S8 format on
    # AVX2 and AVX512 (non-VNNI) machines", and with per-channel weights "you will generally
    # need to enable reduce-range as well". S8S8 QDQ is ORT's recommended default format.
    "avx2": OrtQuantConfig(activation_type="int8", weight_type="int8", per_channel=True, reduce_range=True),
    # x86 with AVX-512 VNNI (Cascade Lake and later; AVX-VNNI on Alder Lake): VPDPBUSD multiplies
    # u8×s8 and accumulates straight into int32, so nothing saturates; ORT: reduce_range "is not
    # needed on machines supporting VNNI". Full 8-bit per-channel weights keep the most accuracy.
    "avx512_vnni": OrtQuantConfig(activation_type="int8", weight_type="int8", per_channel=True, reduce_range=False),
    # ARM64 (NEON; SDOT/UDOT on Armv8.2+ such as Cortex-A76 / Neoverse-N1): products accumulate
    # into int32, "no such [saturation] issue" per ORT, so full range. S8S8 QDQ is ORT's default
    # (Optimum picks U8S8 for lower-end cores; the int8 weights are stored the same either way).
    "arm64": OrtQuantConfig(activation_type="int8", weight_type="int8", per_channel=True, reduce_range=False),
    # TensorRT (explicit quantization from Q/DQ nodes): int8 is symmetric only — zero point 0 for
    # activations and weights — and each Q/DQ pair should feed one consumer (DedicatedQDQPair,
    # as Optimum sets). Pre-quantized int8 weights behind DequantizeLinear are accepted.
    # The float-first-layer layout is a CPU-kernel workaround; TensorRT picks its own kernels per layer, so
    # it gets every layer in Q/DQ form.
    "tensorrt": OrtQuantConfig(activation_type="int8", weight_type="int8", per_channel=True, reduce_range=False,
                               symmetric_activations=True, dedicated_qdq_pair=True, float_thin_convs=False),
}
"""Preset name → ONNX Runtime static quantization settings (the one presets table)."""
