//! `audit verify`: walks the chain across files and names every break — an
//! altered record, deleted records, an inserted record, records out of order,
//! a rotated file whose digest does not match — with the file and line.

use std::collections::HashSet;
use std::fmt;

use sha2::{Digest, Sha256};

use super::chain::{ChainHead, GENESIS, link};

/// One break in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub kind: FindingKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// The line's hash does not match its text.
    Altered { seq: u64 },
    /// Records with these sequence numbers are missing before this line.
    Deleted { from: u64, to: u64 },
    /// A record that does not link to its predecessor although its number fits.
    Inserted { seq: u64 },
    /// A record whose number belongs earlier in the log.
    Reordered { seq: u64, after: u64 },
    /// A rotated file's digest record does not match the file's contents.
    DigestMismatch,
    /// A line that is not a chained record (or was cut off mid-write).
    Unreadable,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        match &self.kind {
            FindingKind::Altered { seq } => write!(
                f,
                "record {seq} was altered (its hash does not match its content)"
            ),
            FindingKind::Deleted { from, to } if from == to => {
                write!(f, "record {from} is missing (deleted) before this line")
            }
            FindingKind::Deleted { from, to } => write!(
                f,
                "records {from} to {to} are missing (deleted) before this line"
            ),
            FindingKind::Inserted { seq } => {
                write!(
                    f,
                    "record {seq} does not link to the record before it (inserted or replaced)"
                )
            }
            FindingKind::Reordered { seq, after } => {
                write!(f, "record {seq} comes after record {after} (reordered)")
            }
            FindingKind::DigestMismatch => {
                write!(f, "the file digest does not match the records before it")
            }
            FindingKind::Unreadable => write!(f, "not a chained audit record (corrupt or cut off)"),
        }
    }
}

/// The outcome of verifying a sequence of files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub files: usize,
    pub records: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// What verification keeps of a line: where it was and its chain fields.
struct Parsed {
    file: usize,
    line: usize,
    link: Option<super::chain::Link>,
}

/// Verifies the chain over `files` (name and lines), in log order. Lines are
/// streamed; only their chain fields are kept. The first record may link to
/// genesis or, when older files were pruned, to anything.
pub fn verify<I>(files: Vec<(String, I)>) -> Report
where
    I: IntoIterator<Item = String>,
{
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let mut report = Report {
        files: files.len(),
        ..Report::default()
    };
    let mut lines = Vec::new();
    for (fi, (_, content)) in files.into_iter().enumerate() {
        let mut file_hash = Sha256::new();
        for (li, text) in content.into_iter().enumerate() {
            if is_digest(&text) && !digest_matches(&text, &file_hash) {
                report.findings.push(Finding {
                    file: names[fi].clone(),
                    line: li + 1,
                    kind: FindingKind::DigestMismatch,
                });
            }
            file_hash.update(text.as_bytes());
            file_hash.update(b"\n");
            lines.push(Parsed {
                file: fi,
                line: li + 1,
                link: link(&text),
            });
        }
    }
    let seqs: Vec<Option<u64>> = lines
        .iter()
        .map(|l| l.link.as_ref().map(|k| k.seq))
        .collect();
    let mut expect: Option<ChainHead> = None;
    // The head before `expect`, with where its successor stood: a record that
    // links here skipped the line in between, which was inserted.
    let mut before: Option<(ChainHead, usize)> = None;
    let mut seen: HashSet<u64> = HashSet::new();
    let mut max_seen = 0u64;
    for (i, l) in lines.iter().enumerate() {
        let at = |kind| Finding {
            file: names[l.file].clone(),
            line: l.line,
            kind,
        };
        let Some(k) = l.link.clone() else {
            report.findings.push(at(FindingKind::Unreadable));
            continue;
        };
        report.records += 1;
        let later = |s: u64| seqs[i + 1..].contains(&Some(s));
        match &expect {
            _ if !k.intact => report
                .findings
                .push(at(FindingKind::Altered { seq: k.seq })),
            None => {
                if k.seq == 1 && k.prev != GENESIS {
                    report
                        .findings
                        .push(at(FindingKind::Inserted { seq: k.seq }));
                }
            }
            Some(exp) => {
                let want = exp.seq + 1;
                if k.seq == want {
                    if k.prev != exp.hash {
                        report
                            .findings
                            .push(at(FindingKind::Inserted { seq: k.seq }));
                    }
                } else if let Some((b, prev_index)) = before.as_ref().filter(|(b, i)| {
                    // Linking past the previous line to one with our own
                    // number means that line was slipped in.
                    b.hash == k.prev && seqs[*i] == Some(k.seq)
                }) {
                    let p = &lines[*prev_index];
                    report.findings.push(Finding {
                        file: names[p.file].clone(),
                        line: p.line,
                        kind: FindingKind::Inserted { seq: b.seq + 1 },
                    });
                } else if seen.contains(&k.seq) {
                    report
                        .findings
                        .push(at(FindingKind::Inserted { seq: k.seq }));
                } else if k.seq < want {
                    report.findings.push(at(FindingKind::Reordered {
                        seq: k.seq,
                        after: max_seen,
                    }));
                } else if (want..k.seq).any(later) {
                    report.findings.push(at(FindingKind::Reordered {
                        seq: k.seq,
                        after: exp.seq,
                    }));
                } else {
                    report.findings.push(at(FindingKind::Deleted {
                        from: want,
                        to: k.seq - 1,
                    }));
                }
            }
        }
        seen.insert(k.seq);
        max_seen = max_seen.max(k.seq);
        before = expect.take().map(|e| (e, i));
        expect = Some(ChainHead {
            seq: k.seq,
            hash: k.hash,
        });
    }
    report
}

