-- Custom headers a webhook endpoint receives on every delivery (e.g. Make's custom
-- webhook API key, `x-make-apikey`): a JSON list of {name, value} sealed as one value
-- with the key ring, bound to the endpoint (like `secret`; docs/decisions/0014).
-- NULL when the endpoint has none. Only sealed values (`v1:`) are ever stored.
ALTER TABLE engine.webhook_endpoints
    ADD COLUMN headers text CHECK (headers IS NULL OR starts_with(headers, 'v1:'));
