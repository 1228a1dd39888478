-- Refunds: how much of an order's charge was given back (its status says refunded or
-- partially_refunded).
ALTER TABLE orders ADD COLUMN refunded_total bigint NOT NULL DEFAULT 0;

-- A transfer with its reversals (GET /v1/transfers/{id}): its two legs and every reversal's
-- two legs carry its id. Transfer ids are UUIDv7, time-ordered, so inserts land near the
-- index's right edge like `account_entries_by_seq`; rows without a transfer stay out of it.
CREATE INDEX account_entries_by_transfer ON account_entries (transfer_id)
    WHERE transfer_id IS NOT NULL;
