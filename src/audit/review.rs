//! What `s3warden audit` does with files: read every record of a log
//! (rotated and compressed files included) through a filter into a table,
//! JSON lines or a summary; verify the chain; follow the live file.

use std::io::{BufRead, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::files::{expand, open_lines};
use super::query::{Filter, Summary, TABLE_HEADER, table_row};
use super::verify::{Report, verify};

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

/// Verifies the hash chain over every file of the logs at `paths`.
pub fn verify_paths(paths: &[PathBuf]) -> Result<Report, ReviewError> {
    let files = log_files(paths)?;
    let mut inputs = Vec::with_capacity(files.len());
    for path in &files {
        let lines: Vec<String> = open_lines(path)
            .map_err(read_err(path))?
            .collect::<Result<_, _>>()
            .map_err(read_err(path))?;
        inputs.push((path.display().to_string(), lines));
    }
    Ok(verify(inputs))
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
