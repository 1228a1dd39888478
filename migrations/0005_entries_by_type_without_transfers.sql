-- History filtered by type, without transfer rows (ADR 0022). Transfers are most of a
-- ledger's entries, and for them the planner already walks the primary key backwards and
-- skips the few other rows (the share of transfers in the table's statistics makes that the
-- cheaper plan); every other type is indexed as before, so a page of an account's deposits
-- among thousands of transfers stays an index range. Dropping the transfer rows saves about
-- 130 B per transfer. What remains slow is what was slow already: a page of transfers of an
-- account whose history is nearly all other types reads that account's rows (one account's,
-- never the table's).
--
-- The new index is built before the old one is dropped: building takes a lock that lets
-- queries read on, and the old index's drop (which does not) is held only to the commit.
CREATE INDEX account_entries_by_type_without_transfers
    ON account_entries (account_id, entry_type, version DESC)
    WHERE entry_type <> 'transfer';
DROP INDEX account_entries_by_type;
ALTER INDEX account_entries_by_type_without_transfers RENAME TO account_entries_by_type;
