"""Typed, validated view of ``params.yaml``.

Every stage loads the file once through :func:`load_params` and reads only its own
section. Validation happens at load time so that a typo stops the run before any work,
with a message naming the key path (``sources[2].sha256: expected 64 hex chars``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML, YAMLError

DEFAULT_PARAMS = Path("params.yaml")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SOURCE_KINDS = ("synthetic", "path", "url", "folder", "list", "page")
# What a ``folder`` entry picks up without a ``glob`` (a file's suffix, any case); the
# download stage also keeps these suffixes on the files it writes.
VIDEO_EXTS = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".gif", ".ts",
                        ".mpg", ".mpeg", ".flv", ".wmv", ".ogv"})
# A folder or list name prefixes every name derived from it ("<prefix>-<file>"); this
# cap leaves room for a readable part and an 8-hex disambiguating hash within 64.
PREFIX_MAX = 48


class ConfigError(ValueError):
    """A params file that cannot be used; the message names every bad key path."""


class _Section(BaseModel):
    """Base for every params section: unknown keys and silent coercions are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def check_name(value: str) -> str:
    """Source names become file names and sample-key prefixes: no separators, no dots."""
    if not SAFE_NAME.match(value):
        raise ValueError(
            f"unsafe name {value!r}: use 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit (no '/', '.', or spaces)"
        )
    return value


def check_sha256(value: str | None) -> str | None:
    """A pinned checksum must be a full lower-case hex sha256."""
    if value is not None and not SHA256.match(value):
        raise ValueError("expected 64 hex chars (lower case)")
    return value


SafeName = Annotated[str, AfterValidator(check_name)]
Sha256 = Annotated[str | None, AfterValidator(check_sha256)]


class _SourceBase(_Section):
    """What every ``sources`` entry has: a name, its licence and attribution, and
    ``split``, the splits its footage may go to: ``auto`` (scene groups spread over
    train/val/test by ``filter.split``), ``train`` (train and val only: footage to learn
    from) or ``test`` (every triplet to test: a held-out work, so a real-footage score
    is measured on a work the model never saw, not just on unseen scenes of it)."""

    name: SafeName
    license: str = "unknown"
    attribution: str = ""
    split: Literal["auto", "train", "test"] = "auto"


