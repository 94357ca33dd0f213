-- The hazard ledger (隐患排查治理台账) lists the funds set aside for each rectification (五落实).
-- The read model did not carry them; hazards projected before this migration are projected again
-- by the reconciler (their `projected_heads` no longer matches).
ALTER TABLE hazards_view ADD COLUMN funds_yuan BIGINT;
UPDATE documents SET projected_heads = NULL WHERE id IN (SELECT id FROM hazards_view);
