"""The result tables of README.md and docs/MODEL.md, generated from the run's own files.

Hand-copied figures go stale as soon as ``dvc repro`` rewrites the evaluation, so
each table (and each sentence quoting its figures) sits between marker comments,
``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->``, and is rendered here from
``reports/eval/summary.json`` (the evaluate stage's full breakdown; ``metrics/eval.json``
is its flat headline), ``reports/curation/{summary.json,runs.csv}`` and the benchmark
runs against the peers under ``reports/peers/``. Only the text
between the markers is rewritten (atomically); everything else stays byte-identical.
``--check`` writes nothing and exits 1 naming every stale block, so CI and the tests can
tell when the docs and the metrics disagree::

    python -m vfi.evaluation.doc_tables [--root .] [--check]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.atomic import write_bytes
from vfi.evaluation.stats import interval

EVAL_SUMMARY = "reports/eval/summary.json"
# `inbetweener benchmark --json` on the held-out works' middle triplets, beside RIFE HDv3
# (docs/MODEL.md, "Against RIFE HDv3", has the two commands that remake it).
PEERS = "reports/peers/held_out.json"
PEERS_TTA = "reports/peers/held_out_tta-{}.json"  # the same with --methods model --tta X
PEERS_VAL = "reports/peers/val.json"  # the same four methods on the val split's real works
TTA_OPTIONS = ("reverse", "flip", "both")  # vfi.inference.tta's, without importing torch
TTA_PASSES = {"none": 1, "reverse": 2, "flip": 2, "both": 4}
PEER_METHODS = {"model": "model", "rife": "rife (start)", "hdv3": "RIFE HDv3", "blend": "blend",
                "model+hdv3": "model+hdv3 (mean)"}
# How hard a middle triplet is, by RIFE HDv3's PSNR on it: (label, lowest dB, below dB)
DIFFICULTY = (("HDv3 >= 30 dB", 30.0, float("inf")), ("25-30 dB", 25.0, 30.0),
              ("under 25 dB", float("-inf"), 25.0))

# Column order and headers; methods the summary has beyond these are appended by name.
METHODS = {"model": "model", "rife": "rife (start)", "dis": "DIS", "blend": "blend",
           "repeat": "repeat"}
# Row labels of the cadences (the summary's by_cadence keys).
CADENCES = {"ones": "on ones", "twos": "on twos", "threes": "on threes",
            "longer": "held longer", "pan": "pans", "unknown": "cadence unknown"}
# Display names of the held-out works (the summary knows them by source name only).
WORKS = {"big-buck-bunny": ("Big Buck Bunny", "3D"),
         "steamboat-willie": ("Steamboat Willie", "2D film scan")}
TARGET_GAIN = 0.3  # dB over the start on the held-out works: what the fine-tune aims at
DOCS = {"README.md": ("eval-summary", "curation-summary"),
        "docs/MODEL.md": ("eval", "eval-gain", "eval-edges", "peers", "peers-tta",
                          "peers-difficulty", "curation", "curation-gain", "curation-cadence")}
MARKER = re.compile(r"(<!-- results:([\w-]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)
Group = dict[str, Any]  # one of the summary's {"n", "psnr": {method: dB}, "ssim": {...}}


@dataclass(frozen=True)
class Results:
    """What the blocks are rendered from: the evaluation summary, the curation summary
    and runs, and the benchmark against the peers."""
    eval: dict[str, Any]
    curation: dict[str, Any]
    runs: list[dict[str, str]]
    peers: dict[str, Any]
    tta: dict[str, dict[str, Any]]  # option -> its benchmark JSON (model only)
    peers_val: dict[str, Any]  # the benchmark JSON of the val split's real works

    @classmethod
    def load(cls, root: Path) -> Results:
        with open(root / "reports/curation/runs.csv", newline="") as fh:
            runs = list(csv.DictReader(fh))
        return cls(json.loads((root / EVAL_SUMMARY).read_text()),
                   json.loads((root / "reports/curation/summary.json").read_text()), runs,
                   json.loads((root / PEERS).read_text()),
                   {opt: json.loads(path.read_text()) for opt in TTA_OPTIONS
                    if (path := root / PEERS_TTA.format(opt)).is_file()},
                   json.loads((root / PEERS_VAL).read_text()))


def _bold_best(values: dict[str, float], fmt: str) -> dict[str, str]:
    """Each value formatted, the best (highest as shown; ties all) in bold."""
    shown = {m: format(v, fmt) for m, v in values.items()}
    best = max((float(s) for s in shown.values()), default=None)
    return {m: f"**{s}**" if float(s) == best else s for m, s in shown.items()}


def eval_table(rows: Sequence[tuple[str, Group]], methods: Sequence[str]) -> str:
    """A Markdown table, one ``PSNR / SSIM`` cell per method, the best of each bold per
    row; a method a row lacks shows as a dash."""
    lines = ["| test triplets | " + " | ".join(METHODS.get(m, m) for m in methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    for label, group in rows:
        shown = [m for m in methods if m in group["psnr"] and m in group["ssim"]]
        psnr = _bold_best({m: group["psnr"][m] for m in shown}, ".2f")
        ssim = _bold_best({m: group["ssim"][m] for m in shown}, ".3f")
        cells = [f"{psnr[m]} / {ssim[m]}" if m in shown else "–" for m in methods]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pooled(groups: Sequence[Group]) -> Group:
    """Sample-weighted means of several groups (the summary's means are over samples, so
    this is the mean over their union); only methods every group has."""
    n = sum(g["n"] for g in groups)
    out: Group = {"n": n}
    for metric in ("psnr", "ssim", "edge_psnr"):
        common = set.intersection(*(set(g.get(metric, {})) for g in groups)) if groups else set()
        out[metric] = {m: sum(g[metric][m] * g["n"] for g in groups) / n for m in common}
    return out


def _others(ev: dict[str, Any]) -> tuple[str, Group]:
    """The test sources that are not held-out works, pooled (the synthetic clips)."""
    held = set(ev.get("held_out", {}).get("sources", []))
    names = [s for s in ev["by_source"] if s not in held]
    group = pooled([ev["by_source"][s] for s in names])
    label = "synthetic" if all(s.startswith("synthetic") for s in names) else "other works"
    return f"{label} ({group['n']})", group


def eval_rows(ev: dict[str, Any], detail: bool) -> list[tuple[str, Group]]:
    """Synthetic and held-out rows; with ``detail`` each held-out work, the whole split,
    each t bucket and each cadence too."""
    others, held = _others(ev), ev.get("held_out", {"n": 0})
    rows = [others] if others[1]["n"] else []
    if held["n"]:
        rows.append((f"held-out real works ({held['n']})", held))
    if detail:
        for src in held.get("sources", []) if held["n"] else []:
            name = ", ".join(WORKS.get(src, (src,)))
            rows.append((f"... {name} ({ev['by_source'][src]['n']})", ev["by_source"][src]))
        rows.append((f"all ({ev['n']})", ev))
        for bucket, group in ev.get("by_t", {}).items():
            lo, hi = bucket.split("-")
            rows.append((f"... t in [{lo}, {hi}{']' if float(hi) == 1 else ')'} "
                         f"({group['n']})", group))
        for cadence, group in ev.get("by_cadence", {}).items():
            rows.append((f"... {CADENCES.get(cadence, cadence)} ({group['n']})", group))
    return rows


def edge_table(rows: Sequence[tuple[str, Group]], methods: Sequence[str]) -> str:
    """Edge PSNR per method with its 95% interval where the summary has one, the best
    mean of each row bold; rows without edge PSNR are left out."""
    lines = ["| test triplets, edge PSNR | " + " | ".join(METHODS.get(m, m) for m in methods)
             + " |", "|---" * (len(methods) + 1) + "|"]
    for label, group in rows:
        edge = {m: v for m, v in group.get("edge_psnr", {}).items() if v is not None}
        if not edge:
            continue
        best = _bold_best(edge, ".2f")
        half = group.get("ci95", {}).get("edge_psnr", {})
        ci = {m: f" ± {half[m]:.2f}" if half.get(m) else "" for m in edge}
        cells = [best[m] + ci[m] if m in edge else "–" for m in methods]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _methods(ev: dict[str, Any]) -> list[str]:
    return [m for m in METHODS if m in ev["psnr"]] + sorted(set(ev["psnr"]) - set(METHODS))


def eval_gain(ev: dict[str, Any]) -> str:
    """The sentence quoting the fine-tune's gain over its start (model - rife, PSNR)."""
    def gain(group: Group) -> float | None:
        p = group.get("psnr", {})
        return p["model"] - p["rife"] if "model" in p and "rife" in p else None
    held, others = ev.get("held_out", {"n": 0}), _others(ev)
    if gain(ev) is None:
        return f"No fine-tune gain to quote: `{EVAL_SUMMARY}` lacks `model` or `rife`."
    rest = [f"{gain(ev):+.2f} on the whole test split"]
    if gain(others[1]) is not None:
        rest.append(f"{gain(others[1]):+.2f} on {others[0].split(' (')[0]}")
    if not held["n"] or gain(held) is None:
        return f"The fine-tune's gain over its start: **{rest[0]}**."
    reach = "reaching" if gain(held) >= TARGET_GAIN else "short of"
    return (f"The fine-tune's gain over its start on the held-out works: "
            f"**{gain(held):+.2f} dB**{_interval(held)} ({', '.join(rest)}), {reach} the "
            f"+{TARGET_GAIN} dB aimed at.")


