//! The embedded store's files, and how they change atomically and durably.
//!
//! ```text
//! data_dir/
//!   .lock                                   held while a store runs on this directory
//!   tmp/                                    writes in progress; emptied at start
//!   buckets/<bucket>/bucket.json
//!   buckets/<bucket>/objects/<h[0..2]>/<h>.json           sidecar (ObjectRecord)
//!   buckets/<bucket>/objects/<h[0..2]>/<h>.<data>.data    the bytes it names
//!   uploads/<upload id>/upload.json
//!   uploads/<upload id>/part-<n>.json / part-<n>.<data>.data
//! ```
//!
//! `h` is the SHA-256 of the key, so any key S3 accepts (`a/../b`, `a//b`, `x/`, NUL, ...) gets
//! its own file and the key itself lives only inside the sidecar, verbatim. Every write streams
//! into `tmp/`, is fsynced, and renamed next to the sidecar under a fresh data name; the sidecar
//! is then replaced by an atomic rename, which is the single commit point. A crash before it
//! leaves the old object; data no sidecar names is removed at the next start.

use super::EmbeddedError;
use super::index::Index;
use super::records::{BucketRecord, ObjectRecord, PartRecord, UploadRecord};

use s3s::crypto::{Checksum as _, Sha256};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt as _;
use tracing::warn;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub(super) struct Disk {
    root: PathBuf,
}

/// A file being written in `tmp/`; removed on drop unless it was moved into place.
#[derive(Debug)]
pub(super) struct TempFile {
    path: Option<PathBuf>,
    file: Option<tokio::fs::File>,
}

impl TempFile {
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(data).await,
            None => Err(io::Error::other("temporary file already finished")),
        }
    }

    /// Flushes and fsyncs the contents; the file takes no more writes.
    pub async fn finish(&mut self) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush().await?;
            f.sync_all().await?;
        }
        Ok(())
    }

    fn path(&self) -> io::Result<&Path> {
        self.path
            .as_deref()
            .ok_or_else(|| io::Error::other("temporary file already moved"))
    }

    /// Moves the file to `dest` (same filesystem), after which drop leaves it alone.
    fn rename_to(&mut self, dest: &Path) -> io::Result<()> {
        fs::rename(self.path()?, dest)?;
        self.path = None;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Dropped before being committed: a failed or abandoned write leaves nothing behind.
            let _ = fs::remove_file(path);
        }
    }
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::checksum(key.as_bytes()))
}

fn new_id() -> String {
    Uuid::new_v4().simple().to_string()
}

/// fsync of a directory makes the renames and unlinks in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

