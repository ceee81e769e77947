"""lapi_files: licence-plate reader exports, a folder of CSV files (class LAPI).

Reads and queries are immutable lines; a read delivered again with other content is a
correction, and the file that comes later in name order wins (the `lapi_reads_at` macro).
So a read's identity for duplicates is its whole content: only an identical line is a
duplicate, any other is a new version.
"""

from __future__ import annotations

from vigie.sources.base import FolderConnector, Stream
from vigie.sources.csv_lines import csv_staging

READ_HEADER = ["read_id", "read_at", "camera_id", "plate_hash", "matched", "deleted_at"]
QUERY_HEADER = ["event_id", "at", "user", "read_id", "purpose", "procedure_ref"]

READS = Stream(
    name="reads", row_kind="read", suite="lapi_files.reads", table="lapi_reads",
    staging_sql=f"""
        SELECT *, file || ':' || line AS location, coalesce(read_id, first_field) AS ref, NULL::BIGINT AS seq
        FROM ({csv_staging(READ_HEADER)})""",
    typed_sql="""read_id, read_at::TIMESTAMPTZ AS read_at, camera_id, plate_hash,
                 matched = '1' AS matched, deleted_at::TIMESTAMPTZ AS deleted_at, file""",
    key=("read_id", "read_at", "camera_id", "plate_hash", "matched", "deleted_at"),
    policy="immutable",
    # domain.md: a later file repeating an earlier one undoes a correction; so a copy is read,
    # and each of its lines is a duplicate (never loaded twice) that still counts as a delivery.
    whole_file_duplicates=False,
)

QUERIES = Stream(
    name="queries", row_kind="query", suite="lapi_files.queries", table="lapi_queries",
    staging_sql=f"""
        SELECT *, file || ':' || line AS location, coalesce(event_id, first_field) AS ref, NULL::BIGINT AS seq
        FROM ({csv_staging(QUERY_HEADER, {"at": "query_at", "user": "query_user"})})""",
    typed_sql="""event_id, query_at::TIMESTAMPTZ AS query_at, query_user AS "user", read_id,
                 purpose, procedure_ref""",
    key=("event_id",),
    policy="immutable",
)


class LapiFiles(FolderConnector):
    kind = "lapi_files"
    streams = (READS, QUERIES)
    patterns = {"reads": "reads_*.csv", "queries": "queries_*.csv"}
