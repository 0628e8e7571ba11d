"""Speed side by side, in one run, on the same data (the figures of the README's speed table).

    OMP_NUM_THREADS=2 python benchmarks/speed_benchmark.py                  # everything
    OMP_NUM_THREADS=2 python benchmarks/speed_benchmark.py --only steps loader
    python benchmarks/speed_benchmark.py --milesial ~/src/Pytorch-UNet       # + milesial's U-Net

Sections (``--only``):

- ``steps``: training step img/s of the default U-Net (base 16, depth 4, 96x64, batch 8)
  in fp32, channels_last, bf16 autocast and bf16 + channels_last (bf16 only where the CPU
  has the instructions);
- ``loop``: ``segkit.training.train_one_epoch`` against a bare PyTorch loop (zero_grad,
  forward, loss, backward, step) on the same model, batches and precision: the overhead;
- ``milesial``: segkit's classic U-Net (base 64) against milesial's ``UNet`` at the same
  width, imported from the checkout given with ``--milesial DIR`` (never copied; skipped
  with a message without it);
- ``loader``: toy Carvana generated at the real 1918x1280, trained at 240x160 batch 16:
  the loader's img/s without the cache, with the memory cache (first and later epochs)
  and with the disk cache (a second run), against the model step at that size;
- ``dice``: val Dice of the default ``segkit train`` with bf16 against ``--precision fp32``,
  same seeds, several runs: does bf16 lose any Dice? (and the first epoch at 0.98, and the
  lowest val Dice from then on: does it stay there?)
- ``ttd``: training seconds to val Dice 0.98, default recipe (each of ``--seeds``) against the
  ``--preset rmsprop-1e-5`` settings (RMSprop lr 1e-5, momentum 0.999, batch 1).

Timings are medians of interleaved repetitions; each section prints a table and all of them
go to ``build/speed_benchmark.json``. A benchmark, not a test: the figures depend on the
machine and on what else runs on it (``uptime`` is recorded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from segkit import speed, timing
from segkit.losses import BCEDiceLoss
from segkit.unet import UNet, count_parameters


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def batch(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, *size, generator=g)
    masks = (torch.rand(n, *size, generator=g) > 0.5).long()
    return images, masks


def step_rate(model_fn, settings, size, batch_size, repeats, calls=5, warmup=2):
    """A callable giving the img/s of ``calls`` training steps of a fresh model."""
    torch.manual_seed(0)
    model = speed.prepare_model(model_fn(), settings)
    step = timing.make_step(model, BCEDiceLoss(), settings)
    images, masks = batch(batch_size, size)
    first = [True]

    def measure():
        w = warmup if first[0] else 0
        first[0] = False
        return timing.time_calls(lambda: step(images, masks), batch_size, settings.device,
                                 calls=calls, warmup=w)

    return measure


def section_steps(args) -> list[dict]:
    variants = {}
    for prec in ["fp32"] + (["bf16"] if speed.cpu_has_bf16() else []):
        for cl in (False, True):
            s = speed.speed_settings("cpu", prec, channels_last=cl)
            name = prec + (" + channels_last" if cl else "")
            variants[name] = step_rate(lambda: UNet(3, 1, base=16, depth=4), s, (64, 96), 8,
                                       args.repeats)
    res = timing.compare(variants, repeats=args.repeats)
    base = res["fp32"].median
    return [{"variant": k, "img_s": round(t.median, 1), "range": [round(t.low, 1), round(t.high, 1)],
             "vs_fp32": round(t.median / base, 2)} for k, t in res.items()]


def section_loop(args) -> list[dict]:
    """train_one_epoch (wrapped as segkit train wraps it) vs a bare loop: same model copy,
    same batches, interleaved."""
    from segkit.training import clip_gradients, train_one_epoch

    settings = speed.speed_settings("cpu", "auto", channels_last=True)
    batches = [batch(8, (64, 96), seed=i) for i in range(6)]
    loss_fn = BCEDiceLoss()
    torch.manual_seed(0)
    plain = UNet(3, 1, base=16, depth=4).to(memory_format=torch.channels_last)
    model = speed.prepare_model(plain, settings)  # plain, wrapped in a FastModel
    opt = torch.optim.AdamW(plain.parameters(), lr=1e-4)
    segkit_opt = torch.optim.AdamW(plain.parameters(), lr=1e-4)
    clip_gradients(segkit_opt, 1.0)  # as segkit train clips: a hook on the optimizer

    def bare():
        t0 = time.perf_counter()
        plain.train()
        for images, masks in batches:
            images = images.contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            with speed.autocast("cpu", settings.dtype):
                logits = plain(images)
            loss = loss_fn(logits.float(), masks)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
            opt.step()
            loss.item()
        return 48 / (time.perf_counter() - t0)

    def segkit_loop():
        t0 = time.perf_counter()
        train_one_epoch(model, batches, loss_fn, segkit_opt, "cpu")
        return 48 / (time.perf_counter() - t0)

    bare(), segkit_loop()  # warm-up
    res = timing.compare({"bare loop": bare, "segkit train_one_epoch": segkit_loop},
                         repeats=max(5, args.repeats))
    b, s = res["bare loop"].median, res["segkit train_one_epoch"].median
    return [{"variant": k, "img_s": round(t.median, 1)} for k, t in res.items()] + [
        {"variant": "overhead", "percent": round(100 * (b / s - 1), 1)}]


def section_milesial(args) -> list[dict] | str:
    if not args.milesial:
        return "skipped: give --milesial DIR (a checkout of github.com/milesial/Pytorch-UNet)"
    folder = Path(args.milesial).expanduser()
    if not (folder / "unet" / "unet_model.py").is_file():
        return f"skipped: {folder} has no unet/unet_model.py (not a Pytorch-UNet checkout)"
    sys.path.insert(0, str(folder))
    try:
        from unet import UNet as MilesialUNet  # noqa: E402  (the user's checkout)
    finally:
        sys.path.remove(str(folder))
    fp32 = speed.speed_settings("cpu", "fp32")
    variants = {"segkit UNet base 64": step_rate(lambda: UNet(3, 1, base=64, depth=4), fp32,
                                                 (128, 128), 2, args.repeats, calls=2, warmup=1),
                "milesial UNet": step_rate(lambda: MilesialUNet(3, 1, bilinear=False), fp32,
                                           (128, 128), 2, args.repeats, calls=2, warmup=1)}
    res = timing.compare(variants, repeats=args.repeats)
    params = {"segkit UNet base 64": count_parameters(UNet(3, 1, base=64, depth=4)),
              "milesial UNet": count_parameters(MilesialUNet(3, 1, bilinear=False))}
    seg = res["segkit UNet base 64"].median
    return [{"model": k, "params": params[k], "img_s": round(t.median, 2),
             "vs_segkit": round(t.median / seg, 2)} for k, t in res.items()]


def section_loader(args) -> list[dict]:
    """Loader (one process, batches of 16 at 240x160 from 1918x1280 files) against the step,
    interleaved: no cache, memory cache (filled), disk cache (filled, read by a new run)."""
    from segkit import data, toydata
    from segkit.cache import ResizedCache

    root = Path(args.work) / "carvana_1918x1280"
    if not (root / "train").is_dir():
        print(f"  generating toy Carvana at 1918x1280 ({args.big_n} images) in {root} ...", flush=True)
        toydata.generate("carvana", root, n=args.big_n, size=(1280, 1918))
    size, bs = (160, 240), 16
    setups, variants = {}, {}
    caches = {"no cache": None, "memory cache": ResizedCache(size),
              "disk cache": ResizedCache(size, Path(args.work) / "cache")}
    for label, cache in caches.items():
        t0 = time.perf_counter()
        train_ds, val_ds, _ = data.carvana_datasets(root, size=size, cache=cache)
        setups[label] = time.perf_counter() - t0  # includes the statistics pass
        if label == "disk cache":  # a second run: a new cache object on the same folder
            train_ds.cache = ResizedCache(size, Path(args.work) / "cache")
        loader, _ = data.make_loaders(train_ds, val_ds, bs, num_workers=0)
        variants[f"loader, {label}"] = lambda loader=loader: timing.time_loader(loader)
    for prec in ["fp32"] + (["auto"] if speed.cpu_has_bf16() else []):
        s = speed.speed_settings("cpu", prec, channels_last=prec != "fp32")
        name = f"step {s.precision}{' + channels_last' if s.channels_last else ''}"
        variants[name] = step_rate(lambda: UNet(3, 1, base=16, depth=4), s, size, bs,
                                   args.repeats, calls=1, warmup=1)
    res = timing.compare(variants, repeats=args.repeats)
    rows = [{"what": k, "img_s": round(t.median, 1), "range": [round(t.low, 1), round(t.high, 1)],
             **({"setup_s": round(setups[k.split(", ")[1]], 1)} if k.startswith("loader") else {})}
            for k, t in res.items()]
    step = max(t.median for k, t in res.items() if k.startswith("step"))
    for r in rows:
        r["vs_fastest_step"] = round(r["img_s"] / step, 2)
    return rows


def train_cli(argv: list[str]):
    from segkit.cli import build_parser, train_config
    from segkit.recipe import run_training

    cfg = train_config(build_parser().parse_args(["train", *argv]))
    return run_training(cfg, log=lambda s: None, show_progress=False).history


def first_reaching(history, target=0.98):
    return next((r["elapsed"] for r in history.records if r.get("val_dice", 0) >= target), None)


def lowest_after(history, target=0.98) -> float | None:
    """The lowest val Dice from the first epoch at ``target`` on: does it stay there?"""
    dice = [r["val_dice"] for r in history.records]
    first = next((i for i, d in enumerate(dice) if d >= target), None)
    return None if first is None else round(min(dice[first:]), 4)


def section_dice(args) -> list[dict] | str:
    """bf16 vs fp32 with the default recipe, same seeds (epoch-driven: no time limit)."""
    if not speed.cpu_has_bf16():
        return "skipped: this CPU has no bfloat16 instructions (segkit trains in fp32 here)"
    rows = []
    for seed in args.seeds:
        for prec in ("auto", "fp32"):
            out = Path(args.work) / f"dice_{prec}_{seed}_{time.time_ns()}"
            h = train_cli(["--seed", str(seed), "--precision", prec, "--no-time-limit",
                           "--out-dir", str(out)])
            rows.append({"seed": seed, "precision": "bf16" if prec == "auto" else "fp32",
                         "epochs": len(h), "final_val_dice": round(h.last["val_dice"], 4),
                         "best_val_dice": round(h.best("val_dice")["val_dice"], 4),
                         "epoch_first_0.98": next((int(r["epoch"]) for r in h.records
                                                   if r["val_dice"] >= 0.98), None),
                         "lowest_after_it": lowest_after(h),
                         "train_s": round(h.last["elapsed"], 1)})
            print(f"  {rows[-1]}", flush=True)
    for prec in ("bf16", "fp32"):
        finals = [r["final_val_dice"] for r in rows if r["precision"] == prec]
        rows.append({"precision": prec, "mean_final_val_dice": round(statistics.mean(finals), 4),
                     "min": min(finals), "max": max(finals)})
    return rows


def section_ttd(args) -> list[dict]:
    """Training seconds to val Dice 0.98: the default recipe on each of --seeds, then the
    slow preset once. Without bf16 measure as a CPU without it would: set
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 (segkit then trains in float32)."""
    rows = []
    runs = [(f"default, seed {seed}", ["--seed", str(seed)]) for seed in args.seeds]
    for label, extra in (*runs, ("--preset rmsprop-1e-5", ["--preset", "rmsprop-1e-5"])):
        out = Path(args.work) / f"ttd_{time.time_ns()}"
        h = train_cli([*extra, "--max-seconds", str(args.seconds), "--out-dir", str(out)])
        rows.append({"run": label, "s_to_dice_0.98": first_reaching(h),
                     "best_val_dice": round(h.best("val_dice")["val_dice"], 4),
                     "epochs": len(h), "train_s": round(h.last["elapsed"], 1)})
        print(f"  {rows[-1]}", flush=True)
    return rows


SECTIONS = {"steps": section_steps, "loop": section_loop, "milesial": section_milesial,
            "loader": section_loader, "dice": section_dice, "ttd": section_ttd}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=list(SECTIONS), default=None)
    ap.add_argument("--milesial", default=None, help="a checkout of milesial/Pytorch-UNet")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=60.0, help="budget of each ttd run")
    ap.add_argument("--big-n", dest="big_n", type=int, default=32,
                    help="images of the 1918x1280 toy Carvana (loader section)")
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    ap.add_argument("--out", default="build/speed_benchmark.json")
    args = ap.parse_args()
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory()
        args.work = tmp.name
    report = {"machine": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                          "cpus": speed.usable_cpus(), "cpu_bf16": speed.cpu_has_bf16(),
                          "load_before": load_average()}}
    for name, fn in SECTIONS.items():
        if args.only is not None and name not in args.only:
            continue
        print(f"{name} (load {load_average()}):", flush=True)
        t0 = time.perf_counter()
        report[name] = fn(args)
        rows = report[name] if isinstance(report[name], list) else [report[name]]
        for r in rows:
            print(f"  {r}")
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    report["machine"]["load_after"] = load_average()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
