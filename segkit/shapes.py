"""Tracing tensor shapes through a model (lesson 02).

``trace_shapes`` runs one forward pass with forward hooks on the model's
blocks and records, for each call, the input and output shapes and the
parameters of the block. ``format_shapes`` turns the rows into a plain text
table; ``print_shapes`` does both and prints it. ``decoder_table`` shows only
the decoder's skip-channel arithmetic, one line per Up block (the picture of
the same pass is ``segkit.viz.draw_unet``).

For the U-Net's ``Up`` blocks the table also shows the skip-channel
arithmetic, e.g. ``512 up + 512 skip = 1024 -> 512``: the upsampled map's
channels plus the skip map's channels give the concatenated channels, which
the DoubleConv turns into its output channels. When the upsampled map had to
be padded to the skip's size (odd input sizes) the note says so.

Example (base=64, depth=4, one 3x101x75 image; some rows left out)::

    >>> print_shapes(UNet(), (1, 3, 101, 75))   # doctest: +SKIP
    layer    block       input                                output            out ch      params  channels
    inc      DoubleConv  (1, 3, 101, 75)                      (1, 64, 101, 75)      64      38,848
    downs.0  Down        (1, 64, 101, 75)                     (1, 128, 50, 37)     128     221,696
    ...
    downs.3  Down        (1, 512, 12, 9)                      (1, 1024, 6, 4)     1024  14,159,872
    ups.0    Up          (1, 1024, 6, 4) + (1, 512, 12, 9)    (1, 512, 12, 9)      512   9,177,600  512 up + 512 skip = 1024 -> 512; up 12x8 padded to 12x9
    ...
    outc     OutConv     (1, 64, 101, 75)                     (1, 2, 101, 75)        2         130
    total parameters: 31,037,698

The text holds no memory addresses or timings, so a notebook that prints it
gives the same output on every run (nbval compares it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from segkit.unet import DoubleConv, Down, OutConv, Up

Shape = tuple[int, ...]


@dataclass
class ShapeRow:
    """One call of one module during the traced forward pass.

    name: the module's dotted name in the model (``"downs.0"``; ``"(model)"`` for the model itself)
    block: the module's class name (``"Down"``)
    input_shapes: shapes of the tensors it received (two for an Up block: deeper map, skip)
    output_shapes: shapes of the tensors it returned (usually one)
    out_channels: channels (dim 1) of the first output, None if it has no dim 1
    parameters: number of parameters of the module, its children included
    note: extra words; for Up blocks the skip-channel arithmetic
    up_shape: for Up blocks (any block with an ``up`` layer), the upsampled map's shape
        before padding to the skip's size
    """

    name: str
    block: str
    input_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...] = ()
    out_channels: int | None = None
    parameters: int = 0
    note: str = ""
    up_shape: Shape | None = None

    @property
    def output_shape(self) -> Shape:
        """The shape of the first (usually only) output tensor."""
        return self.output_shapes[0] if self.output_shapes else ()


def _shapes(obj: Any) -> tuple[Shape, ...]:
    """Shapes of every tensor in ``obj`` (a tensor, or tuples/lists/dicts of them), in order."""
    if isinstance(obj, torch.Tensor):
        return (tuple(obj.shape),)
    if isinstance(obj, (tuple, list)):
        return tuple(s for item in obj for s in _shapes(item))
    if isinstance(obj, dict):
        return tuple(s for item in obj.values() for s in _shapes(item))
    return ()


def _blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's direct children, looking inside ModuleList/ModuleDict (they have no forward).

    A U-Net block traced on its own (``trace_shapes(Up(...), (x1, x2))``) is its own row.
    """
    if isinstance(model, (DoubleConv, Down, Up, OutConv)):
        return [("(model)", model)]
    out: list[tuple[str, nn.Module]] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
                visit(full + ".", child)
            else:
                out.append((full, child))

    visit("", model)
    return out or [("(model)", model)]


