"""GPU figures for the README: training img/s by precision and layout, peak memory,
torch.compile, and time to val Dice 0.98 with the default ``segkit train``.

    python benchmarks/gpu_figures.py --out results/      # default --out: $OUT
    python benchmarks/gpu_figures.py --tiny               # a quick run on any CPU

On a CUDA machine (about 3-4 minutes on one H100):

1. training step img/s of segkit's U-Net for fp32, AMP bf16 and AMP fp16 + GradScaler,
   each in the default (NCHW) and the channels_last layout, at
   - the default recipe: base 16, depth 4, 96x64, batch 8;
   - 240x160 batch 16 (the size a student project trained Carvana at), base 16 and
     the classic base 64 (31M parameters);
   with the peak memory of each (``torch.cuda.max_memory_allocated``);
2. the same with ``torch.compile`` (bf16/fp16 + channels_last), in a child process
   with a time limit, so a slow or failing compiler cannot eat the run;
3. training seconds until val Dice first reaches 0.98 with the default ``segkit train``
   recipe (and with ``--precision fp32``) on toy Carvana, generated into a temporary
   folder (nothing is downloaded);
4. the loader at the real Carvana resolution: toy Carvana generated at 1918x1280, read
   at 240x160 in one process, without the cache (decode + resize every time) and from
   the memory cache (augmentation only); against the step's img/s this says how many
   DataLoader workers keep the GPU fed.

Timings are medians of interleaved repetitions (``segkit.timing``). Writes
``gpu_figures.json`` and ``gpu_figures.txt`` (a readable table) into ``--out``.
Without CUDA it runs everything at tiny sizes on the CPU (fp16 is skipped there), to
check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from segkit import speed, timing
from segkit.losses import BCEDiceLoss
from segkit.unet import UNet, count_parameters

#: (name, base, depth, (H, W), batch) on CUDA, and the tiny CPU stand-ins.
CONFIGS = [("default recipe 96x64 b8, base 16", 16, 4, (64, 96), 8),
           ("240x160 b16, base 16", 16, 4, (160, 240), 16),
           ("240x160 b16, base 64 (classic)", 64, 4, (160, 240), 16)]
TINY_CONFIGS = [("tiny 48x32 b2, base 8", 8, 2, (32, 48), 2)]


def precisions(device: torch.device) -> list[str]:
    """The precisions to measure here: fp16 and bf16 only where they run."""
    out = ["fp32"]
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        out.append("bf16")
    if device.type == "cpu" and speed.cpu_has_bf16():
        out.append("bf16")
    if device.type == "cuda":
        out.append("fp16")
    return out


def step_measure(base, depth, size, batch, settings, steps, warmup):
    """A function that returns the img/s of one timed burst of ``steps`` training steps,
    and a dict that receives the peak memory (MiB) of the variant."""
    torch.manual_seed(0)
    model = speed.prepare_model(UNet(3, 1, base=base, depth=depth), settings)
    step = timing.make_step(model, BCEDiceLoss(), settings)
    images = torch.randn(batch, 3, *size, device=settings.device)
    masks = (torch.rand(batch, *size, device=settings.device) > 0.5).long()
    info = {"params": count_parameters(model)}
    warmed = []

    def measure() -> float:
        nonlocal steps
        if settings.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(settings.device)
        if not warmed:  # warm up, then time enough steps for a burst of >= 0.3 s
            rate = timing.time_calls(lambda: step(images, masks), batch, settings.device,
                                     calls=steps, warmup=warmup)
            steps = max(steps, int(0.3 * rate / batch) + 1)
        rate = timing.time_calls(lambda: step(images, masks), batch, settings.device,
                                 calls=steps, warmup=0)
        warmed.append(True)
        mem = timing.peak_memory_mib(settings.device)
        if mem is not None:
            info["peak_mib"] = max(info.get("peak_mib", 0.0), mem)
        return rate

    return measure, info


def measure_steps(device, configs, steps, warmup, repeats):
    """img/s and peak memory for every config x precision x layout (interleaved)."""
    rows = []
    for name, base, depth, size, batch in configs:
        variants, infos = {}, {}
        for prec in precisions(device):
            for cl in (False, True):
                key = f"{prec}{' + channels_last' if cl else ''}"
                settings = speed.speed_settings(device, prec, channels_last=cl)
                variants[key], infos[key] = step_measure(base, depth, size, batch, settings,
                                                         steps, warmup)
        results = timing.compare(variants, repeats=repeats)
        fp32 = results["fp32"].median
        for key, t in results.items():
            rows.append({"config": name, "variant": key, "img_s": round(t.median, 1),
                         "img_s_low": round(t.low, 1), "img_s_high": round(t.high, 1),
                         "vs_fp32": round(t.median / fp32, 2), **infos[key]})
            print(f"  {name:<34} {key:<24} {t.median:8.1f} img/s  x{t.median / fp32:.2f}"
                  + (f"  peak {infos[key]['peak_mib']:.0f} MiB" if "peak_mib" in infos[key] else ""),
                  flush=True)
        del variants
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def compile_child(args) -> None:
    """In the child process: img/s of the compiled model for each config (JSON on stdout)."""
    device = torch.device(args.device)
    prec = "bf16" if "bf16" in precisions(device) else precisions(device)[-1]
    configs = TINY_CONFIGS if args.tiny else CONFIGS
    rows = []
    for name, base, depth, size, batch in configs:
        variants = {}
        for comp in (False, True):
            settings = speed.speed_settings(device, prec, channels_last=True, compile=comp)
            t0 = time.perf_counter()
            measure, info = step_measure(base, depth, size, batch, settings, args.steps,
                                         args.warmup)
            variants["compiled" if comp else "eager"] = measure
        results = timing.compare(variants, repeats=args.repeats)
        eager, comp = results["eager"].median, results["compiled"].median
        row = {"config": name, "variant": f"{prec} + channels_last",
               "eager_img_s": round(eager, 1), "compiled_img_s": round(comp, 1),
               "speedup": round(comp / eager, 2),
               "first_compile_and_runs_s": round(time.perf_counter() - t0, 1)}
        print("JSON:" + json.dumps(row), flush=True)  # one line per config: partial results survive


def measure_compile(args, limit_s: float) -> list[dict] | str:
    """Run :func:`compile_child` in a child process, at most ``limit_s`` seconds."""
    cmd = [sys.executable, __file__, "--compile-child", "--device", args.device,
           "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--repeats", str(args.repeats)] + (["--tiny"] if args.tiny else [])
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s)
        stdout, stderr, why = done.stdout, done.stderr, "failed"
    except subprocess.TimeoutExpired as exc:
        stdout, stderr = _text(exc.stdout), _text(exc.stderr)
        why = f"stopped after the {limit_s:.0f} s limit"
    rows = [json.loads(line[5:]) for line in stdout.splitlines() if line.startswith("JSON:")]
    if rows:
        return rows
    tail = (stderr or stdout).strip().splitlines()[-3:]
    return f"{why}, no result: " + " | ".join(tail)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def time_to_dice(device, tiny: bool, budget_s: float, folder: Path) -> list[dict]:
    """The default ``segkit train`` recipe (and --precision fp32) on generated toy Carvana:
    training seconds until val Dice first reaches 0.98, best Dice, wall seconds."""
    from segkit import toydata
    from segkit.cli import build_parser, train_config
    from segkit.recipe import run_training

    root = toydata.generate("carvana", folder / "toy_carvana",
                            n=24 if tiny else None, size=(48, 72) if tiny else None)
    rows = []
    for label, extra in (("default", []), ("--precision fp32", ["--precision", "fp32"])):
        argv = ["train", "--data-root", str(root), "--out-dir", str(folder / label.strip("-")),
                "--max-seconds", str(budget_s), "--device", device.type, *extra]
        if tiny:
            argv += ["--size", "48x32", "--base", "8", "--depth", "2", "--epochs", "3"]
        cfg = train_config(build_parser().parse_args(argv))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        result = run_training(cfg, log=lambda s: None, show_progress=False)
        wall = time.perf_counter() - t0
        h = result.history
        reached = next((r["elapsed"] for r in h.records if r.get("val_dice", 0) >= 0.98), None)
        rows.append({"run": f"segkit train {label}".strip(),
                     "precision": speed.speed_settings(device, cfg.precision).precision,
                     "epochs": len(h), "s_to_dice_0.98": None if reached is None else round(reached, 1),
                     "best_val_dice": round(h.best("val_dice")["val_dice"], 4),
                     "last_val_dice": round(h.last["val_dice"], 4),
                     "train_s": round(h.last["elapsed"], 1), "wall_s": round(wall, 1),
                     "peak_mib": timing.peak_memory_mib(device)})
        print(f"  {rows[-1]}", flush=True)
    return rows


def loader_figures(tiny: bool, folder: Path, steps: list[dict]) -> dict:
    """img/s of one loader process at 240x160 from 1918x1280 files, uncached and cached."""
    from segkit import data, toydata
    from segkit.cache import ResizedCache

    n, full, size = (12, (320, 480), (40, 60)) if tiny else (24, (1280, 1918), (160, 240))
    t0 = time.perf_counter()
    root = toydata.generate("carvana", folder / "carvana_full", n=n, size=full)
    out = {"files": f"{full[1]}x{full[0]}", "size": f"{size[1]}x{size[0]}", "images": n,
           "generate_s": round(time.perf_counter() - t0, 1)}
    for label, cache in (("uncached", None), ("cached", ResizedCache(size))):
        train_ds, _, _ = data.carvana_datasets(root, size=size, cache=cache)
        [train_ds[i] for i in range(len(train_ds))]  # warm-up (fills the cache)
        t0 = time.perf_counter()
        for _ in range(2):
            for i in range(len(train_ds)):
                train_ds[i]
        out[f"{label}_img_s_per_process"] = round(2 * len(train_ds) / (time.perf_counter() - t0), 1)
    rates = [r["img_s"] for r in steps if r["config"].startswith("240x160 b16, base 16")]
    if rates:
        out["fastest_step_img_s_240x160_base16"] = max(rates)
        out["workers_to_feed_it_cached"] = round(max(rates) / out["cached_img_s_per_process"], 1)
        out["workers_to_feed_it_uncached"] = round(max(rates) / out["uncached_img_s_per_process"], 1)
    print(f"  {out}", flush=True)
    return out


def machine(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "device": device.type, "cpu_bf16": speed.cpu_has_bf16()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_mib=round(props.total_memory / 2**20),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    bf16=torch.cuda.is_bf16_supported())
    return info


def table(report: dict) -> str:
    m = report["machine"]
    lines = [f"machine: {m.get('gpu', 'CPU')} | torch {m['torch']} | {m['cpu_count']} CPUs",
             "", "training step img/s (median of interleaved repeats), peak memory:"]
    lines.append(f"{'config':<34} {'variant':<24} {'img/s':>9} {'x fp32':>7} {'peak MiB':>9}")
    for r in report["steps"]:
        peak = f"{r['peak_mib']:.0f}" if "peak_mib" in r else "-"
        lines.append(f"{r['config']:<34} {r['variant']:<24} {r['img_s']:>9.1f} "
                     f"{r['vs_fp32']:>7.2f} {peak:>9}")
    lines += ["", "torch.compile:"]
    comp = report["compile"]
    if isinstance(comp, str):
        lines.append(f"  {comp}")
    else:
        for r in comp:
            lines.append(f"  {r['config']:<34} {r['variant']}: eager {r['eager_img_s']} img/s, "
                         f"compiled {r['compiled_img_s']} img/s (x{r['speedup']}), "
                         f"compile + runs {r['first_compile_and_runs_s']} s")
    lines += ["", "time to val Dice 0.98 (toy Carvana, generated):"]
    for r in report["time_to_dice"]:
        lines.append(f"  {r['run']:<34} {r['precision']}: 0.98 after {r['s_to_dice_0.98']} s of "
                     f"training, best {r['best_val_dice']}, {r['epochs']} epochs, "
                     f"{r['wall_s']} s wall, peak {r['peak_mib']} MiB")
    lines += ["", f"loader, one process: {report['loader']}"]
    lines.append(f"\ntotal {report['total_s']} s")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT"), help="folder for the results "
                    "(default: $OUT)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (default on CPU)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per repeat")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile-limit", type=float, default=80.0,
                    help="seconds allowed for the torch.compile part (0: skip it)")
    ap.add_argument("--dice-budget", type=float, default=30.0,
                    help="training seconds per time-to-Dice run")
    ap.add_argument("--compile-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    device = torch.device(args.device)
    args.tiny = args.tiny or device.type != "cuda"
    args.steps = args.steps or (3 if args.tiny else 20)
    args.warmup = args.warmup or (1 if args.tiny else 5)
    if args.compile_child:
        return compile_child(args)
    if not args.out:
        ap.error("give --out FOLDER (or set $OUT)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = {"machine": machine(device)}
    print(f"machine: {report['machine']}", flush=True)
    print("training steps:", flush=True)
    report["steps"] = measure_steps(device, TINY_CONFIGS if args.tiny else CONFIGS,
                                    args.steps, args.warmup, args.repeats)
    print("torch.compile:", flush=True)
    report["compile"] = (measure_compile(args, args.compile_limit) if args.compile_limit > 0
                         else "skipped: --compile-limit 0")
    print(f"  {report['compile']}", flush=True)
    print("time to val Dice 0.98:", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        report["time_to_dice"] = time_to_dice(device, args.tiny,
                                              5.0 if args.tiny else args.dice_budget, Path(tmp))
        print("loader at the real resolution:", flush=True)
        report["loader"] = loader_figures(args.tiny, Path(tmp), report["steps"])
    report["total_s"] = round(time.perf_counter() - t0, 1)
    (out / "gpu_figures.json").write_text(json.dumps(report, indent=2))
    (out / "gpu_figures.txt").write_text(table(report) + "\n")
    print("\n" + table(report))


if __name__ == "__main__":
    main()
