//! What `s3warden audit` does with files: read every record of a log
//! (rotated and compressed files included) through a filter into a table,
//! JSON lines or a summary; verify the chain; follow the live file.

use std::io::{BufRead, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::checkpoint::PublicKey;
use super::files::{expand, log_sets, open_lines};
use super::query::{Filter, Summary, TABLE_HEADER, table_row};
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
    #[error("{path:?} line {line}: not JSON: {message}")]
    NotJson {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("writing output: {0}")]
    Write(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

fn read_err(path: &Path) -> impl Fn(std::io::Error) -> ReviewError + '_ {
    move |source| ReviewError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Every file of the logs at `paths`, in log order; an error if there is none.
fn log_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReviewError> {
    let files = expand(paths).map_err(|source| ReviewError::Read {
        path: paths.first().cloned().unwrap_or_default(),
        source,
    })?;
    if files.is_empty() {
        return Err(ReviewError::NoFiles(paths.to_vec()));
    }
    Ok(files)
}

/// Calls `f` with every record of the logs at `paths`, in log order.
pub fn for_each_record(
    paths: &[PathBuf],
    mut f: impl FnMut(Value) -> Result<(), ReviewError>,
) -> Result<(), ReviewError> {
    for path in &log_files(paths)? {
        for (i, line) in open_lines(path).map_err(read_err(path))?.enumerate() {
            let line = line.map_err(read_err(path))?;
            if line.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).map_err(|e| ReviewError::NotJson {
                path: path.clone(),
                line: i + 1,
                message: e.to_string(),
            })?;
            f(v)?;
        }
    }
    Ok(())
}

/// Writes the records matching `filter`, as a table or JSON lines.
pub fn list(
    paths: &[PathBuf],
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> Result<usize, ReviewError> {
    if format == Format::Table {
        writeln!(out, "{TABLE_HEADER}")?;
    }
    let mut n = 0;
    for_each_record(paths, |r| {
        if filter.matches(&r) {
            n += 1;
            write_record(&r, format, out)?;
        }
        Ok(())
    })?;
    Ok(n)
}

fn write_record(r: &Value, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Table => writeln!(out, "{}", table_row(r)),
        Format::Json => writeln!(out, "{r}"),
    }
}

/// Summarises the records matching `filter`.
pub fn summarize(paths: &[PathBuf], filter: &Filter, top: usize) -> Result<Summary, ReviewError> {
    let mut matched = Vec::new();
    for_each_record(paths, |r| {
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
    let sets = log_sets(paths).map_err(|source| ReviewError::Read {
        path: paths.first().cloned().unwrap_or_default(),
        source,
    })?;
    if sets.iter().all(|s| s.files.is_empty()) {
        return Err(ReviewError::NoFiles(paths.to_vec()));
    }
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
    format: Format,
    out: &mut dyn Write,
) -> Result<(), ReviewError> {
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
                    write_record(&r, format, out)?;
                    out.flush()?;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
