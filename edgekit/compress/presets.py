"""Named ONNX Runtime quantization presets per hardware, as Optimum has them.

Each preset is an :class:`OrtQuantConfig`; the comment says why it suits the hardware.
"""

from __future__ import annotations

from edgekit.compress.quantize import OrtQuantConfig

PRESETS: dict[str, OrtQuantConfig] = {
    # x86 with AVX2 but no VNNI: the int8 dot product (vpmaddubsw) adds pairs of products into
    # int16 and can saturate; 7-bit weights (reduce_range) keep the sums in range. S8S8 QDQ is
    # the fast static format on x86 in ONNX Runtime; per-channel scales keep conv accuracy.
    "avx2": OrtQuantConfig(activation_type="int8", weight_type="int8", per_channel=True, reduce_range=True),
    # x86 with AVX-512 VNNI (Cascade Lake and later): vpdpbusd accumulates straight into int32,
    # so there is no saturation and full 8-bit weights are safe.
    "avx512_vnni": OrtQuantConfig(activation_type="int8", weight_type="int8", per_channel=True, reduce_range=False),
    # ARM64 (NEON sdot/udot, e.g. Cortex-A76 / Neoverse-N1): int32 accumulation, no saturation;
    # signed activations and weights with per-channel scales.
    "arm64": OrtQuantConfig(activation_type="int8", weight_type="int8", per_channel=True, reduce_range=False),
    # TensorRT reads QDQ graphs but only symmetric int8 (zero point 0) for activations and weights.
    "tensorrt": OrtQuantConfig(activation_type="int8", weight_type="int8", per_channel=True, reduce_range=False,
                               symmetric_activations=True),
}
"""Preset name → ONNX Runtime static quantization settings (the one presets table)."""
