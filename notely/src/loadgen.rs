//! Strict simulated users. Each one creates an account and keeps creating, reading, updating,
//! listing and deleting its notes — creates and deletes go on in steady state too — and
//! remembers what it last wrote. Whenever the service contradicts what the user did (wrong
//! content, a deleted note listed or readable again, a created note missing, a 404 for a live
//! note) it counts a consistency miss.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::telemetry::{Telemetry, percentile};

/// How much load to generate.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Simulated users, one account each.
    pub accounts: usize,
    /// Notes each user keeps around (creates and deletes go on around it).
    pub notes_per_account: usize,
    /// Requests per minute per user.
    pub rpm: u32,
    /// Stop after this long (`None`: until the stop signal).
    pub duration: Option<Duration>,
}

/// What the users saw.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub accounts: usize,
    pub requests: u64,
    /// Requests that failed without being a contradiction (transport errors, 5xx).
    pub errors: u64,
    /// Of the errors: connections that could not be made (refused, or failing to connect).
    pub refused_connections: u64,
    pub consistency_misses: u64,
    pub duration_s: f64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// When each request started, and how long it took (µs).
    #[serde(skip)]
    pub samples: Vec<(Instant, u64)>,
    /// When each failed request started, and whether its connection could not be made.
    #[serde(skip)]
    pub failures: Vec<(Instant, bool)>,
}

impl LoadReport {
    /// Failed requests, and of them refused connections, started between `from` and `to`.
    pub fn failures_between(&self, from: Instant, to: Instant) -> (u64, u64) {
        self.failures
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .fold((0, 0), |(all, refused), (_, r)| {
                (all + 1, refused + u64::from(*r))
            })
    }

    /// The p99 latency (ms) of the requests started between `from` and `to`.
    pub fn p99_between(&self, from: Instant, to: Instant) -> f64 {
        let mut window: Vec<u64> = self
            .samples
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, us)| *us)
            .collect();
        window.sort_unstable();
        percentile(&window, 99.0)
    }
}

#[derive(Default)]
struct Tally {
    requests: u64,
    errors: u64,
    refused: u64,
    misses: u64,
    samples: Vec<(Instant, u64)>,
    failures: Vec<(Instant, bool)>,
}

struct User {
    client: reqwest::Client,
    /// Servers sharing the same databases; each request goes to one at random.
    bases: Vec<String>,
    route: std::cell::Cell<u64>,
    telemetry: Arc<Telemetry>,
    index: usize,
    account: Uuid,
    /// Live notes: content and the updatedAt we last wrote.
    notes: HashMap<Uuid, (String, DateTime<Utc>)>,
    deleted: HashSet<Uuid>,
    rng: u64,
    writes: u64,
    tally: Tally,
}

/// An error and its causes, `: `-separated (reqwest's own message leaves them out).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

enum Op {
    Create,
    Read,
    Update,
    List,
    Delete,
}

impl User {
    fn random(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % n.max(1)
    }

    fn miss(&mut self, what: String) {
        self.tally.misses += 1;
        self.telemetry
            .consistency_miss(&format!("user {}: {what}", self.index));
    }

    fn error(&mut self, what: String) {
        self.failed(Instant::now(), false, what);
    }

    /// Counts a request started at `at` that failed (`refused`: no connection could be made).
    fn failed(&mut self, at: Instant, refused: bool, what: String) {
        self.tally.errors += 1;
        self.tally.refused += u64::from(refused);
        self.tally.failures.push((at, refused));
        tracing::error!("user {}: {what}", self.index);
    }

