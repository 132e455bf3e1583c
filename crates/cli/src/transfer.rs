//! `flywheel export` and `flywheel import`: a project's items out of a server (streamed to
//! stdout as they arrive) and a file of rows into one. The formats are the server's
//! (`GET …/export`, `POST …/import`); this only moves bytes and reports errors.

use std::io::Write;

use anyhow::{Context, bail};
use serde_json::Value;

/// Where and as whom.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// The server's base URL, e.g. http://127.0.0.1:7700.
    #[arg(long, env = "FLYWHEEL_SERVER")]
    pub(crate) server: String,
    /// An API key: the admin key or a service key granted the project.
    #[arg(long, env = "FLYWHEEL_API_KEY", hide_env_values = true)]
    pub(crate) key: String,
    /// The project.
    #[arg(long)]
    project: String,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    to: ServerArgs,
    /// jsonl, csv or label-studio.
    #[arg(long)]
    format: String,
    /// Items created at or after this time (RFC 3339 or epoch milliseconds).
    #[arg(long)]
    since: Option<String>,
    /// Items created before this time.
    #[arg(long)]
    until: Option<String>,
    /// Items resolved by auto, human or adjudicated; none: items not resolved yet.
    #[arg(long)]
    source: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    to: ServerArgs,
    /// label-studio (a Label Studio JSON export) or jsonl (a `flywheel export` file).
    #[arg(long)]
    format: String,
    /// What annotations become: history (the items' human labels) or gold.
    #[arg(long = "as", default_value = "history")]
    labels_as: String,
    /// The file (`-` for stdin).
    file: String,
}

/// `…/v1/projects/P/what?query`, the query's values encoded.
pub(crate) fn url(to: &ServerArgs, what: &str, query: &[(&str, &str)]) -> anyhow::Result<reqwest::Url> {
    let base = format!("{}/v1/projects/{}/{what}", to.server.trim_end_matches('/'), to.project);
    let mut url = reqwest::Url::parse(&base).with_context(|| format!("--server {} is not a URL", to.server))?;
    url.query_pairs_mut().extend_pairs(query);
    Ok(url)
}

/// The server's error body as one line: `field: message`.
pub(crate) async fn refusal(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            let message = e.get("message")?.as_str()?.to_string();
            Some(match e.get("field").and_then(Value::as_str) {
                Some(f) if !message.starts_with(f) => format!("{f}: {message}"),
                _ => message,
            })
        })
        .unwrap_or(text);
    anyhow::anyhow!("the server refused ({status}): {detail}")
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let mut query = vec![("format", args.format.as_str())];
    for (k, v) in [("since", &args.since), ("until", &args.until), ("source", &args.source)] {
        if let Some(v) = v {
            query.push((k, v.as_str()));
        }
    }
    let mut resp = reqwest::Client::new()
        .get(url(&args.to, "export", &query)?)
        .bearer_auth(&args.to.key)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", args.to.server))?;
    if !resp.status().is_success() {
        return Err(refusal(resp).await);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    while let Some(chunk) = resp
        .chunk()
        .await
        .context("the export stopped before its end (the server logged why)")?
    {
        out.write_all(&chunk).context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(())
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let body = if args.file == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("cannot read stdin")?;
        b
    } else {
        std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file))?
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        bail!("{} is empty", args.file);
    }
    let resp = reqwest::Client::new()
        .post(url(
            &args.to,
            "import",
            &[("format", &args.format), ("as", &args.labels_as)],
        )?)
        .bearer_auth(&args.to.key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", args.to.server))?;
    if !resp.status().is_success() {
        return Err(refusal(resp).await);
    }
    let report: Value = resp.json().await.context("the server's reply is not JSON")?;
    println!("{report}");
    Ok(())
}
