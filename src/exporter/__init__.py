"""Ships the ledger to analysts: BigQuery, or Parquet files for DuckDB, with
personal fields dropped or hashed by a configured policy."""
