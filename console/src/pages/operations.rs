//! The operator pages (admins): **Operations** — the projector's checkpoint, the journal's
//! last sequence, the lag between them, the active projector instance and its standbys,
//! asked again every 2 s — and **Journal** — the journal's recent messages, newest first,
//! paged by sequence, each `traceparent` a link to the trace in Grafana (Tempo) when
//! `GRAFANA_URL` is set.
//!
//! Both read what the APIs give admins: `GET /v1/admin/projector` (query API) and
//! `GET /v1/admin/journal` (command API). A user is refused by the console first, and by the
//! APIs in any case.

use super::{PageError, Visit, admins_only, layout};
use crate::AppState;
use crate::api::encode;
use crate::session::Session;
use axum::extract::Query;
use axum::http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

/// How often the status is asked for: the projector applies a batch in milliseconds, so a
/// lag that lasts two seconds is worth seeing, and one request pair per 2 s per open page
/// costs the APIs nothing.
const POLL: &str = "every 2s";
/// Journal messages per page: a screenful, the API's default.
const JOURNAL_PAGE_LEN: u64 = 20;

pub async fn page(Visit(state, session, headers): Visit) -> Result<Markup, PageError> {
    admins_only(&session, "Operations is for admins.")?;
    let figures = status_fragment(&state, &session, &headers).await?;
    let body = html! {
        h1 { "Operations" }
        p.muted { "The projector's progress through the journal, refreshed every 2 seconds." }
        (figures)
        p { a href="/admin/journal" { "The journal's recent messages" } }
    };
    Ok(layout("Operations", Some(&session), body))
}

/// The figures alone, for htmx to swap in every [`POLL`].
pub async fn status(Visit(state, session, headers): Visit) -> Result<Markup, PageError> {
    admins_only(&session, "Operations is for admins.")?;
    status_fragment(&state, &session, &headers).await
}

async fn status_fragment(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
) -> Result<Markup, PageError> {
    // The journal's end first, then the checkpoint: read in this order the lag is never
    // shown smaller than it was.
    let journal = state
        .api
        .read_commands(session, "/v1/admin/journal?limit=1")
        .await
        .map_err(|p| PageError::api(p, session, headers))?;
    let projector = state
        .api
        .query(session, "/v1/admin/projector", None)
        .await
        .map_err(|p| PageError::api(p, session, headers))?;
    Ok(figures(&journal.body, &projector.body))
}