def _is_up_block(module: nn.Module) -> bool:
    """segkit's ``Up``, or any decoder block built the same way: an ``up`` layer inside.

    So the skip-channel note also appears for the Up class a student writes in lesson 02.
    """
    return isinstance(getattr(module, "up", None), nn.Module)


def _make_input(model: nn.Module, input_size: Any) -> tuple[torch.Tensor, ...]:
    """The positional arguments of the traced call."""
    if isinstance(input_size, torch.Tensor):
        return (input_size,)
    if isinstance(input_size, (tuple, list)) and input_size and all(
            isinstance(t, torch.Tensor) for t in input_size):
        return tuple(input_size)
    if isinstance(input_size, (tuple, list, torch.Size)) and input_size and all(
            isinstance(n, int) for n in input_size):
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        return (torch.zeros(tuple(input_size), device=device, dtype=dtype),)
    raise TypeError(
        "trace_shapes: input_size must be a shape such as (1, 3, 64, 64), an example tensor, "
        f"or a tuple of example tensors; got {input_size!r}")


def trace_shapes(model: nn.Module, input_size: Sequence[int] | torch.Tensor | Sequence[torch.Tensor],
                 *, modules: Literal["blocks", "all"] = "blocks") -> list[ShapeRow]:
    """Run one forward pass and record the shapes every block sees.

    Args:
        model: any nn.Module (a segkit UNet, one of its blocks, a torchvision model ...).
        input_size: (N, C, H, W) to feed zeros of that shape, or an example tensor,
            or a tuple of tensors passed as positional arguments (e.g. ``(x1, x2)`` for an Up block).
        modules: ``"blocks"`` traces the model's direct children (for UNet: inc, downs.i,
            ups.i, outc); ``"all"`` traces every submodule (convs, BatchNorms, ReLUs too).

    Returns:
        one ShapeRow per call, in the order the calls started.

    The pass runs under ``torch.no_grad()`` with the model in eval mode (so BatchNorm
    accepts a single small image); every submodule's train/eval mode is restored afterwards.
    """
    if modules == "blocks":
        targets = _blocks(model)
    elif modules == "all":
        targets = [(name, m) for name, m in model.named_modules() if name] or [("(model)", model)]
    else:
        raise ValueError(f"trace_shapes: modules must be 'blocks' or 'all', got {modules!r}")
    args = _make_input(model, input_size)
    recorder = _Recorder()
    handles = [h for name, module in targets for h in recorder.watch(name, module)]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(*args)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return recorder.rows


class _Recorder:
    """The forward hooks of :func:`trace_shapes`: one row per call of a watched module."""

    def __init__(self) -> None:
        self.rows: list[ShapeRow] = []
        self.open_rows: dict[int, list[ShapeRow]] = {}  # module id -> rows waiting for output

    def watch(self, name: str, module: nn.Module) -> list:
        """Hook ``module``; returns the hooks' handles (``handle.remove()`` undoes them)."""
        params = sum(p.numel() for p in module.parameters())

        def pre_hook(mod: nn.Module, inputs: tuple) -> None:
            row = ShapeRow(name, type(mod).__name__, _shapes(inputs), parameters=params)
            self.rows.append(row)
            self.open_rows.setdefault(id(mod), []).append(row)

        def hook(mod: nn.Module, inputs: tuple, output: Any) -> None:
            row = self.open_rows[id(mod)].pop()
            row.output_shapes = _shapes(output)
            first = row.output_shape
            row.out_channels = first[1] if len(first) >= 2 else None
            if row.up_shape is not None:
                row.note = _up_note(row)

        handles = [module.register_forward_pre_hook(pre_hook), module.register_forward_hook(hook)]
        if _is_up_block(module):
            # record the upsampled map's shape on the row of the Up call in progress
            def up_hook(_: nn.Module, __: tuple, output: torch.Tensor) -> None:
                waiting = self.open_rows.get(id(module))
                if waiting:
                    waiting[-1].up_shape = tuple(output.shape)

            handles.append(module.up.register_forward_hook(up_hook))
        return handles


