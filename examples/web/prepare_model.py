"""Put an exported ONNX model where the web page looks for it (model.onnx), with labels.json as a fallback.

    python prepare_model.py runs/mine/models/pruned-int8.onnx [--labels 0,1,2,...]

The page reads labels and preprocessing from the model's own metadata (edgekit
embeds them in ONNX ``metadata_props``). labels.json is written only for a model
that carries no labels, from ``--labels``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def embedded_labels(model: Path) -> list[str] | None:
    """Labels from the model's metadata_props ('edgekit' document or a plain 'labels' list), if any."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    doc = json.loads(props["edgekit"]) if "edgekit" in props else {"labels": json.loads(props.get("labels", "null"))}
    labels = doc.get("labels")
    return [str(x) for x in labels] if isinstance(labels, list) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="an .onnx file exported by edgekit")
    ap.add_argument("--labels", help="comma-separated class names, for a model without embedded labels")
    ap.add_argument("--dest", type=Path, default=HERE, help="folder of the web page (default: this one)")
    args = ap.parse_args(argv)
    if args.model.suffix != ".onnx" or not args.model.is_file():
        print(f"prepare_model: {args.model}: not an .onnx file", file=sys.stderr)
        return 2
    labels = embedded_labels(args.model)
    shutil.copyfile(args.model, args.dest / "model.onnx")
    labels_file = args.dest / "labels.json"
    if labels:
        print(f"model.onnx: {len(labels)} labels embedded in the model ({', '.join(labels[:5])}...)")
        labels_file.unlink(missing_ok=True)
    elif args.labels:
        labels_file.write_text(json.dumps(args.labels.split(",")) + "\n")
        print(f"model.onnx has no embedded labels: wrote {labels_file}")
    else:
        print("model.onnx has no embedded labels and --labels was not given: the page will show class indices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
