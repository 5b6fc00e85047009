"""pandas, PyArrow and Dask through ``lucidlink://`` URLs and open handles, on a real hub.

One hub (SQLite metadata, local blocks) serves the module: what is tested is the fsspec
integration, which the metadata store does not change (test_fsspec.py covers both).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pytest.importorskip("pyarrow.parquet")

from lucidlink.fsspec import LucidLinkFileSystem  # noqa: E402
from lucidlink.hub.embedded import EmbeddedHub  # noqa: E402

pytestmark = [
    # The core uploads large blocks as raw bytes, which aiohttp flags; an SDK change is
    # requested, the one message is filtered here.
    pytest.mark.filterwarnings(
        "ignore:Sending a large body directly with raw bytes:ResourceWarning"
    ),
    # Dask's parquet reader still calls a pandas API that pandas 3.1 deprecates.
    pytest.mark.filterwarnings(
        r"ignore:The inplace keyword in DataFrame\.(reset|set)_index is deprecated"
    ),
]


class Hub:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token

    @property
    def options(self) -> dict[str, Any]:
        return {"token": self.token, "hub_url": self.url}


@pytest.fixture(scope="module")
def pd_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with EmbeddedHub(tmp_path_factory.mktemp("fsspec-pandas-hub"), gc_interval_seconds=3600) as hub:
        token = hub.init("demo", ["small"], block_size=64 * 1024)
        try:
            yield Hub(hub.url, token)
        finally:
            instances = {id(i): i for i in LucidLinkFileSystem._cache.values()}
            for inst in instances.values():
                inst.close()
            LucidLinkFileSystem.clear_instance_cache()


@pytest.fixture
def base(pd_hub: Hub) -> str:
    """A fresh directory URL for one test."""
    return f"lucidlink://demo/small/{uuid.uuid4().hex[:8]}"


@pytest.fixture
def fs(pd_hub: Hub) -> LucidLinkFileSystem:
    """The instance pandas and Dask get for the same storage options (fsspec's cache)."""
    return LucidLinkFileSystem(**pd_hub.options)


def frame(n: int, seed: int = 0) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "category": rng.choice(["a", "b", "c", "d"], size=n),
            "value": rng.integers(0, 1000, size=n).astype("int64"),
            "ratio": rng.random(n),
        }
    )


# -- pandas ------------------------------------------------------------------------------------


def test_pandas_round_trips_through_urls(pd_hub: Hub, base: str) -> None:
    df = frame(500)
    so = pd_hub.options
    df.to_csv(f"{base}/data.csv", index=False, storage_options=so)
    pd.testing.assert_frame_equal(pd.read_csv(f"{base}/data.csv", storage_options=so), df)
    df.to_parquet(f"{base}/out.parquet", storage_options=so)
    pd.testing.assert_frame_equal(pd.read_parquet(f"{base}/out.parquet", storage_options=so), df)
    df.to_json(f"{base}/rows.jsonl", orient="records", lines=True, storage_options=so)
    back = pd.read_json(f"{base}/rows.jsonl", lines=True, storage_options=so)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    df.to_csv(f"{base}/data.csv.gz", index=False, storage_options=so)  # compression by suffix
    pd.testing.assert_frame_equal(pd.read_csv(f"{base}/data.csv.gz", storage_options=so), df)


def test_pandas_round_trips_through_open_handles(fs: LucidLinkFileSystem, base: str) -> None:
    df = frame(300, seed=1)
    with fs.open(f"{base}/h.csv", "w", newline="") as f:
        df.to_csv(f, index=False)
    with fs.open(f"{base}/h.csv", "r") as f:
        pd.testing.assert_frame_equal(pd.read_csv(f), df)
    with fs.open(f"{base}/h.parquet", "wb") as f:
        df.to_parquet(f)
    with fs.open(f"{base}/h.parquet", "rb") as f:
        pd.testing.assert_frame_equal(pd.read_parquet(f), df)
    with fs.open(f"{base}/h.jsonl", "w") as f:
        df.to_json(f, orient="records", lines=True)
    with fs.open(f"{base}/h.jsonl", "r") as f:
        pd.testing.assert_frame_equal(pd.read_json(f, lines=True), df, check_dtype=False)


