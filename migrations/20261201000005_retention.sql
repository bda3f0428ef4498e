-- Retention (issue #9, bounded data): the pruner deletes old rows in small batches by
-- time, so each family gets an index on the column it ages by.
CREATE INDEX events_created_idx ON engine.events (created_at);
CREATE INDEX runs_finished_idx ON engine.runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX inbound_messages_received_idx ON engine.inbound_messages (received_at);

-- audit.log stays append-only: UPDATE is always refused, and DELETE only of rows older
-- than the cutoff that `audit.prune` sets for its own statement (transaction-local), so
-- no other statement of the application can remove an audit row.
CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND OLD.at < NULLIF(current_setting('switchboard.audit_prune_before', true), '')::timestamptz THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit.log is append-only';
END;
$$;

-- Deletes at most `prune_batch` audit rows older than `prune_before` (oldest first) and returns how many.
-- (Parameters are prefixed: audit.log has a `before` column.)
CREATE FUNCTION audit.prune(prune_before timestamptz, prune_batch integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pruned bigint;
BEGIN
    PERFORM set_config('switchboard.audit_prune_before', prune_before::text, true);
    DELETE FROM audit.log
     WHERE id IN (SELECT l.id FROM audit.log l WHERE l.at < prune_before ORDER BY l.id LIMIT prune_batch);
    GET DIAGNOSTICS pruned = ROW_COUNT;
    PERFORM set_config('switchboard.audit_prune_before', '', true);
    RETURN pruned;
END;
$$;
