#!/usr/bin/env python3
"""PyTorch side of bench/gpu_bench.sh: one training step (AdamW, lr 1e-3,
weight decay 0.01) of the same nn.Module code memplan's ONNX models were
exported from (tools/export_corpus.py), on a CUDA GPU, repeated.

  gpu_bench_pytorch.py MODEL --batch B [--seq S] [--steps N]
      [--precision fp32|bf16] [--checkpoint] [--out FILE.json]

fp32 runs with TF32 off (torch.backends.*.allow_tf32 = False); bf16 runs the
forward under torch.autocast(dtype=torch.bfloat16). --checkpoint wraps every
block (ResNet stages' Bottlenecks, GPT-2 blocks) in
torch.utils.checkpoint.checkpoint. No fused attention kernels: the model code
is the plain nn.Module of export_corpus.py. Reports the median step time over
steps 2..N (CUDA-synchronized), torch.cuda.max_memory_allocated and
max_memory_reserved, as one JSON object (stdout, and --out).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.utils.checkpoint as cp  # noqa: E402

import export_corpus as ec  # noqa: E402


class Checkpointed(torch.nn.Module):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, *args):
        return cp.checkpoint(self.block, *args, use_reentrant=False)


def checkpoint_blocks(module):
    """Wraps every residual block (torchvision Bottleneck / BasicBlock,
    export_corpus.GPT2Block) in activation checkpointing; returns the count."""
    n = 0
    for name, child in list(module.named_children()):
        kind = type(child).__name__
        if kind in ("Bottleneck", "BasicBlock", "GPT2Block"):
            setattr(module, name, Checkpointed(child))
            n += 1
        else:
            n += checkpoint_blocks(child)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--checkpoint", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    dev = torch.device("cuda")
    wrapper, args, _, _ = ec.build(a.model)
    blocks = checkpoint_blocks(wrapper) if a.checkpoint else 0
    wrapper.to(dev).train()
    if a.seq:
        ids = torch.randint(0, 50257 if a.model == "gpt2" else 30522, (a.batch, a.seq), device=dev)
        args = (ids, ids.clone())
    else:
        x, y = args
        args = (torch.randn((a.batch,) + tuple(x.shape[1:]), device=dev),
                torch.randint(0, 1000, (a.batch,) + tuple(y.shape[1:]), device=dev))
    opt = torch.optim.AdamW(wrapper.parameters(), lr=1e-3, weight_decay=0.01)
    torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for _ in range(a.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = wrapper(*args)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    r = {
        "model": a.model, "batch": a.batch, "seq": a.seq, "precision": a.precision,
        "checkpoint": a.checkpoint, "checkpointed_blocks": blocks,
        "median_step_s": statistics.median(times[1:] if len(times) > 1 else times),
        "max_memory_allocated": torch.cuda.max_memory_allocated(),
        "max_memory_reserved": torch.cuda.max_memory_reserved(),
        "losses": losses, "device": torch.cuda.get_device_name(), "torch": torch.__version__,
    }
    text = json.dumps(r, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
