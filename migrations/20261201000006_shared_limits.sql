-- Shared limits (issue #9): every process on this database draws the same vendor, API-token
-- and webhook limits from these rows (docs/decisions/0022-shared-limits.md).
--
-- UNLOGGED: the state is seconds old and rebuilt by the next call; no WAL per call. A Postgres
-- crash empties them (every bucket full again), which the vendor's own window has long
-- forgotten by the time the database is back.

-- One GCRA bucket per limit key (`meta`, `meta:act_1`, `api:<token id>`, `webhook:<endpoint>`):
-- `tat` is the theoretical arrival time of the next request. A key absent (or with a `tat` in
-- the past) has its whole burst.
CREATE TABLE engine.rate_limits (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL
);

-- Pauses a vendor asked for (Meta's regain estimate, Google's retryDelay, Retry-After), per
-- (platform, account) key: no process calls that key before `until`.
CREATE TABLE engine.limit_pauses (
    key text PRIMARY KEY,
    until timestamptz NOT NULL
);

ALTER TABLE engine.rate_limits SET UNLOGGED;
ALTER TABLE engine.limit_pauses SET UNLOGGED;

-- Takes up to `want` tokens of `lease_key` in one round trip, by the database's clock (so the
-- processes' clocks never matter). The bucket refills one token per `spacing` seconds and holds
-- `tolerance` seconds of credit (GCRA: a request conforms when tat - now <= tolerance).
-- `want` tokens are granted when they conform within `max_wait` seconds (NULL: however long):
-- `granted` = want, `wait_secs` until they may be used, `ahead_secs` = tat - now after the grant.
-- Otherwise nothing is taken: `granted` = 0 and `wait_secs` until one token would conform.
CREATE FUNCTION engine.take_tokens(
    lease_key text, spacing float8, tolerance float8, want integer, max_wait float8,
    OUT granted integer, OUT wait_secs float8, OUT ahead_secs float8
) LANGUAGE plpgsql AS $$
DECLARE
    current_tat timestamptz;
    now_at timestamptz;
    base timestamptz;
    next_tat timestamptz;
    ready_at timestamptz;
BEGIN
    SELECT r.tat INTO current_tat FROM engine.rate_limits r WHERE r.key = lease_key FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO engine.rate_limits (key, tat) VALUES (lease_key, '-infinity') ON CONFLICT (key) DO NOTHING;
        SELECT r.tat INTO current_tat FROM engine.rate_limits r WHERE r.key = lease_key FOR UPDATE;
    END IF;
    -- Read after the row lock: time spent waiting for another process is not credited.
    now_at := clock_timestamp();
    base := greatest(current_tat, now_at);
    next_tat := base + make_interval(secs => want * spacing);
    ready_at := next_tat - make_interval(secs => tolerance + spacing);
    IF max_wait IS NOT NULL AND ready_at - now_at > make_interval(secs => max_wait) THEN
        granted := 0;
        wait_secs := greatest(0, extract(epoch FROM (base - make_interval(secs => tolerance)) - now_at));
        ahead_secs := greatest(0, extract(epoch FROM base - now_at));
        RETURN;
    END IF;
    UPDATE engine.rate_limits SET tat = next_tat WHERE key = lease_key;
    granted := want;
    wait_secs := greatest(0, extract(epoch FROM ready_at - now_at));
    ahead_secs := extract(epoch FROM next_tat - now_at);
END;
$$;
