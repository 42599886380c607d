"""Runtime sessions and host probing: the leaf package that bench, evaluate and export all use.

Every module here imports only the standard library, NumPy and the runtime it opens
(``onnxruntime``, ``ai_edge_litert``/``tflite_runtime``), and nothing else of edgekit, so
:func:`edgekit.runtime.archive.runner_archive` can ship :mod:`~edgekit.runtime.runner` with the
sessions it uses to an emulated or remote machine as one file.

* :mod:`~edgekit.runtime.sessions`: ONNX Runtime and LiteRT sessions that report the providers that really ran;
* :mod:`~edgekit.runtime.measure`: timing (percentiles), batched prediction, peak memory;
* :mod:`~edgekit.runtime.runner`: the device-side benchmark script (one request in, JSON out);
* :mod:`~edgekit.runtime.host`: what this machine has (CPU model and flags, ORT providers, GPU);
* :mod:`~edgekit.runtime.peak`: this machine's measured fp32/int8 GEMM throughput (a row's "% of peak").
"""
