//! The identity store's rows: reading entities (all, or those named) from
//! the tables into stored values, and writing whole entities back as column
//! arrays, a fixed number of statements whatever the number of entities.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::super::model::{
    Change, Entity, EntityKey, StoreState, StoredGroup, StoredKey, StoredOidcProvider,
    StoredPolicy, StoredRole, StoredUser, StoredVersion, Tag,
};

/// The current value of each named entity (`None`: deleted).
pub(super) async fn load_changes(
    c: &impl GenericClient,
    keys: &[EntityKey],
) -> Result<Vec<Change>, tokio_postgres::Error> {
    let state = load_state(c, Some(keys)).await?;
    Ok(keys
        .iter()
        .map(|k| Change {
            entity: k.clone(),
            value: state.get(k),
        })
        .collect())
}

/// Keys of one kind, as a text array filter.
fn keys_of(keys: Option<&[EntityKey]>, kind: &str) -> Option<Vec<String>> {
    keys.map(|ks| {
        ks.iter()
            .filter(|k| k.kind() == kind)
            .map(|k| k.key().to_string())
            .collect()
    })
}

/// Reads entities: all of them, or those named.
pub(super) async fn load_state(
    c: &impl GenericClient,
    keys: Option<&[EntityKey]>,
) -> Result<StoreState, tokio_postgres::Error> {
    let mut state = StoreState::empty();
    let users = keys_of(keys, "user");
    let groups = keys_of(keys, "group");
    let policies = keys_of(keys, "policy");
    let roles = keys_of(keys, "role");
    let revocations = keys_of(keys, "revocation");
    let providers = keys_of(keys, "oidc_provider");
    let inline = inline_policies(c, &users, &groups, &roles).await?;
    let tags = owner_tags(c, &users, &roles, &providers).await?;
    let take_tags = |kind: &str, key: &str| {
        tags.get(&(kind.to_string(), key.to_string()))
            .cloned()
            .unwrap_or_default()
    };
    let attached = attached_policies(c, &users, &groups, &roles).await?;
    let take_inline = |kind: &str, key: &str| {
        inline
            .get(&(kind.to_string(), key.to_string()))
            .cloned()
            .unwrap_or_default()
    };
    let take_attached = |kind: &str, key: &str| {
        attached
            .get(&(kind.to_string(), key.to_string()))
            .cloned()
            .unwrap_or_default()
    };

    let mut access_keys: BTreeMap<String, Vec<StoredKey>> = BTreeMap::new();
    for r in c
        .query(
            "SELECT user_key, access_key_id, secret_access_key, active, created
             FROM s3warden.access_keys WHERE $1::text[] IS NULL OR user_key = ANY($1)
             ORDER BY user_key, position",
            &[&users],
        )
        .await?
    {
        access_keys.entry(r.get(0)).or_default().push(StoredKey {
            access_key_id: r.get(1),
            secret_access_key: r.get(2),
            active: r.get(3),
            created: r.get(4),
        });
    }
    let mut memberships: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in c
        .query(
            "SELECT user_key, group_name FROM s3warden.group_members
             WHERE $1::text[] IS NULL OR user_key = ANY($1) ORDER BY user_key, position",
            &[&users],
        )
        .await?
    {
        memberships.entry(r.get(0)).or_default().push(r.get(1));
    }
    for r in c
        .query(
            "SELECT key, name, path, user_id, created, permissions_boundary FROM s3warden.users
             WHERE $1::text[] IS NULL OR key = ANY($1)",
            &[&users],
        )
        .await?
    {
        let key: String = r.get(0);
        let user = StoredUser {
            name: r.get(1),
            path: r.get(2),
            user_id: r.get(3),
            created: r.get(4),
            groups: memberships.remove(&key).unwrap_or_default(),
            policies: take_inline("user", &key),
            attached: take_attached("user", &key),
            access_keys: access_keys.remove(&key).unwrap_or_default(),
            permissions_boundary: r.get(5),
            tags: take_tags("user", &key),
        };
        state.users.insert(key, user);
    }
    for r in c
        .query(
            "SELECT key, name, path, group_id, created FROM s3warden.groups
             WHERE $1::text[] IS NULL OR key = ANY($1)",
            &[&groups],
        )
        .await?
    {
        let key: String = r.get(0);
        let group = StoredGroup {
            name: r.get(1),
            path: r.get(2),
            group_id: r.get(3),
            created: r.get(4),
            policies: take_inline("group", &key),
            attached: take_attached("group", &key),
        };
        state.groups.insert(key, group);
    }
    let mut versions: BTreeMap<String, Vec<StoredVersion>> = BTreeMap::new();
    for r in c
        .query(
            "SELECT arn, version, document, created FROM s3warden.policy_versions
             WHERE $1::text[] IS NULL OR arn = ANY($1) ORDER BY arn, version",
            &[&policies],
        )
        .await?
    {
        let id: i32 = r.get(1);
        versions.entry(r.get(0)).or_default().push(StoredVersion {
            id: id.max(1) as u32,
            document: r.get(2),
            created: r.get(3),
        });
    }
    for r in c
        .query(
            "SELECT arn, name, path, policy_id, description, document, created,
                    default_version, last_version, updated
             FROM s3warden.managed_policies WHERE $1::text[] IS NULL OR arn = ANY($1)",
            &[&policies],
        )
        .await?
    {
        let (default_version, last_version): (i32, i32) = (r.get(7), r.get(8));
        let arn: String = r.get(0);
        let mut policy = StoredPolicy {
            versions: versions.remove(&arn).unwrap_or_default(),
            arn,
            name: r.get(1),
            path: r.get(2),
            policy_id: r.get(3),
            description: r.get(4),
            document: r.get(5),
            created: r.get(6),
            default_version: default_version.max(1) as u32,
            last_version: last_version.max(1) as u32,
            updated: r.get(9),
        };
        policy.versions = policy.all_versions();
        state.policies.insert(policy.arn.clone(), policy);
    }
    for r in c
        .query(
            "SELECT key, name, path, role_id, created, description, max_session_duration, trust_policy,
                    permissions_boundary
             FROM s3warden.roles WHERE $1::text[] IS NULL OR key = ANY($1)",
            &[&roles],
        )
        .await?
    {
        let key: String = r.get(0);
        let max: i32 = r.get(6);
        let role = StoredRole {
            name: r.get(1),
            path: r.get(2),
            role_id: r.get(3),
            created: r.get(4),
            description: r.get(5),
            max_session_duration: max.max(0) as u32,
            trust_policy: r.get(7),
            policies: take_inline("role", &key),
            attached: take_attached("role", &key),
            permissions_boundary: r.get(8),
            tags: take_tags("role", &key),
        };
        state.roles.insert(key, role);
    }
    for r in c
        .query(
            "SELECT unique_id, revoked_before FROM s3warden.session_revocations
             WHERE $1::text[] IS NULL OR unique_id = ANY($1)",
            &[&revocations],
        )
        .await?
    {
        state.revoked_before.insert(r.get(0), r.get(1));
    }
    for r in c
        .query(
            "SELECT arn, url, client_ids, thumbprints, created FROM s3warden.oidc_providers
             WHERE $1::text[] IS NULL OR arn = ANY($1)",
            &[&providers],
        )
        .await?
    {
        let arn: String = r.get(0);
        let provider = StoredOidcProvider {
            url: r.get(1),
            client_ids: r.get(2),
            thumbprints: r.get(3),
            created: r.get(4),
            tags: take_tags("oidc_provider", &arn),
        };
        state.oidc_providers.insert(arn, provider);
    }
    Ok(state)
}

