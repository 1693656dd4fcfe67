#!/usr/bin/env python3
"""Optional: export a few corpus models with a current torch (default dynamo
exporter, its default opset >= 18) into test/models/opset18plus/.

Needs a venv with PyPI torch, torchvision, onnx, onnxscript (Debian's torch 1.13
is too old), e.g.:
    /usr/bin/python3 -m venv /tmp/venv-new
    /tmp/venv-new/bin/pip install torch torchvision onnx onnxscript pillow
    /tmp/venv-new/bin/python tools/export_opset18plus.py
    /usr/bin/python3 tools/export_corpus.py --index-only   # refresh README/SHA256SUMS

Only models without BatchNormalization are exported: the current default
exporter writes BatchNormalization without training_mode (inference semantics,
and with optimize=True folds it into Conv) even for a module in train mode, so a
CNN training graph from it would not be faithful.  Model definitions, seeds,
dim names and weight stripping are shared with export_corpus.py.
"""
import os
import sys

import onnx
import torch
import torchvision
import onnxscript
from torch.export import Dim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_corpus as ec  # noqa: E402

MODELS = ["gpt2"]
SAMPLES = ["tiny_transformer"]


def export(name):
    torch.manual_seed(ec.SEED)
    wrapper, args, names, axes = ec.build(name)
    wrapper.train()
    dims = {"batch": Dim("batch"), "seq": Dim("seq")}
    ds = tuple({ax: dims[d] for ax, d in axes[n].items()} for n in names)
    prog = torch.onnx.export(wrapper, args, None, input_names=names,
                             output_names=["loss"], dynamic_shapes=ds)
    m = prog.model_proto
    m.ClearField("doc_string")
    m.graph.ClearField("doc_string")
    for node in m.graph.node:
        node.ClearField("doc_string")
    m.ClearField("metadata_props")
    return m


def main():
    torch.set_num_threads(1)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test",
                       "models", "opset18plus")
    os.makedirs(out, exist_ok=True)
    for name in MODELS + SAMPLES:
        m = export(name)
        if name in MODELS:
            ec.strip_weights(m, name)
        path = os.path.join(out, name + ".onnx")
        size = ec.write_model(m, path)
        print(name, size, "bytes", len(m.graph.node), "nodes", flush=True)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    with open(os.path.join(out, "VERSIONS.txt"), "w") as f:
        f.write("torch %s, torchvision %s, onnx %s, onnxscript %s; default (dynamo) "
                "exporter, default opset %d; %s stripped like opset14/17, %s inline\n" % (
                    torch.__version__, torchvision.__version__, onnx.__version__,
                    onnxscript.__version__, opset, ", ".join(MODELS), ", ".join(SAMPLES)))


if __name__ == "__main__":
    main()
