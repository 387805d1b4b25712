//! What `s3warden audit` does with files: read every record of one or more
//! logs (rotated and compressed files included; several instances' logs
//! merged by time; corrupt lines named and skipped) through a filter into a
//! table, CSV, JSON lines or a summary; verify each log against its chain
//! and checkpoints; follow the live file.

use std::io::{BufRead, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::checkpoint::PublicKey;
use super::files::{LogSet, log_sets, open_lines};
use super::query::{
    CSV_COLUMNS, Filter, Summary, TABLE_COLUMNS, csv_header, csv_row, str_of, table_header,
    table_row,
};
use super::report::{Verification, render};
use super::verify::{Report, verify_log};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("cannot read {path:?}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no audit log found at {0:?}")]
    NoFiles(Vec<PathBuf>),
    #[error("writing output: {0}")]
    Write(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> ReviewError + '_ {
    move |source| ReviewError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// The logs at `paths`; an error if there is no file in any of them.
fn logs(paths: &[PathBuf]) -> Result<Vec<LogSet>, ReviewError> {
    let sets = log_sets(paths).map_err(|source| ReviewError::Read {
        path: paths.first().cloned().unwrap_or_default(),
        source,
    })?;
    if sets.iter().all(|s| s.files.is_empty()) {
        return Err(ReviewError::NoFiles(paths.to_vec()));
    }
    Ok(sets)
}

/// The records of one log in log order. A line that is not JSON is reported
/// (file:line) and skipped: one damaged line must not hide the rest from a
/// reviewer, while `audit verify` fails on it.
struct LogReader {
    files: std::collections::VecDeque<PathBuf>,
    current: Option<(PathBuf, Lines, usize)>,
}

type Lines = Box<dyn Iterator<Item = std::io::Result<String>>>;

impl LogReader {
    fn next(&mut self, warn: &mut dyn Write) -> Result<Option<Value>, ReviewError> {
        loop {
            let Some((path, lines, n)) = self.current.as_mut() else {
                let Some(path) = self.files.pop_front() else {
                    return Ok(None);
                };
                let lines = open_lines(&path).map_err(read_err(&path))?;
                self.current = Some((path, lines, 0));
                continue;
            };
            let Some(line) = lines.next() else {
                self.current = None;
                continue;
            };
            *n += 1;
            let line = line.map_err(read_err(path))?;
            if line.is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v.is_object() => return Ok(Some(v)),
                _ => writeln!(
                    warn,
                    "s3warden: {}:{n}: not an audit record (corrupt); skipped",
                    path.display()
                )?,
            }
        }
    }
}

/// Calls `f` with every record of the logs at `paths`: each log in its own
/// order, several logs (of several instances) merged by time.
pub fn for_each_record(
    paths: &[PathBuf],
    warn: &mut dyn Write,
    mut f: impl FnMut(Value) -> Result<(), ReviewError>,
) -> Result<(), ReviewError> {
    let sets = logs(paths)?;
    let mut readers: Vec<LogReader> = sets
        .into_iter()
        .map(|s| LogReader {
            files: s.files.into(),
            current: None,
        })
        .collect();
    let mut heads = Vec::with_capacity(readers.len());
    for r in &mut readers {
        heads.push(r.next(warn)?);
    }
    loop {
        // Few logs are read at once: a scan for the earliest head is enough.
        let earliest = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|v| (str_of(v, &["time"]).unwrap_or(""), i)))
            .min()
            .map(|(_, i)| i);
        let Some(i) = earliest else {
            return Ok(());
        };
        let next = readers[i].next(warn)?;
        if let Some(v) = std::mem::replace(&mut heads[i], next) {
            f(v)?;
        }
    }
}