type Owned<T> = BTreeMap<(String, String), T>;

/// The owner filter of the inline and attached policy tables: every owner,
/// or the named users, groups and roles.
const OWNER_FILTER: &str = "($1::text[] IS NULL AND $2::text[] IS NULL AND $3::text[] IS NULL)
     OR (owner_kind = 'user' AND owner_key = ANY($1))
     OR (owner_kind = 'group' AND owner_key = ANY($2))
     OR (owner_kind = 'role' AND owner_key = ANY($3))";

async fn inline_policies(
    c: &impl GenericClient,
    users: &Option<Vec<String>>,
    groups: &Option<Vec<String>>,
    roles: &Option<Vec<String>>,
) -> Result<Owned<BTreeMap<String, String>>, tokio_postgres::Error> {
    let mut out: Owned<BTreeMap<String, String>> = BTreeMap::new();
    let sql = format!(
        "SELECT owner_kind, owner_key, name, document FROM s3warden.inline_policies WHERE {OWNER_FILTER}"
    );
    for r in c.query(&sql, &[users, groups, roles]).await? {
        out.entry((r.get(0), r.get(1)))
            .or_default()
            .insert(r.get(2), r.get(3));
    }
    Ok(out)
}

async fn owner_tags(
    c: &impl GenericClient,
    users: &Option<Vec<String>>,
    roles: &Option<Vec<String>>,
    providers: &Option<Vec<String>>,
) -> Result<Owned<Vec<Tag>>, tokio_postgres::Error> {
    let mut out: Owned<Vec<Tag>> = BTreeMap::new();
    // Groups carry no tags; an empty list keeps the filter's shape.
    let none: Option<Vec<String>> = users.as_ref().map(|_| Vec::new());
    let sql = format!(
        "SELECT owner_kind, owner_key, key, value FROM s3warden.tags
         WHERE {OWNER_FILTER} OR (owner_kind = 'oidc_provider' AND owner_key = ANY($4))
         ORDER BY owner_kind, owner_key, position"
    );
    for r in c.query(&sql, &[users, &none, roles, providers]).await? {
        out.entry((r.get(0), r.get(1))).or_default().push(Tag {
            key: r.get(2),
            value: r.get(3),
        });
    }
    Ok(out)
}

