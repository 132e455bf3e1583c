//! The HTTP client of demos and benchmarks: one pooled `reqwest` client, the nodes to
//! spread load over, and the admin key, with typed calls for what scenarios do (projects,
//! keys, reviewers, items, claims, answers, training, scoring). It speaks the public API
//! only, so it works against any Flywheel server; it knows nothing of the server's code.
//!
//! Benchmarks' hot loops build their requests on [`Client::http`] themselves, to spend as
//! little of the machine as they can; setup goes through the typed calls.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::Error;

#[derive(Clone)]
pub struct Client {
    /// The pooled connection client (for benchmarks' own requests).
    pub http: reqwest::Client,
    nodes: Arc<Vec<String>>,
    admin: String,
}

impl Client {
    /// A client of `nodes` (base URLs; a trailing `/` is dropped) with the admin key.
    pub fn new(nodes: Vec<String>, admin: impl Into<String>) -> Self {
        flywheel_tls::install();
        Self::with_http(reqwest::Client::new(), nodes, admin)
    }

    /// As [`Client::new`], over a `reqwest` client built by the caller (pool sizes), who
    /// calls `flywheel_tls::install` before building it.
    pub fn with_http(http: reqwest::Client, nodes: Vec<String>, admin: impl Into<String>) -> Self {
        assert!(!nodes.is_empty(), "a client needs at least one node");
        Self {
            http,
            nodes: Arc::new(nodes.into_iter().map(|n| n.trim_end_matches('/').to_string()).collect()),
            admin: admin.into(),
        }
    }

