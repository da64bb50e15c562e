"""The Life conv net's layers, described once: which layer is a 3x3 conv, where Dropout2d sits, which outputs are
hidden units, which layer ends the net. The net's constructor and forward pass, the fused kernel's blocks, export
to plain torch and unit surgery (pruning, alignment) all read this description instead of re-deriving it.

`firner` layout, per block: Conv3x3(c -> 2m), Conv1x1(2m -> m), Conv1x1(m -> 1), blocks chained through one
channel. `springer_kenyon`: per block Conv3x3(c -> 2m), Conv1x1(2m -> m), chained through m channels, then one
final Conv1x1(m -> 1). A 3x3 conv is stored as a matmul over neighborhoods (`FlatBoards`): fan-in 9 x channels.
"""

from __future__ import annotations

from dataclasses import dataclass

LAYOUTS = ("firner", "springer_kenyon")


@dataclass(frozen=True)
class LayerSpec:
    index: int
    block: int  # the block it belongs to (the springer_kenyon final 1x1 belongs to no block: block == blocks)
    kernel: int  # 3: a 3x3 conv over the previous layer's channels; 1: a 1x1 conv
    in_channels: int
    out_channels: int
    dropout: bool  # Dropout2d acts on its output while training (firner --normalize: every 3x3 but the last block's)
    hidden: bool  # another layer of the net reads its outputs as units (a block's 1-channel output is not hidden)
    final: bool  # the net's last layer: the head follows it

    @property
    def fan_in(self) -> int:
        return self.kernel * self.kernel * self.in_channels


def layer_specs(blocks: int, m: int, layout: str, dropout: bool) -> list[LayerSpec]:
    """The layers of a net of `blocks` blocks at width factor `m`; `dropout`: Dropout2d is on (p > 0)."""
    if layout not in LAYOUTS:
        raise ValueError(f"model.layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    rows, channels = [], 1
    for block in range(blocks):
        widths = [(3, channels, 2 * m), (1, 2 * m, m)] + ([(1, m, 1)] if layout == "firner" else [])
        for position, (kernel, fan_in, fan_out) in enumerate(widths):
            rows.append((block, kernel, fan_in, fan_out, kernel == 3 and dropout and block < blocks - 1,
                         position < 2))
        channels = 1 if layout == "firner" else m
    if layout == "springer_kenyon":
        rows.append((blocks, 1, m, 1, False, False))
    last = len(rows) - 1
    return [LayerSpec(index, block, kernel, fan_in, fan_out, drop, hidden and index < last, index == last)
            for index, (block, kernel, fan_in, fan_out, drop, hidden) in enumerate(rows)]