async fn attached_policies(
    c: &impl GenericClient,
    users: &Option<Vec<String>>,
    groups: &Option<Vec<String>>,
    roles: &Option<Vec<String>>,
) -> Result<Owned<Vec<String>>, tokio_postgres::Error> {
    let mut out: Owned<Vec<String>> = BTreeMap::new();
    let sql = format!(
        "SELECT owner_kind, owner_key, arn FROM s3warden.attached_policies WHERE {OWNER_FILTER}
         ORDER BY owner_kind, owner_key, position"
    );
    for r in c.query(&sql, &[users, groups, roles]).await? {
        out.entry((r.get(0), r.get(1))).or_default().push(r.get(2));
    }
    Ok(out)
}

/// Column arrays of the users table, for one batched insert.
#[derive(Default)]
struct UserRows {
    key: Vec<String>,
    name: Vec<String>,
    path: Vec<String>,
    user_id: Vec<String>,
    created: Vec<DateTime<Utc>>,
    boundary: Vec<Option<String>>,
}

#[derive(Default)]
struct KeyRows {
    access_key_id: Vec<String>,
    user_key: Vec<String>,
    position: Vec<i32>,
    secret: Vec<String>,
    active: Vec<bool>,
    created: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct MemberRows {
    user_key: Vec<String>,
    position: Vec<i32>,
    group_name: Vec<String>,
}

#[derive(Default)]
struct GroupRows {
    key: Vec<String>,
    name: Vec<String>,
    path: Vec<String>,
    group_id: Vec<String>,
    created: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct PolicyRows {
    arn: Vec<String>,
    name: Vec<String>,
    path: Vec<String>,
    policy_id: Vec<String>,
    description: Vec<Option<String>>,
    document: Vec<String>,
    created: Vec<DateTime<Utc>>,
    default_version: Vec<i32>,
    last_version: Vec<i32>,
    updated: Vec<Option<DateTime<Utc>>>,
}

#[derive(Default)]
struct VersionRows {
    arn: Vec<String>,
    version: Vec<i32>,
    document: Vec<String>,
    created: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct RoleRows {
    key: Vec<String>,
    name: Vec<String>,
    path: Vec<String>,
    role_id: Vec<String>,
    created: Vec<DateTime<Utc>>,
    description: Vec<Option<String>>,
    max_session_duration: Vec<i32>,
    trust_policy: Vec<String>,
    boundary: Vec<Option<String>>,
}

#[derive(Default)]
struct InlineRows {
    owner_kind: Vec<String>,
    owner_key: Vec<String>,
    name: Vec<String>,
    document: Vec<String>,
}

#[derive(Default)]
struct AttachedRows {
    owner_kind: Vec<String>,
    owner_key: Vec<String>,
    position: Vec<i32>,
    arn: Vec<String>,
}

#[derive(Default)]
struct TagRows {
    owner_kind: Vec<String>,
    owner_key: Vec<String>,
    position: Vec<i32>,
    key: Vec<String>,
    value: Vec<String>,
}

#[derive(Default)]
struct RevocationRows {
    unique_id: Vec<String>,
    revoked_before: Vec<i64>,
}

/// Every row a batch of changes writes, as column arrays for batched
/// `INSERT ... SELECT FROM unnest(...)`: a fixed number of statements
/// whatever the number of entities.
#[derive(Default)]
struct Rows {
    users: UserRows,
    keys: KeyRows,
    members: MemberRows,
    groups: GroupRows,
    policies: PolicyRows,
    versions: VersionRows,
    roles: RoleRows,
    inline: InlineRows,
    attached: AttachedRows,
    tags: TagRows,
    revocations: RevocationRows,
    /// OpenID Connect providers, written one statement each (there are few).
    providers: Vec<(String, StoredOidcProvider)>,
    /// Owners whose dependent rows are replaced (or removed), by kind.
    owners: BTreeMap<&'static str, Vec<String>>,
    deleted: BTreeMap<&'static str, Vec<String>>,
}

impl Rows {
    fn owned(
        &mut self,
        kind: &'static str,
        key: &str,
        policies: &BTreeMap<String, String>,
        attached: &[String],
    ) {
        self.owners.entry(kind).or_default().push(key.to_string());
        for (name, doc) in policies {
            let r = &mut self.inline;
            r.owner_kind.push(kind.to_string());
            r.owner_key.push(key.to_string());
            r.name.push(name.clone());
            r.document.push(doc.clone());
        }
        for (i, arn) in attached.iter().enumerate() {
            let r = &mut self.attached;
            r.owner_kind.push(kind.to_string());
            r.owner_key.push(key.to_string());
            r.position.push(i as i32);
            r.arn.push(arn.clone());
        }
    }

