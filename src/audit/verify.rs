//! `audit verify`: walks the chain across files and names every break — an
//! altered record, deleted records, an inserted record, records out of order,
//! a rotated file whose digest does not match — with the file and line; then
//! holds the log against its signed checkpoints, which catch what the chain
//! alone cannot: a recomputed chain, records cut off the end, a removed file.

use std::collections::HashSet;
use std::fmt;

use sha2::{Digest, Sha256};

use super::chain::{ChainHead, GENESIS, link};
use super::checkpoint::{self, Checkpoint, PublicKey};

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
    /// A line of the checkpoints file that is not a checkpoint.
    NotCheckpoint,
    /// A checkpoint whose signature does not verify.
    BadSignature,
    /// A checkpoint signed by a key other than the trusted one.
    UntrustedSigner { fingerprint: String },
    /// A checkpoint that does not follow the one before it.
    CheckpointGap,
    /// Records a signed checkpoint vouches for are not in the log.
    Missing { from: u64, to: u64 },
    /// A record's hash differs from the one a checkpoint signed.
    Recomputed { seq: u64 },
    /// A file a checkpoint names is not among the files read.
    FileRemoved { name: String },
    /// The log does not start at record 1 and no checkpoint vouches for
    /// where it starts.
    Unanchored { first: u64 },
    /// Nothing signed vouches for the log.
    NoCheckpoints,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}: ", self.file, self.line)?;
        }
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
            FindingKind::NotCheckpoint => write!(f, "not a checkpoint (corrupt or cut off)"),
            FindingKind::BadSignature => {
                write!(f, "the checkpoint's signature does not verify (altered)")
            }
            FindingKind::UntrustedSigner { fingerprint } => write!(
                f,
                "the checkpoint is signed by key {fingerprint}, not the trusted one (forged)"
            ),
            FindingKind::CheckpointGap => write!(
                f,
                "the checkpoint does not follow the one before it (checkpoints removed or inserted)"
            ),
            FindingKind::Missing { from, to } => write!(
                f,
                "records {from} to {to}, which this signed checkpoint vouches for, are missing from the log (a removed or truncated file, or deleted records)"
            ),
            FindingKind::Recomputed { seq } => write!(
                f,
                "record {seq} is not the record this signed checkpoint vouches for (the chain was rewritten and recomputed)"
            ),
            FindingKind::FileRemoved { name } => write!(
                f,
                "the file {name} that this checkpoint covers was not found (removed)"
            ),
            FindingKind::Unanchored { first } => write!(
                f,
                "the log starts at record {first}, and no signed checkpoint vouches for where it starts (older records removed)"
            ),
            FindingKind::NoCheckpoints => write!(
                f,
                "no signed checkpoint covers this log, so a rewritten and recomputed chain could not be told apart"
            ),
        }
    }
}

/// The outcome of verifying a sequence of files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub files: usize,
    pub records: u64,
    pub findings: Vec<Finding>,
    /// The lowest and highest sequence numbers read.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The hash of the last record read.
    pub head_hash: Option<String>,
    /// Checkpoints whose signature verified (under the trusted key, if given).
    pub checkpoints: usize,
    /// The last record a verified checkpoint covers.
    pub covered_through: Option<u64>,
    /// Records after the last checkpoint, not yet covered by one.
    pub uncovered: u64,
    /// The keys that signed the verified checkpoints.
    pub signers: Vec<String>,
    /// The instance named by the last checkpoint.
    pub instance: Option<String>,
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
    walk(files).0
}

