"""``stampflow export``: a checkpoint to a self-describing ONNX model that scores without torch.

Exit codes: 0 written; 2 the checkpoint cannot be used or the model cannot be exported (the reason on
stderr); 3 the output cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.cli_common import EXIT_CANNOT_WRITE, EXIT_USAGE, add_checkpoint_argument
from flows.commands._command import add_command, print_result

HELP = "export a checkpoint to a self-describing ONNX model (scores with onnxruntime alone)"
DESCRIPTION = """\
Write the checkpoint's whole scoring path (the card's batch preparation, then the model's prediction with
its calibration) as one ONNX graph taking raw stamps (B, C, H, W) float32 in store units, with the model card
in the ONNX metadata: one JSON entry (stampflow_model_card) and flat keys model_name, model_version, task,
channels, stamp_shape, frame, output_names, temperature, threshold, training_data_sha256, normalisation.
ONNX Runtime's outputs are checked against PyTorch's on a probe batch (within 1e-5) before the file is
written. 'stampflow score --model OUT.onnx' and 'stampflow alerts score --model OUT.onnx' take the file in
place of a checkpoint, with the same columns, and import no torch.
"""


def _export(args: argparse.Namespace) -> int:
    from models.checkpoints import CheckpointError, load_checkpoint
    from pipeline.io import OutputError
    from pipeline.scoring.onnx_export import OnnxExportError, export_model

    try:
        module, card = load_checkpoint(args.model)
        result = export_model(module, card, args.onnx)
    except (CheckpointError, OnnxExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OutputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    return print_result(result)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = add_command(subparsers, "export", _export, help=HELP, description=DESCRIPTION)
    add_checkpoint_argument(parser)
    parser.add_argument("--onnx", type=Path, required=True, help="the ONNX file to write (OUT.onnx)")
