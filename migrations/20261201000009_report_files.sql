-- The weekly report's delivery (docs/WORKFLOWS.md "weekly-report"): the PDF's Drive file and the
-- link people open, or why no file was uploaded, and when `report.ready` went out. `ready_at` is
-- set once, in the transaction that records the upload (or the skip) and emits the event, so the
-- event goes out exactly once per report however often the task runs.
ALTER TABLE engine.reports
    ADD COLUMN drive_file_id text,
    ADD COLUMN drive_url     text,
    ADD COLUMN drive_skipped text,
    ADD COLUMN ready_at      timestamptz;

-- Reports stored before this migration announced themselves when they were inserted.
UPDATE engine.reports SET ready_at = created_at;
