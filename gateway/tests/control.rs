//! Channel changes of an open stream (`POST /api/logs/stream/{id}/channels`)
//! against a real gateway: adds and removes under continuous publishing,
//! checked against the stream model (every log once, in order, removed
//! channels stop), service-level and resource channels over each other,
//! every refusal, a stream ending during a call, CORS, and random change
//! sequences.

#![allow(clippy::unwrap_used)]

mod control_support;
mod support;

use std::time::Duration;

use control_support::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::*;

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn jwt(user: &str, workspaces: &[&str]) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": user, "exp": exp, "workspaces": workspaces}),
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn jwt_gateway() -> TestGateway {
    TestGateway::start_with(|c| {
        c.allow_anonymous = false;
        c.jwt_secret = Some(SECRET.into());
        c.max_channels_per_stream = 4;
    })
    .await
}

const WF: [&str; 3] = ["logs:etl:ws1:wf1", "logs:etl:ws1:wf2", "logs:etl:ws1:wf3"];

#[tokio::test]
async fn adds_and_removes_under_publishing_deliver_each_log_once() {
    let gw = TestGateway::start().await;
    run_changes(
        &[&gw],
        &[WF[0]],
        &[WF[0], WF[1], WF[2], "logs:faas:ws1:f1"],
        &[
            json!({"add": [{"channel": WF[1], "since": "earliest"}]}),
            json!({"add": [{"channel": "logs:faas:ws1:f1", "since": "last:5"}], "remove": [WF[0]]}),
            json!({"add": [{"channel": WF[2]}]}),
            json!({"remove": [WF[1], "logs:faas:ws1:f1"]}),
            json!({"add": [{"channel": WF[0], "since": "earliest"}, {"channel": WF[1], "since": "last:3"}]}),
        ],
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn a_service_level_channel_over_its_resources_and_back_repeats_nothing() {
    let gw = TestGateway::start().await;
    run_changes(
        &[&gw],
        &[WF[0]],
        &[WF[0], WF[1], WF[2]],
        &[
            // The family's channel over a resource the stream carries.
            json!({"add": [{"channel": "logs:etl:ws1", "since": "earliest"}]}),
            // A resource under the family's channel the stream carries.
            json!({"add": [{"channel": WF[1], "since": "earliest"}]}),
            json!({"remove": ["logs:etl:ws1"]}),
            json!({"add": [{"channel": "logs:etl:ws1", "since": "last:4"}], "remove": [WF[0]]}),
            json!({"remove": [WF[1]]}),
        ],
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn the_answer_lists_statuses_in_request_order_and_the_channels_carried() {
    let gw = TestGateway::start().await;
    let mut stream = open(&gw, &[WF[0]]).await;
    let cursor = gw.publish_etl("ws1", "wf2", json!({"n": 1})).await;
    gw.publish_etl("ws1", "wf2", json!({"n": 2})).await;
    let body = json!({"add": [
        {"channel": WF[1], "since": cursor},
        {"channel": WF[0], "since": "earliest"},
        {"channel": WF[2]},
    ]});
    let (status, answer) = change(&gw, &stream.id, &stream.secret, &body, None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["connectionId"], stream.id.as_str());
    let statuses = answer["statuses"].as_array().unwrap();
    let kinds: Vec<(&str, &str, u64)> = statuses
        .iter()
        .map(|s| {
            (
                s["channel"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
                s["replayed"].as_u64().unwrap(),
            )
        })
        .collect();
    // The carried channel keeps its status: nothing is replayed again.
    assert_eq!(
        kinds,
        [
            (WF[1], "resumed", 1),
            (WF[0], "subscribed", 0),
            (WF[2], "subscribed", 0)
        ]
    );
    assert_eq!(
        answer["channels"],
        json!([MARK, WF[0], WF[1], WF[2]]),
        "{answer}"
    );
    // On the stream: the new channels' statuses, then the replay.
    let Ev::Status(s) = stream.next().await else {
        panic!()
    };
    assert_eq!((s.channel.as_str(), s.replayed), (WF[1], 1));
    let Ev::Status(s) = stream.next().await else {
        panic!()
    };
    assert_eq!(s.channel.as_str(), WF[2]);
    let Ev::Log(log) = stream.next().await else {
        panic!()
    };
    assert_eq!(
        (log.channel.as_str(), log.data["n"].as_i64()),
        (WF[1], Some(2))
    );
    gw.publish_etl("ws1", "wf3", json!({"n": 3})).await;
    let Ev::Log(log) = stream.next().await else {
        panic!()
    };
    assert_eq!(
        (log.channel.as_str(), log.data["n"].as_i64()),
        (WF[2], Some(3))
    );
    // A no-op change changes nothing and says so.
    let (status, answer) = change(
        &gw,
        &stream.id,
        &stream.secret,
        &json!({"remove": ["logs:faas:ws9"]}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["statuses"], json!([]));
    assert_eq!(answer["channels"].as_array().unwrap().len(), 4);
    gw.stop().await;
}

async fn refused(
    gw: &TestGateway,
    id: &str,
    secret: &str,
    body: &Value,
    token: Option<&str>,
) -> (u16, String) {
    let (status, answer) = change(gw, id, secret, body, token).await;
    (
        status,
        answer["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn strangers_bad_bodies_and_limits_are_refused_and_change_nothing() {
    let gw = jwt_gateway().await;
    let alice = jwt("alice", &["ws1"]);
    let mut stream = open_controlled(
        &gw,
        gw.stream_request("channels=logs:etl:ws1:wf1")
            .bearer_auth(&alice),
    )
    .await;
    assert!(matches!(stream.next().await, Ev::Status(_)));
    let (id, secret) = (stream.id.clone(), stream.secret.clone());
    let add = json!({"add": [{"channel": "logs:etl:ws1:wf2"}]});
    let a = Some(alice.as_str());

    assert_eq!(
        refused(&gw, "c999999", &secret, &add, a).await,
        (404, "unknown_stream".into())
    );
    assert_eq!(refused(&gw, "../x", &secret, &add, a).await.0, 404);
    let wrong = "A".repeat(secret.len());
    assert_eq!(
        refused(&gw, &id, &wrong, &add, a).await,
        (403, "stream_forbidden".into())
    );
    assert_eq!(
        refused(&gw, &id, "", &add, a).await,
        (403, "stream_forbidden".into())
    );
    // Another user with the right secret: the same answer.
    let bob = jwt("bob", &["ws1"]);
    assert_eq!(
        refused(&gw, &id, &secret, &add, Some(&bob)).await,
        (403, "stream_forbidden".into())
    );
    assert_eq!(refused(&gw, &id, &secret, &add, None).await.0, 401);
    assert_eq!(
        refused(&gw, &id, &secret, &add, Some("not-a-jwt")).await.0,
        401
    );
    // The token in the URL is not accepted here.
    let response = gw
        .http
        .post(gw.url(&format!(
            "/api/logs/stream/{id}/channels?access_token={alice}"
        )))
        .header("x-stream-secret", &secret)
        .json(&add)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A channel the token does not grant: 403 alone, `denied` beside others.
    let other_ws = json!({"add": [{"channel": "logs:etl:ws2:wf1"}]});
    assert_eq!(
        refused(&gw, &id, &secret, &other_ws, a).await,
        (403, "forbidden_channels".into())
    );
    for (body, code) in [
        (json!({}), "invalid_body"),
        (json!({"add": []}), "invalid_body"),
        (
            json!({"add": [{"channel": "logs:etl:ws1:wf2", "from": "x"}]}),
            "invalid_body",
        ),
        (json!({"add": [{"channel": "nope"}]}), "invalid_channel"),
        (
            json!({"add": [{"channel": "logs:etl:ws1:wf2", "since": "last:0"}]}),
            "invalid_since",
        ),
        (
            json!({"add": [{"channel": "logs:etl:ws1:wf2", "since": "x-y"}]}),
            "invalid_cursor",
        ),
        (
            json!({"add": [{"channel": "logs:etl:ws1:wf2"}], "remove": ["logs:etl:ws1:wf2"]}),
            "invalid_body",
        ),
        (
            json!({"add": [{"channel": "logs:etl:ws1:a"}, {"channel": "logs:etl:ws1:b"}, {"channel": "logs:etl:ws1:c"}, {"channel": "logs:etl:ws1:d"}]}),
            "too_many_channels",
        ),
    ] {
        assert_eq!(
            refused(&gw, &id, &secret, &body, a).await,
            (400, code.to_owned()),
            "{body}"
        );
    }
    // A raw body with its content type, as alice with the secret.
    let raw = |content_type: &'static str, body: String| {
        gw.http
            .post(gw.url(&format!("/api/logs/stream/{id}/channels")))
            .header("x-stream-secret", &secret)
            .bearer_auth(&alice)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(
        raw("text/plain", add.to_string()).await.unwrap().status(),
        415
    );
    assert_eq!(
        raw("application/json", "{\"add\": [".to_owned())
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        raw(
            "application/json",
            format!("{{\"remove\": [\"{}\"]}}", "x".repeat(1024 * 1024))
        )
        .await
        .unwrap()
        .status(),
        413
    );
    let metrics = gw.metrics().await;
    for line in [
        "logs_sse_stream_control_total{outcome=\"stream_forbidden\"} 3",
        "logs_sse_stream_control_total{outcome=\"unknown_stream\"} 1",
        "logs_sse_stream_control_total{outcome=\"body_too_large\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    assert!(
        !metrics.contains(&secret),
        "the secret stays out of metrics"
    );
    // Nothing changed: the stream still carries only wf1.
    gw.publish_etl("ws1", "wf2", json!({"n": 1})).await;
    gw.publish_etl("ws1", "wf1", json!({"n": 2})).await;
    let Ev::Log(log) = stream.next().await else {
        panic!()
    };
    assert_eq!(log.data["n"], 2);

    // Allowed beside denied: the denied one is told on the stream too.
    let body = json!({"add": [{"channel": "logs:etl:ws2:wf1"}, {"channel": "logs:etl:ws1:wf2"}]});
    let (status, answer) = change(&gw, &id, &secret, &body, a).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["statuses"][0]["status"], "denied");
    assert_eq!(answer["statuses"][1]["status"], "subscribed");
    let Ev::Status(s) = stream.next().await else {
        panic!()
    };
    assert_eq!(s.channel.as_str(), "logs:etl:ws2:wf1");
    // Three carried, the limit is four: two more are too many.
    let body = json!({"add": [{"channel": "logs:etl:ws1:a"}, {"channel": "logs:etl:ws1:b"}, {"channel": "logs:etl:ws1:c"}]});
    assert_eq!(
        refused(&gw, &id, &secret, &body, a).await,
        (400, "too_many_channels".into())
    );
    // Alice with a fresh token of the same subject may change it.
    let again = jwt("alice", &["ws1"]);
    let body = json!({"remove": ["logs:etl:ws1:wf1"]});
    assert_eq!(change(&gw, &id, &secret, &body, Some(&again)).await.0, 200);
    gw.stop().await;
}

#[tokio::test]
async fn an_anonymous_stream_is_controlled_anonymously_only() {
    let gw = TestGateway::start_with(|c| c.jwt_secret = Some(SECRET.into())).await;
    let stream = open(&gw, &[WF[0]]).await;
    let add = json!({"add": [{"channel": WF[1]}]});
    let alice = jwt("alice", &["ws1"]);
    assert_eq!(
        refused(&gw, &stream.id, &stream.secret, &add, Some(&alice)).await,
        (403, "stream_forbidden".into())
    );
    assert_eq!(
        change(&gw, &stream.id, &stream.secret, &add, None).await.0,
        200
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_stream_that_ends_is_unknown_and_a_call_in_flight_never_hangs() {
    let gw = TestGateway::start().await;
    let stream = open(&gw, &[WF[0]]).await;
    let (id, secret) = (stream.id.clone(), stream.secret.clone());
    drop(stream);
    let add = json!({"add": [{"channel": WF[1]}]});
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, code) = refused(&gw, &id, &secret, &add, None).await;
        if status == 404 {
            assert_eq!(code, "unknown_stream");
            break;
        }
        assert_eq!(status, 200, "{code}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ended stream stays known"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Streams dropped while their calls run: each call answers promptly,
    // 200 or 404, and the gateway forgets the stream and its channels.
    for round in 0..20u64 {
        let stream = open(&gw, &[WF[0]]).await;
        let (id, secret) = (stream.id.clone(), stream.secret.clone());
        let body = json!({"add": [{"channel": WF[1], "since": "earliest"}, {"channel": "logs:faas:ws1", "since": "earliest"}]});
        let call = tokio::spawn({
            let http = gw.http.clone();
            let url = gw.url(&format!("/api/logs/stream/{id}/channels"));
            async move {
                http.post(url)
                    .header("x-stream-secret", secret)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        });
        tokio::time::sleep(Duration::from_micros(round * 150)).await;
        drop(stream);
        let status = tokio::time::timeout(WAIT, call)
            .await
            .expect("no hang")
            .unwrap();
        assert!(status == 200 || status == 404, "{status}");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = gw.stats().await;
        let subs = stats["subscriptions"].as_array().map_or(0, Vec::len);
        if subs == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "channels left behind: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn the_preflight_allows_the_secret_header_for_listed_origins() {
    let gw =
        TestGateway::start_with(|c| c.cors_origins = vec!["http://localhost:5173".into()]).await;
    let stream = open(&gw, &[WF[0]]).await;
    let url = gw.url(&format!("/api/logs/stream/{}/channels", stream.id));
    let preflight = |origin: &'static str| {
        gw.http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, x-stream-secret",
            )
            .send()
    };
    let response = preflight("http://localhost:5173").await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("x-stream-secret"), "{allowed}");
    let response = preflight("https://evil.example").await.unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let response = gw
        .http
        .post(&url)
        .header("origin", "http://localhost:5173")
        .header("x-stream-secret", &stream.secret)
        .json(&json!({"add": [{"channel": WF[1]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    gw.stop().await;
}

const UNIVERSE: [&str; 7] = [
    "logs:etl:ws1",
    "logs:etl:ws1:wf1",
    "logs:etl:ws1:wf2",
    "logs:etl:ws1:wf3",
    "logs:faas:ws1",
    "logs:faas:ws1:f1",
    "logs:faas:ws1:f2",
];

/// Random change sequences over two families (service-level and resource
/// channels mixed, every kind of `since`) under continuous publishing,
/// each run checked against the model.
#[tokio::test]
async fn random_change_sequences_keep_every_stream_exact() {
    let gw = TestGateway::start().await;
    let seed: u64 = std::env::var("CONTROL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("CONTROL_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..4 {
        let initial: Vec<&str> = UNIVERSE.choose_multiple(&mut rng, 2).copied().collect();
        let mut carried: Vec<&str> = initial.clone();
        let mut steps = Vec::new();
        for _ in 0..8 {
            let mut add = Vec::new();
            let mut remove = Vec::new();
            for channel in UNIVERSE {
                let roll: f64 = rng.random();
                if carried.contains(&channel) && roll < 0.3 {
                    remove.push(channel);
                } else if !carried.contains(&channel) && roll < 0.3 {
                    let since = match rng.random_range(0..4) {
                        0 => Value::Null,
                        1 => json!("earliest"),
                        2 => json!(format!("last:{}", rng.random_range(1..20))),
                        _ => json!("0-1"),
                    };
                    add.push(json!({"channel": channel, "since": since}));
                }
            }
            if add.is_empty() && remove.is_empty() {
                continue;
            }
            carried.retain(|c| !remove.contains(c));
            for a in &add {
                carried.push(UNIVERSE.iter().find(|c| **c == a["channel"]).unwrap());
            }
            let mut body = json!({});
            if !add.is_empty() {
                body["add"] = json!(add
                    .into_iter()
                    .map(|mut a| {
                        if a["since"].is_null() {
                            a.as_object_mut().unwrap().remove("since");
                        }
                        a
                    })
                    .collect::<Vec<_>>());
            }
            if !remove.is_empty() {
                body["remove"] = json!(remove);
            }
            steps.push(body);
        }
        run_changes(
            &[&gw],
            &initial,
            &[
                "logs:etl:ws1:wf1",
                "logs:etl:ws1:wf2",
                "logs:etl:ws1:wf3",
                "logs:faas:ws1:f1",
                "logs:faas:ws1:f2",
            ],
            &steps,
        )
        .await;
    }
    gw.stop().await;
}
