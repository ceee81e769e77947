-- Leftovers of a killed process (issue #13). A batch can only be 'pulling' or 'landed' while
-- its process holds the writer lock; the next load that takes the lock and finds one marks it
-- 'abandoned', with when (vigie/leftovers.py). Statuses: pulling | landed | loaded | failed | abandoned.
ALTER TABLE batches ADD COLUMN abandoned_at TIMESTAMPTZ;
