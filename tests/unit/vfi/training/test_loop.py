"""The training loop: schedule, checkpoints (weights_only), exact resume after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import webdataset as wds
from support import REPO
from support.training import scene, tiny_params, write_tiny_shards

from vfi.config import ConfigError, parse_vfi_params
from vfi.inference.checkpoint import (
    CHECKPOINT_NAME,
    RESUME_NAME,
    RUN_DIR,
    CheckpointError,
    read_checkpoint,
    save_checkpoint,
)
from vfi.training.loop import lr_at, train


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_shards(tmp_path_factory.mktemp("shards"))


def test_params_validation() -> None:
    assert parse_vfi_params({"sources": []}).model.arch == "rife"  # other sections ignored
    for bad in ({"model": {"arch": "gan"}}, {"train": {"stepz": 3}},
                {"model": {"lr": 1e-4}, "train": {"min_lr": 1e-3}}, {"train": {"crop": 30}},
                {"train": {"losses": {"l2": 1.0}}}, {"eval": {"t_buckets": [0.5, 1.0]}}):
        with pytest.raises(ConfigError):
            parse_vfi_params(bad)


def test_lr_schedule() -> None:
    tp = tiny_params(steps=100, warmup=10, min_lr=1e-5).train
    assert lr_at(0, tp, 1e-3) == pytest.approx(1e-4)
    assert lr_at(9, tp, 1e-3) == pytest.approx(1e-3)
    assert lr_at(10, tp, 1e-3) == pytest.approx(1e-3)
    assert lr_at(100, tp, 1e-3) == pytest.approx(1e-5)
    assert all(lr_at(s, tp, 1e-3) >= lr_at(s + 1, tp, 1e-3) for s in range(10, 100))


def test_learning_rate_is_a_model_key() -> None:
    params = parse_vfi_params({"model": {"lr": 0.002}})
    assert params.model.lr == 0.002 and "lr" not in type(params.train).model_fields
    with pytest.raises(ConfigError, match=r"train: .*lr moved to model\.lr"):
        parse_vfi_params({"train": {"lr": 0.002}})
    with pytest.raises(ConfigError, match=r"train\.min_lr \(0\.01\) must not exceed model\.lr"):
        parse_vfi_params({"model": {"lr": 0.002}, "train": {"min_lr": 0.01}})


def test_checkpoint_round_trip_and_weights_only(tmp_path: Path) -> None:
    state = {"model": {"w": torch.arange(4.0)}, "step": 3, "model_config": {"arch": "flow"}}
    save_checkpoint(tmp_path / "ok.pt", state)
    loaded = read_checkpoint(tmp_path / "ok.pt")
    assert loaded["step"] == 3 and torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert not list(tmp_path.glob(".*"))  # no temporary left behind

    class Payload:
        def __reduce__(self):  # runs at unpickling time with a plain torch.load
            return (print, ("pwned",))
    torch.save({"model": {}, "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a torch file of plain tensors"):
        read_checkpoint(tmp_path / "evil.pt")


def test_train_writes_checkpoint_and_live(shards: Path, tmp_path: Path) -> None:
    result = train(tiny_params(), shards, tmp_path / "models", tmp_path / "live")
    assert result.step == 6 and len(result.losses) == 6
    assert [s for s, _ in result.val_psnr] == [0, 2, 4, 6]  # the start is validated too
    last = read_checkpoint(tmp_path / "models" / RESUME_NAME, required=("optimizer",))
    assert last["step"] == 6 and last["model_config"]["width"] == 8
    # model.pt holds the weights of the best validation, whichever step that was.
    best_step, best_psnr = max(result.val_psnr, key=lambda sv: (sv[1], -sv[0]))
    best = read_checkpoint(tmp_path / "models" / CHECKPOINT_NAME)
    assert best["step"] == best_step == result.best_step
    assert best["val_psnr"] == pytest.approx(best_psnr) and "optimizer" not in best
    metrics = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert "val" in metrics and "train" in metrics
    # A finished run is not trained again.
    assert train(tiny_params(), shards, tmp_path / "models").losses == []


class Killed(RuntimeError):
    """Stands in for SIGKILL in the resume test."""


def test_resume_after_kill_matches_uninterrupted(shards: Path, tmp_path: Path) -> None:
    params = tiny_params()
    full = train(params, shards, tmp_path / "full")

    def kill_at_5(step: int, loss: float) -> None:
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        train(params, shards, tmp_path / "resumed", on_step=kill_at_5)
    # the killed run wrote its own state only: nothing published before the end
    assert read_checkpoint(tmp_path / "resumed" / RUN_DIR / RESUME_NAME)["step"] == 4
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == [RUN_DIR]
    rest = train(params, shards, tmp_path / "resumed")
    assert rest.start_step == 4 and [s for s, _ in rest.losses] == [5, 6]
    assert [l for _, l in rest.losses] == pytest.approx([l for _, l in full.losses[4:]],
                                                       rel=1e-5)
    for name in (RESUME_NAME, CHECKPOINT_NAME):  # the best is carried over the kill too
        a = read_checkpoint(tmp_path / "full" / name)
        b = read_checkpoint(tmp_path / "resumed" / name)
        assert a["step"] == b["step"]
        assert all(torch.allclose(a["model"][k], b["model"][k], atol=1e-6) for k in a["model"])
    assert not (tmp_path / "resumed" / RUN_DIR).exists()  # published: the run state moved


def test_changed_params_start_over(shards: Path, tmp_path: Path) -> None:
    train(tiny_params(steps=2), shards, tmp_path / "m")
    other = tiny_params(steps=2, min_lr=1e-5)
    other = other.model_copy(update={"model": other.model.model_copy(update={"lr": 1e-4})})
    result = train(other, shards, tmp_path / "m")
    assert result.start_step == 0 and result.step == 2


def test_other_shards_start_over(shards: Path, tmp_path: Path) -> None:
    """A resume state from other data (a changed dataset, same params) is not resumed:
    ``dvc repro`` after a data change trains anew."""
    import shutil

    train(tiny_params(steps=2), shards, tmp_path / "m")
    other = tmp_path / "other"
    shutil.copytree(shards, other)
    # any change of the shards table is other data (the tiny shards have none at all)
    pd.DataFrame({"shard": ["train/train-000000.tar"], "sha256": ["0" * 64]}).to_parquet(
        other / "shards.parquet")
    result = train(tiny_params(steps=2), other, tmp_path / "m")
    assert result.start_step == 0 and result.step == 2
    assert train(tiny_params(steps=2), other, tmp_path / "m").losses == []  # now it matches


class AlwaysRandom:
    """A stand-in generator: every coin flip says yes, every crop is at the origin."""

    def random(self) -> float:
        return 0.0

    def randint(self, a: int, b: int) -> int:
        return a


@pytest.mark.parametrize("flip,reverse,expected", [
    (True, False, (-1.0, -2.0, -3.0, -4.0)),   # both flips: every component negated
    (False, True, (3.0, 4.0, 1.0, 2.0)),      # reversal: t->0 and t->1 swap
], ids=["flips", "reverse"])
def test_augment_transforms_teacher_flow(flip: bool, reverse: bool,
                                         expected: tuple[float, ...]) -> None:
    from vfi.training.samples import augment
    frames = {k: torch.rand(3, 16, 16) for k in ("f0", "f1", "f2")}
    flow = torch.tensor([1.0, 2.0, 3.0, 4.0])[:, None, None].expand(4, 16, 16).clone()
    sample = {**frames, "t": torch.tensor(0.25), "key": "k", "meta": {}, "flow": flow}
    tp = tiny_params(crop=16, crop_tries=1, flip=flip, reverse=reverse).train
    out = augment(sample, tp, AlwaysRandom())  # type: ignore[arg-type]
    assert out["flow"][:, 0, 0].tolist() == list(expected)
    assert float(out["t"]) == (0.75 if reverse else 0.25)
    if reverse:
        assert torch.equal(out["f0"], frames["f2"])
    else:
        assert torch.equal(out["f0"], frames["f0"].flip(-1).flip(-2))


def test_dis_teacher_finds_the_motion() -> None:
    from vfi.flow.dis import DisFlow
    f0, f2 = (torch.from_numpy(scene(t, 12.0)).permute(2, 0, 1).float() / 255 for t in (0, 1))
    flow = DisFlow("medium")(f0, f2, 0.5)
    # Everything moves 12 px right: at t = 0.5 it came from the left (flow t->0 x < 0)
    # and goes right (t->1 x > 0). DIS is coarse on a 64x48 frame: signs, not values.
    assert float(flow[0].mean()) < -2 and float(flow[2].mean()) > 1


def test_accumulate_and_bf16_run(shards: Path, tmp_path: Path) -> None:
    result = train(tiny_params(steps=2, accumulate=2, bf16=True), shards, tmp_path / "m")
    assert result.step == 2 and all(np.isfinite(l) for _, l in result.losses)


def test_flow_cache_computes_each_sample_once_within_budget() -> None:
    from vfi.training.samples import FlowCache

    calls: list[float] = []

    def teacher(f0: torch.Tensor, f2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(float(t))
        return torch.full((4, 8, 8), float(t))  # 1 KiB

    cache = FlowCache(teacher, budget_mb=1)
    frames = {"f0": torch.zeros(3, 8, 8), "f2": torch.zeros(3, 8, 8)}
    first = cache({**frames, "key": "a", "t": torch.tensor(0.25)})
    again = cache({**frames, "key": "a", "t": torch.tensor(0.25)})
    assert torch.equal(first, again) and calls == [0.25]
    for i in range(1100):  # 1100 KiB of flows through a 1 MiB cache: the oldest go
        cache({**frames, "key": f"k{i}", "t": torch.tensor(0.5)})
    assert cache.used <= 2**20 and "a" not in cache.items and "k1099" in cache.items
    assert len(calls) == 1101


def test_checkpoint_bytes_do_not_depend_on_the_file_name(tmp_path: Path) -> None:
    from vfi.inference.checkpoint import save_checkpoint

    state = {"model": {"w": torch.arange(6.0)}, "step": 3}
    save_checkpoint(tmp_path / "a" / "model.pt", state)
    save_checkpoint(tmp_path / "b" / "other.pt", state)
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "other.pt").read_bytes()


def test_checkpoint_of_another_network_version_restarts(shards: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    from vfi.config import params_hash
    from vfi.inference.checkpoint import save_checkpoint

    params = tiny_params(steps=1)
    from vfi.training.loop import code_hash

    stale = {"model": {"blocks.0.down.0.0.weight": torch.zeros(1)}, "optimizer": {},
             "step": 1, "params_hash": params_hash(params), "code_hash": code_hash()}
    save_checkpoint(tmp_path / "models" / RESUME_NAME, stale)
    with caplog.at_level("WARNING"):
        result = train(params, shards, tmp_path / "models")
    assert result.start_step == 0 and result.step == 1
    assert "does not fit this network" in caplog.text


def test_validation_reuses_the_flows_computed_at_load(shards: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.dataset.manifest import shards_for_split
    from vfi.inference import interpolator
    from vfi.inference.interpolator import classical_flow
    from vfi.nets import build_model
    from vfi.training.loop import validate
    from vfi.training.samples import load_val

    params = tiny_params()
    net = build_model(params.model)
    val = load_val(shards_for_split(shards, "val"), 2, classical_flow(params.model))
    assert all(s["flow"].shape[0] in (4, 6) for s in val)
    first = validate(net, val, torch.device("cpu"))

    def no_recompute(*args: object) -> None:
        raise AssertionError("classical flows computed again at validation")

    monkeypatch.setattr(interpolator, "init_flows", no_recompute)
    assert validate(net, val, torch.device("cpu")) == first


def test_validation_samples_spread_over_the_split(tmp_path: Path) -> None:
    """Shards are in source order: the first n samples would be one source's."""
    from pipeline.dataset.manifest import shards_for_split
    from vfi.training.samples import load_val

    root = write_tiny_shards(tmp_path / "s", {"train": 1, "val": 6, "test": 1})
    urls = [str(u) for u in sorted((root / "val").glob("*.tar"))]
    assert [s["key"] for s in load_val(urls, 3)] == ["val-0000", "val-0002", "val-0004"]
    assert len(load_val(urls, 50)) == 6
    assert load_val(shards_for_split(root, "nothing"), 3) == []