def _up_note(row: ShapeRow) -> str:
    """'512 up + 512 skip = 1024 -> 512', plus the padding when the sizes differed."""
    up = row.up_shape
    skip = row.input_shapes[1] if len(row.input_shapes) > 1 else None
    if up is None or skip is None:
        return ""
    up_c, skip_c = up[1], skip[1]
    note = f"{up_c} up + {skip_c} skip = {up_c + skip_c} -> {row.out_channels}"
    if tuple(up[2:]) != tuple(skip[2:]):
        verb = "padded" if up[2] <= skip[2] and up[3] <= skip[3] else "resized"
        note += f"; up {up[2]}x{up[3]} {verb} to {skip[2]}x{skip[3]}"
    return note


def _fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def format_shapes(rows: Sequence[ShapeRow]) -> str:
    """A plain text table of ``rows``: layer, block, input, output, out ch, params, channels note.

    Several inputs (an Up block's deeper map and skip) are joined with ``+``.
    """
    header = ["layer", "block", "input", "output", "out ch", "params", "channels"]
    table = [header]
    for r in rows:
        table.append([
            r.name,
            r.block,
            " + ".join(_fmt_shape(s) for s in r.input_shapes),
            " + ".join(_fmt_shape(s) for s in r.output_shapes),
            "" if r.out_channels is None else str(r.out_channels),
            f"{r.parameters:,}",
            r.note,
        ])
    if not any(r.note for r in rows):  # no Up blocks: drop the empty last column
        table = [line[:-1] for line in table]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    right = {"out ch", "params"}  # numbers are right-aligned
    lines = []
    for line in table:
        cells = []
        for i, cell in enumerate(line):
            cells.append(cell.rjust(widths[i]) if header[i] in right else cell.ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def print_shapes(model: nn.Module, input_size: Sequence[int] | torch.Tensor | Sequence[torch.Tensor],
                 *, modules: Literal["blocks", "all"] = "blocks") -> None:
    """Print the ``trace_shapes`` table of ``model``, then its total parameter count."""
    rows = trace_shapes(model, input_size, modules=modules)
    total = sum(p.numel() for p in model.parameters())
    print(format_shapes(rows))
    print(f"total parameters: {total:,}")


def decoder_table(model: nn.Module, input_size: Sequence[int]) -> str:
    """The skip-channel arithmetic of each Up block of ``model``, from one forward pass.

    One line per Up block (``ups.0`` is the deepest): the channels coming up from below,
    after the up-conv, of the skip, after the concatenation, after the DoubleConv, and
    the sizes (H x W) of the upsampled map and of the skip. Works for segkit's UNet and
    for any U-Net whose decoder blocks have an ``up`` layer and take ``(x_below, skip)``.

    Example (base 16, depth 4, a 1x3x64x96 input)::

        layer  from below  after up-conv  skip  concatenated     after DoubleConv  up size -> skip size
        ups.0  256         128            128   128 + 128 = 256  128               8x12 -> 8x12
        ...
    """
    header = ["layer", "from below", "after up-conv", "skip", "concatenated",
              "after DoubleConv", "up size -> skip size"]
    table = [header]
    for r in trace_shapes(model, tuple(input_size)):
        if len(r.input_shapes) != 2 or r.up_shape is None or r.out_channels is None:
            continue
        below, skip, up = r.input_shapes[0], r.input_shapes[1], r.up_shape
        sizes = f"{up[2]}x{up[3]} -> {skip[2]}x{skip[3]}"
        if tuple(up[2:]) != tuple(skip[2:]):
            sizes += " (padded)"
        table.append([r.name, f"{below[1]}", f"{up[1]}", f"{skip[1]}",
                      f"{up[1]} + {skip[1]} = {up[1] + skip[1]}", f"{r.out_channels}", sizes])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in table)