fn write_json_atomic(tmp_dir: &Path, dest: &Path, value: &impl Serialize) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    let tmp = tmp_dir.join(format!("{}.json", new_id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dest)?;
        sync_dir(dest.parent().unwrap_or(tmp_dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(io::Error::other)
}

/// Creates `dir` (and parents), fsyncing the parent when it was new.
fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

impl Disk {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn buckets_dir(&self) -> PathBuf {
        self.root.join("buckets")
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.buckets_dir().join(bucket)
    }

    fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.uploads_dir().join(upload_id)
    }

    /// The fan-out directory and hash of a key's files.
    fn object_dir(&self, bucket: &str, key: &str) -> (PathBuf, String) {
        let h = key_hash(key);
        (self.bucket_dir(bucket).join("objects").join(&h[..2]), h)
    }

    fn object_data_path(&self, bucket: &str, rec: &ObjectRecord) -> PathBuf {
        let (dir, h) = self.object_dir(bucket, &rec.key);
        dir.join(format!("{h}.{}.data", rec.data))
    }

    fn part_data_path(&self, upload_id: &str, rec: &PartRecord) -> PathBuf {
        self.upload_dir(upload_id)
            .join(format!("part-{}.{}.data", rec.part_number, rec.data))
    }

    /// A new, empty file in `tmp/` to stream a body into, with the data id to record for it.
    pub async fn temp_file(&self) -> io::Result<(TempFile, String)> {
        let id = new_id();
        let path = self.tmp_dir().join(format!("{id}.data"));
        let file = tokio::fs::File::create(&path).await?;
        Ok((
            TempFile {
                path: Some(path),
                file: Some(file),
            },
            id,
        ))
    }

    /// Creates `dest` holding `name` (JSON of `value`) and the empty `subdirs`: built in tmp/
    /// and renamed into place, so it is either complete or absent.
    async fn create_tree(
        &self,
        dest: PathBuf,
        name: &'static str,
        value: impl Serialize + Send + 'static,
        subdirs: &'static [&'static str],
    ) -> io::Result<()> {
        let tmp = self.tmp_dir().join(new_id());
        blocking(move || {
            let result = (|| {
                fs::create_dir_all(&tmp)?;
                for sub in subdirs {
                    fs::create_dir(tmp.join(sub))?;
                }
                write_json_atomic(&tmp, &tmp.join(name), &value)?;
                fs::rename(&tmp, &dest)?;
                sync_dir(dest.parent().unwrap_or(&dest))
            })();
            if result.is_err() {
                let _ = fs::remove_dir_all(&tmp);
            }
            result
        })
        .await
    }

    pub async fn create_bucket(&self, rec: &BucketRecord) -> io::Result<()> {
        self.create_tree(
            self.bucket_dir(&rec.name),
            "bucket.json",
            rec.clone(),
            &["objects"],
        )
        .await
    }

    /// Removes a directory by renaming it into tmp/ (atomic) and then deleting it.
    async fn remove_tree(&self, dir: PathBuf) -> io::Result<()> {
        let grave = self.tmp_dir().join(new_id());
        blocking(move || {
            fs::rename(&dir, &grave)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            fs::remove_dir_all(&grave)
        })
        .await
    }

    pub async fn delete_bucket(&self, bucket: &str) -> io::Result<()> {
        self.remove_tree(self.bucket_dir(bucket)).await
    }

    /// Commits an object: moves its finished data file into place (if new data) and then
    /// replaces the sidecar atomically.
    pub async fn commit_object(
        &self,
        bucket: &str,
        rec: &ObjectRecord,
        data: Option<TempFile>,
    ) -> io::Result<()> {
        let (dir, h) = self.object_dir(bucket, &rec.key);
        let (data_path, tmp_dir, rec) = (
            self.object_data_path(bucket, rec),
            self.tmp_dir(),
            rec.clone(),
        );
        blocking(move || {
            ensure_dir(&dir)?;
            if let Some(mut data) = data {
                data.rename_to(&data_path)?;
                sync_dir(&dir)?;
            }
            write_json_atomic(&tmp_dir, &dir.join(format!("{h}.json")), &rec)
        })
        .await
    }

    /// Removes an object's sidecar (the commit point of a delete); its data goes separately.
    pub async fn remove_object(&self, bucket: &str, key: &str) -> io::Result<()> {
        let (dir, h) = self.object_dir(bucket, key);
        blocking(move || {
            fs::remove_file(dir.join(format!("{h}.json")))?;
            sync_dir(&dir)
        })
        .await
    }

    /// Removes a data file no sidecar names any more. A failure only leaves garbage that the
    /// next start removes, so it is logged, not returned.
    pub async fn remove_object_data(&self, bucket: &str, rec: &ObjectRecord) {
        let path = self.object_data_path(bucket, rec);
        if let Err(e) = tokio::fs::remove_file(&path).await {
            warn!(path = %path.display(), error = %e, "could not remove superseded object data");
        }
    }

    pub async fn open_object(
        &self,
        bucket: &str,
        rec: &ObjectRecord,
    ) -> io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.object_data_path(bucket, rec)).await
    }

    pub async fn create_upload(&self, rec: &UploadRecord) -> io::Result<()> {
        self.create_tree(
            self.upload_dir(&rec.upload_id),
            "upload.json",
            rec.clone(),
            &[],
        )
        .await
    }

    pub async fn commit_part(
        &self,
        upload_id: &str,
        rec: &PartRecord,
        mut data: TempFile,
    ) -> io::Result<()> {
        let (dir, data_path, tmp_dir, rec) = (
            self.upload_dir(upload_id),
            self.part_data_path(upload_id, rec),
            self.tmp_dir(),
            rec.clone(),
        );
        blocking(move || {
            data.rename_to(&data_path)?;
            sync_dir(&dir)?;
            write_json_atomic(
                &tmp_dir,
                &dir.join(format!("part-{}.json", rec.part_number)),
                &rec,
            )
        })
        .await
    }

    pub async fn remove_part_data(&self, upload_id: &str, rec: &PartRecord) {
        let path = self.part_data_path(upload_id, rec);
        if let Err(e) = tokio::fs::remove_file(&path).await {
            warn!(path = %path.display(), error = %e, "could not remove superseded part data");
        }
    }

    pub async fn open_part(
        &self,
        upload_id: &str,
        rec: &PartRecord,
    ) -> io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.part_data_path(upload_id, rec)).await
    }

    pub async fn delete_upload(&self, upload_id: &str) -> io::Result<()> {
        self.remove_tree(self.upload_dir(upload_id)).await
    }

    /// Prepares the directory tree and rebuilds the index from the committed sidecars,
    /// removing what no sidecar names (writes that never committed). Blocking.
    pub fn load(&self) -> Result<Index, EmbeddedError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| EmbeddedError::Load { path, source }
        };
        let tmp = self.tmp_dir();
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(err(&tmp))?;
        }
        for dir in [tmp, self.buckets_dir(), self.uploads_dir()] {
            ensure_dir(&dir).map_err(err(&dir))?;
        }

        let mut index = Index::default();
        let buckets = self.buckets_dir();
        for entry in fs::read_dir(&buckets).map_err(err(&buckets))? {
            let path = entry.map_err(err(&buckets))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if !s3s::path::check_bucket_name(&name) {
                warn!(path = %path.display(), "ignoring a directory that is not a bucket");
                continue;
            }
            let rec: BucketRecord = match read_json(&path.join("bucket.json")) {
                Ok(rec) => rec,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "ignoring a bucket without a readable bucket.json");
                    continue;
                }
            };
            index.insert_bucket(rec);
            let objects_dir = path.join("objects");
            let objects = load_objects(&objects_dir).map_err(err(&objects_dir))?;
            if let Ok(b) = index.bucket_mut(&name) {
                b.objects = objects;
            }
        }

        let uploads = self.uploads_dir();
        for entry in fs::read_dir(&uploads).map_err(err(&uploads))? {
            let dir = entry.map_err(err(&uploads))?.path();
            match read_json::<UploadRecord>(&dir.join("upload.json")) {
                Ok(rec) if !dir.ends_with(&rec.upload_id) => {
                    warn!(path = %dir.display(), "ignoring an upload whose id does not match its directory");
                }
                Ok(rec) if index.has_bucket(&rec.bucket) => {
                    let parts = load_parts(&dir).map_err(err(&dir))?;
                    index.insert_upload_with_parts(rec, parts);
                }
                Ok(_) => {
                    // Its bucket was deleted and the crash came before the upload was removed.
                    fs::remove_dir_all(&dir).map_err(err(&dir))?;
                }
                Err(e) => {
                    warn!(path = %dir.display(), error = %e, "ignoring an upload without a readable upload.json")
                }
            }
        }
        Ok(index)
    }
}

