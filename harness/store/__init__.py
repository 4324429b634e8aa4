"""The results store (SQLite via sqlite-utils): schema and migrations (schema), the writer `harness run`
uses (writer.Store), the one read-only reader everything else uses (reader.StoreReader, typed rows in
rows), per-job claims (claims) and the baseline export (baseline). Only modules in this package open
SQLite. Tables: docs/store.md."""

from harness.store.reader import RunFilter, StoreReader
from harness.store.schema import DEFAULT_DB, FINISHED, SCHEMA_VERSION, connect_readonly
from harness.store.writer import Store

__all__ = ["DEFAULT_DB", "FINISHED", "SCHEMA_VERSION", "RunFilter", "Store", "StoreReader", "connect_readonly"]
