//! `flywheel copy`: a SQLite database into an empty PostgreSQL one (the store's `copy`),
//! with a progress bar on stderr and the per-table verification on stdout.

use std::process::ExitCode;

use flywheel_store::copy::{CopyError, CopyReport, Progress};

#[derive(clap::Args, Debug)]
pub struct CopyArgs {
    /// The database to copy: sqlite://PATH. Opened read-only and read in one transaction
    /// (a snapshot), so a server may keep running on it.
    #[arg(long, value_name = "URL")]
    from: String,
    /// The database to fill: postgres://… (its `options=-c search_path=…` picks a schema).
    /// It is migrated first and refused if any table has a row.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the copy; exit code 0 when every table was copied and verified, 1 when the copy
/// failed or was refused (nothing written), 2 for a source or target that cannot be one.
pub async fn run(args: CopyArgs) -> ExitCode {
    let bar = indicatif::ProgressBar::new(0);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} rows, {per_sec}, {eta} left")
            .unwrap_or(indicatif::ProgressStyle::default_bar()),
    );
    let progress = |p: Progress<'_>| match p {
        Progress::Copying { table, rows } => {
            bar.reset();
            bar.set_length(rows);
            bar.set_message(format!("copying {table}"));
        }
        Progress::Verifying { table, rows } => {
            bar.reset();
            bar.set_length(rows);
            bar.set_message(format!("checking {table}"));
        }
        Progress::Copied(n) | Progress::Verified(n) => bar.inc(n),
    };
    let result = flywheel_store::copy::copy(&args.from, &args.to, &progress).await;
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            print_report(&report, args.json);
            ExitCode::SUCCESS
        }
        Err(CopyError::Mismatch(report)) => {
            print_report(&report, args.json);
            eprintln!("flywheel: {}", CopyError::Mismatch(report.clone()));
            ExitCode::FAILURE
        }
        Err(e @ CopyError::Usage(_)) => {
            eprintln!("flywheel: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("flywheel: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_report(r: &CopyReport, json: bool) {
    if json {
        let v = serde_json::json!({
            "verified": r.verified(),
            "rows": r.rows(),
            "tables": r.tables,
            "skipped": r.skipped,
        });
        println!("{v:#}");
        return;
    }
    println!(
        "{:<18} {:>12} {:>12}  {:<16}  {:<16}",
        "table", "source rows", "target rows", "source checksum", "target checksum"
    );
    for t in &r.tables {
        println!(
            "{:<18} {:>12} {:>12}  {:<16}  {:<16}  {}",
            t.table,
            t.source_rows,
            t.target_rows,
            &t.source_checksum[..16.min(t.source_checksum.len())],
            &t.target_checksum[..16.min(t.target_checksum.len())],
            if t.matches() { "ok" } else { "MISMATCH" }
        );
    }
    for s in &r.skipped {
        println!("{:<18} not copied: {}", s.table, s.reason);
    }
    if r.verified() {
        println!(
            "copied {} rows in {} tables; every table's count and checksum match its source",
            r.rows(),
            r.tables.len()
        );
    }
}
