-- A delivery's stored status is `pending`, `succeeded` or `failed`, like a run
-- callback's. `delivering` was allowed but never written: an attempt in flight is a
-- `pending` row under a live lease (`locked_until`), and the API shows it as
-- `delivering` from that. The CHECK now lists exactly what is stored, which is the
-- Rust enum `DeliveryStatus` (store::schema tests that the two agree).
ALTER TABLE engine.deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE engine.deliveries
    ADD CONSTRAINT deliveries_status_check CHECK (status IN ('pending', 'succeeded', 'failed'));