    /// Sends a request and times it; `None` on a transport error (counted).
    async fn send(&mut self, req: reqwest::RequestBuilder) -> Option<(StatusCode, Value)> {
        let t0 = Instant::now();
        let result = req.send().await;
        let result = match result {
            Ok(res) => {
                let status = res.status();
                let body = res
                    .bytes()
                    .await
                    .map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null));
                body.map(|b| (status, b))
            }
            Err(e) => Err(e),
        };
        self.tally.requests += 1;
        self.tally
            .samples
            .push((t0, t0.elapsed().as_micros() as u64));
        match result {
            Ok((status, body)) if status.is_server_error() => {
                self.failed(t0, false, format!("{status}: {body}"));
                None
            }
            Ok(ok) => Some(ok),
            Err(e) => {
                let refused = e.is_connect();
                self.failed(t0, refused, format!("request failed: {}", causes(&e)));
                None
            }
        }
    }

    /// One of the servers, at random (its own generator, so that choosing one does not change
    /// what the user does).
    fn base(&self) -> &str {
        let mut x = self.route.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.route.set(x);
        &self.bases[(x % self.bases.len() as u64) as usize]
    }

    fn notes_url(&self) -> String {
        format!("{}/accounts/{}/notes", self.base(), self.account)
    }

    fn pick(&mut self, from: &[Uuid]) -> Option<Uuid> {
        if from.is_empty() {
            None
        } else {
            Some(from[self.random(from.len() as u64) as usize])
        }
    }

    fn content(&mut self) -> String {
        self.writes += 1;
        format!(
            "user {} write {} at {}",
            self.index,
            self.writes,
            Utc::now().to_rfc3339()
        )
    }

    async fn create(&mut self) {
        let content = self.content();
        let url = self.notes_url();
        let req = self.client.post(url).json(&json!({ "content": content }));
        if let Some((status, body)) = self.send(req).await {
            let id = body["id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
            let at = body["updatedAt"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
            match (status, id, at) {
                (StatusCode::CREATED, Some(id), Some(at))
                    if body["content"] == content.as_str() =>
                {
                    self.notes.insert(id, (content, at.to_utc()));
                }
                _ => self.miss(format!("creating a note answered {status}: {body}")),
            }
        }
    }

    async fn read(&mut self) {
        // Now and then, check that a deleted note stays deleted.
        let deleted: Vec<Uuid> = self.deleted.iter().copied().collect();
        if !deleted.is_empty() && self.random(10) == 0 {
            let Some(id) = self.pick(&deleted) else {
                return;
            };
            let req = self.client.get(format!("{}/{id}", self.notes_url()));
            if let Some((status, _)) = self.send(req).await
                && status != StatusCode::NOT_FOUND
            {
                self.miss(format!("deleted note {id} is readable again ({status})"));
            }
            return;
        }
        let live: Vec<Uuid> = self.notes.keys().copied().collect();
        let Some(id) = self.pick(&live) else {
            return self.create().await;
        };
        let req = self.client.get(format!("{}/{id}", self.notes_url()));
        if let Some((status, body)) = self.send(req).await {
            let expected = &self.notes[&id].0;
            match status {
                StatusCode::OK if body["content"] == expected.as_str() => {}
                StatusCode::OK => self.miss(format!(
                    "note {id} shows {:?}, not what was written",
                    body["content"]
                )),
                StatusCode::NOT_FOUND => self.miss(format!("live note {id} answered 404")),
                other => self.error(format!("reading note {id}: {other}")),
            }
        }
    }

    async fn update(&mut self) {
        let live: Vec<Uuid> = self.notes.keys().copied().collect();
        let Some(id) = self.pick(&live) else {
            return self.create().await;
        };
        let content = self.content();
        // Half the updates bring their own time, strictly newer than our last write at the
        // store's millisecond precision; the others let the server stamp them, which must
        // win too, even right after our previous write of the same note.
        let client_time = self.random(2) == 0;
        let last = self.notes[&id].1;
        let now =
            DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default();
        let at = if now > last {
            now
        } else {
            last + TimeDelta::milliseconds(1)
        };
        let body = if client_time {
            json!({ "content": content, "updatedAt": at })
        } else {
            json!({ "content": content })
        };
        let req = self
            .client
            .put(format!("{}/{id}", self.notes_url()))
            .json(&body);
        if let Some((status, body)) = self.send(req).await {
            let stored = body["updatedAt"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            match status {
                StatusCode::OK if body["content"] == content.as_str() => match stored {
                    Some(stored) if stored > last => {
                        self.notes.insert(id, (content, stored));
                    }
                    _ => self.miss(format!(
                        "update of note {id} answered updatedAt {:?}, not newer than {last}",
                        body["updatedAt"]
                    )),
                },
                StatusCode::OK => self.miss(format!(
                    "update of note {id} was not kept ({}): {:?}",
                    if client_time {
                        "with a client time"
                    } else {
                        "server time"
                    },
                    body["content"]
                )),
                StatusCode::NOT_FOUND => self.miss(format!("updating live note {id} answered 404")),
                other => self.error(format!("updating note {id}: {other}")),
            }
        }
    }

    async fn list(&mut self) {
        let req = self.client.get(self.notes_url());
        let Some((status, body)) = self.send(req).await else {
            return;
        };
        if status != StatusCode::OK {
            return self.error(format!("listing notes: {status}"));
        }
        let listed: HashSet<Uuid> = body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect();
        let missing: Vec<Uuid> = self
            .notes
            .keys()
            .filter(|id| !listed.contains(id))
            .copied()
            .collect();
        for id in missing {
            self.miss(format!("note {id} is missing from the list"));
        }
        let back: Vec<Uuid> = listed
            .iter()
            .filter(|id| self.deleted.contains(id))
            .copied()
            .collect();
        for id in back {
            self.miss(format!("deleted note {id} is listed again"));
        }
    }

    async fn delete(&mut self) {
        let live: Vec<Uuid> = self.notes.keys().copied().collect();
        let Some(id) = self.pick(&live) else { return };
        let req = self.client.delete(format!("{}/{id}", self.notes_url()));
        if let Some((status, _)) = self.send(req).await {
            if status == StatusCode::NO_CONTENT {
                self.notes.remove(&id);
                self.deleted.insert(id);
            } else {
                self.error(format!("deleting note {id}: {status}"));
            }
        }
    }

    fn choose(&mut self, target: usize) -> Op {
        let n = self.notes.len();
        let roll = self.random(100);
        let weights: [(u64, Op); 5] = if n < target {
            [
                (60, Op::Create),
                (20, Op::Read),
                (10, Op::List),
                (10, Op::Update),
                (0, Op::Delete),
            ]
        } else if n > target {
            [
                (60, Op::Delete),
                (20, Op::Read),
                (10, Op::List),
                (10, Op::Update),
                (0, Op::Create),
            ]
        } else {
            [
                (30, Op::Read),
                (25, Op::Update),
                (15, Op::List),
                (15, Op::Create),
                (15, Op::Delete),
            ]
        };
        let mut acc = 0;
        for (w, op) in weights {
            acc += w;
            if roll < acc {
                return op;
            }
        }
        Op::Read
    }
}

/// Runs `config.accounts` strict users against the API at `base` (several comma-separated
/// URLs of servers sharing the same databases: each request goes to one of them) until the
/// duration passes or `stop` turns true.
pub async fn run(
    base: &str,
    config: &LoadConfig,
    telemetry: Arc<Telemetry>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<LoadReport> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let started = Instant::now();
    let deadline = config.duration.map(|d| started + d);
    let period = Duration::from_millis(60_000 / u64::from(config.rpm.max(1)));
    let stamp = Utc::now().format("%H:%M:%S").to_string();
    let mut tasks = tokio::task::JoinSet::new();
    let users = config.accounts.max(1);
    for index in 0..config.accounts {
        let (client, bases, telemetry, mut stop) = (
            client.clone(),
            base.split(',')
                .map(|b| b.trim_end_matches('/').to_string())
                .collect::<Vec<_>>(),
            Arc::clone(&telemetry),
            stop.clone(),
        );
        let stamp = stamp.clone();
        let target = config.notes_per_account;
        tasks.spawn(async move {
            let mut user = User {
                client,
                bases,
                route: std::cell::Cell::new(0x2545_F491_4F6C_DD1D ^ (index as u64 + 7)),
                telemetry,
                index,
                account: Uuid::nil(),
                notes: HashMap::new(),
                deleted: HashSet::new(),
                rng: 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
                writes: 0,
                tally: Tally::default(),
            };
            let name = format!("LoadTestUser{index}_{stamp}");
            let req = user
                .client
                .post(format!("{}/accounts", user.base()))
                .json(&json!({ "name": name }));
            match user.send(req).await {
                Some((StatusCode::CREATED, body)) => {
                    user.account = body["id"]
                        .as_str()
                        .and_then(|s| Uuid::parse_str(s).ok())
                        .unwrap_or_default();
                }
                other => {
                    user.error(format!("creating the account: {other:?}"));
                    return user.tally;
                }
            }
            // Users start spread over one period, as real users would, not all in step.
            let offset = period.mul_f64(index as f64 / users as f64);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                match user.choose(target) {
                    Op::Create => user.create().await,
                    Op::Read => user.read().await,
                    Op::Update => user.update().await,
                    Op::List => user.list().await,
                    Op::Delete => user.delete().await,
                }
            }
            user.tally
        });
    }
    let mut total = Tally::default();
    while let Some(done) = tasks.join_next().await {
        let t = done?;
        total.requests += t.requests;
        total.errors += t.errors;
        total.refused += t.refused;
        total.misses += t.misses;
        total.samples.extend(t.samples);
        total.failures.extend(t.failures);
    }
    let mut latencies: Vec<u64> = total.samples.iter().map(|(_, us)| *us).collect();
    latencies.sort_unstable();
    let secs = started.elapsed().as_secs_f64();
    Ok(LoadReport {
        accounts: config.accounts,
        requests: total.requests,
        errors: total.errors,
        refused_connections: total.refused,
        consistency_misses: total.misses,
        duration_s: secs,
        requests_per_s: total.requests as f64 / secs.max(1e-9),
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        samples: total.samples,
        failures: total.failures,
    })
}
