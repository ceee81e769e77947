"""drone_files: flight reports dropped as files (class DRONE).

A flight line is immutable under (flight_id, revision): a corrected flight comes again with
a higher revision and the highest wins (the `drone_flights_at` macro); the same revision with
other content is a conflicting duplicate and the first received is kept. A bad value
anywhere in the line, nested recordings and consultations included, quarantines the line.
"""

from __future__ import annotations

from vigie.sources.base import FolderConnector, Stream
from vigie.sources.csv_lines import csv_staging

FLIGHTS = Stream(
    name="flights", row_kind="flight", suite="drone_files.flights", table="drone_flights",
    staging_sql="""
        WITH parsed AS (
            SELECT file, line, text AS raw,
                   CASE WHEN error IS NULL AND json_valid(text) AND json_type(text::JSON) = 'OBJECT'
                        THEN text::JSON END AS j,
                   CASE WHEN error IS NOT NULL THEN error
                        WHEN NOT json_valid(text) THEN 'not valid JSON'
                        WHEN json_type(text::JSON) <> 'OBJECT' THEN 'not a JSON object' END AS parse_error
            FROM lines WHERE text IS NOT NULL AND trim(text) <> '' OR error IS NOT NULL)
        SELECT file, line, file || ':' || line AS location, raw, parse_error, j,
               nullif(j ->> 'flight_id', '') AS ref, NULL::BIGINT AS seq,
               nullif(j ->> 'flight_id', '') AS flight_id, j ->> 'revision' AS revision,
               nullif(j ->> 'drone_id', '') AS drone_id, nullif(j ->> 'unit', '') AS unit,
               nullif(j ->> 'pilot', '') AS pilot,
               nullif(j ->> 'authorisation_ref', '') AS authorisation_ref,
               nullif(j ->> 'purpose', '') AS purpose,
               nullif(j ->> 'takeoff_at', '') AS takeoff_at, nullif(j ->> 'landing_at', '') AS landing_at
        FROM parsed""",
    typed_sql="""flight_id, revision::BIGINT AS revision, drone_id, unit, pilot, authorisation_ref,
                 purpose, takeoff_at::TIMESTAMPTZ AS takeoff_at, landing_at::TIMESTAMPTZ AS landing_at,
                 (j -> '$.audio_recorded')::BOOLEAN AS audio_recorded,
                 (j -> '$.facial_recognition')::BOOLEAN AS facial_recognition,
                 j -> '$.recordings' AS recordings, j -> '$.consultations' AS consultations""",
    key=("flight_id", "revision"),
    policy="immutable",
)

TRACK_HEADER = ["t", "lat", "lon", "alt_m"]

TRACKS = Stream(
    name="tracks", row_kind="track", suite="drone_files.tracks", table="drone_track_points",
    # A track point is a short line, and there is one file per flight: a 1 MB line limit (and
    # buffer) reads tens of thousands of small files a third faster than 8 MB.
    max_line_bytes=1 << 20,
    staging_sql=f"""
        SELECT *, file || ':' || line AS location,
               regexp_extract(file, '([^/]+)\\.csv$', 1) AS flight_id,
               regexp_extract(file, '([^/]+)\\.csv$', 1) AS ref, NULL::BIGINT AS seq
        FROM ({csv_staging(TRACK_HEADER)})""",
    typed_sql="""flight_id, t::TIMESTAMPTZ AS t, lat::DOUBLE AS lat, lon::DOUBLE AS lon,
                 alt_m::DOUBLE AS alt_m""",
    key=("flight_id", "t", "lat", "lon", "alt_m"),
    policy="immutable",
)


class DroneFiles(FolderConnector):
    kind = "drone_files"
    streams = (FLIGHTS, TRACKS)
    patterns = {"flights": "flights/*.jsonl", "tracks": "tracks/*.csv"}
