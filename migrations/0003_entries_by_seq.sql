-- The live feed reads what each checkpoint move brought, across accounts, in journal order
-- (`seq > a AND seq <= b`): one small index range per projector batch instead of a table scan.
-- Sequences only grow, so inserts append at the index's right edge.
CREATE INDEX account_entries_by_seq ON account_entries (seq);