def test_the_stream_covers_every_shard_from_its_first_samples(tmp_path: Path) -> None:
    """One epoch of the single-process stream is every sample of every shard once, in a
    seeded order mixing the shards; the next epoch another order. Reading a drawn shard
    whole (what the stream did) gave a 1,200-sample run of two large shards one of them
    twice and the other never."""
    import itertools

    from vfi.training.distributed import EpochShuffled

    urls = []
    for k, count in enumerate((30, 20)):
        root = write_tiny_shards(tmp_path / f"s{k}", {"train": count})
        path = root / "train" / f"part{k}.tar"
        (root / "train" / "train-000000.tar").rename(path)
        urls.append(str(path))
    stream = iter(EpochShuffled(urls, seed=0))
    first = [s["__key__"] + s["__url__"][-5] for s in itertools.islice(stream, 50)]
    second = [s["__key__"] + s["__url__"][-5] for s in itertools.islice(stream, 50)]
    assert sorted(first) == sorted(second) and len(set(first)) == 50  # each sample once an epoch
    assert first != second
    assert {k[-1] for k in first[:10]} == {"0", "1"}  # both shards from the start
    again = [s["__key__"] + s["__url__"][-5] for s in itertools.islice(iter(EpochShuffled(urls, 0)), 50)]
    assert again == first
    sample = next(iter(EpochShuffled(urls[:1], 0)))
    plain = {s["__key__"]: s for s in wds.tarfile_to_samples()(iter([{"url": urls[0]}]))}
    assert {k: v for k, v in sample.items()} == plain[sample["__key__"]]