def test_chunked_csv_read_of_10000_rows(pd_hub: Hub, fs: LucidLinkFileSystem, base: str) -> None:
    df = frame(10_000, seed=2)
    df.to_csv(f"{base}/big.csv", index=False, storage_options=pd_hub.options)
    assert fs.size(f"{base}/big.csv") > 64 * 1024 * 3  # spans several blocks
    chunks = list(pd.read_csv(f"{base}/big.csv", chunksize=1_000, storage_options=pd_hub.options))
    assert [len(c) for c in chunks] == [1_000] * 10
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), df)
    with fs.open(f"{base}/big.csv", "r") as f:
        total = sum(int(c["value"].sum()) for c in pd.read_csv(f, chunksize=2_500))
    assert total == int(df["value"].sum())


# -- PyArrow -----------------------------------------------------------------------------------


def write_parquet_parts(fs: LucidLinkFileSystem, directory: str, parts: int, rows: int) -> Any:
    frames = [
        frame(rows, seed=10 + i).assign(id=lambda d, i=i: d["id"] + i * rows) for i in range(parts)
    ]
    for i, part in enumerate(frames):
        with fs.open(f"{directory}/part-{i}.parquet", "wb") as f:
            part.to_parquet(f, index=False)
    return pd.concat(frames, ignore_index=True)


def test_pyarrow_dataset_over_a_directory(fs: LucidLinkFileSystem, base: str) -> None:
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    expected = write_parquet_parts(fs, f"{base}/dataset", parts=4, rows=250)
    path = fs._strip_protocol(f"{base}/dataset")
    for filesystem in (pafs.PyFileSystem(pafs.FSSpecHandler(fs)), fs):
        dataset = ds.dataset(path, filesystem=filesystem, format="parquet")
        assert len(dataset.files) == 4
        table = dataset.to_table(columns=["category", "value"], filter=ds.field("value") >= 500)
        want = expected[expected["value"] >= 500]
        assert table.num_rows == len(want)
        assert pa.compute.sum(table["value"]).as_py() == int(want["value"].sum())
    # And writing a dataset through the handler.
    ds.write_dataset(
        pa.Table.from_pandas(expected),
        f"{path}-copy",
        format="parquet",
        filesystem=pafs.PyFileSystem(pafs.FSSpecHandler(fs)),
    )
    again = ds.dataset(f"{path}-copy", filesystem=fs, format="parquet").to_table().to_pandas()
    assert sorted(again["id"]) == sorted(expected["id"])


# -- Dask --------------------------------------------------------------------------------------


def dask_pipeline(base: str, so: dict[str, Any], expected: Any, **compute: Any) -> None:
    dd = pytest.importorskip("dask.dataframe")
    frame_ = dd.read_parquet(f"{base}/dataset/*.parquet", storage_options=so)
    assert frame_.npartitions == 4
    sums = frame_.groupby("category").agg({"value": "sum"}).compute(**compute)
    want = expected.groupby("category").agg({"value": "sum"})
    assert {k: int(v) for k, v in sums["value"].items()} == {
        k: int(v) for k, v in want["value"].items()
    }
    frame_[frame_["value"] >= 500].to_parquet(
        f"{base}/filtered", storage_options=so, compute_kwargs=compute
    )
    back = dd.read_parquet(f"{base}/filtered", storage_options=so).compute(**compute)
    assert sorted(back["id"]) == sorted(expected[expected["value"] >= 500]["id"])


def test_dask_threaded_scheduler(pd_hub: Hub, fs: LucidLinkFileSystem, base: str) -> None:
    pytest.importorskip("dask.dataframe")
    expected = write_parquet_parts(fs, f"{base}/dataset", parts=4, rows=500)
    dask_pipeline(base, pd_hub.options, expected, scheduler="threads")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # distributed's own
def test_dask_distributed_worker_processes(
    pd_hub: Hub, fs: LucidLinkFileSystem, base: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    expected = write_parquet_parts(fs, f"{base}/dataset", parts=4, rows=500)
    # Workers find the hub the way a deployment would: LUCIDLINK_HUB_URL, set before they start.
    monkeypatch.setenv("LUCIDLINK_HUB_URL", pd_hub.url)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            local_directory=str(tmp_path),
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        dask_pipeline(base, {"token": pd_hub.token}, expected)
        # The work really ran in the worker processes, each with its own daemon.
        pids = client.run(lambda: __import__("os").getpid())
        assert len(set(pids.values())) == 2