    /// Node `i` of the list, round robin.
    pub fn node(&self, i: usize) -> &str {
        &self.nodes[i % self.nodes.len()]
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn admin_key(&self) -> &str {
        &self.admin
    }

    /// One request to the first node: the status and the JSON body (`null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Error> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.node(0)))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |source| Error::Transport {
            path: path.to_string(),
            source,
        };
        let r = req.send().await.map_err(transport)?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(transport)?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|source| Error::Body {
                path: path.to_string(),
                source,
            })?
        };
        Ok((status, body))
    }

    /// As [`Client::call`], with any status but 2xx an error.
    pub async fn ok(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Result<Value, Error> {
        let (status, body) = self.call(method, path, key, body).await?;
        if !(200..300).contains(&status) {
            return Err(Error::Status {
                path: path.to_string(),
                status,
                body,
            });
        }
        Ok(body)
    }

    /// A POST with the admin key.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        self.ok(Method::POST, path, &self.admin, Some(body)).await
    }

    /// Creates a project.
    pub async fn create_project(&self, name: &str, labels: &[String], policy: &Value) -> Result<(), Error> {
        self.admin_post(
            "/v1/projects",
            &json!({"name": name, "labels": labels, "policy": policy}),
        )
        .await
        .map(drop)
    }

    /// A new service key for `project`.
    pub async fn service_key(&self, project: &str) -> Result<String, Error> {
        let v = self
            .admin_post("/v1/keys", &json!({"scope": "service", "projects": [project]}))
            .await?;
        key_of(&v)
    }

    /// A new reviewer of these tiers and projects; returns its key.
    pub async fn reviewer(&self, name: &str, tiers: &[u8], projects: &[&str]) -> Result<String, Error> {
        let v = self
            .admin_post(
                "/v1/reviewers",
                &json!({"name": name, "tiers": tiers, "projects": projects}),
            )
            .await?;
        key_of(&v)
    }

    /// Submits items (`{external_id, payload, …}`); returns their decisions.
    pub async fn submit(&self, project: &str, key: &str, items: Vec<Value>) -> Result<Vec<Value>, Error> {
        let mut v = self
            .ok(
                Method::POST,
                &format!("/v1/projects/{project}/items"),
                key,
                Some(&json!({"items": items})),
            )
            .await?;
        match v["decisions"].take() {
            Value::Array(d) => Ok(d),
            other => Err(Error::Unexpected(format!("items: no decisions in {other}"))),
        }
    }

    /// Leases the next task of `project` for the reviewer with `key`, if there is one.
    pub async fn claim(&self, project: &str, key: &str) -> Result<Option<Value>, Error> {
        let path = format!("/v1/projects/{project}/claim");
        match self.call(Method::POST, &path, key, Some(&json!({}))).await? {
            (204, _) => Ok(None),
            (200, task) => Ok(Some(task)),
            (status, body) => Err(Error::Status { path, status, body }),
        }
    }

    /// Creates a project whose answers carry `answer_fields` (a JSON array of field
    /// declarations: `{name, type: enum|number|bool|text, values, min, max, max_length,
    /// required, when_labels}`).
    pub async fn create_project_with_fields(
        &self,
        name: &str,
        labels: &[String],
        policy: &Value,
        answer_fields: &Value,
    ) -> Result<(), Error> {
        self.admin_post(
            "/v1/projects",
            &json!({"name": name, "labels": labels, "policy": policy, "answer_fields": answer_fields}),
        )
        .await
        .map(drop)
    }

    /// Answers a leased task with a label.
    pub async fn answer(&self, key: &str, task: &Value, label: &str) -> Result<Value, Error> {
        self.answer_with_fields(key, task, label, &Value::Null).await
    }

    /// Answers a leased task with a label and its answer fields (`{name: value}`; `null`
    /// sends none).
    pub async fn answer_with_fields(
        &self,
        key: &str,
        task: &Value,
        label: &str,
        fields: &Value,
    ) -> Result<Value, Error> {
        let mut body = json!({"lease_id": task["lease_id"], "review_id": format!("{}-{}", task["task_id"], task["lease_id"]), "label": label});
        if !fields.is_null() {
            body["fields"] = fields.clone();
        }
        self.ok(
            Method::POST,
            &format!("/v1/tasks/{}/reviews", task["task_id"]),
            key,
            Some(&body),
        )
        .await
    }

    /// Answers a leased task with a body of the caller's (`label`, `note`, `fields`, …);
    /// the lease and the idempotency key are added here.
    pub async fn answer_with(&self, key: &str, task: &Value, mut body: Value) -> Result<Value, Error> {
        body["lease_id"] = task["lease_id"].clone();
        body["review_id"] = json!(format!("{}-{}", task["task_id"], task["lease_id"]));
        self.ok(
            Method::POST,
            &format!("/v1/tasks/{}/reviews", task["task_id"]),
            key,
            Some(&body),
        )
        .await
    }

    /// Imports Flywheel JSON lines into `project` (`as=history`: their resolutions become
    /// human labels); returns the import's report.
    pub async fn import_history(&self, project: &str, key: &str, jsonl: String) -> Result<Value, Error> {
        let path = format!("/v1/projects/{project}/import?format=jsonl&as=history");
        let transport = |source| Error::Transport {
            path: path.clone(),
            source,
        };
        let r = self
            .http
            .post(format!("{}{path}", self.node(0)))
            .bearer_auth(key)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(jsonl)
            .send()
            .await
            .map_err(transport)?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(transport)?;
        let body: Value = serde_json::from_str(&text).map_err(|source| Error::Body {
            path: path.clone(),
            source,
        })?;
        if !(200..300).contains(&status) {
            return Err(Error::Status { path, status, body });
        }
        Ok(body)
    }

    /// One page of the label feed after `after` (at most 1,000 rows); the rows and the
    /// cursor to pass next.
    pub async fn labels(&self, project: &str, key: &str, after: i64) -> Result<(Vec<Value>, i64), Error> {
        let mut page = self
            .ok(
                Method::GET,
                &format!("/v1/projects/{project}/labels?after={after}&limit=1000"),
                key,
                None,
            )
            .await?;
        let next = page["next_cursor"].as_i64().unwrap_or(after);
        match page["labels"].take() {
            Value::Array(rows) => Ok((rows, next)),
            other => Err(Error::Unexpected(format!("labels: no rows in {other}"))),
        }
    }

    /// Trains the project's built-in model on every new human label and recalibrates its
    /// thresholds, synchronously; returns the model's state (`GET …/model`).
    pub async fn train(&self, project: &str) -> Result<Value, Error> {
        self.admin_post(&format!("/v1/projects/{project}/model/train"), &json!({}))
            .await
    }

    /// Scores payloads with the project's built-in model without storing anything (in
    /// chunks the endpoint takes); one prediction (`{label, confidence, scores}`) each.
    pub async fn predict(&self, project: &str, key: &str, payloads: &[Value]) -> Result<Vec<Value>, Error> {
        let mut out = Vec::with_capacity(payloads.len());
        for chunk in payloads.chunks(5000) {
            let items: Vec<Value> = chunk.iter().map(|p| json!({"payload": p})).collect();
            let mut scored = self
                .ok(
                    Method::POST,
                    &format!("/v1/projects/{project}/model/predict"),
                    key,
                    Some(&json!({"items": items})),
                )
                .await?;
            match scored["predictions"].take() {
                Value::Array(got) if got.len() == chunk.len() => out.extend(got),
                other => {
                    return Err(Error::Unexpected(format!(
                        "asked to score {} payloads, got {other}",
                        chunk.len()
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The project's statistics (`GET …/stats`), as the admin sees them.
    pub async fn stats(&self, project: &str) -> Result<Value, Error> {
        self.ok(Method::GET, &format!("/v1/projects/{project}/stats"), &self.admin, None)
            .await
    }
}

fn key_of(v: &Value) -> Result<String, Error> {
    v["api_key"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Unexpected(format!("no api_key in {v}")))
}