    fn tagged(&mut self, kind: &'static str, key: &str, tags: &[Tag]) {
        for (i, t) in tags.iter().enumerate() {
            let r = &mut self.tags;
            r.owner_kind.push(kind.to_string());
            r.owner_key.push(key.to_string());
            r.position.push(i as i32);
            r.key.push(t.key.clone());
            r.value.push(t.value.clone());
        }
    }

    fn add(&mut self, c: &Change) {
        let key = c.entity.key();
        match &c.value {
            None => {
                let kind = c.entity.kind();
                self.deleted.entry(kind).or_default().push(key.to_string());
                if matches!(
                    c.entity,
                    EntityKey::User(_)
                        | EntityKey::Group(_)
                        | EntityKey::Role(_)
                        | EntityKey::OidcProvider(_)
                ) {
                    self.owners.entry(kind).or_default().push(key.to_string());
                }
            }
            Some(Entity::User(u)) => {
                let r = &mut self.users;
                r.key.push(key.to_string());
                r.name.push(u.name.clone());
                r.path.push(u.path.clone());
                r.user_id.push(u.user_id.clone());
                r.created.push(u.created);
                r.boundary.push(u.permissions_boundary.clone());
                for (i, k) in u.access_keys.iter().enumerate() {
                    let r = &mut self.keys;
                    r.access_key_id.push(k.access_key_id.clone());
                    r.user_key.push(key.to_string());
                    r.position.push(i as i32);
                    r.secret.push(k.secret_access_key.clone());
                    r.active.push(k.active);
                    r.created.push(k.created);
                }
                for (i, g) in u.groups.iter().enumerate() {
                    let r = &mut self.members;
                    r.user_key.push(key.to_string());
                    r.position.push(i as i32);
                    r.group_name.push(g.clone());
                }
                self.owned("user", key, &u.policies, &u.attached);
                self.tagged("user", key, &u.tags);
            }
            Some(Entity::Group(g)) => {
                let r = &mut self.groups;
                r.key.push(key.to_string());
                r.name.push(g.name.clone());
                r.path.push(g.path.clone());
                r.group_id.push(g.group_id.clone());
                r.created.push(g.created);
                self.owned("group", key, &g.policies, &g.attached);
            }
            Some(Entity::Policy(p)) => {
                let r = &mut self.policies;
                r.arn.push(key.to_string());
                r.name.push(p.name.clone());
                r.path.push(p.path.clone());
                r.policy_id.push(p.policy_id.clone());
                r.description.push(p.description.clone());
                r.document.push(p.document.clone());
                r.created.push(p.created);
                r.default_version.push(p.default_version as i32);
                r.last_version.push(p.last_version as i32);
                r.updated.push(p.updated);
                for v in p.all_versions() {
                    let r = &mut self.versions;
                    r.arn.push(key.to_string());
                    r.version.push(v.id as i32);
                    r.document.push(v.document);
                    r.created.push(v.created);
                }
            }
            Some(Entity::Role(ro)) => {
                let r = &mut self.roles;
                r.key.push(key.to_string());
                r.name.push(ro.name.clone());
                r.path.push(ro.path.clone());
                r.role_id.push(ro.role_id.clone());
                r.created.push(ro.created);
                r.description.push(ro.description.clone());
                r.max_session_duration
                    .push(ro.max_session_duration.min(i32::MAX as u32) as i32);
                r.trust_policy.push(ro.trust_policy.clone());
                r.boundary.push(ro.permissions_boundary.clone());
                self.owned("role", key, &ro.policies, &ro.attached);
                self.tagged("role", key, &ro.tags);
            }
            Some(Entity::Revocation(t)) => {
                self.revocations.unique_id.push(key.to_string());
                self.revocations.revoked_before.push(*t);
            }
            Some(Entity::OidcProvider(p)) => {
                self.providers.push((key.to_string(), p.clone()));
                self.owners
                    .entry("oidc_provider")
                    .or_default()
                    .push(key.to_string());
                self.tagged("oidc_provider", key, &p.tags);
            }
        }
    }

