"""The generated result tables (vfi.evaluation.doc_tables): rendering from hand-built
metrics, rewriting only between the markers, ``--check``, and the repository's own docs
agreeing with its metrics files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from support import REPO

from vfi.evaluation import doc_tables
from vfi.evaluation.doc_tables import (
    DOCS,
    curation_cadence_table,
    curation_gain,
    curation_table,
    difficulty_table,
    eval_gain,
    eval_rows,
    eval_table,
    main,
    peers_table,
    tta_table,
)

ROOT = REPO


def group(n: int, psnr: dict[str, float], ssim: dict[str, float] | None = None) -> dict:
    return {"n": n, "psnr": psnr, "ssim": ssim or {m: 0.5 for m in psnr}}


def eval_json() -> dict:
    """Two synthetic sources, one held-out work, two t buckets."""
    syn0 = group(1, {"model": 30.0, "rife": 28.0, "blend": 20.0}, {"model": 0.9, "rife": 0.95, "blend": 0.7})
    syn1 = group(3, {"model": 26.0, "rife": 25.0, "blend": 24.0}, {"model": 0.8, "rife": 0.85, "blend": 0.7})
    film = group(4, {"model": 22.0, "rife": 21.5, "blend": 22.5}, {"model": 0.8, "rife": 0.8, "blend": 0.8})
    return {**group(8, {"model": 24.5, "rife": 23.8, "blend": 22.5}),
            "by_t": {"0-0.4": group(2, {"model": 21.0, "rife": 20.0, "blend": 21.0}),
                     "0.6-1": group(6, {"model": 25.0, "rife": 24.0, "blend": 23.0})},
            "by_source": {"steamboat-willie": film, "synthetic-00": syn0, "synthetic-01": syn1},
            "held_out": {"sources": ["steamboat-willie"], **film}}


def test_eval_table_bolds_the_best_per_row_and_dashes_a_missing_method():
    rows = [("a (2)", group(2, {"model": 25.004, "rife": 24.0, "dis": 25.0},
                            {"model": 0.80, "rife": 0.91, "dis": 0.90})),
            ("b (1)", group(1, {"model": 20.0}, {"model": 0.5}))]
    assert eval_table(rows, ["model", "rife", "dis"]).splitlines() == [
        "| test triplets | model | rife (start) | DIS |",
        "|---|---|---|---|",
        # ties as shown are all best: 25.004 and 25.0 both print 25.00
        "| a (2) | **25.00** / 0.800 | 24.00 / **0.910** | **25.00** / 0.900 |",
        "| b (1) | **20.00** / **0.500** | – | – |"]


def test_eval_rows_pool_the_synthetic_sources_and_list_works_and_buckets():
    rows = dict(eval_rows(eval_json(), detail=True))
    assert list(rows) == ["synthetic (4)", "held-out real works (4)",
                          "... Steamboat Willie, 2D film scan (4)", "all (8)",
                          "... t in [0, 0.4) (2)", "... t in [0.6, 1] (6)"]
    assert rows["synthetic (4)"]["psnr"] == {"model": 27.0, "rife": 25.75, "blend": 23.0}
    assert [label for label, _ in eval_rows(eval_json(), detail=False)] == [
        "synthetic (4)", "held-out real works (4)"]
    assert eval_gain(eval_json()) == (
        "The fine-tune's gain over its start on the held-out works: **+0.50 dB** (+0.70 on "
        "the whole test split, +1.25 on synthetic), reaching the +0.3 dB aimed at.")


def test_a_method_missing_from_one_source_is_not_pooled():
    ev = eval_json()
    del ev["by_source"]["synthetic-00"]["psnr"]["blend"]
    synthetic = eval_rows(ev, detail=False)[0][1]
    assert set(synthetic["psnr"]) == {"model", "rife"}
    assert eval_table([("s", synthetic)], ["model", "blend"]).endswith(
        "| s | **27.00** / **0.825** | – |")


def curation() -> tuple[dict, list[dict[str, str]]]:
    runs = [{"kind": k, "seed": str(s), "held_out_psnr": str(v), "psnr_big-buck-bunny": str(b)}
            for k, s, v, b in [("curated", 0, 22.8, 24.5), ("naive", 0, 22.7, 24.6),
                               ("curated", 1, 22.9, 24.7), ("naive", 1, 22.6, 24.3)]]
    summary = {"start": {"held_out_psnr": 22.5},
               "kinds": {"curated": {"held_out_psnr_mean": 22.85, "held_out_psnr_std": 0.0707,
                                     "held_out_gain_over_start": 0.35},
                         "naive": {"held_out_psnr_mean": 22.65, "held_out_psnr_std": 0.0707,
                                   "held_out_gain_over_start": 0.15}},
               "curated_minus_naive": {"held_out_psnr_by_seed": {"0": 0.1, "1": 0.3},
                                       "mean": 0.2, "std": 0.1414, "curated_wins": 2, "seeds": 2},
               "held_out_sources": ["big-buck-bunny"],
               "curated_minus_naive_by_cadence": {
                   "ones": {"n": 40, "by_seed": {"0": -0.05, "1": 0.02}, "mean": -0.015,
                            "std": 0.0494, "curated_wins": 1, "seeds": 2},
                   "twos": {"n": 12, "by_seed": {"0": 0.4, "1": 0.2}, "mean": 0.3,
                            "std": 0.1414, "curated_wins": 2, "seeds": 2}}}
    return summary, runs


def test_curation_table_and_sentence():
    summary, runs = curation()
    assert curation_table(summary, runs).splitlines() == [
        "| seed | curated | naive | curated - naive | Big Buck Bunny (c - n) |",
        "|---|---|---|---|---|",
        "| 0 | 22.800 | 22.700 | +0.100 | -0.100 |",
        "| 1 | 22.900 | 22.600 | +0.300 | +0.400 |",
        "| mean ± sd | 22.850 ± 0.071 | 22.650 ± 0.071 | **+0.200 ± 0.141** | +0.150 |"]
    assert curation_gain(summary) == (
        "Start: 22.500. **Curated beats naive on every seed**: the fine-tune gains +0.350 dB "
        "over the start with curated triplets and +0.150 dB with naive ones, 2.3 times the "
        "gain for the same steps.")


def test_curation_cadence_table():
    summary, _ = curation()
    assert curation_cadence_table(summary).splitlines() == [
        "| test triplets | n | seed 0 | seed 1 | mean ± sd | curated ahead |",
        "|---|---|---|---|---|---|",
        "| on ones | 40 | -0.050 | +0.020 | -0.015 ± 0.049 | 1 of 2 |",
        "| on twos | 12 | +0.400 | +0.200 | +0.300 ± 0.141 | 2 of 2 |"]
    del summary["curated_minus_naive_by_cadence"]
    assert "rerun" in curation_cadence_table(summary)


def peers() -> dict:
    """A benchmark JSON: two works' triplets, the model 0.2 dB over HDv3 on one, level on
    the other."""
    def row(key: str, model: float, hdv3: float) -> dict:
        return {"key": key, "psnr": {"model": model, "rife": 20.0, "hdv3": hdv3, "blend": 19.0}}
    return {"methods": {"model": {"ms_per_frame": 100.4}, "rife": {"ms_per_frame": 99.6},
                        "hdv3": {"ms_per_frame": 280.0}, "blend": {"ms_per_frame": 0.5}},
            "per_triplet": [row("big-buck-bunny_0001", 25.2, 25.0),
                            row("big-buck-bunny_0002", 25.4, 25.2),
                            row("steamboat-willie_0001", 22.0, 22.0),
                            row("steamboat-willie_0002", 22.0, 22.0)]}


def test_peers_table():
    assert peers_table(peers()).splitlines() == [
        "| t = 0.5 | model | rife (start) | RIFE HDv3 | blend | model - HDv3 (paired) |",
        "|---|---|---|---|---|---|",
        "| Big Buck Bunny, 3D (2) | **25.30** | 20.00 | 25.10 | 19.00 | +0.20 ± 0.00 |",
        "| Steamboat Willie, 2D film scan (2) | **22.00** | 20.00 | **22.00** | 19.00 | +0.00 ± 0.00 |",
        "| held-out works (4) | **23.65** | 20.00 | 23.55 | 19.00 | +0.10 ± 0.11 |",
        "| ms per in-between | 100 | 100 | 280 | – | |"]


def test_tta_table():
    """Each option's rows paired with the one-pass run's and HDv3's, on the same keys."""
    bench = peers()
    both = {"per_triplet": [{"key": r["key"], "psnr": {"model": r["psnr"]["model"] + d}}
                            for r, d in zip(bench["per_triplet"], (0.1, 0.1, 0.3, 0.3))]}
    assert tta_table(bench, {"both": both}).splitlines() == [
        "| model, t = 0.5 | passes | PSNR | over one pass | over RIFE HDv3 |",
        "|---|---|---|---|---|",
        "| none | 1 | 23.65 | – | +0.10 ± 0.11 |",
        "| both | 4 | 23.85 | +0.20 ± 0.11 | +0.30 ± 0.00 |"]
    both["per_triplet"].pop()
    with pytest.raises(ValueError, match="not the triplets"):
        tta_table(bench, {"both": both})


