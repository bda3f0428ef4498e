-- Link clicks beside all clicks (issue #8). Meta's `clicks` counts every click on an ad
-- (likes, expands, profile taps...); agencies report `inline_link_clicks`, and CTR/CPC are
-- computed from those. Google Ads clicks are link clicks already, so its rows copy them.
-- Meta rows stored before this change do not know their link clicks (NULL) until re-synced.
ALTER TABLE costs.daily_metrics
    ADD COLUMN link_clicks bigint CHECK (link_clicks >= 0);

UPDATE costs.daily_metrics SET link_clicks = clicks WHERE platform <> 'meta';
