-- Covering indexes for the dashboard's figures (open, overdue, by township / state / grade),
-- measured by `cargo run --release -p tests --bin bench` over 100,000 hazards.
CREATE INDEX hazards_view_township_state_grade ON hazards_view (township_id, state, grade);
CREATE INDEX hazards_view_township_state_deadline ON hazards_view (township_id, state, current_deadline);