def test_difficulty_table_splits_by_the_peers_score_and_pools_the_runs():
    """Triplets go to HDv3's difficulty bucket by HDv3's own PSNR (30 dB is easy, 25 is
    middling), runs are pooled, and each cell pairs a method with HDv3 triplet by
    triplet; an empty bucket has no column."""
    def row(key: str, model: float, hdv3: float) -> dict:
        return {"key": key, "psnr": {"model": model, "rife": hdv3 - 0.5, "hdv3": hdv3,
                                     "blend": hdv3 - 2.0}}
    held = {"per_triplet": [row("a_1", 30.9, 31.0), row("a_2", 29.9, 30.0),
                            row("a_3", 20.2, 20.0), row("a_4", 24.4, 24.0)]}
    val = {"per_triplet": [row("b_1", 34.9, 35.0)]}
    assert difficulty_table([held, val]).splitlines() == [
        "| method - RIFE HDv3 | HDv3 >= 30 dB (3) | under 25 dB (2) | all (5) |",
        "|---|---|---|---|",
        "| model | -0.10 ± 0.00 | +0.30 ± 0.20 | +0.06 ± 0.20 |",
        "| rife (start) | -0.50 ± 0.00 | -0.50 ± 0.00 | -0.50 ± 0.00 |",
        "| blend | -2.00 ± 0.00 | -2.00 ± 0.00 | -2.00 ± 0.00 |"]
    with pytest.raises(ValueError, match="in both runs"):
        difficulty_table([held, held])


