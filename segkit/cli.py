"""The ``segkit`` command line (also ``python -m segkit``).

    segkit generate carvana data/carvana      # write a toy dataset
    segkit train                              # train on the embedded toy Carvana
    segkit evaluate runs/carvana/best.pt      # val loss / Dice / accuracy of a checkpoint
    segkit predict runs/carvana/best.pt my_photos/ predictions/
    segkit build-lessons [--check]            # lessons/ from solutions/
    segkit run-course                         # execute every solution notebook headless
    segkit grade submissions/ --lesson 03     # grade a class of student notebooks
    segkit verify                             # check the whole course before a term

Every subcommand has ``--help``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from segkit.failures import describe, wants_traceback


def _size(text: str) -> tuple[int, int]:
    """Parse "96x64" (W x H, as image viewers say it) into (H, W)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 96x64 (width x height), got {text!r}")
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small: at least 8x8")
    return (h, w)


def cmd_generate(args: argparse.Namespace) -> int:
    from segkit import toydata

    size = None
    if args.size:
        h, w = _size(args.size)
        size = (w, h)
    root = toydata.generate(args.name, args.root, n=args.n, size=size, seed=args.seed,
                            overwrite=args.overwrite)
    print(f"wrote toy {args.name} to {root}")
    return 0


def train_config(args: argparse.Namespace):
    """The TrainConfig that ``segkit train`` runs: the options given, defaults for the rest."""
    from segkit.recipe import TrainConfig

    fields = {k: v for k, v in vars(args).items()
              if k in TrainConfig.__dataclass_fields__ and v is not None}
    if args.no_time_limit:
        fields["max_seconds"] = None
    if "out_dir" not in fields:
        fields["out_dir"] = f"runs/{fields.get('dataset', 'carvana')}"
    return TrainConfig(**fields)


MODEL_OPTIONS = ("base", "depth", "kernel_size", "bilinear")


def keep_resumed_model(cfg, args: argparse.Namespace) -> None:
    """On --resume, model options not given on the command line come from the checkpoint."""
    from segkit.checkpoint import load_checkpoint

    saved = load_checkpoint(cfg.resume).get("train_config") or {}
    for key in MODEL_OPTIONS:
        if getattr(args, key, None) is None and key in saved:
            setattr(cfg, key, saved[key])