def _interval(group: Group) -> str:
    """`` ± h at 95%, paired`` for the model's PSNR gain over rife, when the summary has it."""
    half = group.get("gain", {}).get("psnr", {}).get("rife", {}).get("ci95")
    return f" ± {half:.2f} at 95%, paired" if half else ""


def curation_table(summary: dict[str, Any], runs: Sequence[dict[str, str]]) -> str:
    """Held-out PSNR per seed, curated against naive, with each held-out work's paired
    difference; the last row is the mean ± sd over seeds, the mean difference bold."""
    works = summary.get("held_out_sources", [])
    by = {(r["kind"], int(r["seed"])): r for r in runs}
    seeds = sorted(s for k, s in by if k == "curated" and ("naive", s) in by)
    diff = summary["curated_minus_naive"]
    lines = ["| seed | curated | naive | curated - naive | "
             + "".join(f"{WORKS.get(w, (w,))[0]} (c - n) | " for w in works),
             "|---" * (4 + len(works)) + "|"]

    def work_diff(w: str, s: int) -> float:
        return float(by["curated", s][f"psnr_{w}"]) - float(by["naive", s][f"psnr_{w}"])
    for s in seeds:
        c, n = (float(by[k, s]["held_out_psnr"]) for k in ("curated", "naive"))
        lines.append(f"| {s} | {c:.3f} | {n:.3f} | {diff['held_out_psnr_by_seed'][str(s)]:+.3f} | "
                     + "".join(f"{work_diff(w, s):+.3f} | " for w in works))
    kinds = summary["kinds"]
    means = [f"{kinds[k]['held_out_psnr_mean']:.3f} ± {kinds[k]['held_out_psnr_std']:.3f}"
             for k in ("curated", "naive")]
    lines.append(f"| mean ± sd | {means[0]} | {means[1]} | "
                 f"**{diff['mean']:+.3f} ± {diff['std']:.3f}** | "
                 + "".join(f"{sum(work_diff(w, s) for s in seeds) / len(seeds):+.3f} | "
                           for w in works))
    return "\n".join(line.rstrip() for line in lines)


