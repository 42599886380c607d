"""Per-layer analysis of a Keras model before it is compressed (``edgekit analyze``).

:mod:`edgekit.analyze.fakequant` simulates int8 on one layer or on all of them;
:mod:`edgekit.analyze.sensitivity` measures what pruning, filter removal and int8 cost each layer;
:mod:`edgekit.analyze.parallel` says which executor that fans out over.
"""