def cmd_train(args: argparse.Namespace) -> int:
    from segkit.recipe import new_run_dir, run_training

    cfg = train_config(args)
    if cfg.resume:
        keep_resumed_model(cfg, args)
        if args.out_dir is None:  # continue the run where its checkpoint is
            cfg.out_dir = str(Path(cfg.resume).parent)
    else:
        fresh = new_run_dir(cfg.out_dir)
        if fresh != Path(cfg.out_dir):
            print(f"{cfg.out_dir} holds an earlier run, which is kept; this run goes to {fresh}")
            cfg.out_dir = str(fresh)
    run_training(cfg)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from segkit import data
    from segkit.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
    from segkit.device import pick_device
    from segkit.recipe import TrainConfig, build_datasets, build_loss
    from segkit.training import evaluate

    ckpt = load_checkpoint(args.checkpoint)
    saved = dict(ckpt.get("train_config") or {})
    cfg = TrainConfig(**{k: (tuple(v) if k == "size" else v) for k, v in saved.items()
                         if k in TrainConfig.__dataclass_fields__ and k != "preset"})
    if args.data_root:
        cfg.data_root = args.data_root
    elif cfg.data_root and not Path(cfg.data_root).is_dir():
        raise CheckpointError(
            f"{args.checkpoint} was trained on {cfg.data_root}, which is not there (moved, "
            "deleted, or a relative path from another folder): give the data's folder with "
            "--data-root DIR")
    device = pick_device(args.device)
    model = model_from_checkpoint(ckpt, device, name=args.checkpoint)
    train_ds, val_ds, _ = build_datasets(cfg)
    num_classes = int(ckpt["data"].get("num_classes", 1))
    _, val_loader = data.make_loaders(train_ds, val_ds, cfg.batch_size, seed=cfg.seed)
    loss_fn = build_loss(cfg, train_ds, num_classes)
    with torch.no_grad():
        result = evaluate(model, val_loader, loss_fn, device,
                          num_classes=None if num_classes == 1 else num_classes)
    print(f"checkpoint {args.checkpoint} (epoch {ckpt['epoch']}), {len(val_ds)} val images:")
    for k, v in result.items():
        print(f"  {k:<9} {v:.4f}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from segkit.device import pick_device
    from segkit.predict import predict_folder

    result = predict_folder(args.checkpoint, args.input_dir, args.output_dir,
                            device=pick_device(args.device), threshold=args.threshold,
                            tta=args.tta, overlays=not args.no_overlays,
                            overwrite=args.overwrite, strict=args.strict)
    print(f"wrote {len(result.written)} masks" + ("" if args.no_overlays else " and overlays")
          + f" to {args.output_dir}")
    if result.skipped:
        print(f"skipped {len(result.skipped)} image(s) that could not be read:", file=sys.stderr)
        for path, why in result.skipped:
            print(f"  {path}: {why}", file=sys.stderr)
        return 1
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, with errors in two lines (the error and where to find help), not the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="segkit", description="segkit: the U-Net segmentation course's command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("generate", help="write a toy dataset in the real dataset's layout",
                       description="Write a generated toy dataset (carvana, seasky or voc) "
                                   "in the real dataset's folder layout.")
    p.add_argument("name", choices=["carvana", "seasky", "voc"])
    p.add_argument("root", help="folder to write to (created)")
    p.add_argument("--n", type=int, default=None, help="number of images (default: the embedded size)")
    p.add_argument("--size", default=None, help="image size WxH, e.g. 240x160")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train", help="train a U-Net (default: toy Carvana, about a minute on CPU)",
                       description="Train a U-Net; prints one line per epoch and saves "
                                   "last.pt/best.pt, history.csv and predictions.png in --out-dir.")
    p.add_argument("--dataset", choices=["carvana", "seasky", "voc"])
    p.add_argument("--data-root", dest="data_root", help="dataset folder (default: embedded toy copy)")
    p.add_argument("--size", type=_size, help="training size WxH (default 96x64; voc 64x64)")
    p.add_argument("--base", type=int, help="channels of the first block (default 16)")
    p.add_argument("--depth", type=int, help="number of down/up steps (default 4; voc 2)")
    p.add_argument("--kernel-size", dest="kernel_size", type=int)
    p.add_argument("--bilinear", action="store_true", default=None,
                   help="bilinear upsampling instead of transposed convolutions")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-seconds", dest="max_seconds", type=float,
                   help="stop after this much training time (default 60)")
    p.add_argument("--no-time-limit", action="store_true", help="train all epochs")
    p.add_argument("--optimizer", choices=["adamw", "adam", "sgd", "rmsprop"])
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", dest="weight_decay", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--loss", choices=["auto", "bce", "dice", "bce_dice", "ce", "weighted_ce"])
    p.add_argument("--scheduler", choices=["cosine", "plateau", "none"],
                   help="cosine (default): down to 0 over the time budget, or over the epochs "
                        "with --no-time-limit; plateau: halve on a stalled val loss")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="flips and small changes of the training images "
                        "(default: on; voc: off)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"])
    p.add_argument("--out-dir", dest="out_dir",
                   help="where to save (default runs/<dataset>); a folder that already holds "
                        "a run is kept and this run goes to <folder>-2, -3, ...")
    p.add_argument("--resume", help="continue from this checkpoint (e.g. runs/carvana/last.pt), "
                                    "in its own folder unless --out-dir is given")
    p.add_argument("--preset", choices=["rmsprop-1e-5"],
                   help="rmsprop-1e-5: a student project's Carvana settings (RMSprop lr 1e-5, "
                        "momentum 0.999, batch 1), which learn slowly (lesson 03)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="validation figures of a checkpoint",
                       description="Rebuild the checkpoint's validation split and print its "
                                   "loss, Dice/mIoU and pixel accuracy.")
    p.add_argument("checkpoint")
    p.add_argument("--data-root", dest="data_root")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="masks and overlays for a folder of images",
                       description="Predict a mask for every image in INPUT_DIR (any size); "
                                   "write <name>_mask.png (0/255 or palette) and <name>_overlay.png.")
    p.add_argument("checkpoint")
    p.add_argument("input_dir")
    p.add_argument("output_dir")
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold (binary)")
    p.add_argument("--tta", action="store_true", help="average with the mirrored image")
    p.add_argument("--no-overlays", action="store_true")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an output folder that already holds files (replaces "
                        "only masks and overlays of the same names)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first image that cannot be read (default: skip it, "
                        "list it at the end, exit status 1)")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    p.set_defaults(func=cmd_predict)

    from segkit.course import cli as course_cli  # build-lessons, run-course, grade, verify

    course_cli.register(sub)
    for command in sub.choices.values():
        command.add_argument("--traceback", action="store_true",
                             help="on failure, print the traceback too (or set SEGKIT_TRACEBACK=1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; the last saved checkpoint is intact", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure ends in one message; --traceback shows where
        if wants_traceback(args.traceback):
            traceback.print_exc()
        print(f"segkit {args.command}: error: {describe(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