/// Verifies one log: its chain over `files`, then against its checkpoints
/// (name and lines of the checkpoints file, if there is one), whose
/// signatures must verify under `trusted` when it is given, else under the
/// key each checkpoint names (which proves integrity, not who signed).
pub fn verify_log<I>(
    files: Vec<(String, I)>,
    checkpoints: Option<(String, Vec<String>)>,
    trusted: Option<&PublicKey>,
) -> Report
where
    I: IntoIterator<Item = String>,
{
    let file_names: Vec<String> = files
        .iter()
        .map(|(n, _)| {
            let base = n.rsplit('/').next().unwrap_or(n);
            base.strip_suffix(".gz").unwrap_or(base).to_string()
        })
        .collect();
    let (mut report, lines, names) = walk(files);
    // seq -> (hash, where), for the first line holding each number.
    let mut present: std::collections::HashMap<u64, (&str, usize)> =
        std::collections::HashMap::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if let Some(k) = &l.link {
            present.entry(k.seq).or_insert((k.hash.as_str(), i));
        }
    }
    report.first_seq = present.keys().min().copied();
    report.last_seq = present.keys().max().copied();
    report.head_hash = lines
        .iter()
        .rev()
        .find_map(|l| l.link.as_ref().map(|k| k.hash.clone()));
    let (cp_name, cp_lines) = checkpoints.unwrap_or_else(|| (String::new(), Vec::new()));
    let at = |line: usize, kind| Finding {
        file: cp_name.clone(),
        line,
        kind,
    };
    let mut valid: Vec<(usize, Checkpoint)> = Vec::new();
    let mut previous: Option<(String, u64)> = None;
    let mut removed_reported: HashSet<String> = HashSet::new();
    for (i, text) in cp_lines.iter().enumerate() {
        let line = i + 1;
        let hash = checkpoint::line_hash(text);
        let Some(o) = checkpoint::open(text) else {
            report.findings.push(at(line, FindingKind::NotCheckpoint));
            previous = Some((hash, 0));
            continue;
        };
        let cp = o.checkpoint;
        if !o.signature_valid {
            report.findings.push(at(line, FindingKind::BadSignature));
        } else if trusted.is_some_and(|t| *t != o.signer) {
            report.findings.push(at(
                line,
                FindingKind::UntrustedSigner {
                    fingerprint: o.signer.fingerprint(),
                },
            ));
        } else {
            let follows = match &previous {
                // The first checkpoint read anchors the check; if older ones
                // were pruned it need not start at record 1.
                None => cp.previous != GENESIS || cp.first_seq == 1,
                Some((prev_hash, prev_last)) => {
                    cp.previous == *prev_hash && cp.first_seq == prev_last + 1
                }
            };
            if !follows || cp.last_seq < cp.first_seq {
                report.findings.push(at(line, FindingKind::CheckpointGap));
            }
            let fp = o.signer.fingerprint();
            if !report.signers.contains(&fp) {
                report.signers.push(fp);
            }
            valid.push((line, cp.clone()));
        }
        previous = Some((hash, cp.last_seq));
    }
    for (line, cp) in &valid {
        let mut missing: Option<(u64, u64)> = None;
        let flush = |m: &mut Option<(u64, u64)>, findings: &mut Vec<Finding>| {
            if let Some((from, to)) = m.take() {
                findings.push(at(*line, FindingKind::Missing { from, to }));
            }
        };
        for seq in cp.first_seq..=cp.last_seq {
            if present.contains_key(&seq) {
                flush(&mut missing, &mut report.findings);
            } else {
                missing = Some(missing.map_or((seq, seq), |(from, _)| (from, seq)));
            }
        }
        flush(&mut missing, &mut report.findings);
        if let Some((hash, _)) = present.get(&cp.last_seq)
            && *hash != cp.head_hash
        {
            report
                .findings
                .push(at(*line, FindingKind::Recomputed { seq: cp.last_seq }));
        }
        for f in &cp.files {
            if f.name != cp.log
                && !file_names.contains(&f.name)
                && removed_reported.insert(f.name.clone())
            {
                report.findings.push(at(
                    *line,
                    FindingKind::FileRemoved {
                        name: f.name.clone(),
                    },
                ));
            }
        }
    }
    report.checkpoints = valid.len();
    report.covered_through = valid.last().map(|(_, cp)| cp.last_seq);
    report.instance = valid.last().map(|(_, cp)| cp.instance.clone());
    let covered = report.covered_through.unwrap_or(0);
    report.uncovered = present.keys().filter(|s| **s > covered).count() as u64;
    if report.records > 0 && valid.is_empty() {
        let file = if cp_name.is_empty() {
            names.last().cloned().unwrap_or_default()
        } else {
            cp_name.clone()
        };
        report.findings.push(Finding {
            file,
            line: 0,
            kind: FindingKind::NoCheckpoints,
        });
    }
    // With checkpoints, records missing at the start are reported as
    // missing; without, a log must start at the beginning.
    if let Some(first) = report.first_seq
        && first > 1
        && valid.is_empty()
    {
        let l = &lines[present[&first].1];
        report.findings.push(Finding {
            file: names[l.file].clone(),
            line: l.line,
            kind: FindingKind::Unanchored { first },
        });
    }
    report
}