def curation_cadence_table(summary: dict[str, Any]) -> str:
    """Curated minus naive per cadence of the test triplets, seed by seed: where a hold
    sits inside the naive control's windows (twos, threes) and where none does (ones)."""
    by = summary.get("curated_minus_naive_by_cadence", {})
    if not by:
        return "(no per-cadence figures: rerun `python -m vfi.experiments.curation`)"
    seeds = sorted(next(iter(by.values()))["by_seed"], key=int)
    lines = ["| test triplets | n | " + "".join(f"seed {s} | " for s in seeds)
             + "mean ± sd | curated ahead |", "|---" * (4 + len(seeds)) + "|"]
    for cadence, d in by.items():
        lines.append(f"| {CADENCES.get(cadence, cadence)} | {d['n']} | "
                     + "".join(f"{d['by_seed'][s]:+.3f} | " for s in seeds)
                     + f"{d['mean']:+.3f} ± {d['std']:.3f} | {d['curated_wins']} of "
                       f"{d['seeds']} |")
    return "\n".join(line.rstrip() for line in lines)


def peers_table(bench: dict[str, Any]) -> str:
    """PSNR per held-out work (a triplet's key starts with its source: ``unpack``'s keys)
    and over all, the model's paired gain over RIFE HDv3 with its 95% interval, and each
    network's milliseconds per in-between in that run."""
    methods = [m for m in PEER_METHODS if m in bench["methods"]]
    rows = bench["per_triplet"]
    sources = sorted({r["key"].split("_", 1)[0] for r in rows})
    groups = [(", ".join(WORKS.get(s, (s,))), [r for r in rows if r["key"].startswith(s + "_")])
              for s in sources] + [("held-out works", rows)]
    lines = ["| t = 0.5 | " + " | ".join(PEER_METHODS[m] for m in methods)
             + " | model - HDv3 (paired) |", "|---" * (len(methods) + 2) + "|"]
    for label, group in groups:
        means = {m: sum(r["psnr"][m] for r in group) / len(group) for m in methods}
        gain = _paired({r["key"]: r["psnr"]["model"] for r in group},
                       {r["key"]: r["psnr"]["hdv3"] for r in group})
        cells = _bold_best(means, ".2f")
        lines.append(f"| {label} ({len(group)}) | " + " | ".join(cells[m] for m in methods)
                     + f" | {gain} |")
    ms = bench["methods"]
    lines.append("| ms per in-between | " + " | ".join(
        f"{ms[m]['ms_per_frame']:.0f}" if m != "blend" else "–" for m in methods) + " | |")
    return "\n".join(line.rstrip() for line in lines)


