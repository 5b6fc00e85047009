"""pandas, PyArrow and Dask on a filespace through ``lucidlink://`` URLs.

    lucidlink hub embedded -- python examples/pandas_integration.py

``storage_options`` carry the token (the hub comes from LUCIDLINK_HUB_URL); Dask runs
with its threaded scheduler here; on a cluster the same code runs in the workers.
"""

import os

import numpy as np
import pandas as pd

TOKEN = os.environ["LUCIDLINK_TOKEN"]
FILESPACE = os.environ.get("LUCIDLINK_FILESPACE", "production-data")
so = {"token": TOKEN}

import fsspec  # noqa: E402

fs = fsspec.filesystem("lucidlink", **so)  # the same instance pandas gets for these options
(workspace,) = fs.ls("lucidlink://", detail=False)
base = f"lucidlink://{workspace}/{FILESPACE}/pandas-demo"

rng = np.random.default_rng(42)
df = pd.DataFrame(
    {
        "id": np.arange(10_000),
        "category": rng.choice(["books", "games", "music", "tools"], size=10_000),
        "value": rng.integers(1, 500, size=10_000),
    }
)

# CSV, Parquet and JSON Lines, by URL.
df.to_csv(f"{base}/data.csv", index=False, storage_options=so)
df.to_parquet(f"{base}/data.parquet", storage_options=so)
df.head(100).to_json(f"{base}/sample.jsonl", orient="records", lines=True, storage_options=so)
print("csv rows:", len(pd.read_csv(f"{base}/data.csv", storage_options=so)))
print("parquet equal:", pd.read_parquet(f"{base}/data.parquet", storage_options=so).equals(df))
print("jsonl rows:", len(pd.read_json(f"{base}/sample.jsonl", lines=True, storage_options=so)))

# A large CSV read in chunks, streaming.
total = sum(
    chunk["value"].sum()
    for chunk in pd.read_csv(f"{base}/data.csv", chunksize=2_000, storage_options=so)
)
print("sum of value (chunked):", total)

# A directory of Parquet files as one PyArrow dataset.
import pyarrow.dataset as ds  # noqa: E402

for i in range(4):
    df.iloc[i * 2_500 : (i + 1) * 2_500].to_parquet(
        f"{base}/dataset/part-{i}.parquet", storage_options=so
    )
dataset = ds.dataset(fs._strip_protocol(f"{base}/dataset"), filesystem=fs, format="parquet")
print("dataset files:", len(dataset.files), "rows:", dataset.count_rows())

# Dask: read a glob, aggregate, write the result back.
try:
    import dask.dataframe as dd
except ImportError:
    print("dask is not installed; skipping the Dask part")
else:
    ddf = dd.read_parquet(f"{base}/dataset/*.parquet", storage_options=so)
    summary = ddf.groupby("category").agg({"value": "sum"}).compute()
    print(summary.sort_index())
    ddf[ddf["value"] > 250].to_parquet(f"{base}/high-value", storage_options=so)
    print("high-value rows:", len(dd.read_parquet(f"{base}/high-value", storage_options=so)))

fs.rm(base, recursive=True)
fs.close()
