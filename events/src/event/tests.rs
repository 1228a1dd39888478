//! The wire shape: round trips, the flat JSON, decode errors.

use super::*;
use crate::account::AccountStatus;
use crate::ids::{OwnerId, Reference};
use crate::money::Amount;
use crate::money::Currency;

fn state() -> AccountState {
    AccountState {
        version: 2,
        balance: 500,
        held: 0,
        currency: Currency::default(),
        status: AccountStatus::Open,
        owner_id: OwnerId::parse("alice").expect("valid"),
        overdraft_limit: 0,
    }
}

#[test]
fn envelopes_round_trip_through_json() {
    let event = Event::FundsDeposited(AccountMovement {
        account_id: AccountId::parse("alice").expect("valid"),
        amount: Amount::new(500).expect("valid"),
        reference: Some(Reference::parse("INV-1").expect("valid")),
        metadata: None,
        state: state(),
    });
    let envelope = Envelope::new(Uuid::now_v7(), Utc::now(), event);
    let decoded = Envelope::from_json(&envelope.to_json()).expect("decodes");
    assert_eq!(decoded, envelope);
}

#[test]
fn the_wire_shape_is_flat_with_a_type_tag_and_a_nested_state() {
    let event = Event::FundsWithdrawn(AccountMovement {
        account_id: AccountId::parse("alice").expect("valid"),
        amount: Amount::new(7).expect("valid"),
        reference: None,
        metadata: None,
        state: state(),
    });
    let json: serde_json::Value =
        serde_json::from_slice(&Envelope::new(Uuid::now_v7(), Utc::now(), event).to_json())
            .expect("json");
    assert_eq!(json["type"], "funds_withdrawn");
    assert_eq!(json["schema"], 1);
    assert_eq!(json["account_id"], "alice");
    assert_eq!(json["amount"], 7);
    assert_eq!(json["state"]["balance"], 500);
    assert_eq!(json["state"]["currency"], "USD");
    assert_eq!(json["state"]["status"], "open");
    assert!(json.get("reference").is_none());
}

#[test]
fn an_invalid_amount_in_the_journal_is_a_decode_error() {
    let raw = br#"{"event_id":"0193a0c4-0000-7000-8000-000000000000","schema":1,
        "occurred_at":"2026-01-01T00:00:00Z","job_id":"0193a0c4-0000-7000-8000-000000000000",
        "type":"funds_deposited","account_id":"alice","amount":0,
        "state":{"version":2,"balance":0,"held":0,"currency":"USD","status":"open",
        "owner_id":"alice","overdraft_limit":0}}"#;
    assert!(Envelope::from_json(raw).is_err());
}

/// Every event's fields sit beside the envelope's in one flat JSON object: none may reuse
/// an envelope field name, or the message would not decode.
#[test]
fn a_job_failure_round_trips_beside_the_envelope() {
    let failed = Event::JobFailed(JobFailed {
        failed_job_id: Uuid::now_v7(),
        executor: "payments".into(),
        subject: "ledger.order.x".into(),
        seq: 7,
        code: "undecodable".into(),
        detail: "not a Tally event".into(),
    });
    let envelope = Envelope::new(Uuid::now_v7(), Utc::now(), failed);
    assert_eq!(
        Envelope::from_json(&envelope.to_json()).ok(),
        Some(envelope)
    );
}

/// The two-pass decoder and the derived one agree: on an envelope, on fields in another order
/// (the tag last), on an unknown extra field, and in refusing an unknown type or a missing tag.
#[test]
fn the_fast_decoder_reads_what_the_derived_one_reads() {
    let head = r#""event_id":"0193a0c4-0000-7000-8000-000000000000","schema":1,
        "occurred_at":"2026-01-01T00:00:00Z","job_id":"0193a0c4-0000-7000-8000-000000000001""#;
    let state = r#""state":{"version":2,"balance":5,"held":0,"currency":"USD","status":"open",
        "owner_id":"alice","overdraft_limit":0}"#;
    let accepted = [
        format!(r#"{{{head},"type":"funds_deposited","account_id":"alice","amount":5,{state}}}"#),
        format!(r#"{{"account_id":"alice","amount":5,{state},{head},"type":"funds_deposited"}}"#),
        format!(
            r#"{{{head},"type":"funds_deposited","account_id":"alice","amount":5,{state},"x":[1]}}"#
        ),
        format!(
            r#"{{{head},"type":"funds\u005fdeposited","account_id":"alice","amount":5,{state}}}"#
        ),
    ];
    for raw in &accepted {
        let derived: Envelope = serde_json::from_str(raw).expect("the derived decoder reads it");
        let fast = Envelope::from_json(raw.as_bytes()).expect("the fast decoder reads it");
        assert_eq!(fast, derived, "{raw}");
    }
    let refused = [
        format!(r#"{{{head},"type":"funds_conjured","account_id":"alice","amount":5,{state}}}"#),
        format!(r#"{{{head},"account_id":"alice","amount":5,{state}}}"#),
        format!(r#"{{{head},"type":"funds_deposited","account_id":"alice",{state}}}"#),
    ];
    for raw in &refused {
        assert!(serde_json::from_str::<Envelope>(raw).is_err(), "{raw}");
        assert!(Envelope::from_json(raw.as_bytes()).is_err(), "{raw}");
    }
}