/// With `--include-sessions` and a principal given by name or key id: the
/// ARNs it is known by in the log, which its sessions name as their parent.
fn resolve_principal(paths: &[PathBuf], filter: &mut Filter) -> Result<(), ReviewError> {
    let Some(p) = filter.principal.clone() else {
        return Ok(());
    };
    if !filter.include_sessions || p.starts_with("arn:") {
        return Ok(());
    }
    let mut arns = Vec::new();
    for_each_record(paths, &mut std::io::sink(), |r| {
        let named = str_of(&r, &["principal", "user_name"]) == Some(p.as_str())
            || str_of(&r, &["principal", "access_key_id"]) == Some(p.as_str());
        if named
            && r["principal"].get("session").is_none()
            && let Some(arn) = str_of(&r, &["principal", "arn"])
            && !arns.iter().any(|a| a == arn)
        {
            arns.push(arn.to_string());
        }
        Ok(())
    })?;
    filter.principal_arns = arns;
    Ok(())
}

/// How records are printed: the format and, for a table or CSV, the columns.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: Format,
    pub columns: Vec<String>,
}

impl Output {
    pub fn new(format: Format, columns: Option<Vec<String>>) -> Output {
        let default = match format {
            Format::Csv => CSV_COLUMNS,
            _ => TABLE_COLUMNS,
        };
        Output {
            format,
            columns: columns.unwrap_or_else(|| default.iter().map(|c| c.to_string()).collect()),
        }
    }

    fn header(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self.format {
            Format::Table => writeln!(out, "{}", table_header(&self.columns)),
            Format::Csv => writeln!(out, "{}", csv_header(&self.columns)),
            Format::Json => Ok(()),
        }
    }

    fn record(&self, r: &Value, out: &mut dyn Write) -> std::io::Result<()> {
        match self.format {
            Format::Table => writeln!(out, "{}", table_row(r, &self.columns)),
            Format::Csv => writeln!(out, "{}", csv_row(r, &self.columns)),
            Format::Json => writeln!(out, "{r}"),
        }
    }
}

/// Writes the records matching `filter`; corrupt lines are reported to `warn`.
pub fn list(
    paths: &[PathBuf],
    filter: &Filter,
    output: &Output,
    out: &mut dyn Write,
    warn: &mut dyn Write,
) -> Result<usize, ReviewError> {
    let mut filter = filter.clone();
    resolve_principal(paths, &mut filter)?;
    output.header(out)?;
    let mut n = 0;
    for_each_record(paths, warn, |r| {
        if filter.matches(&r) {
            n += 1;
            output.record(&r, out)?;
        }
        Ok(())
    })?;
    Ok(n)
}

/// Summarises the records matching `filter`.
pub fn summarize(
    paths: &[PathBuf],
    filter: &Filter,
    top: usize,
    warn: &mut dyn Write,
) -> Result<Summary, ReviewError> {
    let mut filter = filter.clone();
    resolve_principal(paths, &mut filter)?;
    let mut matched = Vec::new();
    for_each_record(paths, warn, |r| {
        if filter.matches(&r) {
            matched.push(r);
        }
        Ok(())
    })?;
    Ok(Summary::build(matched.iter(), top))
}

fn read_all(path: &Path) -> Result<Vec<String>, ReviewError> {
    open_lines(path)
        .map_err(read_err(path))?
        .collect::<Result<_, _>>()
        .map_err(read_err(path))
}

/// Verifies each log at `paths` on its own: its chain, and its checkpoints
/// (signed by `trusted` when given). Returns each log's live path and report.
pub fn verify_paths(
    paths: &[PathBuf],
    trusted: Option<&PublicKey>,
) -> Result<Vec<(PathBuf, Report)>, ReviewError> {
    let sets = logs(paths)?;
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        let mut inputs = Vec::with_capacity(set.files.len());
        for path in &set.files {
            inputs.push((path.display().to_string(), read_all(path)?));
        }
        let cp = set.checkpoints();
        let checkpoints = if cp.exists() {
            Some((cp.display().to_string(), read_all(&cp)?))
        } else {
            None
        };
        out.push((set.live, verify_log(inputs, checkpoints, trusted)));
    }
    Ok(out)
}