class _SynthFields(_Section):
    """What the synthetic source generates (``pipeline.synth``), deterministic for ``seed``.

    ``clips`` clips of ``seconds`` each. Shot lengths are drawn between
    ``min_shot_seconds`` and ``max_shot_seconds``; a new shot is static with
    ``static_prob``; a shot slot reuses an earlier shot with ``repeat_prob``; a gradual
    transition (dissolve or flash) follows a shot with ``transition_prob``. ``crf`` is
    the libx264 constant-rate factor; sides are even because the clips are yuv420p.

    The one declaration of these fields, their defaults and bounds: :class:`SynthSpec`
    (what ``pipeline.synth`` takes) and :class:`SyntheticSource` (a ``sources`` entry)
    both inherit them, and the ``inbetweener synth`` options mirror them.
    """

    clips: int = Field(6, ge=1, le=1000)
    seed: int = Field(0, ge=0)
    width: int = Field(320, ge=32, le=3840, multiple_of=2)
    height: int = Field(240, ge=32, le=2160, multiple_of=2)
    fps: int = Field(24, ge=1, le=120)
    seconds: float = Field(10.0, gt=0, le=3600)
    crf: int = Field(16, ge=0, le=51)
    min_shot_seconds: float = Field(1.0, gt=0)
    max_shot_seconds: float = Field(3.0, gt=0, validate_default=True)  # checked against min
    static_prob: float = Field(0.15, ge=0, le=1)
    repeat_prob: float = Field(0.15, ge=0, le=1)
    transition_prob: float = Field(0.0, ge=0, le=1)
    # What real transfers add (all off by default; the accuracy tests turn them on).
    grain: float = Field(0.0, ge=0, le=64)            # film grain: sd (grey levels) on every frame
    pan_ones_prob: float = Field(0.0, ge=0, le=1)     # a moving shot's camera pans on ones, cels held
    similar_cut_prob: float = Field(0.0, ge=0, le=1)  # the next shot has a look-alike palette
    fade_prob: float = Field(0.0, ge=0, le=1)         # after a shot: fade out to and in from black/white
    slow_prob: float = Field(0.0, ge=0, le=1)         # a moving shot moves sub-pixel per frame, on ones
    letterbox: int = Field(0, ge=0, le=540, multiple_of=2)  # constant black bars (px) top and bottom; even: yuv420p
    pillarbox: int = Field(0, ge=0, le=960, multiple_of=2)  # constant black bars (px) left and right; even: yuv420p
    telecine: bool = False                            # 3:2 pulldown (FFmpeg telecine, tff) to fps * 5/4

    # Field validators run in declaration order: fps and min_shot_seconds are checked
    # (and in ``info.data`` when valid) before the fields that depend on them.
    @field_validator("seconds")
    @classmethod
    def _gives_a_frame(cls, value: float, info: ValidationInfo) -> float:
        fps = info.data.get("fps")
        if fps is not None and round(value * fps) < 1:
            raise ValueError(f"gives no frame at {fps} fps")
        return value

    @field_validator("max_shot_seconds")
    @classmethod
    def _shot_range(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_shot_seconds")
        if low is not None and low > value:
            raise ValueError(f"min_shot_seconds must not exceed max_shot_seconds ({low} > {value})")
        return value

    @property
    def clip_frames(self) -> int:
        """Frames in every clip."""
        return int(round(self.seconds * self.fps))

    @property
    def min_shot_frames(self) -> int:
        return max(1, int(round(self.min_shot_seconds * self.fps)))

    @property
    def max_shot_frames(self) -> int:
        return max(self.min_shot_frames, int(round(self.max_shot_seconds * self.fps)))


class SynthSpec(_SynthFields):
    """The synthetic generator's input (``pipeline.synth.generate``), built in code.

    A bad value raises a :class:`ConfigError` whose lines start with the field name
    (``width: Input should be a multiple of 2``). This custom ``__init__`` is why
    :class:`SyntheticSource` does not extend this class: pydantic would call it for a
    nested model too, and the error would lose its ``sources[i].`` key path.
    """

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(format_errors(exc)) from None


class SyntheticSource(_SynthFields, _SourceBase):
    """Procedural cartoon clips with a ground-truth table (see ``pipeline.synth``)."""

    kind: Literal["synthetic"]
    license: str = "CC0-1.0"

    def spec(self) -> SynthSpec:
        """What to generate: this source without its name, kind, license and attribution."""
        return SynthSpec(**{f: getattr(self, f) for f in SynthSpec.model_fields})

    def clip_names(self) -> list[str]:
        """File stems of the clips this source writes."""
        return [f"{self.name}-{i:02d}" for i in range(self.clips)]


def check_http_url(value: str) -> str:
    """Only http(s) is fetched; anything else (file://, ftp://) would bypass the policy."""
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("expected an http:// or https:// URL")
    return value


def check_prefix(value: str) -> str:
    """A folder or list name is a prefix: it must leave room for the derived part."""
    if len(value) > PREFIX_MAX:
        raise ValueError(f"at most {PREFIX_MAX} chars: it prefixes every name derived from it")
    return value


def check_glob(value: str | None) -> str | None:
    """A folder glob stays inside its folder: relative, no '..' step."""
    if value is None:
        return value
    parts = re.split(r"[/\\]", value)
    if not value or value.startswith(("/", "\\")) or ".." in parts:
        raise ValueError("expected a non-empty relative pattern without '..' (e.g. '**/*.mp4')")
    if any("**" in part and part != "**" for part in parts):
        raise ValueError("'**' must be a whole path component (e.g. '**/*.mp4')")
    return value


WebUrl = Annotated[str, AfterValidator(check_http_url)]
PrefixName = Annotated[str, AfterValidator(check_name), AfterValidator(check_prefix)]


class PathSource(_SourceBase):
    """A video already on this machine; relative paths are relative to params.yaml."""

    kind: Literal["path"]
    path: str = Field(min_length=1)
    sha256: Sha256 = None


class UrlSource(_SourceBase):
    """A video fetched over http(s), ideally pinned by sha256."""

    kind: Literal["url"]
    url: WebUrl
    sha256: Sha256 = None


class FolderSource(_SourceBase):
    """Every matching file under a local folder, one source each (``pipeline.sources.entries``).

    ``path`` is relative to params.yaml. ``glob`` (``*.mkv``, ``**/*.mp4``) picks the
    files; without it every file with a known video suffix (``VIDEO_EXTS``) at any depth.
    Hidden files and folders (a name starting with '.') are skipped either way. The
    entry's license, attribution and split apply to every file.
    """

    kind: Literal["folder"]
    name: PrefixName
    path: str = Field(min_length=1)
    glob: Annotated[str | None, AfterValidator(check_glob)] = None


class ListSource(_SourceBase):
    """A CSV of videos, one source per row (``pipeline.sources.entries``).

    ``path`` (relative to params.yaml) names the CSV: columns ``url`` and ``name``
    required; ``license``, ``attribution``, ``sha256`` and ``split`` optional, an empty
    value falling back to this entry's. A ``url`` that is not http(s) is a local path
    relative to the CSV. Each row is named ``<this name>-<row name>``.
    """

    kind: Literal["list"]
    name: PrefixName
    path: str = Field(min_length=1)


class PageSource(_SourceBase):
    """A web page whose video yt-dlp finds (``pipeline.sources.page``), then fetched like a url."""

    kind: Literal["page"]
    url: WebUrl
    sha256: Sha256 = None


Source = Annotated[
    SyntheticSource | PathSource | UrlSource | FolderSource | ListSource | PageSource,
    Field(discriminator="kind"),
]


class DownloadParams(_Section):
    """Network policy of the download stage, and the per-source scan it records."""

    timeout: float = Field(30.0, gt=0, le=3600)
    retries: int = Field(4, ge=0, le=20)
    backoff: float = Field(1.0, ge=0, le=600)
    max_bytes: int = Field(2 * 1024**3, gt=0)
    max_seconds: float = Field(3600.0, gt=0)
    # pipeline.media.scan: telecine/interlace (auto: idet + a fieldmatch trial; off: every
    # source decodes as progressive) and constant black bars (auto: cropped; off: kept).
    scan: Literal["auto", "off"] = "auto"
    crop_bars: Literal["auto", "off"] = "auto"
    scan_frames: int = Field(360, ge=30, le=5000)  # frames sampled per source, at most

    def fetch_policy(self) -> dict[str, float | int]:
        """The network keys only (what ``pipeline.sources.fetch.FetchPolicy`` takes)."""
        return self.model_dump(exclude={"scan", "crop_bars", "scan_frames"})


class CutsParams(_Section):
    """detect_cuts: one decode per source at analysis size, detectors fed directly."""

    analysis_size: int = Field(192, ge=32, le=1080)  # short side, px
    reader: Literal["auto", "decord", "pyav"] = "auto"
    detector: Literal["combined", "transnet", "content", "adaptive", "hash",
                      "histogram"] = "combined"
    threshold: float = Field(27.0, gt=0)            # content detector, 0-255 scale
    candidate_threshold: float = Field(4.0, gt=0)   # combined: least content score (48x27) of a spike
    spike_ratio: float = Field(1.5, ge=1)           # combined: ... and this x every score 2-4 frames away
    cut_correlation: float = Field(0.5, ge=-1, le=1)  # combined: grey correlation under this: a cut
    same_picture: float = Field(0.75, ge=-1, le=1)  # combined: at or over this: no cut (between: the net)
    same_shot_share: float = Field(0.15, gt=0, le=1)  # combined: kept_share (structure kept in place) at or over this: no cut
    related_share: float = Field(0.03, ge=0, le=1)  # combined: ... at or over this: a spike needs the net to confirm
    doubtful_threshold: float = Field(12.0, gt=0)   # combined: least score (48x27) the net is asked about
    net_threshold: float = Field(0.5, gt=0, lt=1)   # transnet: TransNetV2 cut probability
    confirm_threshold: float = Field(0.15, gt=0, lt=1)  # combined: ... that confirms a doubtful frame
    net_window: int = Field(50, ge=4, le=100, multiple_of=2)  # combined: frames the net sees per spike
    hash_threshold: float = Field(0.395, gt=0, le=1)  # hash detector, 0-1 scale
    histogram_threshold: float = Field(0.05, gt=0, le=1)  # histogram detector, 0-1 scale
    adaptive_threshold: float = Field(3.0, gt=0)
    min_content_val: float = Field(15.0, ge=0)      # adaptive detector floor
    min_scene_len: int = Field(4, ge=1)             # frames
    thumb_size: int = Field(16, ge=4, le=64)        # grey thumbnail kept per frame
    timeout: float = Field(1800.0, gt=0)            # seconds per source (worker is killed)

    @model_validator(mode="after")
    def _correlation_band(self) -> CutsParams:
        if self.cut_correlation > self.same_picture:
            raise ValueError("cut_correlation must not exceed same_picture")
        return self


class TripletParams(_Section):
    """extract_triplets: held runs collapse into drawings; triplets of drawings."""

    # The hold rule (pipeline.analysis.holds, run in detect_cuts' pass): a new drawing when the
    # local (largest block), spread (RMS over coarse blocks) or shift (what per-tile
    # sub-pixel shifts explain) change from the drawing's first frame exceeds its gate,
    # max(floor, factor x that measure's noise level).
    hold_block: int = Field(4, ge=1, le=64)         # block side, px of the analysis-size frame
    hold_noise_quantile: float = Field(0.1, gt=0, lt=1)  # of held frames' changes: the noise level
    hold_noise_factor: float = Field(2.2, ge=0)     # gate = factor x noise level (0: the floor alone)
    hold_min_change: float = Field(15.0, ge=0)       # grey levels: the local gate never goes below this
    # film (a source whose held frames weave and flicker): the noise removed before measuring
    hold_max_weave: float = Field(1.5, ge=-1)       # px: a whole-frame shift up to this is weave (-1: no film mode)
    hold_film_local_cells: int = Field(2, ge=1, le=16)  # local measure over n x n blocks (dust specks are 1)
    hold_film_factor: float = Field(3.0, ge=0)      # gate factor on film (its noise has longer tails)
    hold_spread_cells: int = Field(4, ge=1, le=64)  # spread measure: RMS over blocks of n x n blocks
    hold_min_spread: float = Field(1.0, ge=0)       # grey levels: the spread gate never goes below this
    hold_drift: float = Field(0.7, ge=0, le=1)      # last step < this x change: a slow move (0: off)
    # shift change: RMS of what a per-tile sub-pixel shift explains (n square tiles across)
    hold_shift_tiles: int = Field(4, ge=1, le=64)
    hold_shift_factor: float = Field(2.4, ge=0)     # shift gate = factor x its noise level
    hold_min_shift: float = Field(0.5, ge=0)        # grey levels: the shift gate's floor
    max_span: int = Field(12, ge=2)                 # frames between the triplet's ends
    stride: int = Field(1, ge=1)                    # take every stride-th triplet


class SplitFractions(_Section):
    train: float = Field(0.8, ge=0, le=1)
    val: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        if abs(self.train + self.val + self.test - 1.0) > 1e-6:
            raise ValueError("train + val + test must sum to 1")
        return self


class FilterParams(_Section):
    """filter: a keep flag and a reason per triplet, scene groups and splits."""

    static_distance: int = Field(2, ge=0, le=64)     # f0/f2 phash and dhash this close = static
    near_dup_distance: int = Field(6, ge=0, le=191)  # bits over the 192-bit key (3 phashes)
    repeat_frame_distance: int = Field(6, ge=0, le=63)  # bits per frame: a linked scene's frame repeated
    # Multi-index blocks of the 192-bit key: any value over near_dup_distance finds the
    # same pairs; the fewest (widest blocks) is fastest at scale (bench_near_dup_scale).
    mih_blocks: int = Field(7, ge=3, le=192)
    min_motion: float = Field(1.0, ge=0)             # grey levels: mean abs change per drawing
    max_motion: float = Field(60.0, gt=0)            #   step (analysis size), minus noise floor
    transition_tolerance: float = Field(0.15, gt=0, le=1)  # fade fit residual / ends' RMS diff
    transition_motion_ratio: float = Field(0.33, gt=0, le=1)  # a fade only if its residual is at
    #                                                  most this share of the motion-compensated one
    transition_margin: int = Field(1, ge=0, le=3)    # drawings each side of a fade flagged too
    blank_std: float = Field(4.0, ge=0)              # luma std (grey levels) of a blank frame
    flash_jump: float = Field(50.0, gt=0)            # luma mean jump vs neighbours = flash
    pan_uniformity: float = Field(0.8, ge=0, le=1)   # share of the ends' change one shift explains
    unexplained_limit: float = Field(0.55, gt=0)     # unexplained score (contrast units) at or over
    #                                                  which one end is another picture: a missed cut
    split: SplitFractions = SplitFractions()
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _motion_range(self) -> FilterParams:
        if self.min_motion >= self.max_motion:
            raise ValueError("min_motion must be below max_motion")
        if self.mih_blocks <= self.near_dup_distance:
            raise ValueError(
                f"mih_blocks must exceed near_dup_distance ({self.near_dup_distance}) so "
                "that every near-duplicate shares a block exactly"
            )
        return self


class ShardParams(_Section):
    """shard: decode only kept frames, resize, encode, write WebDataset tars."""

    short_side: int = Field(256, ge=16, le=4096)    # of stored frames, px; never upscales
    format: Literal["png", "webp", "jpg"] = "png"
    png_level: int = Field(1, ge=0, le=9)           # zlib level: 1 is 2.5x faster, +13% bytes
    jpg_quality: int = Field(95, ge=1, le=100)
    maxcount: int = Field(1000, ge=1)               # samples per tar
    maxsize: int = Field(1 << 30, ge=1 << 16)       # bytes per tar
    contact_sheet: int = Field(12, ge=0, le=100)    # triplets shown in the report image
    seed: int = Field(0, ge=0)
    timeout: float = Field(3600.0, gt=0)            # seconds per source (its worker is killed)

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        """An old ``shard.size`` is refused by its new name, not as "unknown key".

        It was renamed because DVC's run-cache drops every key named ``size`` or
        ``nfiles`` from its hash: a changed ``shard.size`` restored the old shards.
        """
        if isinstance(data, dict) and "size" in data:
            raise ValueError(f"size was renamed shard.short_side (DVC's run-cache ignores "
                             f"keys named size): write short_side: {data['size']}")
        return data


class ExportParams(_Section):
    """export stage: a curated subset of the shards, rebuilt by dvc repro."""

    where: str = "t == 0.5 and not pan"              # pandas query over manifest columns
    splits: list[Literal["train", "val", "test"]] = ["train", "val", "test"]
    out: str = "data/export"
    maxcount: int = Field(1000, ge=1)


class RayParams(_Section):
    """``engine: ray``: how per-source tasks are placed (``pipeline.engine``).

    ``address`` empty: join ``$RAY_ADDRESS`` when set, else start an embedded local
    cluster of ``cluster_cpus`` (0: this machine's cores) with an object store capped at
    ``object_store_mb`` (Ray's default takes 30% of RAM). ``num_cpus`` is what one
    source's task reserves; the worker's guard and the stage's timeout stay inside it.
    """

    address: str = ""
    num_cpus: float = Field(1.0, gt=0, le=256)
    cluster_cpus: int = Field(0, ge=0, le=4096)
    object_store_mb: int = Field(512, ge=78, le=1 << 20)
    init_timeout: float = Field(60.0, gt=0, le=3600)  # seconds to start or reach the cluster
    max_retries: int = Field(1, ge=0, le=10)          # re-runs of a task whose worker died


class Params(_Section):
    """The whole params file, one section per stage.

    ``engine`` says where download, detect_cuts and shard run their per-source work:
    ``local`` (one guarded process after another on this machine; imports no Ray) or
    ``ray`` (one task per source on a Ray cluster, see ``ray``). Outputs are the same
    bytes either way, so neither key is a dvc stage param.
    """

    sources: list[Source] = Field(min_length=1)
    engine: Literal["local", "ray"] = "local"
    ray: RayParams = RayParams()
    download: DownloadParams = DownloadParams()
    cuts: CutsParams = CutsParams()
    triplets: TripletParams = TripletParams()
    filter: FilterParams = FilterParams()
    shard: ShardParams = ShardParams()
    export: ExportParams = ExportParams()
    # The model's sections: validated by the package that owns them (vfi.config's
    # ProjectParams), carried here unread so that one file holds every stage's params.
    model: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> Params:
        seen: dict[str, int] = {}
        for i, src in enumerate(self.sources):
            stems = src.clip_names() if isinstance(src, SyntheticSource) else [src.name]
            for stem in stems:
                if stem in seen:
                    raise ValueError(
                        f"sources[{i}].name: {stem!r} clashes with sources[{seen[stem]}]"
                    )
                seen[stem] = i
        return self


def _key_path(loc: tuple[Any, ...]) -> str:
    """('sources', 2, 'url', 'sha256') -> 'sources[2].sha256'.

    Pydantic puts the discriminated-union branch (the ``kind``) right after the list
    index; it is not a key of the file, so it is dropped.
    """
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i > 0 and isinstance(loc[i - 1], int) and part in SOURCE_KINDS:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown kind {err['input'].get('kind')!r}: expected one of {', '.join(SOURCE_KINDS)}"
    if kind == "union_tag_not_found":
        return f"missing 'kind': expected one of {', '.join(SOURCE_KINDS)}"
    return msg.removeprefix("Value error, ")


def format_errors(exc: ValidationError) -> str:
    """One line per problem, each starting with its key path."""
    lines = []
    for err in exc.errors():
        path = _key_path(err["loc"])
        lines.append(f"{path}: {_message(err)}" if path else _message(err))
    return "\n".join(lines)


SectionT = TypeVar("SectionT", bound=BaseModel)


def validate_mapping(schema: type[SectionT], raw: Any, origin: str) -> SectionT:
    """``raw`` checked against ``schema``; every problem in one :class:`ConfigError`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid {origin}:\n{format_errors(exc)}") from None


def parse_params(raw: Any, origin: str = "params") -> Params:
    """Validate an already-parsed mapping (tests use this directly)."""
    return validate_mapping(Params, raw, origin)


def read_params_yaml(path: str | Path) -> Any:
    """A params file's YAML as DVC reads it: YAML 1.2, as plain dicts, lists and scalars.

    ``dvc exp run -S model.lr=2e-05`` writes ``lr: 2e-05`` with ruamel.yaml (YAML 1.2).
    PyYAML (YAML 1.1) reads that as the string ``"2e-05"`` and ``off`` as ``False``,
    so a value DVC recorded and shows would reach the stage as something else. ruamel's
    pure safe loader is YAML 1.2 whatever C extension is installed, and builds plain
    ``dict``/``list`` (no round-trip ``CommentedMap``), so pydantic and ``==`` work.
    """
    path = Path(path)
    try:
        return YAML(typ="safe", pure=True).load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    except YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate a params file; the only way stages obtain their config."""
    return parse_params(read_params_yaml(path), origin=str(path))
