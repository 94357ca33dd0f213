-- Overdue hazards per enterprise, agency and township, read from the index alone (the dashboard's
-- overdue figure cannot be tallied: it depends on today's date). For each enterprise in scope
-- and each open state the planner seeks the range of deadlines before today; agency and township
-- ride along so the table is never read. Needs the statistics `PRAGMA optimize` keeps (see
-- `Db::optimize`). Measured by `cargo run --release -p tests --bin bench -- --only dashboard`.
CREATE INDEX hazards_view_overdue ON hazards_view (enterprise_id, state, current_deadline, agency_id, township_id);
