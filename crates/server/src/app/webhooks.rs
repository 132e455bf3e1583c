//! Webhooks' use cases: endpoints (create, list, change, delete, rotate the secret,
//! replay), their attempts, and what delivery shares with them — the URL check that keeps
//! outbound requests off private networks ([`check_url`], [`allowed_ip`]), secrets and
//! Standard Webhooks signatures ([`sign`]). Delivery itself is `workers/webhooks.rs`.
//!
//! Must not: know HTTP status codes or wire shapes of the API, or send requests.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use flywheel_core::webhook::EventPattern;
use flywheel_store::{DeliveryRecord, NewWebhook, Webhook, WebhookChange};
use hmac::{Hmac, KeyInit, Mac};
use tracing::instrument;

use super::{AppError, AppState, ProjectRuntime};

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3_600_000;

/// Longest URL an endpoint may have.
pub const MAX_URL: usize = 2048;

/// Random bytes in a secret (Standard Webhooks asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// The operator's settings for outbound webhook requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// Let endpoints point at private, loopback and link-local addresses (for a receiver
    /// on the same host or network). Off by default: an admin key must not be a way to
    /// reach the server's own network.
    pub allow_private: bool,
}

/// An endpoint as created by the API.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// Where events are POSTed (`https://…` or `http://…`; private addresses only if the
    /// operator allows).
    pub url: String,
    /// Event kinds wanted: `item.resolved`, a family `task.*`, or `*`.
    pub events: Vec<String>,
    /// Default true.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// A change to an endpoint: each field given replaces the stored one.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// Whether an outbound request may go to `ip`: public unicast addresses only, unless the
/// operator allows private ones. (IPv4-mapped IPv6 addresses are judged as IPv4.)
pub fn allowed_ip(ip: IpAddr, settings: Settings) -> bool {
    if settings.allow_private {
        return true;
    }
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    match (v4, ip) {
        (Some(v4), _) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        (None, IpAddr::V6(v6)) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local())
        }
        (None, IpAddr::V4(_)) => unreachable!("an IPv4 address is always Some above"),
    }
}

/// Checks an endpoint URL: `http` or `https`, a host, no credentials, and (unless private
/// addresses are allowed) every address the host resolves to public. Errors name `url`.
pub async fn check_url(url: &str, settings: Settings) -> Result<reqwest::Url, AppError> {
    super::text_field("url", url, 1, MAX_URL)?;
    let parsed = reqwest::Url::parse(url).map_err(|e| AppError::invalid("url", format!("url is not a URL: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(AppError::invalid(
                "url",
                format!("url must be http or https, not {other}"),
            ));
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(AppError::invalid("url", "url must not carry credentials"));
    }
    // An IPv6 literal comes bracketed (`[::1]`); the resolver wants it bare.
    let host = match parsed.host_str() {
        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        _ => return Err(AppError::invalid("url", "url has no host")),
    };
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| AppError::invalid("url", format!("url's host '{host}' does not resolve: {e}")))?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() {
        return Err(AppError::invalid("url", format!("url's host '{host}' has no address")));
    }
    if let Some(ip) = addrs.iter().find(|ip| !allowed_ip(**ip, settings)) {
        return Err(AppError::invalid(
            "url",
            format!(
                "url's host '{host}' is at {ip}, a private, loopback or link-local address; \
                 the operator can allow those (webhooks.allow_private)"
            ),
        ));
    }
    Ok(parsed)
}

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::fill(&mut bytes);
    format!("whsec_{}", BASE64.encode(bytes))
}

/// The key of a `whsec_` secret.
fn key(secret: &str) -> Vec<u8> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    BASE64.decode(b64).unwrap_or_else(|_| b64.as_bytes().to_vec())
}