/// The chain walk: the report, every line's chain fields, and file names.
fn walk<I>(files: Vec<(String, I)>) -> (Report, Vec<Parsed>, Vec<String>)
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
    (report, lines, names)
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

    /// Signed checkpoints over `log`, one per range, chained.
    fn checkpoints(
        log: &[String],
        ranges: &[(u64, u64)],
        key: &checkpoint::SigningKey,
    ) -> Vec<String> {
        let mut previous = GENESIS.to_string();
        ranges
            .iter()
            .map(|&(first, last)| {
                let cp = Checkpoint {
                    kind: "checkpoint".into(),
                    time: "2026-01-01T00:00:00.000Z".into(),
                    instance: "i1".into(),
                    log: "audit.jsonl".into(),
                    reason: "interval".into(),
                    first_seq: first,
                    last_seq: last,
                    head_hash: link(&log[last as usize - 1]).unwrap().hash,
                    previous: previous.clone(),
                    files: vec![checkpoint::FileSpan {
                        name: "audit.jsonl".into(),
                        first_seq: first,
                        last_seq: last,
                    }],
                    public_key: key.public_key().to_base64(),
                };
                let line = checkpoint::seal(&cp, key).unwrap();
                previous = checkpoint::line_hash(&line);
                line
            })
            .collect()
    }

    fn signing_key() -> (tempfile::TempDir, checkpoint::SigningKey) {
        let dir = tempfile::TempDir::new().unwrap();
        let key = checkpoint::SigningKey::load_or_create(&dir.path().join("k")).unwrap();
        (dir, key)
    }

    fn checked(
        lines: Vec<String>,
        cps: Vec<String>,
        trusted: Option<&PublicKey>,
    ) -> (Report, Vec<FindingKind>) {
        let r = verify_log(
            vec![("audit.jsonl".to_string(), lines)],
            Some(("audit.checkpoints.jsonl".to_string(), cps)),
            trusted,
        );
        let kinds = r.findings.iter().map(|f| f.kind.clone()).collect();
        (r, kinds)
    }

    #[test]
    fn checkpointed_log_reports_coverage() {
        let (_d, key) = signing_key();
        let l = log(10);
        let cps = checkpoints(&l, &[(1, 4), (5, 8)], &key);
        let (r, kinds) = checked(l.clone(), cps, Some(&key.public_key()));
        assert!(kinds.is_empty(), "{kinds:?}");
        assert_eq!((r.first_seq, r.last_seq), (Some(1), Some(10)));
        assert_eq!(r.head_hash, Some(link(&l[9]).unwrap().hash));
        assert_eq!(
            (r.checkpoints, r.covered_through, r.uncovered),
            (2, Some(8), 2)
        );
        assert_eq!(r.instance.as_deref(), Some("i1"));
    }

    #[test]
    fn recomputed_chain_is_caught_by_the_checkpoint() {
        let (_d, key) = signing_key();
        let l = log(6);
        let cps = checkpoints(&l, &[(1, 6)], &key);
        // Rewrite record 3 and recompute every hash: the chain alone agrees.
        let mut head = ChainHead::genesis();
        let forged: Vec<String> = (0..6)
            .map(|i| {
                let v = if i == 2 { 99 } else { i };
                seal(&format!("{{\"i\":{v}}}"), &mut head)
            })
            .collect();
        assert!(verify(vec![("a".to_string(), forged.clone())]).is_clean());
        let (_, kinds) = checked(forged, cps, None);
        assert_eq!(kinds, [FindingKind::Recomputed { seq: 6 }]);
    }

    #[test]
    fn records_cut_off_the_end_or_the_start_are_missing() {
        let (_d, key) = signing_key();
        let l = log(6);
        let cps = checkpoints(&l, &[(1, 6)], &key);
        let (_, kinds) = checked(l[..4].to_vec(), cps.clone(), None);
        assert_eq!(kinds, [FindingKind::Missing { from: 5, to: 6 }]);
        let (_, kinds) = checked(l[2..].to_vec(), cps, None);
        assert_eq!(kinds, [FindingKind::Missing { from: 1, to: 2 }]);
        // Without checkpoints the start is not vouched for, and nothing is.
        let (_, kinds) = checked(l[2..].to_vec(), vec![], None);
        assert_eq!(
            kinds,
            [
                FindingKind::NoCheckpoints,
                FindingKind::Unanchored { first: 3 }
            ]
        );
    }

    #[test]
    fn pruned_logs_verify_from_a_checkpoint() {
        let (_d, key) = signing_key();
        let l = log(9);
        let cps = checkpoints(&l, &[(1, 3), (4, 6), (7, 9)], &key);
        // The oldest records and the checkpoints covering them, removed together.
        let (r, kinds) = checked(l[3..].to_vec(), cps[1..].to_vec(), None);
        assert!(kinds.is_empty(), "{kinds:?}");
        assert_eq!(r.first_seq, Some(4));
        // A checkpoint removed from the middle is a gap.
        let (_, kinds) = checked(l, vec![cps[0].clone(), cps[2].clone()], None);
        assert_eq!(kinds, [FindingKind::CheckpointGap]);
    }

    #[test]
    fn forged_or_altered_checkpoints_are_named() {
        let (_d, key) = signing_key();
        let (_d2, other) = signing_key();
        let l = log(4);
        let forged = checkpoints(&l, &[(1, 4)], &other);
        let (r, kinds) = checked(l.clone(), forged.clone(), Some(&key.public_key()));
        assert_eq!(
            kinds,
            [
                FindingKind::UntrustedSigner {
                    fingerprint: other.public_key().fingerprint()
                },
                FindingKind::NoCheckpoints
            ]
        );
        assert_eq!(r.checkpoints, 0);
        let altered = vec![forged[0].replace("\"last_seq\":4", "\"last_seq\":3")];
        let (_, kinds) = checked(l, altered, None);
        assert_eq!(
            kinds,
            [FindingKind::BadSignature, FindingKind::NoCheckpoints]
        );
    }

    #[test]
    fn a_file_a_checkpoint_names_must_be_there() {
        let (_d, key) = signing_key();
        let l = log(4);
        let mut cp: Checkpoint = serde_json::from_str(&format!(
            "{}}}",
            &checkpoints(&l, &[(1, 4)], &key)[0]
                .rsplit_once(",\"signature\"")
                .unwrap()
                .0
        ))
        .unwrap();
        cp.files.insert(
            0,
            checkpoint::FileSpan {
                name: "audit-20260101T000000.000Z.jsonl".into(),
                first_seq: 1,
                last_seq: 2,
            },
        );
        let line = checkpoint::seal(&cp, &key).unwrap();
        let (_, kinds) = checked(l, vec![line], None);
        assert_eq!(
            kinds,
            [FindingKind::FileRemoved {
                name: "audit-20260101T000000.000Z.jsonl".into()
            }]
        );
    }

    #[test]
    fn cut_off_line_is_unreadable() {
        let mut l = log(3);
        l[2].truncate(20);
        assert_eq!(kinds(l), [(3, FindingKind::Unreadable)]);
    }
}
