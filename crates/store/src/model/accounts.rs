//! Accounts and projects: who calls (keys, reviewers, sessions), projects and their
//! policies.

use flywheel_core::LabelMode;
use serde::Serialize;

use crate::Millis;

/// Who is calling, as their key says.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    Admin,
    /// A model's service: may submit items to and read labels of `projects` (ids).
    Service {
        projects: Vec<i64>,
    },
    Reviewer(Reviewer),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reviewer {
    pub id: i64,
    pub name: String,
    pub tiers: Vec<u8>,
    /// Project ids granted.
    pub projects: Vec<i64>,
    /// The same projects' names.
    pub project_names: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewProject {
    pub name: String,
    pub labels: Vec<String>,
    pub policy: serde_json::Value,
    /// The answer fields' schema as checked by `flywheel_core::fields::FieldSchema`
    /// (a JSON array; `[]` for none).
    pub answer_fields: serde_json::Value,
    /// One label per answer, or a set of labels (stored as its canonical encoding, see
    /// `flywheel_core::label`).
    pub label_mode: LabelMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub labels: Vec<String>,
    pub policy: serde_json::Value,
    pub policy_version: u32,
    pub created_at: Millis,
    /// The answer fields' schema (a JSON array; `[]` for none).
    pub answer_fields: serde_json::Value,
    pub label_mode: LabelMode,
}

/// One stored version of a project's policy: what it said, who stored it and when.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVersion {
    pub version: u32,
    pub policy: serde_json::Value,
    pub created_at: Millis,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct NewReviewer {
    pub name: String,
    pub tiers: Vec<u8>,
    /// Project names.
    pub projects: Vec<String>,
    pub key_hash: String,
    /// An Argon2id PHC string, when the reviewer may sign in with a password.
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewServiceKey {
    /// Project names.
    pub projects: Vec<String>,
    pub key_hash: String,
    /// What the admin calls the key (checked by the server), if anything.
    pub name: Option<String>,
}

/// Whom a browser session acts as.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionOwner {
    /// The holder of the key (by its hash) it was opened with; revoking the key ends it.
    Key(String),
    /// A reviewer who signed in with a password.
    Reviewer(i64),
}

/// A reviewer as the admin console lists them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewerAccount {
    #[serde(flatten)]
    pub reviewer: Reviewer,
    pub has_password: bool,
    /// Keys not revoked.
    pub active_keys: i64,
    pub created_at: Millis,
    /// Not deactivated: the reviewer's keys, sessions and password work.
    pub active: bool,
}

/// An API key as the admin console lists it: never the key, only its hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    pub hash: String,
    /// `admin`, `service` or `reviewer`.
    pub kind: String,
    pub reviewer: Option<String>,
    /// Service keys: the projects granted (names).
    pub projects: Vec<String>,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    /// What the admin calls the key, if they named it.
    pub name: Option<String>,
    /// When a request last authenticated with it, to the minute (written at most once a
    /// minute per key: see `Store::touch_key`).
    pub last_used_at: Option<Millis>,
}