    fn deleted(&self, kind: &str) -> Vec<String> {
        self.deleted.get(kind).cloned().unwrap_or_default()
    }

    fn owners(&self, kind: &str) -> Vec<String> {
        self.owners.get(kind).cloned().unwrap_or_default()
    }
}

/// Runs a statement unless its arrays are all empty (`rows == 0`).
async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    rows: usize,
) -> Result<u64, tokio_postgres::Error> {
    if rows == 0 {
        return Ok(0);
    }
    c.execute(sql, params).await
}

/// Writes whole entities: a fixed number of statements whatever their count.
pub(super) async fn write_changes(
    c: &impl GenericClient,
    changes: &[Change],
) -> Result<(), tokio_postgres::Error> {
    let mut rows = Rows::default();
    for ch in changes {
        rows.add(ch);
    }
    // Deletions, and the dependent rows of every entity rewritten.
    let (du, dg, dp, dr, dv, dop) = (
        rows.deleted("user"),
        rows.deleted("group"),
        rows.deleted("policy"),
        rows.deleted("role"),
        rows.deleted("revocation"),
        rows.deleted("oidc_provider"),
    );
    let (ou, og, or) = (
        rows.owners("user"),
        rows.owners("group"),
        rows.owners("role"),
    );
    for (sql, keys) in [
        ("DELETE FROM s3warden.users WHERE key = ANY($1)", &du),
        ("DELETE FROM s3warden.groups WHERE key = ANY($1)", &dg),
        (
            "DELETE FROM s3warden.managed_policies WHERE arn = ANY($1)",
            &dp,
        ),
        ("DELETE FROM s3warden.roles WHERE key = ANY($1)", &dr),
        (
            "DELETE FROM s3warden.session_revocations WHERE unique_id = ANY($1)",
            &dv,
        ),
        (
            "DELETE FROM s3warden.oidc_providers WHERE arn = ANY($1)",
            &dop,
        ),
        (
            "DELETE FROM s3warden.access_keys WHERE user_key = ANY($1)",
            &ou,
        ),
        (
            "DELETE FROM s3warden.group_members WHERE user_key = ANY($1)",
            &ou,
        ),
    ] {
        exec(c, sql, &[keys], keys.len()).await?;
    }
    let owners = ou.len() + og.len() + or.len();
    for table in ["inline_policies", "attached_policies", "tags"] {
        let sql = format!(
            "DELETE FROM s3warden.{table} WHERE (owner_kind = 'user' AND owner_key = ANY($1))
             OR (owner_kind = 'group' AND owner_key = ANY($2)) OR (owner_kind = 'role' AND owner_key = ANY($3))"
        );
        exec(c, &sql, &[&ou, &og, &or], owners).await?;
    }
    let oop = rows.owners("oidc_provider");
    exec(
        c,
        "DELETE FROM s3warden.tags WHERE owner_kind = 'oidc_provider' AND owner_key = ANY($1)",
        &[&oop],
        oop.len(),
    )
    .await?;
    // Entities, then what depends on them.
    let u = &rows.users;
    exec(
        c,
        "INSERT INTO s3warden.users (key, name, path, user_id, created, permissions_boundary)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
         ON CONFLICT (key) DO UPDATE SET name = excluded.name, path = excluded.path,
             user_id = excluded.user_id, created = excluded.created,
             permissions_boundary = excluded.permissions_boundary",
        &[&u.key, &u.name, &u.path, &u.user_id, &u.created, &u.boundary],
        u.key.len(),
    )
    .await?;
    let g = &rows.groups;
    exec(
        c,
        "INSERT INTO s3warden.groups (key, name, path, group_id, created)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
         ON CONFLICT (key) DO UPDATE SET name = excluded.name, path = excluded.path,
             group_id = excluded.group_id, created = excluded.created",
        &[&g.key, &g.name, &g.path, &g.group_id, &g.created],
        g.key.len(),
    )
    .await?;
    let p = &rows.policies;
    exec(
        c,
        "INSERT INTO s3warden.managed_policies
             (arn, name, path, policy_id, description, document, created, default_version, last_version, updated)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::timestamptz[], $8::int[], $9::int[], $10::timestamptz[])
         ON CONFLICT (arn) DO UPDATE SET name = excluded.name, path = excluded.path,
             policy_id = excluded.policy_id, description = excluded.description,
             document = excluded.document, created = excluded.created,
             default_version = excluded.default_version, last_version = excluded.last_version,
             updated = excluded.updated",
        &[
            &p.arn,
            &p.name,
            &p.path,
            &p.policy_id,
            &p.description,
            &p.document,
            &p.created,
            &p.default_version,
            &p.last_version,
            &p.updated,
        ],
        p.arn.len(),
    )
    .await?;
    // A policy's versions are replaced whole.
    exec(
        c,
        "DELETE FROM s3warden.policy_versions WHERE arn = ANY($1)",
        &[&p.arn],
        p.arn.len(),
    )
    .await?;
    let v = &rows.versions;
    exec(
        c,
        "INSERT INTO s3warden.policy_versions (arn, version, document, created)
         SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[])",
        &[&v.arn, &v.version, &v.document, &v.created],
        v.arn.len(),
    )
    .await?;
    let r = &rows.roles;
    exec(
        c,
        "INSERT INTO s3warden.roles
             (key, name, path, role_id, created, description, max_session_duration, trust_policy, permissions_boundary)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
             $7::int[], $8::text[], $9::text[])
         ON CONFLICT (key) DO UPDATE SET name = excluded.name, path = excluded.path,
             role_id = excluded.role_id, created = excluded.created, description = excluded.description,
             max_session_duration = excluded.max_session_duration, trust_policy = excluded.trust_policy,
             permissions_boundary = excluded.permissions_boundary",
        &[
            &r.key,
            &r.name,
            &r.path,
            &r.role_id,
            &r.created,
            &r.description,
            &r.max_session_duration,
            &r.trust_policy,
            &r.boundary,
        ],
        r.key.len(),
    )
    .await?;
    let k = &rows.keys;
    exec(
        c,
        "INSERT INTO s3warden.access_keys (access_key_id, user_key, position, secret_access_key, active, created)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bool[], $6::timestamptz[])",
        &[
            &k.access_key_id,
            &k.user_key,
            &k.position,
            &k.secret,
            &k.active,
            &k.created,
        ],
        k.access_key_id.len(),
    )
    .await?;
    let m = &rows.members;
    exec(
        c,
        "INSERT INTO s3warden.group_members (user_key, position, group_name)
         SELECT * FROM unnest($1::text[], $2::int[], $3::text[])",
        &[&m.user_key, &m.position, &m.group_name],
        m.user_key.len(),
    )
    .await?;
    let i = &rows.inline;
    exec(
        c,
        "INSERT INTO s3warden.inline_policies (owner_kind, owner_key, name, document)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
        &[&i.owner_kind, &i.owner_key, &i.name, &i.document],
        i.owner_kind.len(),
    )
    .await?;
    let a = &rows.attached;
    exec(
        c,
        "INSERT INTO s3warden.attached_policies (owner_kind, owner_key, position, arn)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[])",
        &[&a.owner_kind, &a.owner_key, &a.position, &a.arn],
        a.owner_kind.len(),
    )
    .await?;
    let t = &rows.tags;
    exec(
        c,
        "INSERT INTO s3warden.tags (owner_kind, owner_key, position, key, value)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[])",
        &[&t.owner_kind, &t.owner_key, &t.position, &t.key, &t.value],
        t.owner_kind.len(),
    )
    .await?;
    let v = &rows.revocations;
    exec(
        c,
        "INSERT INTO s3warden.session_revocations (unique_id, revoked_before)
         SELECT * FROM unnest($1::text[], $2::bigint[])
         ON CONFLICT (unique_id) DO UPDATE SET revoked_before = excluded.revoked_before",
        &[&v.unique_id, &v.revoked_before],
        v.unique_id.len(),
    )
    .await?;
    for (arn, p) in &rows.providers {
        c.execute(
            "INSERT INTO s3warden.oidc_providers (arn, url, client_ids, thumbprints, created)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (arn) DO UPDATE SET url = excluded.url, client_ids = excluded.client_ids,
                 thumbprints = excluded.thumbprints, created = excluded.created",
            &[arn, &p.url, &p.client_ids, &p.thumbprints, &p.created],
        )
        .await?;
    }
    Ok(())
}
