-- Tally's read models. Every table is derived from the journal (stream LEDGER) and can be
-- rebuilt from it; names are unqualified so that the same migration builds the live schema
-- and a rebuild's fresh one (the connection's search_path picks the schema).

-- How far each projection has applied the journal. Advanced in the same transaction as the
-- rows it covers: exactly-once bookkeeping.
CREATE TABLE projection_checkpoint (
    name     text   PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq >= 0)
);

-- One row per account: its state after its last event.
CREATE TABLE accounts (
    account_id      text        PRIMARY KEY,
    owner_id        text        NOT NULL,
    currency        text        NOT NULL,
    balance         bigint      NOT NULL,
    held            bigint      NOT NULL,
    overdraft_limit bigint      NOT NULL,
    version         bigint      NOT NULL,
    status          text        NOT NULL,
    last_seq        bigint      NOT NULL,
    opened_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- "The caller's accounts", paged by account id.
CREATE INDEX accounts_by_owner ON accounts (owner_id, account_id);

-- History: one row per account event. `amount` is signed (+ credit, − debit), so
-- balance_after(v) = balance_after(v − 1) + amount(v).
CREATE TABLE account_entries (
    account_id              text        NOT NULL,
    version                 bigint      NOT NULL,
    seq                     bigint      NOT NULL,
    event_id                uuid        NOT NULL,
    event_type              text        NOT NULL,
    entry_type              text        NOT NULL,
    amount                  bigint      NOT NULL,
    balance_after           bigint      NOT NULL,
    held_after              bigint      NOT NULL,
    counterparty_account_id text,
    transfer_id             uuid,
    job_id                  uuid        NOT NULL,
    order_id                uuid,
    hold_id                 uuid,
    reference               text,
    metadata                jsonb,
    occurred_at             timestamptz NOT NULL,
    PRIMARY KEY (account_id, version)
);
-- History filtered by type, newest first.
CREATE INDEX account_entries_by_type ON account_entries (account_id, entry_type, version DESC);
-- Job status: a command's job is complete once an entry carries its id.
CREATE INDEX account_entries_by_job ON account_entries (job_id);

-- Asynchronous work (balance batches, orders): jobs that are not (yet) visible as entries.
CREATE TABLE jobs (
    job_id       uuid        PRIMARY KEY,
    kind         text        NOT NULL,
    status       text        NOT NULL,
    owner_id     text        NOT NULL,
    account_id   text,
    batch_id     uuid,
    order_id     uuid,
    error_code   text,
    error_detail text,
    seq          bigint,
    submitted_at timestamptz NOT NULL,
    completed_at timestamptz
);

CREATE TABLE batches (
    batch_id     uuid        PRIMARY KEY,
    owner_id     text        NOT NULL,
    total        integer     NOT NULL,
    completed    integer     NOT NULL DEFAULT 0,
    rejected     integer     NOT NULL DEFAULT 0,
    failed       integer     NOT NULL DEFAULT 0,
    submitted_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE orders (
    order_id    uuid        PRIMARY KEY,
    owner_id    text        NOT NULL,
    account_id  text        NOT NULL,
    amount      bigint      NOT NULL,
    currency    text        NOT NULL,
    description text,
    status      text        NOT NULL,
    reason      text,
    job_id      uuid        NOT NULL,
    version     bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX orders_by_owner ON orders (owner_id, created_at DESC, order_id);

CREATE TABLE holds (
    hold_id    uuid        PRIMARY KEY,
    account_id text        NOT NULL,
    amount     bigint      NOT NULL,
    captured   bigint      NOT NULL DEFAULT 0,
    status     text        NOT NULL,
    expires_at timestamptz,
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
