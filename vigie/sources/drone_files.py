"""drone_files: flight reports dropped as files (class DRONE).

A flight line is immutable under (flight_id, revision): a corrected flight comes again with
a higher revision and the highest wins (the `drone_flights_at` macro); the same revision with
other content is a conflicting duplicate and the first received is kept. A bad value
anywhere in the line, nested recordings and consultations included, quarantines the line.
"""

from __future__ import annotations

from vigie.sources.base import FolderConnector, Stream
from vigie.sources.csv_lines import csv_staging

# Staging column → JSON field, read with one json_extract_string per line; the JSON type of
# the line and of each field the contract types (jt_<column>) with one json_type: a line was
# parsed once per field read and once more per field checked, 24 parses of each flight (0.9 s
# on one core for the 25 000 flights of a 5 M-event estate: one row group, one thread).
_FLIGHT_FIELDS = ("flight_id", "revision", "drone_id", "unit", "pilot", "authorisation_ref", "purpose",
                  "takeoff_at", "landing_at")
# The fields loaded as JSON values (json_<field>), taken out while staging, a slice of lines at
# a time: taken out by the merge, from every row of a vector at once, a batch of 2 500 flights
# of 300 consultations (46 KB each) went past DuckDB's 1 GB cap.
_FLIGHT_JSON = ("recordings", "consultations", "audio_recorded", "facial_recognition")
# (the lists' types for the drift check: with them it types no field by parsing a line again)
_FLIGHT_TYPED = (*_FLIGHT_FIELDS, "audio_recorded", "facial_recognition", "recordings", "consultations")


def _flight_columns() -> str:
    # An empty string is a missing field, but for the revision: '' is not an integer, and says so.
    cols = [f"v[{i + 1}] AS {c}" if c == "revision" else f"nullif(v[{i + 1}], '') AS {c}"
            for i, c in enumerate(_FLIGHT_FIELDS)]
    return ", ".join(cols + [f"t[{i + 2}] AS jt_{c}" for i, c in enumerate(_FLIGHT_TYPED)])


FLIGHTS = Stream(
    name="flights", row_kind="flight", suite="drone_files.flights", table="drone_flights",
    # A line that is not JSON fails json_type (NULL by try); json_valid, the cast to JSON and
    # json_type of that cast were three more parses of every line.
    staging_sql=f"""
        WITH parsed AS (
            SELECT file, line, text AS raw, error,
                   CASE WHEN error IS NULL THEN try(json_type(text, ['$', {", ".join(f"'$.{c}'" for c in _FLIGHT_TYPED)}])) END AS t
            FROM lines WHERE text IS NOT NULL AND trim(text) <> '' OR error IS NOT NULL),
        objects AS (
            SELECT *, CASE WHEN t[1] = 'OBJECT' THEN raw::JSON END AS j,
                   CASE WHEN t[1] = 'OBJECT' THEN json_extract_string(raw, [{", ".join(f"'$.{c}'" for c in _FLIGHT_FIELDS)}]) END AS v,
                   CASE WHEN t[1] = 'OBJECT' THEN json_extract(raw, [{", ".join(f"'$.{c}'" for c in _FLIGHT_JSON)}]) END AS x
            FROM parsed)
        SELECT file, line, file || ':' || line AS location, raw,
               CASE WHEN error IS NOT NULL THEN error
                    WHEN t IS NULL THEN 'not valid JSON'
                    WHEN t[1] <> 'OBJECT' THEN 'not a JSON object' END AS parse_error,
               j, nullif(v[1], '') AS ref, NULL::BIGINT AS seq, {_flight_columns()},
               {", ".join(f"x[{i + 1}] AS json_{c}" for i, c in enumerate(_FLIGHT_JSON))}
        FROM objects""",
    typed_sql="""flight_id, revision::BIGINT AS revision, drone_id, unit, pilot, authorisation_ref,
                 purpose, takeoff_at::TIMESTAMPTZ AS takeoff_at, landing_at::TIMESTAMPTZ AS landing_at,
                 json_audio_recorded::BOOLEAN AS audio_recorded,
                 json_facial_recognition::BOOLEAN AS facial_recognition,
                 json_recordings AS recordings, json_consultations AS consultations""",
    key=("flight_id", "revision"),
    policy="immutable",
    sliced=True,  # a flight with hundreds of consultations is a line of tens of KB
    type_columns=tuple((c, f"jt_{c}") for c in _FLIGHT_TYPED),
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