HEAD, MID, TAIL = "# Tü\r\nhand text\n\n", "\nbetween\n", "\nend, no final newline"


def repo(tmp_path: Path) -> Path:
    """A repository with the metrics files and both docs, every block stale ("old")."""
    summary, runs = curation()
    (tmp_path / "reports/eval").mkdir(parents=True)
    (tmp_path / doc_tables.EVAL_SUMMARY).write_text(json.dumps(eval_json()))
    (tmp_path / "reports/curation").mkdir(parents=True)
    (tmp_path / "reports/curation/summary.json").write_text(json.dumps(summary))
    (tmp_path / "reports/peers").mkdir(parents=True)
    (tmp_path / doc_tables.PEERS).write_text(json.dumps(peers()))
    val = peers()  # other works' triplets: keys of their own
    val["per_triplet"] = [{**r, "key": "val-" + r["key"]} for r in val["per_triplet"]]
    (tmp_path / doc_tables.PEERS_VAL).write_text(json.dumps(val))
    with open(tmp_path / "reports/curation/runs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    for name, blocks in DOCS.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        body = MID.join(f"<!-- results:{b} -->\nold\n<!-- /results:{b} -->" for b in blocks)
        (tmp_path / name).write_bytes((HEAD + body + TAIL).encode())
    return tmp_path


def outside(text: str) -> str:
    return doc_tables.MARKER.sub(lambda m: m[1] + m[4], text)


def test_rewrite_keeps_the_rest_byte_identical_and_is_idempotent(tmp_path: Path):
    root = repo(tmp_path)
    before = {n: (root / n).read_bytes() for n in DOCS}
    assert main(["--root", str(root)]) == 0
    for name in DOCS:
        after = (root / name).read_bytes()
        assert after != before[name]
        assert outside(after.decode()).encode() == outside(before[name].decode()).encode()
        assert after.startswith(HEAD.encode()) and after.endswith(TAIL.encode())
        assert b"old" not in after
    once = {n: (root / n).read_bytes() for n in DOCS}
    assert main(["--root", str(root), "--check"]) == 0
    assert main(["--root", str(root)]) == 0
    assert {n: (root / n).read_bytes() for n in DOCS} == once
    assert "| synthetic (4) |" in (root / "README.md").read_text()
    assert not list(root.rglob("*.tmp"))


def test_check_names_the_stale_block_and_writes_nothing(tmp_path: Path, capsys):
    root = repo(tmp_path)
    assert main(["--root", str(root)]) == 0
    capsys.readouterr()
    ev = eval_json()
    ev["held_out"]["psnr"]["model"] = 23.0  # the metrics move on, the docs do not
    (root / doc_tables.EVAL_SUMMARY).write_text(json.dumps(ev))
    before = (root / "README.md").read_bytes()
    assert main(["--root", str(root), "--check"]) == 1
    assert "stale: README.md: eval-summary" in capsys.readouterr().err
    assert (root / "README.md").read_bytes() == before


def test_a_missing_marker_is_an_error(tmp_path: Path, capsys):
    root = repo(tmp_path)
    (root / "README.md").write_text("no markers\n")
    assert main(["--root", str(root), "--check"]) == 2
    assert "README.md" in capsys.readouterr().err


def test_the_repository_docs_agree_with_its_metrics(capsys):
    """Fails after a run changes the metrics: ``python -m vfi.evaluation.doc_tables``."""
    if main(["--root", str(ROOT), "--check"]) != 0:
        pytest.fail("docs stale, run python -m vfi.evaluation.doc_tables:\n"
                    + capsys.readouterr().err)


def test_cadence_rows_and_the_edge_table_with_intervals():
    ev = eval_json()
    twos = {**group(5, {"model": 23.0, "rife": 22.0}), "edge_psnr": {"model": 18.0, "rife": 18.5},
            "ci95": {"edge_psnr": {"model": 0.4, "rife": None}}}
    ev["by_cadence"] = {"twos": twos, "pan": group(3, {"model": 26.0, "rife": 25.0})}
    rows = eval_rows(ev, detail=True)
    assert [label for label, _ in rows][-2:] == ["... on twos (5)", "... pans (3)"]
    # only the rows that have edge PSNR; the interval where there is one
    assert doc_tables.edge_table(rows, ["model", "rife"]).splitlines() == [
        "| test triplets, edge PSNR | model | rife (start) |",
        "|---|---|---|",
        "| ... on twos (5) | 18.00 ± 0.40 | **18.50** |"]


def test_the_gain_sentence_quotes_the_paired_interval():
    ev = eval_json()
    ev["held_out"]["gain"] = {"psnr": {"rife": {"mean": 0.5, "ci95": 0.12}}}
    assert "**+0.50 dB** ± 0.12 at 95%, paired (+0.70 on" in eval_gain(ev)
