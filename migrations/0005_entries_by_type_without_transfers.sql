-- History filtered by type, without transfer rows (ADR 0022). Transfers are most of a
-- ledger's entries, and a page of an account's transfers is found by walking the primary
-- key backwards and skipping the few other rows; every other type is indexed as before, so
-- a page of an account's deposits among thousands of transfers stays an index range.
-- The cost: a page of transfers of an account whose history is nearly all other types reads
-- that account's history (one account's rows, never the table).
DROP INDEX account_entries_by_type;
CREATE INDEX account_entries_by_type ON account_entries (account_id, entry_type, version DESC)
    WHERE entry_type <> 'transfer';
