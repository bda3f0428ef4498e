-- Queue hot path (issue #9; docs/decisions/0023-queue-throughput.md).
--
-- 1. Every status change of a task is a non-HOT update (status is in index predicates),
--    so it writes a new entry into every index on engine.tasks. The (client_id) index
--    took one such entry at creation, at the claim and at the finish, each on a random
--    leaf page (client ids are random): about a quarter of the claim's and a third of
--    the recording's cost, for one reader — the run list's `client_id` filter, which the
--    (run_id, client_id) unique key answers with one probe per run instead.
DROP INDEX engine.tasks_client_idx;

-- 2. Worker heartbeats: each worker process keeps a row here fresh (one HOT update per
--    beat, whatever it holds). A row gone stale means its worker died: the reaper deletes
--    it and, in the same statement, returns that worker's tasks to the queue, without
--    waiting for their leases to run out. A worker that never wrote a row (an older
--    build) keeps the lease as its only take-over.
CREATE TABLE engine.workers (
    id          text PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now()
);
