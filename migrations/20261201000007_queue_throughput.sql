-- Queue throughput (issue #9): fewer index entries written per task.
--
-- A task's status changes are never HOT updates (status is an indexed column and in
-- index predicates), so each writes a new entry into every index whose predicate the
-- new row version satisfies. "Is anything of this run still open?" only needs the
-- open tasks: indexed by run with a predicate on the open states, a task leaves this
-- index when it finishes instead of getting one more entry. Counting a run's tasks by
-- status goes through the (run_id, client_id) unique key.
DROP INDEX engine.tasks_run_status_idx;
CREATE INDEX tasks_open_idx ON engine.tasks (run_id) WHERE status IN ('queued', 'running');