fn figures(journal: &Value, projector: &Value) -> Markup {
    let last_seq = journal["last_seq"].as_u64().unwrap_or(0);
    let checkpoint = projector["checkpoint"].as_u64().unwrap_or(0);
    let lag = last_seq.saturating_sub(checkpoint);
    let active = &projector["active_instance"];
    let standbys = projector["standby_count"].as_u64().unwrap_or(0);
    html! {
        div #operations-status hx-get="/admin/operations/status" hx-trigger=(POLL) hx-swap="outerHTML" {
            dl.figures {
                div { dt { "Journal's last sequence" } dd #journal-last-seq { (last_seq) } }
                div { dt { "Projector checkpoint" } dd #projector-checkpoint { (checkpoint) } }
                div { dt { "Lag (messages)" } dd #projector-lag { (lag) } }
                div { dt { "Standby projectors" } dd #standby-count { (standbys) } }
            }
            section.card #active-instance aria-labelledby="active-title" {
                h2 #active-title { "Active projector" }
                @if active.is_object() {
                    dl {
                        dt { "Session" } dd { (active["application_name"].as_str().unwrap_or("")) " (PostgreSQL pid " (active["pid"]) ")" }
                        dt { "Address" } dd { (active["client_addr"].as_str().unwrap_or("local socket or hidden")) }
                        dt { "Connected since" } dd { (active["backend_start"].as_str().unwrap_or("unknown")) }
                    }
                } @else {
                    p role="alert" { "No projector holds the lock: the read models are not being updated." }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct JournalParams {
    before_seq: Option<String>,
}

pub async fn journal(
    Visit(state, session, headers): Visit,
    Query(params): Query<JournalParams>,
) -> Result<Markup, PageError> {
    admins_only(&session, "The journal is for admins.")?;
    let mut path = format!("/v1/admin/journal?limit={JOURNAL_PAGE_LEN}");
    if let Some(before) = params.before_seq.as_deref().filter(|b| !b.is_empty()) {
        // Passed on as typed: the API refuses a bad one, and the page says why.
        path.push_str(&format!("&before_seq={}", encode(before)));
    }
    let page = state
        .api
        .read_commands(&session, &path)
        .await
        .map_err(|p| PageError::api(p, &session, &headers))?;
    let body = journal_body(&page.body, state.grafana_url.as_deref());
    Ok(layout("Journal", Some(&session), body))
}

fn journal_body(page: &Value, grafana: Option<&str>) -> Markup {
    let items = page["items"].as_array().cloned().unwrap_or_default();
    html! {
        h1 { "Journal" }
        p.muted { "The journal's last sequence: " strong #journal-last-seq { (page["last_seq"]) } ". Newest first." }
        div.table-wrap tabindex="0" role="region" aria-label="Journal messages" {
            table #journal {
                thead { tr { th.num scope="col" { "Seq" } th scope="col" { "Subject" } th scope="col" { "Type" } th scope="col" { "Trace" } th scope="col" { "Headers" } } }
                tbody {
                    @for item in &items {
                        tr.journal-row {
                            td.num { (item["seq"]) }
                            td { code { (item["subject"].as_str().unwrap_or("")) } }
                            td { (item["type"].as_str().unwrap_or("—")) }
                            td { (trace_cell(item["traceparent"].as_str(), grafana)) }
                            td.headers {
                                @if let Some(headers) = item["headers"].as_object() {
                                    @for (name, value) in headers {
                                        div { code { (name) ": " (value.as_str().unwrap_or("")) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if items.is_empty() { p { "No messages." } }
        nav.pager aria-label="Journal pages" {
            a href="/admin/journal" { "Newest" }
            @if let Some(next) = page["next_before_seq"].as_u64() {
                a #journal-older href={ "/admin/journal?before_seq=" (next) } { "Older" }
            }
        }
    }
}

fn trace_cell(traceparent: Option<&str>, grafana: Option<&str>) -> Markup {
    let Some(traceparent) = traceparent else {
        return html! { span.muted { "—" } };
    };
    match (grafana, trace_id(traceparent)) {
        (Some(grafana), Some(trace_id)) => html! {
            a.trace href=(tempo_link(grafana, trace_id)) title={ "trace " (trace_id) " in Grafana" } { code { (traceparent) } }
        },
        _ => html! { code { (traceparent) } },
    }
}

/// The trace id of a W3C `traceparent` (`version-traceid-parentid-flags`): 32 hex digits,
/// not all zero.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let id = traceparent.split('-').nth(1)?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.bytes().any(|b| b != b'0'))
        .then_some(id)
}

/// Grafana's Explore on the trace, in the Tempo data source the compose stack provisions
/// (uid `tally-tempo`, deploy/grafana/datasources.yaml).
pub fn tempo_link(grafana: &str, trace_id: &str) -> String {
    let panes = serde_json::json!({
        "t": {
            "datasource": "tally-tempo",
            "queries": [{
                "refId": "A",
                "datasource": {"type": "tempo", "uid": "tally-tempo"},
                "queryType": "traceql",
                "query": trace_id,
            }],
            "range": {"from": "now-24h", "to": "now"},
        }
    });
    format!(
        "{}/explore?schemaVersion=1&panes={}",
        grafana.trim_end_matches('/'),
        encode(&panes.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_traceparents_second_field_is_its_trace_id() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(tp), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(trace_id("00-xyz-00f067aa0ba902b7-01"), None);
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
    }

    #[test]
    fn a_traceparent_is_a_link_only_when_grafana_is_known() {
        let page = json!({"last_seq": 2, "next_before_seq": null, "items": [{
            "seq": 2, "subject": "ledger.account.a", "type": "funds_deposited",
            "headers": {"Ledger-Event-Type": "funds_deposited"},
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        }]});
        let linked = journal_body(&page, Some("http://grafana.invalid:3000/")).into_string();
        assert!(
            linked.contains(
                r#"href="http://grafana.invalid:3000/explore?schemaVersion=1&amp;panes="#
            ) && linked.contains("4bf92f3577b34da6a3ce929d0e0e4736%22"),
            "{linked}"
        );
        let plain = journal_body(&page, None).into_string();
        assert!(!plain.contains("explore"), "{plain}");
        assert!(
            plain.contains("00-4bf92f3577b34da6a3ce929d0e0e4736"),
            "{plain}"
        );
        assert!(!plain.contains("journal-older"), "{plain}");
    }

    #[test]
    fn the_lag_is_the_journals_end_less_the_checkpoint() {
        let html = figures(
            &json!({"last_seq": 10}),
            &json!({"checkpoint": 7, "standby_count": 1, "active_instance": null}),
        )
        .into_string();
        assert!(html.contains(r#"<dd id="projector-lag">3</dd>"#), "{html}");
        assert!(html.contains("No projector holds the lock"), "{html}");
    }
}