/// A digest record closes a rotated file.
pub fn is_digest(line: &str) -> bool {
    line.starts_with("{\"type\":\"digest\"")
}

fn digest_matches(line: &str, file_hash: &Sha256) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    let expected = hex::encode(file_hash.clone().finalize());
    v["file_sha256"].as_str() == Some(expected.as_str())
}

#[cfg(test)]
mod tests {
    use super::super::chain::seal;
    use super::*;

    fn log(n: usize) -> Vec<String> {
        let mut head = ChainHead::genesis();
        (0..n)
            .map(|i| seal(&format!("{{\"i\":{i}}}"), &mut head))
            .collect()
    }

    fn kinds(lines: Vec<String>) -> Vec<(usize, FindingKind)> {
        verify(vec![("audit.jsonl".into(), lines)])
            .findings
            .into_iter()
            .map(|f| (f.line, f.kind))
            .collect()
    }

    #[test]
    fn intact_log_is_clean() {
        let r = verify(vec![("a".into(), log(5))]);
        assert!(r.is_clean(), "{:?}", r.findings);
        assert_eq!(r.records, 5);
    }

    #[test]
    fn altered_record_is_named() {
        let mut l = log(5);
        l[2] = l[2].replace("\"i\":2", "\"i\":9");
        assert_eq!(kinds(l), [(3, FindingKind::Altered { seq: 3 })]);
    }

    #[test]
    fn deleted_records_are_named() {
        let mut l = log(6);
        l.drain(2..4);
        assert_eq!(kinds(l), [(3, FindingKind::Deleted { from: 3, to: 4 })]);
    }

    #[test]
    fn inserted_record_is_named() {
        let mut l = log(4);
        // A forger can compute a valid hash for a new line, but the real next
        // record still links to the real predecessor.
        let mut head = ChainHead {
            seq: 2,
            hash: link(&l[1]).unwrap().hash,
        };
        let forged = seal("{\"i\":99}", &mut head);
        l.insert(2, forged);
        assert_eq!(kinds(l), [(3, FindingKind::Inserted { seq: 3 })]);
    }

    #[test]
    fn reordered_records_are_named() {
        let mut l = log(5);
        l.swap(1, 2);
        let k = kinds(l);
        assert!(
            k.contains(&(2, FindingKind::Reordered { seq: 3, after: 1 })),
            "{k:?}"
        );
        assert!(
            k.contains(&(3, FindingKind::Reordered { seq: 2, after: 3 })),
            "{k:?}"
        );
    }

    #[test]
    fn cut_off_line_is_unreadable() {
        let mut l = log(3);
        l[2].truncate(20);
        assert_eq!(kinds(l), [(3, FindingKind::Unreadable)]);
    }
}