/// Files of one key hash (or one part number): the sidecar and the data files beside it.
#[derive(Default)]
struct Group {
    sidecar: Option<PathBuf>,
    data: Vec<(String, PathBuf)>,
}

/// Groups `<stem>.json` and `<stem>.<data id>.data` files of a directory by stem.
fn group_files(dir: &Path, groups: &mut HashMap<String, Group>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".json") {
            groups.entry(stem.to_owned()).or_default().sidecar = Some(path);
        } else if let Some((stem, id)) = name.strip_suffix(".data").and_then(|n| n.split_once('.'))
        {
            groups
                .entry(stem.to_owned())
                .or_default()
                .data
                .push((id.to_owned(), path));
        }
    }
    Ok(())
}

/// Keeps the data file `current` of a group (if its size is right) and removes the others.
fn settle(group: Group, current: &str, size: u64) -> io::Result<bool> {
    let mut ok = false;
    for (id, path) in group.data {
        if id == current {
            ok = fs::metadata(&path)?.len() == size;
            if !ok {
                warn!(path = %path.display(), "data file size differs from its sidecar; object ignored");
            }
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(ok)
}

fn load_objects(objects_dir: &Path) -> io::Result<BTreeMap<String, ObjectRecord>> {
    let mut objects = BTreeMap::new();
    if !objects_dir.is_dir() {
        return Ok(objects);
    }
    for fan in fs::read_dir(objects_dir)? {
        let fan = fan?.path();
        if !fan.is_dir() {
            continue;
        }
        let mut groups = HashMap::new();
        group_files(&fan, &mut groups)?;
        for (stem, group) in groups {
            let Some(sidecar) = group.sidecar.clone() else {
                // Data that never got its sidecar: an upload that did not commit.
                for (_, path) in group.data {
                    fs::remove_file(path)?;
                }
                continue;
            };
            let rec: ObjectRecord = match read_json(&sidecar) {
                Ok(rec) => rec,
                Err(e) => {
                    warn!(path = %sidecar.display(), error = %e, "ignoring an unreadable object sidecar");
                    continue;
                }
            };
            if key_hash(&rec.key) != stem {
                warn!(path = %sidecar.display(), "ignoring a sidecar whose key does not match its file name");
                continue;
            }
            let (data, size) = (rec.data.clone(), rec.size);
            if settle(group, &data, size)? {
                objects.insert(rec.key.clone(), rec);
            }
        }
    }
    Ok(objects)
}

fn load_parts(dir: &Path) -> io::Result<BTreeMap<i32, PartRecord>> {
    let mut groups = HashMap::new();
    group_files(dir, &mut groups)?;
    let mut parts = BTreeMap::new();
    for (stem, group) in groups {
        if stem == "upload" {
            continue;
        }
        let Some(sidecar) = group.sidecar.clone() else {
            for (_, path) in group.data {
                fs::remove_file(path)?;
            }
            continue;
        };
        let rec: PartRecord = match read_json(&sidecar) {
            Ok(rec) => rec,
            Err(e) => {
                warn!(path = %sidecar.display(), error = %e, "ignoring an unreadable part sidecar");
                continue;
            }
        };
        let (data, size) = (rec.data.clone(), rec.size);
        if stem == format!("part-{}", rec.part_number) && settle(group, &data, size)? {
            parts.insert(rec.part_number, rec);
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::super::records::sample_object;
    use super::*;

    async fn put(disk: &Disk, bucket: &str, key: &str, body: &[u8]) -> ObjectRecord {
        let (mut tmp, id) = disk.temp_file().await.expect("temp");
        tmp.write(body).await.expect("write");
        tmp.finish().await.expect("finish");
        let r = ObjectRecord {
            data: id,
            size: body.len() as u64,
            ..sample_object(key)
        };
        disk.commit_object(bucket, &r, Some(tmp))
            .await
            .expect("commit");
        r
    }

    #[tokio::test]
    async fn committed_objects_survive_reload_and_garbage_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = Disk::new(dir.path().to_owned());
        disk.load().expect("first load");
        disk.create_bucket(&BucketRecord {
            name: "bkt".to_owned(),
            created_ms: 5,
        })
        .await
        .expect("bucket");
        let old = put(&disk, "bkt", "a/../b", b"one").await;
        put(&disk, "bkt", "a//b", b"two").await;
        // Overwrite, but leave the superseded data file behind as a crash would.
        put(&disk, "bkt", "a/../b", b"three").await;
        // A write that never committed: data in place, no sidecar naming it.
        let (mut orphan, id) = disk.temp_file().await.expect("temp");
        orphan.write(b"x").await.expect("write");
        orphan.finish().await.expect("finish");
        let (fan, h) = disk.object_dir("bkt", "never");
        ensure_dir(&fan).expect("fan");
        orphan
            .rename_to(&fan.join(format!("{h}.{id}.data")))
            .expect("place");
        // And one abandoned in tmp/.
        let (mut pending, _) = disk.temp_file().await.expect("temp");
        pending.write(b"y").await.expect("write");
        std::mem::forget(pending);

        let index = disk.load().expect("reload");
        let b = index.bucket("bkt").expect("bucket");
        assert_eq!(b.record.created_ms, 5);
        let keys: Vec<&str> = b.objects.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a/../b", "a//b"]);
        assert_eq!(b.objects.get("a/../b").map(|r| r.size), Some(5));
        assert!(
            !disk.object_data_path("bkt", &old).exists(),
            "superseded data removed"
        );
        assert!(
            !fan.join(format!("{h}.{id}.data")).exists(),
            "uncommitted data removed"
        );
        assert_eq!(fs::read_dir(disk.tmp_dir()).expect("tmp").count(), 0);
    }

    #[tokio::test]
    async fn dropped_temp_file_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = Disk::new(dir.path().to_owned());
        disk.load().expect("load");
        let (mut tmp, _) = disk.temp_file().await.expect("temp");
        tmp.write(b"partial").await.expect("write");
        drop(tmp);
        assert_eq!(fs::read_dir(disk.tmp_dir()).expect("tmp").count(), 0);
    }
}