def tta_table(bench: dict[str, Any], tta: dict[str, dict[str, Any]]) -> str:
    """The model with each test-time augmentation on the same held-out triplets: PSNR,
    paired gain over one pass and over RIFE HDv3, and the network passes it costs."""
    single = {r["key"]: r["psnr"]["model"] for r in bench["per_triplet"]}
    hdv3 = {r["key"]: r["psnr"]["hdv3"] for r in bench["per_triplet"]}
    lines = ["| model, t = 0.5 | passes | PSNR | over one pass | over RIFE HDv3 |",
             "|---|---|---|---|---|"]
    for opt, run in ({"none": bench} | tta).items():
        rows = {r["key"]: r["psnr"]["model"] for r in run["per_triplet"]}
        if set(rows) != set(single):
            raise ValueError(f"{PEERS_TTA.format(opt)}: not the triplets of {PEERS}")
        over = [_paired(rows, ref) for ref in (single, hdv3)]
        lines.append(f"| {opt} | {TTA_PASSES[opt]} | {np.mean(list(rows.values())):.2f} | "
                     f"{'–' if opt == 'none' else over[0]} | {over[1]} |")
    return "\n".join(lines)


def difficulty_table(benches: Sequence[dict[str, Any]]) -> str:
    """Each method against RIFE HDv3, paired, on the middle triplets of several benchmark
    runs pooled and split by how well HDv3 does on each: a mean over a held-out set is
    a mix of easy and hard in-betweens, and the methods do not rank the same on both."""
    rows = [r for bench in benches for r in bench["per_triplet"]]
    if len({r["key"] for r in rows}) < len(rows):  # paired by key: a repeat would hide one
        raise ValueError("the pooled benchmark runs share a triplet key (in both runs)")
    methods = [m for m in PEER_METHODS if m != "hdv3" and all(m in r["psnr"] for r in rows)]
    groups = [(label, [r for r in rows if lo <= r["psnr"]["hdv3"] < hi])
              for label, lo, hi in DIFFICULTY] + [("all", rows)]
    groups = [(label, group) for label, group in groups if group]
    lines = ["| method - RIFE HDv3 | " + " | ".join(f"{label} ({len(group)})"
                                                   for label, group in groups) + " |",
             "|---" * (len(groups) + 1) + "|"]
    for m in methods:
        cells = [_paired({r["key"]: r["psnr"][m] for r in group},
                         {r["key"]: r["psnr"]["hdv3"] for r in group}) for _, group in groups]
        lines.append(f"| {PEER_METHODS[m]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paired(rows: dict[str, float], ref: dict[str, float]) -> str:
    """``+0.12 ± 0.04``: the mean difference, triplet by triplet, and its 95% interval."""
    mean, half = interval(np.array([rows[k] - ref[k] for k in rows]))
    return f"{mean:+.2f}" + ("" if half is None else f" ± {half:.2f}")


def _wins(summary: dict[str, Any]) -> tuple[int, int, float, float]:
    diff, kinds = summary["curated_minus_naive"], summary["kinds"]
    return (diff["curated_wins"], diff["seeds"], kinds["curated"]["held_out_gain_over_start"],
            kinds["naive"]["held_out_gain_over_start"])


def curation_gain(summary: dict[str, Any]) -> str:
    """MODEL.md's sentence under the curation table: start, wins, gains over the start."""
    wins, seeds, cur, nai = _wins(summary)
    on = "every seed" if wins == seeds else f"{wins} of {seeds} seeds"
    ratio = f", {cur / nai:.1f} times the gain for the same steps" if nai > 0 else ""
    return (f"Start: {summary['start']['held_out_psnr']:.3f}. **Curated beats naive on {on}**: "
            f"the fine-tune gains {cur:+.3f} dB over the start with curated triplets and "
            f"{nai:+.3f} dB with naive ones{ratio}.")


def curation_summary(summary: dict[str, Any]) -> str:
    """README's one-line summary of the curation experiment, with its link."""
    wins, seeds, cur, nai = _wins(summary)
    ahead = "every one" if wins == seeds else f"{wins} of them"
    return (f"Fine-tuned on curated triplets the model gains {cur:+.2f} dB over its start on "
            f"the held-out works, against {nai:+.2f} dB when fine-tuned on naive ones "
            f"({seeds} seeds, curated ahead on {ahead}): [docs/MODEL.md](docs/MODEL.md#results).")


def _wrap(text: str) -> str:
    """A sentence wrapped like the hand-written prose around it (88 columns)."""
    return textwrap.fill(text, 88, break_long_words=False, break_on_hyphens=False)


RENDER: dict[str, Callable[[Results], str]] = {
    "eval-summary": lambda r: eval_table(eval_rows(r.eval, False), _methods(r.eval)),
    "eval": lambda r: eval_table(eval_rows(r.eval, True), _methods(r.eval)),
    "eval-gain": lambda r: _wrap(eval_gain(r.eval)),
    "eval-edges": lambda r: edge_table(eval_rows(r.eval, True), _methods(r.eval)),
    "peers": lambda r: peers_table(r.peers),
    "peers-tta": lambda r: tta_table(r.peers, r.tta),
    "peers-difficulty": lambda r: difficulty_table([r.peers, r.peers_val]),
    "curation": lambda r: curation_table(r.curation, r.runs),
    "curation-gain": lambda r: _wrap(curation_gain(r.curation)),
    "curation-cadence": lambda r: curation_cadence_table(r.curation),
    "curation-summary": lambda r: _wrap(curation_summary(r.curation)),
}


def rewrite(text: str, render: Callable[[str], str]) -> tuple[str, list[str]]:
    """``text`` with every marked block's body replaced by ``render(name)``, and the names
    of the blocks that changed. Nothing outside the markers is touched."""
    stale: list[str] = []

    def body(m: re.Match[str]) -> str:
        new = render(m[2]) + "\n"
        if m[3] != new:
            stale.append(m[2])
        return m[1] + new + m[4]
    return MARKER.sub(body, text), stale


def update(root: Path, check: bool) -> list[str]:
    """Rewrite the docs under ``root`` (unless ``check``); return ``file: block`` for
    every stale block. Raises ValueError when a file lacks one of its blocks."""
    results, stale = Results.load(root), []
    for name, blocks in DOCS.items():
        path = root / name
        text = path.read_bytes().decode()  # bytes: line endings kept exactly
        found = {m[2] for m in MARKER.finditer(text)}
        if set(blocks) - found or found - set(RENDER):
            raise ValueError(f"{name}: marker blocks {sorted(found)}, expected {list(blocks)}")
        new, changed = rewrite(text, lambda block: RENDER[block](results))
        stale += [f"{name}: {block}" for block in changed]
        if changed and not check:
            write_bytes(path, new.encode())
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: regenerate the tables; ``--check`` exits 1 if any is stale (2 on bad input)."""
    parser = argparse.ArgumentParser(prog="python -m vfi.evaluation.doc_tables",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    try:
        stale = update(args.root, args.check)
    except (OSError, ValueError, KeyError) as exc:  # a metrics file or marker missing
        print(f"doc_tables: {exc}", file=sys.stderr)
        return 2
    for block in stale:
        print(f"{'stale' if args.check else 'updated'}: {block}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
