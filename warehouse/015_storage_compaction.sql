-- How many writer sessions ran since DuckDB last compacted the warehouse's row groups
-- (vigie/db.py, compact_after): its vacuum is off in the others.
CREATE TABLE storage_compaction (
    sessions INTEGER NOT NULL
);
INSERT INTO storage_compaction VALUES (0);
