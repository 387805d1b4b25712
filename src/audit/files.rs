//! Where audit records live: the live file at the configured path and its
//! rotated siblings `STEM-YYYYMMDDTHHMMSS.mmmZ.jsonl[.gz]`, which sort in log
//! order by name; reading any of them line by line, compressed or not.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

pub(super) fn stem_of(live: &Path) -> String {
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

/// The lines of an audit file; `.gz` files are decompressed on the fly. A
/// rotated `.jsonl` compressed away since it was listed is read as its
/// `.gz` (the compressor renames the whole `.gz` in place before removing
/// the original).
pub fn open_lines(
    path: &Path,
) -> std::io::Result<Box<dyn Iterator<Item = std::io::Result<String>>>> {
    let (file, path) = match File::open(path) {
        Ok(f) => (f, path.to_path_buf()),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path.extension().is_some_and(|x| x == "jsonl") =>
        {
            let gz = PathBuf::from(format!("{}.gz", path.display()));
            (File::open(&gz).map_err(|_| e)?, gz)
        }
        Err(e) => return Err(e),
    };
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    Ok(Box::new(reader.lines()))
}

/// One log: the files of one writer's chain, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSet {
    /// The live file's path (which may no longer exist).
    pub live: PathBuf,
    pub files: Vec<PathBuf>,
}

impl LogSet {
    /// The checkpoints file beside the log.
    pub fn checkpoints(&self) -> PathBuf {
        super::checkpoint::checkpoints_path(&self.live)
    }
}

/// The live path of the log a rotated file belongs to.
fn live_of_rotated(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    let stem = base
        .strip_suffix(".jsonl")
        .and_then(|b| b.rsplit_once('-'))
        .map_or(base, |(stem, _)| stem);
    p.with_file_name(format!("{stem}.jsonl"))
}

/// A file of audit records (not a checkpoints file).
fn is_log_file(p: &Path) -> bool {
    let n = p.to_string_lossy();
    (n.ends_with(".jsonl") || n.ends_with(".jsonl.gz")) && !n.ends_with(".checkpoints.jsonl")
}

/// The logs at `paths`, each a chain of its own: a live log path brings its
/// rotated siblings; a directory every log in it (one per writer); a
/// rotated file only itself, joined to others of its log given alongside.
pub fn log_sets(paths: &[PathBuf]) -> std::io::Result<Vec<LogSet>> {
    let mut sets: Vec<LogSet> = Vec::new();
    let mut add =
        |live: PathBuf, files: Vec<PathBuf>| match sets.iter_mut().find(|s| s.live == live) {
            Some(s) => {
                for f in files {
                    if !s.files.contains(&f) {
                        s.files.push(f);
                    }
                }
            }
            None => sets.push(LogSet { live, files }),
        };
    for p in paths {
        if p.is_dir() {
            let mut lives: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| is_log_file(f))
                .map(|f| {
                    if is_rotated(&f) {
                        live_of_rotated(&f)
                    } else {
                        f
                    }
                })
                .collect();
            lives.sort();
            lives.dedup();
            for live in lives {
                let files = list_log_files(&live)?;
                add(live, files);
            }
        } else if is_rotated(p) {
            add(live_of_rotated(p), vec![p.clone()]);
        } else {
            add(p.clone(), list_log_files(p)?);
        }
    }
    for s in &mut sets {
        // Rotated files sort in log order by name; the live file comes last.
        let live = s.live.clone();
        s.files.sort_by_key(|f| (*f == live, f.clone()));
    }
    Ok(sets)
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
    use std::io::Write;

    #[test]
    fn a_file_compressed_away_after_listing_is_read_as_its_gz() {
        let dir = tempfile::TempDir::new().unwrap();
        let listed = dir.path().join("audit-20260102T030405.006Z.jsonl");
        let gz = File::create(dir.path().join("audit-20260102T030405.006Z.jsonl.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
        enc.write_all(b"{\"seq\":1}\n{\"seq\":2}\n").unwrap();
        enc.finish().unwrap();
        let lines: Vec<String> = open_lines(&listed).unwrap().map(Result::unwrap).collect();
        assert_eq!(lines, [r#"{"seq":1}"#, r#"{"seq":2}"#]);
        // Neither form there: the original error.
        let gone = dir.path().join("audit-20260102T030406.006Z.jsonl");
        assert_eq!(
            open_lines(&gone).err().map(|e| e.kind()),
            Some(std::io::ErrorKind::NotFound)
        );
    }

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
        assert_eq!(live_of_rotated(&a), live);
    }

    #[test]
    fn a_directory_holds_one_log_per_writer() {
        let dir = tempfile::TempDir::new().unwrap();
        for name in [
            "a.jsonl",
            "a-20260102T030405.006Z.jsonl.gz",
            "a.checkpoints.jsonl",
            "b-20260102T030405.006Z.jsonl",
            "b.jsonl",
            "a.jsonl.lock",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let sets = log_sets(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<Vec<String>> = sets
            .iter()
            .map(|s| {
                s.files
                    .iter()
                    .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                    .collect()
            })
            .collect();
        assert_eq!(
            names,
            [
                ["a-20260102T030405.006Z.jsonl.gz", "a.jsonl"],
                ["b-20260102T030405.006Z.jsonl", "b.jsonl"]
            ]
        );
        assert_eq!(
            sets[0].checkpoints(),
            dir.path().join("a.checkpoints.jsonl")
        );
        // A rotated file given alone is a log of its own, itself only.
        let one = log_sets(&[dir.path().join("b-20260102T030405.006Z.jsonl")]).unwrap();
        assert_eq!(one[0].live, dir.path().join("b.jsonl"));
        assert_eq!(one[0].files.len(), 1);
    }
}
