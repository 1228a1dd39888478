//! `GET /v1/admin/journal`: the journal's recent messages for admins, newest first, paged
//! exactly by `before_seq`.

use crate::support::*;
use serde_json::Value;

fn seqs(page: &Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["seq"].as_u64().expect("seq"))
        .collect()
}

#[tokio::test]
async fn an_admin_pages_through_the_whole_journal_newest_first_and_every_message_once() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "jour-a", "gina", 500).await;
    open_funded(&api, "jour-b", "gina", 300).await;
    let client = nats.client().await;
    let stored = journal(&client).await;
    let last = last_seq(&client).await;
    assert!(last >= 4, "four commands journal at least four messages");
    let admin = token("root", true);

    let first = api.http.get("/v1/admin/journal?limit=3", &admin).await;
    assert_eq!(first.status.as_u16(), 200, "{:?}", first.body);
    assert_eq!(first.body["last_seq"].as_u64(), Some(last));
    assert_eq!(seqs(&first.body), vec![last, last - 1, last - 2]);
    let newest = &first.body["items"][0];
    let message = stored.last().expect("a message");
    assert_eq!(newest["subject"].as_str(), Some(message.subject.as_str()));
    assert_eq!(
        newest["type"].as_str(),
        message.header(events::headers::EVENT_TYPE)
    );
    assert_eq!(
        newest["headers"][events::headers::JOB_ID].as_str(),
        message.header(events::headers::JOB_ID)
    );
    let body: Value = serde_json::from_slice(&message.payload).expect("JSON body");
    assert_eq!(newest["data"], body);
    assert_eq!(
        newest["traceparent"].as_str(),
        message.header(events::headers::TRACEPARENT)
    );

    // Walking the pages gives every sequence from the last down to 1, each once.
    let mut walked = seqs(&first.body);
    let mut next = first.body["next_before_seq"].as_u64();
    let mut pages = 1;
    while let Some(before) = next {
        let page = api
            .http
            .get(
                &format!("/v1/admin/journal?limit=3&before_seq={before}"),
                &admin,
            )
            .await;
        assert_eq!(page.status.as_u16(), 200, "{:?}", page.body);
        let got = seqs(&page.body);
        assert!(got.iter().all(|&s| s < before), "{got:?} before {before}");
        walked.extend(got);
        next = page.body["next_before_seq"].as_u64();
        pages += 1;
        assert!(pages <= last, "paging does not end");
    }
    let expected: Vec<u64> = (1..=last).rev().collect();
    assert_eq!(walked, expected);

    // The default page is 20 messages (or the whole journal if shorter).
    let default = api.http.get("/v1/admin/journal", &admin).await;
    assert_eq!(default.status.as_u16(), 200, "{:?}", default.body);
    assert_eq!(
        seqs(&default.body).len() as u64,
        last.min(20),
        "{:?}",
        default.body
    );
    // Before the first message there is nothing, and no next page.
    let start = api.http.get("/v1/admin/journal?before_seq=1", &admin).await;
    assert_eq!(start.status.as_u16(), 200, "{:?}", start.body);
    assert_eq!(seqs(&start.body), Vec::<u64>::new());
    assert!(start.body["next_before_seq"].is_null());
}

#[tokio::test]
async fn the_journal_is_refused_to_a_user_and_to_no_token() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    open_funded(&api, "jour-c", "gina", 100).await;
    let user = token("gina", false);
    let refused = api.http.get("/v1/admin/journal", &user).await;
    refused.assert_problem(403, "forbidden");
    let anonymous = api.get("/v1/admin/journal").await;
    anonymous.assert_unauthorized("the journal without a token");
}

#[tokio::test]
async fn bad_paging_parameters_are_a_400_problem() {
    let nats = NatsServer::start();
    let api = start_api(&nats.url).await;
    let admin = token("root", true);
    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=ten",
        "before_seq=0",
        "before_seq=-5",
        "before_seq=x",
        "before_seq=9223372036854775808",
        "after_seq=3",
    ] {
        let answer = api
            .http
            .get(&format!("/v1/admin/journal?{query}"), &admin)
            .await;
        assert_eq!(answer.status.as_u16(), 400, "{query}: {:?}", answer.body);
        assert_eq!(answer.body["code"], "invalid_request", "{query}");
    }
    let most = api.http.get("/v1/admin/journal?limit=100", &admin).await;
    assert_eq!(most.status.as_u16(), 200, "{:?}", most.body);
}
