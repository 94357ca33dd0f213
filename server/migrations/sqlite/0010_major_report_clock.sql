-- The agency's report of a major hazard to the township, beside the automatic one: when the
-- hazard was found (device time), when the agency says it reported it (device time), and when
-- the server first received that report (server time, kept across rebuilds).
ALTER TABLE major_hazard_reports ADD COLUMN found_at INTEGER;
ALTER TABLE major_hazard_reports ADD COLUMN report_claimed_at INTEGER;
ALTER TABLE major_hazard_reports ADD COLUMN report_received_at INTEGER;
