#!/usr/bin/env python3
"""The PyTorch peer of `heatformer bench train`: the same models (tests/fixtures/torch_models.py,
heatformer's parameter names and shapes), the same batch, AdamW, one training step (forward,
cross-entropy, backward, update) timed after warm-up with CUDA synchronisation. Modes: fp32 with
TF32 off (the like-for-like peer of heatformer's f32 SIMT kernels), tf32, and bf16 autocast.
Attention through scaled_dot_product_attention (PyTorch 2.0+), as PyTorch users write it.

    python3 bench/peers/torch_train.py --models models.json --batch 16,32 --out torch.json

models.json is `heatformer models --json`; --only picks presets by name. On a machine without
CUDA it times fp32 on the CPU (a check of the script, not a peer).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "fixtures"))
import torch_models as tm  # noqa: E402

FAMILY = {"vanilla": tm.vanilla, "vivit-m1": tm.vivit, "vivit-m2": tm.vivit, "motionbert": tm.dstformer}


def build(config, device):
    i = config["input"]
    shape = (1, i["channels"], i["frames"], i["size"], i["size"]) if i["kind"] == "heatmap" else \
        (1, i["persons"], i["frames"], i["channels"], 3)
    params = {}
    for name, s in tm.params_of(config, shape).items():
        init = torch.ones(s) if name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "bn.weight")) \
            else torch.randn(s) * 0.02
        params[name] = init.to(device).requires_grad_(True)
    return params, shape


def step_fn(config, params, x, y, opt, autocast):
    f = FAMILY[config["family"]]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = f(x, params, config)
        F.cross_entropy(logits.float(), y).backward()
        opt.step()
    return step


def reference_step(device, autocast):
    """bench train's reference step: two pre-norm blocks (dim 128, 4 heads, MLP x4) on
    (8, 64, 128) inputs, cross-entropy over the 8 x 64 tokens and 128 classes, AdamW."""
    shapes = {}
    for i in range(2):
        n = f"{i}"
        shapes.update({f"{n}.norm1.weight": (128,), f"{n}.norm1.bias": (128,),
                       f"{n}.attn.qkv.weight": (384, 128), f"{n}.attn.qkv.bias": (384,),
                       f"{n}.attn.proj.weight": (128, 128), f"{n}.attn.proj.bias": (128,),
                       f"{n}.norm2.weight": (128,), f"{n}.norm2.bias": (128,),
                       f"{n}.mlp.fc1.weight": (512, 128), f"{n}.mlp.fc1.bias": (512,),
                       f"{n}.mlp.fc2.weight": (128, 512), f"{n}.mlp.fc2.bias": (128,)})
    params = {k: (torch.ones(s) if k.endswith("norm1.weight") or k.endswith("norm2.weight")
                  else torch.randn(s) * 0.02).to(device).requires_grad_(True) for k, s in shapes.items()}
    x = torch.sin(torch.arange(8 * 64 * 128, dtype=torch.float32, device=device)).reshape(8, 64, 128)
    y = torch.arange(8 * 64, device=device) % 128
    opt = torch.optim.AdamW(params.values(), lr=1e-3, weight_decay=0)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=autocast):
            h = x
            for i in range(2):
                h = tm.block(h, params, f"{i}", 4)
        F.cross_entropy(h.float().reshape(8 * 64, 128), y).backward()
        opt.step()
    return step


def time_step(step, device, warmup, steps):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - t0) * 1000 / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--batch", default="16")
    ap.add_argument("--modes", default="fp32,tf32,bf16")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    modes = a.modes.split(",") if device.type == "cuda" else ["fp32"]
    tm.FUSED["attention"] = True
    only = set(filter(None, a.only.split(",")))
    presets = [m for m in json.loads(Path(a.models).read_text())["models"] if not only or m["name"] in only]
    rows = []
    for mode in modes:  # the reference step of bench train (batch 8)
        torch.backends.cuda.matmul.allow_tf32 = mode != "fp32"
        torch.backends.cudnn.allow_tf32 = mode != "fp32"
        torch.manual_seed(0)
        ms = time_step(reference_step(device, mode == "bf16"), device, a.warmup, a.steps)
        rows.append({"model": "reference", "batch": 8, "mode": mode, "msPerStep": ms,
                     "samplesPerSec": 8 * 1000 / ms})
        print(f"{'reference':24} batch   8 {mode:5} {ms:9.2f} ms/step", flush=True)
    for m in presets:
        config = {**m["config"], "classes": 60}
        for batch in map(int, a.batch.split(",")):
            for mode in modes:
                torch.backends.cuda.matmul.allow_tf32 = mode != "fp32"
                torch.backends.cudnn.allow_tf32 = mode != "fp32"
                torch.manual_seed(0)
                params, shape = build(config, device)
                x = torch.rand((batch, *shape[1:]), device=device)
                y = torch.randint(0, config["classes"], (batch,), device=device)
                opt = torch.optim.AdamW(params.values(), lr=1e-3, weight_decay=0.05)
                try:
                    ms = time_step(step_fn(config, params, x, y, opt, mode == "bf16"), device, a.warmup, a.steps)
                except RuntimeError as e:  # out of memory, an op missing on this build
                    rows.append({"model": m["name"], "batch": batch, "mode": mode, "error": str(e)[:200]})
                    continue
                flops = 3 * m["gflopsPerSample"] * 1e9 * batch
                rows.append({"model": m["name"], "batch": batch, "mode": mode, "msPerStep": ms,
                             "samplesPerSec": batch * 1000 / ms, "tflops": flops / ms / 1e9})
                print(f"{m['name']:24} batch {batch:3} {mode:5} {ms:9.2f} ms/step "
                      f"{rows[-1]['tflops']:7.2f} TFLOP/s", flush=True)
                del params, opt, x, y
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    report = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "sdpa": tm.SDPA is not None, "rows": rows}
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=2))
    else:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
