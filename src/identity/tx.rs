//! One identity change in the making: a copy-on-write view of the stored
//! entities over the current directory. An IAM call edits the entities it
//! touches as plain stored values; [`Tx::finish`] then yields exactly those
//! entities as [`Change`]s, so persisting and applying a change costs what the
//! change touched, never the size of the whole directory.

use std::collections::BTreeMap;

use super::directory::Directory;
use super::model::{
    Change, Entity, EntityKey, StoredGroup, StoredOidcProvider, StoredPolicy, StoredRole,
    StoredUser,
};

/// A stored entity kind, read from the directory on first touch.
pub trait Stored: Clone + PartialEq + Sized {
    /// The stored form of a store-owned entity (config-declared ones are not
    /// the store's and read as absent).
    fn load(dir: &Directory, key: &str) -> Option<Self>;
    /// How many store-owned entities of this kind the directory holds.
    fn count(dir: &Directory) -> usize;
    fn key(key: String) -> EntityKey;
    fn entity(self) -> Entity;
}

/// One kind's entities: what the call changed over what the directory holds.
pub struct Table<'a, V: Stored> {
    dir: &'a Directory,
    /// `None`: deleted by this change.
    pending: BTreeMap<String, Option<V>>,
}

impl<'a, V: Stored> Table<'a, V> {
    fn new(dir: &'a Directory) -> Self {
        Table {
            dir,
            pending: BTreeMap::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        match self.pending.get(key) {
            Some(v) => v.clone(),
            None => V::load(self.dir, key),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The entity for editing; the edit becomes part of the change.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        if !self.pending.contains_key(key) {
            let current = V::load(self.dir, key)?;
            self.pending.insert(key.to_string(), Some(current));
        }
        self.pending.get_mut(key).and_then(Option::as_mut)
    }

    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        let old = self.get(&key);
        self.pending.insert(key, Some(value));
        old
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let old = self.get(key);
        if old.is_some() {
            self.pending.insert(key.to_string(), None);
        }
        old
    }

    /// How many the store holds with this change applied.
    pub fn len(&self) -> usize {
        let mut n = V::count(self.dir) as isize;
        for (k, v) in &self.pending {
            let before = V::load(self.dir, k).is_some();
            n += v.is_some() as isize - before as isize;
        }
        n.max(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn finish(self, out: &mut Vec<Change>) {
        for (k, v) in self.pending {
            if V::load(self.dir, &k) != v {
                out.push(Change {
                    entity: V::key(k),
                    value: v.map(V::entity),
                });
            }
        }
    }
}

/// Every stored kind, as an IAM call sees and edits them.
pub struct Tx<'a> {
    pub users: Table<'a, StoredUser>,
    pub groups: Table<'a, StoredGroup>,
    pub policies: Table<'a, StoredPolicy>,
    pub roles: Table<'a, StoredRole>,
    /// Session revocation marks by the principal's unique id (Unix ms).
    pub revoked_before: Table<'a, i64>,
    /// OpenID Connect providers by ARN.
    pub oidc_providers: Table<'a, StoredOidcProvider>,
}

impl<'a> Tx<'a> {
    pub fn new(dir: &'a Directory) -> Self {
        Tx {
            users: Table::new(dir),
            groups: Table::new(dir),
            policies: Table::new(dir),
            roles: Table::new(dir),
            revoked_before: Table::new(dir),
            oidc_providers: Table::new(dir),
        }
    }

    /// The entities that differ from the directory, in an order that never
    /// names what does not exist yet (policies and groups before the users
    /// and roles that refer to them).
    pub fn finish(self) -> Vec<Change> {
        let mut out = Vec::new();
        self.policies.finish(&mut out);
        self.groups.finish(&mut out);
        self.users.finish(&mut out);
        self.roles.finish(&mut out);
        self.revoked_before.finish(&mut out);
        self.oidc_providers.finish(&mut out);
        out
    }
}

impl Stored for StoredUser {
    fn load(dir: &Directory, key: &str) -> Option<Self> {
        dir.stored_user(key)
    }
    fn count(dir: &Directory) -> usize {
        dir.counts().store_users
    }
    fn key(key: String) -> EntityKey {
        EntityKey::User(key)
    }
    fn entity(self) -> Entity {
        Entity::User(self)
    }
}

impl Stored for StoredGroup {
    fn load(dir: &Directory, key: &str) -> Option<Self> {
        dir.stored_group(key)
    }
    fn count(dir: &Directory) -> usize {
        dir.counts().store_groups
    }
    fn key(key: String) -> EntityKey {
        EntityKey::Group(key)
    }
    fn entity(self) -> Entity {
        Entity::Group(self)
    }
}

impl Stored for StoredPolicy {
    fn load(dir: &Directory, key: &str) -> Option<Self> {
        dir.stored_policy(key)
    }
    fn count(dir: &Directory) -> usize {
        dir.counts().policies
    }
    fn key(key: String) -> EntityKey {
        EntityKey::Policy(key)
    }
    fn entity(self) -> Entity {
        Entity::Policy(self)
    }
}

impl Stored for StoredRole {
    fn load(dir: &Directory, key: &str) -> Option<Self> {
        dir.stored_role(key)
    }
    fn count(dir: &Directory) -> usize {
        dir.counts().roles
    }
    fn key(key: String) -> EntityKey {
        EntityKey::Role(key)
    }
    fn entity(self) -> Entity {
        Entity::Role(self)
    }
}

impl Stored for i64 {
    fn load(dir: &Directory, key: &str) -> Option<Self> {
        dir.revoked_before(key)
    }
    fn count(dir: &Directory) -> usize {
        dir.counts().revocations
    }
    fn key(key: String) -> EntityKey {
        EntityKey::Revocation(key)
    }
    fn entity(self) -> Entity {
        Entity::Revocation(self)
    }
}

impl Stored for StoredOidcProvider {
    fn load(dir: &Directory, key: &str) -> Option<Self> {
        dir.stored_oidc_provider(key)
    }
    fn count(dir: &Directory) -> usize {
        dir.counts().oidc_providers
    }
    fn key(key: String) -> EntityKey {
        EntityKey::OidcProvider(key)
    }
    fn entity(self) -> Entity {
        Entity::OidcProvider(self)
    }
}