/// The HTML report of the records matching `filter`, with each log's
/// verification (against `trusted` when given).
pub fn report(
    paths: &[PathBuf],
    filter: &Filter,
    trusted: Option<&PublicKey>,
    warn: &mut dyn Write,
) -> Result<String, ReviewError> {
    let mut filter = filter.clone();
    resolve_principal(paths, &mut filter)?;
    let mut records = Vec::new();
    for_each_record(paths, warn, |r| {
        if filter.matches(&r) {
            records.push(r);
        }
        Ok(())
    })?;
    let verification = verify_paths(paths, trusted)?
        .into_iter()
        .map(|(live, r)| {
            // The first findings say where to look; `audit verify` lists all.
            let mut summary: String = r
                .findings
                .iter()
                .take(10)
                .map(|f| format!("{f}\n"))
                .collect();
            if r.findings.len() > 10 {
                summary.push_str(&format!(
                    "… and {} more (see `s3warden audit verify`)\n",
                    r.findings.len() - 10
                ));
            }
            summary.push_str(&verify_summary(&live, &r, trusted.is_some()));
            Verification {
                log: live.display().to_string(),
                intact: r.is_clean(),
                summary,
            }
        })
        .collect::<Vec<_>>();
    Ok(render(&records, &verification, chrono::Utc::now()))
}

/// What `audit verify` says about one log, after its findings.
pub fn verify_summary(live: &Path, r: &Report, trusted: bool) -> String {
    let mut out = format!("{}", live.display());
    if let Some(instance) = &r.instance {
        out.push_str(&format!(" (instance {instance})"));
    }
    out.push('\n');
    match (r.first_seq, r.last_seq, &r.head_hash) {
        (Some(first), Some(last), Some(head)) => {
            out.push_str(&format!("  records {first} to {last}, head hash {head}\n"))
        }
        _ => out.push_str("  no records\n"),
    }
    let signer = match (r.signers.as_slice(), trusted) {
        ([], _) => String::new(),
        (keys, true) => format!(", signed by the trusted key {}", keys.join(", ")),
        (keys, false) => format!(
            ", signed by {} (the key the checkpoints name; give --public-key to prove who signed)",
            keys.join(", ")
        ),
    };
    out.push_str(&format!("  {} checkpoints{signer}\n", r.checkpoints));
    match r.covered_through {
        Some(c) => out.push_str(&format!(
            "  covered through record {c}; {} records after the last checkpoint not yet covered\n",
            r.uncovered
        )),
        None => out.push_str(&format!(
            "  {} records not covered by any checkpoint\n",
            r.uncovered
        )),
    }
    out.push_str(&format!(
        "{} records in {} files: {}\n",
        r.records,
        r.files,
        if r.is_clean() {
            "chain intact"
        } else {
            "TAMPERED"
        }
    ));
    out
}

/// Prints matching records as they are appended to the live file, reopening
/// it when it is rotated. Runs until the output can no longer be written.
pub fn follow(
    live: &Path,
    filter: &Filter,
    output: &Output,
    out: &mut dyn Write,
) -> Result<(), ReviewError> {
    output.header(out)?;
    let mut pos = std::fs::metadata(live).map(|m| m.len()).unwrap_or(0);
    let mut partial = String::new();
    loop {
        let len = std::fs::metadata(live).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Rotated: the live file started over.
            pos = 0;
            partial.clear();
        }
        if len > pos {
            let mut f = std::fs::File::open(live).map_err(read_err(live))?;
            f.seek(SeekFrom::Start(pos)).map_err(read_err(live))?;
            let mut reader = std::io::BufReader::new(f);
            loop {
                let mut line = String::new();
                let n = reader.read_line(&mut line).map_err(read_err(live))?;
                if n == 0 {
                    break;
                }
                pos += n as u64;
                if !line.ends_with('\n') {
                    partial.push_str(&line);
                    continue;
                }
                let full = std::mem::take(&mut partial) + line.trim_end();
                if let Ok(r) = serde_json::from_str::<Value>(&full)
                    && filter.matches(&r)
                {
                    output.record(&r, out)?;
                    out.flush()?;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
