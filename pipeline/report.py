"""`siamese-tfx report`: one self-contained HTML page (figures embedded) for the latest run."""

import base64
import glob
import html
import json
import os

from components.evaluator import embedding_metrics as em
from pipeline import configs

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222;
       line-height: 1.45; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { padding: 0.8em 1em; border-radius: 6px; font-weight: 600; margin: 1em 0; }
.yes { background: #e6f4ea; color: #1e6b34; } .no { background: #fdecea; color: #8a1c13; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
figure img { max-width: 520px; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _image(path: str, caption: str) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode()
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(headers: list[str], rows: list[list]) -> str:
    def cell(value):
        if isinstance(value, float):
            return f'<td class="num">{value:.4f}</td>'
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _read_json(path: str | None) -> dict:
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def metrics_rows(summary: dict) -> list[list]:
    baseline = summary.get("baseline_metrics") or {}
    blessing = summary.get("blessing") or {}
    thresholds = {}
    if blessing.get("gating_metric"):
        bounds = []
        if blessing.get("lower_bound") is not None:
            bounds.append(f">= {blessing['lower_bound']}")
        if blessing.get("max_regression") is not None:
            bounds.append(f"no more than {blessing['max_regression']} below baseline")
        thresholds[blessing["gating_metric"]] = "; ".join(bounds)
    if blessing.get("floor", True) and blessing.get("floor_margin") is not None:
        thresholds[em.MAP_AT_R_GAIN] = (
            f">= {blessing['floor_margin']} (floor: map_at_r above raw pixels)"
        )
    return [
        [name, value, baseline.get(name, ""), thresholds.get(name, "")]
        for name, value in sorted(summary.get("metrics", {}).items())
    ]


def serving_rows(serving: dict) -> list[list]:
    """The served model's calibration (assets.extra/calibration.json) as table rows."""
    rows = [
        ["verify / identify threshold (distance)", serving.get("threshold")],
        ["calibrated at FAR", f"{serving.get('far'):g} (target {serving.get('far_target'):g})"],
        ["VAL at that FAR (eval split)", serving.get("val_at_far")],
        ["negative eval pairs", serving.get("negative_pairs")],
        [
            "gallery",
            f"{serving.get('gallery_size')} entries ({serving.get('gallery_mode')}) of "
            f"{serving.get('gallery_identities')} identities from {serving.get('gallery_source')}",
        ],
        ["identify top-k", serving.get("top_k")],
        ["largest image accepted (pixels)", serving.get("max_image_pixels")],
    ]
    return rows + [["note", note] for note in serving.get("notes", [])]


def figure_paths(directory: str | None, pattern: str = "*.png") -> list[str]:
    return sorted(glob.glob(os.path.join(directory, pattern))) if directory else []


def render(summary: dict) -> str:
    """The report page for one run summary (as written to summary.json)."""
    dataset = summary.get("dataset") or {}
    artifacts = summary.get("artifacts") or {}
    hparams = _read_json(
        os.path.join(artifacts["model_run"], "hparams.json") if artifacts.get("model_run") else None
    )
    blessed = summary.get("blessed")
    verdict = (
        "Blessed and pushed to " + str(summary.get("pushed_model_dir"))
        if blessed
        else "Not blessed, not pushed"
    )
    reasons = summary.get("blessing_reasons") or []
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>siamese-tfx report {html.escape(str(summary.get('run_id')))}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Siamese embedding model report</h1>",
        f"<p class='sub'>Run {html.escape(str(summary.get('run_id')))}</p>",
        f"<div class='verdict {'yes' if blessed else 'no'}'>{html.escape(verdict)}</div>",
    ]
    if reasons:
        parts.append("<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in reasons) + "</ul>")
    split_note = (summary.get("eval_split") or {}).get("note")
    parts += [
        "<h2>Metrics (eval split)</h2>",
        f"<p>Eval split: {html.escape(split_note)}.</p>" if split_note else "",
        _table(["metric", "candidate", "baseline", "threshold"], metrics_rows(summary)),
    ]
    if summary.get("serving"):
        parts += [
            "<h2>Serving</h2>",
            _table(["served model", "value"], serving_rows(summary["serving"])),
        ]
    parts += [
        "<h2>Dataset</h2>",
        _table(
            ["name", "examples per split", "identities"],
            [[dataset.get("name", ""), dataset.get("examples", ""), dataset.get("identities", "")]],
        ),
    ]
    if hparams:
        parts += ["<h2>Hyperparameters</h2>", _table(["name", "value"], sorted(hparams.items()))]
    evaluation = figure_paths(artifacts.get("embedding_report"))
    if evaluation:
        parts.append("<h2>Evaluation</h2>")
        parts += [
            _image(p, os.path.splitext(os.path.basename(p))[0].replace("_", " "))
            for p in evaluation
        ]
    training_dir = (
        os.path.join(artifacts["model_run"], "figures") if artifacts.get("model_run") else None
    )
    epochs = figure_paths(training_dir, "epoch_*.png")
    samples = figure_paths(training_dir, "triplet_samples.png")
    if epochs or samples:
        parts.append("<h2>Training</h2>")
        kept = kept_epoch_sentence(summary.get("training"))
        if kept:
            parts.append(f"<p>{html.escape(kept)}.</p>")
        parts += [_image(p, "last epoch: held-out embeddings and loss") for p in epochs[-1:]]
        parts += [_image(p, "training triplets: anchor, positive, negative") for p in samples]
        if len(epochs) > 1:
            parts.append("<details><summary>Every epoch</summary>")
            parts += [_image(p, os.path.basename(p)) for p in epochs]
            parts.append("</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def kept_epoch_sentence(training: dict | None) -> str | None:
    """Which epoch the Trainer kept and why, from its training record (summary.json's
    `training`), as the console summary and the report both say it; None when it says nothing."""
    training = training or {}
    satisfied = training.get("satisfied_epoch")
    loss = training.get("loss", "triplet").replace("_", "-")
    satisfied_why = f"the {loss} loss was 0 on every training batch"
    if training.get("no_validation_slice"):
        return (
            f"Kept the last of {training.get('epochs_run')} epochs"
            + (f" (stopped there: {satisfied_why})" if satisfied else "")
            + f", no validation slice: {training['no_validation_slice']}"
        )
    selection = training.get("model_selection") or {}
    if not selection.get("kept_epoch"):
        return None
    value = selection["kept_validation_metrics"].get(selection["metric"], float("nan"))
    held = training.get("validation_slice") or {}
    return (
        f"Kept epoch {selection['kept_epoch']} of {selection['epochs_run']}"
        + (" (stopped early)" if selection.get("stopped_early") else "")
        + (f" (stopped after epoch {satisfied}: {satisfied_why})" if satisfied else "")
        + f": validation {selection['metric']} {value:.4f}"
        + f" on {held.get('scored_images') or held.get('images')} held-back train images"
        + f" (by {held.get('by')})"
    )


def write_report(output_dir: str) -> str:
    summary_file = configs.summary_path(output_dir)
    if not os.path.exists(summary_file):
        raise FileNotFoundError(f"{summary_file}: no run summary; run `siamese-tfx run` first")
    summary = _read_json(summary_file)
    path = os.path.join(output_dir, "report.html")
    with open(path, "w") as f:
        f.write(render(summary))
    return path
