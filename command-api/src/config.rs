//! The command API's configuration: flags or environment variables, parsed once in `main`.

use std::net::IpAddr;
use std::time::Duration;

/// Everything `command-api serve` needs. Every variable is documented in `.env.sample`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Where the journal is (`NATS_URL`, `LEDGER_STREAM`).
    #[command(flatten)]
    pub journal: ledger_nats::JournalArgs,

    /// Copies of the journal the stream keeps: 1 on a single server, 3 on a three-node
    /// cluster (survives the loss of any one node). JetStream allows at most 5. Raised on an
    /// existing stream, it is scaled up; Tally refuses to lower it.
    #[arg(long, env = "LEDGER_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,

    /// Address to listen on.
    #[arg(long, env = "COMMAND_API_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Port to listen on (0: any free port).
    #[arg(long, env = "COMMAND_API_PORT", default_value_t = 8080)]
    pub port: u16,

    /// HS256 secret for bearer tokens, at least 32 bytes.
    #[arg(long, env = "LEDGER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Commands waiting for the writer. At ~20k commands/s a full queue is half a second of
    /// work: enough to absorb bursts, small enough that waiting callers get a quick 503.
    #[arg(long, env = "WRITER_QUEUE_LEN_MAX", default_value_t = 10_000)]
    pub writer_queue_len_max: usize,

    /// Aggregate states the writer keeps (~300 bytes each: 100k ≈ 30 MB).
    #[arg(long, env = "STATE_CACHE_LEN_MAX", default_value_t = 100_000)]
    pub state_cache_len_max: usize,

    /// How long a batch commit may take before its outcome counts as unknown. A durable
    /// commit takes ~12 ms, a full 1000-message batch under load ~100 ms; seconds mean the
    /// server is in trouble — on a cluster, usually that the stream's leader died with the
    /// batch in flight. Then the writer settles the outcome with the new leader, and every
    /// command queued behind the batch waits for that: 2 s keeps the wait short of the
    /// election itself (an unknown outcome is settled safely, so a shorter time-out costs
    /// a look-up, never a double write).
    #[arg(long, env = "COMMIT_TIMEOUT_MS", default_value_t = 2_000)]
    pub commit_timeout_ms: u64,

    /// Re-decisions of a round after "wrong last sequence" before answering 409. Each retry
    /// reloads the contended states, so more than a few only happen under pathological
    /// contention between instances.
    #[arg(long, env = "CONFLICT_RETRIES_MAX", default_value_t = 10)]
    pub conflict_retries_max: u32,

    /// Look-ups and resends to settle a commit of unknown outcome before answering 503.
    #[arg(long, env = "UNKNOWN_OUTCOME_RETRIES_MAX", default_value_t = 8)]
    pub unknown_outcome_retries_max: u32,

    /// How long a request waits for room in the writer's queue before a 503.
    #[arg(long, env = "ENQUEUE_TIMEOUT_MS", default_value_t = 1_000)]
    pub enqueue_timeout_ms: u64,

    /// How long a request waits for its command's outcome: longer than a commit time-out
    /// plus its resolution, so that a slow commit is still reported rather than guessed.
    #[arg(long, env = "ANSWER_TIMEOUT_MS", default_value_t = 20_000)]
    pub answer_timeout_ms: u64,

    /// Whole-request time limit (a little over the answer time-out).
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 25_000)]
    pub request_timeout_ms: u64,

    /// Run the payment executor in this instance (several instances share its consumer).
    #[arg(long, env = "PAYMENT_EXECUTOR", default_value_t = true, action = clap::ArgAction::Set)]
    pub payment_executor: bool,

    /// Run the balance-batch executor in this instance.
    #[arg(long, env = "BATCH_EXECUTOR", default_value_t = true, action = clap::ArgAction::Set)]
    pub batch_executor: bool,

    /// Override of the batch consumer's redelivery delay (`ack_wait` in
    /// `nats/balance-batches-consumer.json`, 15 s).
    #[arg(long, env = "BATCH_ACK_WAIT_MS")]
    pub batch_ack_wait_ms: Option<u64>,

    /// Largest `PUT /v1/balances` body: 100,000 items of up to 64-character ids.
    #[arg(long, env = "BALANCES_BODY_BYTES_MAX", default_value_t = 16 * 1024 * 1024)]
    pub balances_body_bytes_max: usize,

    /// Largest `POST /v1/transfers/batch` body, after decompression: 8,000 transfers of
    /// ~200 bytes are 1.6 MB; the rest leaves room for references and metadata (at 4 KiB of
    /// metadata each, a batch of 8,000 needs 33 MB and must be split).
    #[arg(long, env = "TRANSFER_BATCH_BODY_BYTES_MAX", default_value_t = 16 * 1024 * 1024)]
    pub transfer_batch_body_bytes_max: usize,

    /// Run the hold-expiry executor in this instance.
    #[arg(long, env = "HOLD_EXPIRY_EXECUTOR", default_value_t = true, action = clap::ArgAction::Set)]
    pub hold_expiry_executor: bool,

    /// Override of the payments consumer's redelivery delay (`ack_wait` in
    /// `nats/payments-consumer.json`, 15 s).
    #[arg(long, env = "PAYMENT_ACK_WAIT_MS")]
    pub payment_ack_wait_ms: Option<u64>,

    /// Ask the read models where a transfer is before its first reversal reads the journal for
    /// it (ADR 0018): a transfer id that does not exist then costs the journal messages the
    /// projector has not applied yet (milliseconds of traffic) instead of the id's whole
    /// two-minute window. Off, or while Postgres does not answer: the journal alone.
    #[arg(long, env = "TRANSFER_LOOKUP_READ_MODEL", default_value_t = true, action = clap::ArgAction::Set)]
    pub transfer_lookup_read_model: bool,

    /// Transfer look-ups that may read a transfer's whole window at once in this instance
    /// (those made without the read models: turned off, or Postgres not answering). Each may
    /// read two minutes of account messages; more wait up to 2 s for a turn, then get `503`
    /// with `Retry-After`, so that a flood of made-up ids cannot take the instance's cores.
    #[arg(long, env = "TRANSFER_LOOKUP_WINDOW_READS_MAX", default_value_t = 2)]
    pub transfer_lookup_window_reads_max: usize,

    /// Where the read models are (`DATABASE_URL`, `READ_MODEL_SCHEMA`), for transfer look-ups.
    #[command(flatten)]
    pub read_model: read_model::ReadModelArgs,

    /// Connections to the read models. Each transfer look-up is one indexed read of a few
    /// milliseconds, made only by a transfer's first reversal: two connections serve hundreds
    /// a second, and leave Postgres's connections to the projector and the query API.
    #[arg(long, env = "COMMAND_API_POOL_SIZE", default_value_t = 2)]
    pub read_model_pool_size: u32,

    /// Largest request body. Commands are small; 64 KiB leaves room for metadata.
    #[arg(long, env = "REQUEST_BODY_BYTES_MAX", default_value_t = 64 * 1024)]
    pub request_body_bytes_max: usize,

    /// Per-caller token buckets (`RATE_LIMIT_*`, `SERVICE_RATE_LIMIT_*`).
    #[command(flatten)]
    pub rate_limit: http_edge::RateLimit,

    /// The address the other command APIs reach this one at (`http://host:port`). Set on
    /// every instance of a deployment, they elect one writer and forward their write
    /// requests to it (ADR 0028); unset, this instance writes whatever it receives.
    #[arg(long, env = "COMMAND_API_ADVERTISE_URL")]
    pub advertise_url: Option<String>,

    /// How long the writer's lease lives unrenewed: a writer that stops without giving it up
    /// is replaced after at most this long. Set when the lease's bucket is created.
    #[arg(long, env = "WRITER_LEASE_TTL_MS", default_value_t = 3_000,
          value_parser = clap::value_parser!(u64).range(300..))]
    pub writer_lease_ttl_ms: u64,
}

impl Config {
    pub fn commit_timeout(&self) -> Duration {
        Duration::from_millis(self.commit_timeout_ms)
    }
}

impl Config {
    /// Every setting at its default (or its environment variable), listening on
    /// `127.0.0.1:0`, with no rate limit (tests and benchmarks drive one instance as hard as
    /// it goes with a single token; a test of the limit sets its own): for tests and
    /// benchmarks that start the service in-process.
    pub fn local(nats_url: &str, jwt_secret: &str) -> Self {
        telemetry::cli::local_defaults(
            "command-api",
            &[
                "--nats-url",
                nats_url,
                "--jwt-secret",
                jwt_secret,
                "--rate-limit-per-second",
                "0",
                "--transfer-lookup-read-model",
                "false",
            ],
        )
    }

    /// This configuration asking the read models in `database_url` (default schema) where a
    /// transfer is before its first reversal reads the journal, as a deployed command API
    /// does: for tests and benchmarks that start a projector on that database.
    pub fn with_read_model(mut self, database_url: &str) -> Self {
        self.transfer_lookup_read_model = true;
        database_url.clone_into(&mut self.read_model.database_url);
        self
    }
}
