//! Where audit records live: the live file at the configured path and its
//! rotated siblings `STEM-YYYYMMDDTHHMMSS.mmmZ.jsonl[.gz]`, which sort in log
//! order by name; reading any of them line by line, compressed or not.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

fn stem_of(live: &Path) -> String {
    let name = live
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(".jsonl")
        .map(str::to_string)
        .unwrap_or(name)
}

/// The name a live file gets when it is rotated at `at`.
pub fn rotated_name(live: &Path, at: DateTime<Utc>) -> PathBuf {
    let stamp = at.format("%Y%m%dT%H%M%S%.3fZ");
    live.with_file_name(format!("{}-{stamp}.jsonl", stem_of(live)))
}

/// The rotated files of a log in order, then the live file (if it exists).
pub fn list_log_files(live: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = match live.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let prefix = format!("{}-", stem_of(live));
    let mut rotated: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.starts_with(&prefix) && (name.ends_with(".jsonl") || name.ends_with(".jsonl.gz"))
        })
        .collect();
    rotated.sort();
    // A crash between compressing and removing can leave both forms.
    rotated.dedup_by(|b, a| b.to_string_lossy().strip_suffix(".gz") == Some(&a.to_string_lossy()));
    if live.exists() {
        rotated.push(live.to_path_buf());
    }
    Ok(rotated)
}

/// The lines of an audit file; `.gz` files are decompressed on the fly.
pub fn open_lines(
    path: &Path,
) -> std::io::Result<Box<dyn Iterator<Item = std::io::Result<String>>>> {
    let file = File::open(path)?;
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    Ok(Box::new(reader.lines()))
}

/// The files to read for `paths`: a live log path expands to its rotated
/// siblings and itself; a directory to every log in it; other files as given.
pub fn expand(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| {
                    let n = f.to_string_lossy();
                    n.ends_with(".jsonl") || n.ends_with(".jsonl.gz")
                })
                .collect();
            files.sort_by_key(|f| {
                (
                    f.to_string_lossy().ends_with(".jsonl") && !is_rotated(f),
                    f.clone(),
                )
            });
            out.extend(files);
        } else if !is_rotated(p) {
            out.extend(list_log_files(p)?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// True for a rotated file's name (`STEM-<stamp>.jsonl[.gz]`).
fn is_rotated(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    base.strip_suffix(".jsonl")
        .and_then(|b| b.rsplit_once('-'))
        .is_some_and(|(_, stamp)| {
            stamp.len() == 20 && stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_sort_in_time_order_and_are_recognised() {
        let live = Path::new("/var/log/audit.jsonl");
        let a = rotated_name(live, "2026-01-02T03:04:05.006Z".parse().unwrap());
        let b = rotated_name(live, "2026-01-02T03:04:05.100Z".parse().unwrap());
        assert_eq!(a, Path::new("/var/log/audit-20260102T030405.006Z.jsonl"));
        assert!(a < b);
        assert!(is_rotated(&a));
        assert!(is_rotated(Path::new(
            "/x/audit-20260102T030405.006Z.jsonl.gz"
        )));
        assert!(!is_rotated(live));
    }
}
