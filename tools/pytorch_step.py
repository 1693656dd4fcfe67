#!/usr/bin/env python3
"""PyTorch CPU reference for bench/cpu_vs_pytorch.sh: one training step of a
corpus model (same nn.Module code as tools/export_corpus.py) with AdamW
(lr 1e-3, weight decay 0.01, torch.optim defaults otherwise), repeated.

Run with Debian's interpreter: /usr/bin/python3 tools/pytorch_step.py MODEL
--batch B [--seq S] [--steps N]. Prints one line per step and a final
`median_step_s=...`. Peak memory is measured from outside with GNU time.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import export_corpus as ec  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, default=0)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    wrapper, args, _, _ = ec.build(a.model)
    wrapper.train()
    if a.seq:  # token models: fresh ids of the requested size
        vocab = 50257 if a.model == "gpt2" else 30522
        ids = torch.randint(0, vocab, (a.batch, a.seq))
        args = (ids, ids.clone())
    else:
        x, y = args
        x = torch.randn((a.batch,) + tuple(x.shape[1:]))
        y = torch.randint(0, 1000, (a.batch,) + tuple(y.shape[1:]))
        args = (x, y)
    opt = torch.optim.AdamW(wrapper.parameters(), lr=1e-3, weight_decay=0.01)
    times = []
    for s in range(a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = wrapper(*args)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        times.append(dt)
        print("step %d loss %.6f (%.3f s)" % (s + 1, loss.item(), dt), flush=True)
    print("median_step_s=%.4f threads=%d torch=%s" % (
        statistics.median(times[1:] if len(times) > 1 else times), torch.get_num_threads(),
        torch.__version__))


if __name__ == "__main__":
    main()