def test_a_state_made_by_other_training_code_is_not_continued(shards: Path, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """DVC re-runs train when its code changes; the run must then train, not publish the
    old run's end as its own (same params, same shards, other code)."""
    import vfi.training.loop as loop

    params = tiny_params(steps=2)
    train(params, shards, tmp_path / "models")
    assert train(params, shards, tmp_path / "models").start_step == 2  # same code: nothing to do
    loop.code_hash.cache_clear()
    try:
        with caplog.at_level("WARNING"), pytest.MonkeyPatch.context() as mp:
            mp.setattr(loop, "TRAIN_CODE", ("config.py",))  # as if the training code changed
            result = train(params, shards, tmp_path / "models")
    finally:
        loop.code_hash.cache_clear()
    assert result.start_step == 0 and result.step == 2
    assert "was trained by other code" in caplog.text


def test_params_hash_leaves_out_exactly_the_run_length_and_result_neutral_keys() -> None:
    """One list: a key DVC does not track (``RESULT_NEUTRAL``) never blocks a resume, and
    every other train key does."""
    from vfi.config import RESULT_NEUTRAL, params_hash

    base = tiny_params(steps=1)
    run_length = {"steps": 50, "val_every": 7, "val_samples": 3}
    neutral = {"threads": 2, "flow_cache_mb": 1}
    assert set(neutral) == set(RESULT_NEUTRAL["train"])
    for key, value in {**run_length, **neutral}.items():
        changed = base.model_copy(update={"train": base.train.model_copy(update={key: value})})
        assert params_hash(changed) == params_hash(base), key
    changed = base.model_copy(update={"train": base.train.model_copy(update={"seed": base.train.seed + 1})})
    assert params_hash(changed) != params_hash(base)


def test_the_stage_reports_bad_input_in_one_line_and_keeps_a_bug_s_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import vfi.train as stage

    (tmp_path / "shards").mkdir()
    args = ["--params", str(REPO / "params.yaml"), "--shards", str(tmp_path / "shards"),
            "--out", str(tmp_path / "models"), "--live", str(tmp_path / "live")]
    assert stage.main(args) == 2
    assert "the train split has no shards" in capsys.readouterr().err

    def bug(*_args, **_kwargs):
        raise ValueError("a bug, not an input")

    monkeypatch.setattr(stage, "train", bug)
    with pytest.raises(ValueError, match="a bug, not an input"):
        stage.main(args)