/// The `webhook-signature` header: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for
/// each secret, space-separated.
pub fn sign(secrets: &[String], msg_id: &str, timestamp_s: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key(s)).expect("HMAC takes a key of any length");
            mac.update(msg_id.as_bytes());
            mac.update(b".");
            mac.update(timestamp_s.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn patterns(events: &[String]) -> Result<(), AppError> {
    EventPattern::parse_all(events)?;
    Ok(())
}

/// Creates an endpoint; returns it with its secret, which is shown this once.
#[instrument(level = "debug", skip_all, fields(project = %p.name))]
pub async fn create(
    s: &AppState,
    p: &ProjectRuntime,
    spec: EndpointSpec,
    actor: &str,
) -> Result<(Webhook, String), AppError> {
    let url = check_url(&spec.url, s.webhooks).await?;
    patterns(&spec.events)?;
    let secret = new_secret();
    let new = NewWebhook {
        url: url.to_string(),
        events: spec.events,
        enabled: spec.enabled,
        secret: secret.clone(),
    };
    let hook = s.store.create_webhook(p.id, new, actor, s.now()).await?;
    Ok((hook, secret))
}

pub async fn list(s: &AppState, p: &ProjectRuntime) -> Result<Vec<Webhook>, AppError> {
    Ok(s.store.webhooks(p.id).await?)
}

pub async fn get(s: &AppState, p: &ProjectRuntime, id: i64) -> Result<Webhook, AppError> {
    s.store
        .webhook(p.id, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("webhook {id} not found in project '{}'", p.name)))
}

#[instrument(level = "debug", skip_all, fields(project = %p.name, webhook = id))]
pub async fn update(
    s: &AppState,
    p: &ProjectRuntime,
    id: i64,
    patch: EndpointPatch,
    actor: &str,
) -> Result<Webhook, AppError> {
    let url = match &patch.url {
        Some(u) => Some(check_url(u, s.webhooks).await?.to_string()),
        None => None,
    };
    if let Some(e) = &patch.events {
        patterns(e)?;
    }
    let change = WebhookChange {
        url,
        events: patch.events,
        enabled: patch.enabled,
    };
    Ok(s.store.update_webhook(p.id, id, change, actor, s.now()).await?)
}

pub async fn delete(s: &AppState, p: &ProjectRuntime, id: i64, actor: &str) -> Result<(), AppError> {
    Ok(s.store.delete_webhook(p.id, id, actor, s.now()).await?)
}

/// Gives an endpoint a new secret (returned, shown this once); the current one signs too
/// for [`ROTATION_OVERLAP_MS`].
#[instrument(level = "debug", skip_all, fields(project = %p.name, webhook = id))]
pub async fn rotate(s: &AppState, p: &ProjectRuntime, id: i64, actor: &str) -> Result<(Webhook, String), AppError> {
    let secret = new_secret();
    let now = s.now();
    let hook = s
        .store
        .rotate_webhook(p.id, id, &secret, now + ROTATION_OVERLAP_MS, actor, now)
        .await?;
    Ok((hook, secret))
}

/// Sends the project's events from `from_seq` on to the endpoint (again).
#[instrument(level = "debug", skip_all, fields(project = %p.name, webhook = id))]
pub async fn replay(
    s: &AppState,
    p: &ProjectRuntime,
    id: i64,
    from_seq: i64,
    actor: &str,
) -> Result<Webhook, AppError> {
    if from_seq < 1 {
        return Err(AppError::invalid(
            "from_seq",
            "from_seq is an event position, 1 or more",
        ));
    }
    Ok(s.store.replay_webhook(p.id, id, from_seq, actor, s.now()).await?)
}

pub async fn deliveries(
    s: &AppState,
    p: &ProjectRuntime,
    id: i64,
    limit: usize,
) -> Result<Vec<DeliveryRecord>, AppError> {
    Ok(s.store.webhook_deliveries(p.id, id, limit).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published Standard Webhooks test vector (from the specification's reference
    /// libraries): the same secret, id, timestamp and body give the same signature.
    #[test]
    fn the_standard_webhooks_test_vector_signs_alike() {
        let secrets = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()];
        assert_eq!(
            sign(
                &secrets,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let two = vec![secrets[0].clone(), new_secret()];
        let header = sign(&two, "m", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&two[..1], "m", 1, b"{}"));
    }

    #[test]
    fn secrets_are_whsec_and_32_random_bytes() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(BASE64.decode(a.strip_prefix("whsec_").unwrap()).unwrap().len(), 32);
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_refused_unless_allowed() {
        let strict = Settings::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!allowed_ip(ip, strict), "{ip}");
            assert!(allowed_ip(ip, Settings { allow_private: true }), "{ip}");
        }
        for ip in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"] {
            assert!(allowed_ip(ip.parse().unwrap(), strict), "{ip}");
        }
    }
}
